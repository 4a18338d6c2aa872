"""Visibility rasterizer: per-pixel triangle id, perspective-correct barycentrics and depth.

Pipeline (all Warp kernels, CPU and CUDA):

1. ``project_vertices`` (one thread per vertex): world points -> ``screen``
   ``(u, v, depth)`` in pixels, pixels, metres (``lift3d.camera`` conventions).
2. ``setup_triangles`` (one thread per triangle): snaps the projected corners
   to a 1/1024-pixel fixed-point grid and writes each drawable triangle's
   clipped pixel bounding box. Not drawn (empty box): triangles with a corner
   closer than ``NEAR`` to the camera plane, behind it or non-finite (they are
   *skipped*, not clipped), triangles with a corner beyond the +-2^19 pixel
   guard band, triangles of zero snapped area, back faces when culling, and
   triangles covering no pixel centre.
3. ``raster_band`` (one thread per triangle, restricted to a band of image
   rows): for each row of the triangle's box, solves its exact int64 edge
   functions for the covered span of pixel centres under a top-left fill rule
   (shared edges: no gaps, no double coverage), and keeps
   per pixel the minimum of a packed int64 key ``(quantised depth << 32) |
   triangle id`` with ``atomic_min`` (nearest surface; equal depths resolve to
   the lower id), so the result does not depend on the launch order.
4. ``resolve_band`` (per pixel of the band): unpacks the key, computes the
   perspective-correct barycentrics and the depth at the pixel centre
   ``(x + 0.5, y + 0.5)`` from the unsnapped corners (so they are smooth
   functions of the vertices, as the interpolation adjoints assume) and resets
   the key buffer.

Cost grows with pixels + covered pixels per triangle, not pixels x triangles.
On the CPU the image is cut into row bands that run in parallel threads
(steps 3-4 write only their own band, since Warp's CPU atomics are not
atomic); on CUDA each step is one launch over the whole image.

Fill rule and orientation: pixel coordinates have ``v`` down; a triangle whose
corners appear counter-clockwise on screen (the OpenGL / USD right-handed
front face) has a negative signed area ``(b - a) x (c - a)`` in these
coordinates. ``cull_backfaces`` drops triangles with a positive area.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import warp as wp

from .launch import ensure_loaded, parallel_launch, resolve_device, run_chunks, thread_count
from .projection import NEAR, camera_args, project, to_camera

wp.set_module_options({"enable_backward": False})

SUBPIXEL = wp.constant(1024.0)
"""Fixed-point steps per pixel used for coverage decisions."""
SUBPIXEL_INT = wp.constant(wp.int64(1024))
GUARD = wp.constant(524288.0)
"""Guard band (pixels): triangles with a corner farther than this from the origin are not drawn."""
EMPTY_KEY = wp.constant(wp.int64(9223372036854775807))
"""Key of a pixel no triangle covers."""
DEPTH_SCALE = wp.constant(1.0)
"""Depth (metres) mapped to the middle of the key's depth range by ``d / (d + DEPTH_SCALE)``."""


@wp.kernel
def project_vertices(start: int, points: wp.array(dtype=wp.vec3), w2c: wp.mat44, K: wp.vec4,
                     screen: wp.array(dtype=wp.vec3)):
    """points (V,) world metres -> screen (V,) (u px, v px, depth m); depth <= NEAR marks unusable corners."""
    i = start + wp.tid()
    pc = to_camera(w2c, points[i])
    s = project(K, pc)
    if not (s[2] > NEAR and wp.isfinite(s[0]) and wp.isfinite(s[1])):
        s = wp.vec3(0.0, 0.0, -1.0)
    screen[i] = s


@wp.func
def snap(x: float) -> wp.int64:
    """Pixel coordinate -> fixed point (1/SUBPIXEL pixel), round to nearest."""
    return wp.int64(wp.floor(wp.float64(x) * wp.float64(SUBPIXEL) + wp.float64(0.5)))


@wp.func
def usable(s: wp.vec3) -> bool:
    return s[2] > NEAR and wp.abs(s[0]) < GUARD and wp.abs(s[1]) < GUARD


@wp.kernel
def setup_triangles(start: int, faces: wp.array2d(dtype=wp.int32), screen: wp.array(dtype=wp.vec3),
                    cull_backfaces: int, width: int, height: int, bbox: wp.array(dtype=wp.vec4i)):
    """faces (F, 3), screen (V,) -> bbox (F,) inclusive pixel box (x0, y0, x1, y1); x0 > x1 = not drawn."""
    f = start + wp.tid()
    sa = screen[faces[f, 0]]
    sb = screen[faces[f, 1]]
    sc = screen[faces[f, 2]]
    box = wp.vec4i(0, 0, -1, -1)
    if usable(sa) and usable(sb) and usable(sc):
        ax = snap(sa[0])
        ay = snap(sa[1])
        bx = snap(sb[0])
        by = snap(sb[1])
        cx = snap(sc[0])
        cy = snap(sc[1])
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if area != wp.int64(0) and not (cull_backfaces != 0 and area > wp.int64(0)):
            inv = wp.float64(1.0) / wp.float64(SUBPIXEL)
            half = wp.float64(0.5)
            x0 = int(wp.ceil(wp.float64(wp.min(wp.min(ax, bx), cx)) * inv - half))
            x1 = int(wp.floor(wp.float64(wp.max(wp.max(ax, bx), cx)) * inv - half))
            y0 = int(wp.ceil(wp.float64(wp.min(wp.min(ay, by), cy)) * inv - half))
            y1 = int(wp.floor(wp.float64(wp.max(wp.max(ay, by), cy)) * inv - half))
            x0 = wp.max(x0, 0)
            y0 = wp.max(y0, 0)
            x1 = wp.min(x1, width - 1)
            y1 = wp.min(y1, height - 1)
            if x0 <= x1 and y0 <= y1:
                box = wp.vec4i(x0, y0, x1, y1)
    bbox[f] = box


@wp.func
def edge_bias(dx: wp.int64, dy: wp.int64) -> wp.int64:
    """0 for a top or left edge of a positively oriented (v-down) triangle, 1 otherwise (top-left rule)."""
    if dy < wp.int64(0) or (dy == wp.int64(0) and dx > wp.int64(0)):
        return wp.int64(0)
    return wp.int64(1)


@wp.func
def floor_div(a: wp.int64, b: wp.int64) -> wp.int64:
    """floor(a / b) for b > 0."""
    if a >= wp.int64(0):
        return a / b
    return -((-a + b - wp.int64(1)) / b)


@wp.func
def clip_span(e0: wp.int64, de: wp.int64, bias: wp.int64, lo: wp.int64, hi: wp.int64):
    """Narrow [lo, hi] to the steps k where e0 + k * de >= bias (exact integer arithmetic)."""
    if de > wp.int64(0):
        lo = wp.max(lo, -floor_div(e0 - bias, de))
    elif de < wp.int64(0):
        hi = wp.min(hi, floor_div(e0 - bias, -de))
    elif e0 < bias:
        hi = lo - wp.int64(1)
    return lo, hi


@wp.kernel
def raster_band(start: int, faces: wp.array2d(dtype=wp.int32), screen: wp.array(dtype=wp.vec3),
                bbox: wp.array(dtype=wp.vec4i), band_y0: int, band_y1: int, keys: wp.array2d(dtype=wp.int64)):
    """Draw triangle ``f`` into rows [band_y0, band_y1) of keys (H, W): atomic min of (depth key << 32 | f)."""
    f = start + wp.tid()
    box = bbox[f]
    y0 = wp.max(box[1], band_y0)
    y1 = wp.min(box[3], band_y1 - 1)
    if box[0] > box[2] or y0 > y1:
        return
    ia = faces[f, 0]
    ib = faces[f, 1]
    ic = faces[f, 2]
    sa = screen[ia]
    sb = screen[ib]
    sc = screen[ic]
    ax = snap(sa[0])
    ay = snap(sa[1])
    bx = snap(sb[0])
    by = snap(sb[1])
    cx = snap(sc[0])
    cy = snap(sc[1])
    iza = wp.float64(1.0) / wp.float64(sa[2])
    izb = wp.float64(1.0) / wp.float64(sb[2])
    izc = wp.float64(1.0) / wp.float64(sc[2])
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    if area < wp.int64(0):  # make the orientation positive: swap b and c
        tx = bx
        ty = by
        bx = cx
        by = cy
        cx = tx
        cy = ty
        tz = izb
        izb = izc
        izc = tz
        area = -area
    # Edge functions E(p) = (q - o) x (p - o) for edges bc (weight of a), ca (of b), ab (of c).
    bias_a = edge_bias(cx - bx, cy - by)
    bias_b = edge_bias(ax - cx, ay - cy)
    bias_c = edge_bias(bx - ax, by - ay)
    step = SUBPIXEL_INT
    half = SUBPIXEL_INT / wp.int64(2)
    px0 = wp.int64(box[0]) * step + half
    py0 = wp.int64(y0) * step + half
    ea_row = (cx - bx) * (py0 - by) - (cy - by) * (px0 - bx)
    eb_row = (ax - cx) * (py0 - cy) - (ay - cy) * (px0 - cx)
    ec_row = (bx - ax) * (py0 - ay) - (by - ay) * (px0 - ax)
    ea_dx = -(cy - by) * step
    eb_dx = -(ay - cy) * step
    ec_dx = -(by - ay) * step
    ea_dy = (cx - bx) * step
    eb_dy = (ax - cx) * step
    ec_dy = (bx - ax) * step
    inv_area = wp.float64(1.0) / wp.float64(area)
    # 1/depth is affine in screen space: plane through the three corners.
    gx = (wp.float64(ea_dx) * iza + wp.float64(eb_dx) * izb + wp.float64(ec_dx) * izc) * inv_area
    iz_row = (wp.float64(ea_row) * iza + wp.float64(eb_row) * izb + wp.float64(ec_row) * izc) * inv_area
    gy = (wp.float64(ea_dy) * iza + wp.float64(eb_dy) * izb + wp.float64(ec_dy) * izc) * inv_area
    fid = wp.int64(f)
    last = wp.int64(box[2] - box[0])
    for y in range(y0, y1 + 1):
        # Exact span of pixel steps k = x - x0 with every edge function >= its bias.
        lo = wp.int64(0)
        hi = last
        lo, hi = clip_span(ea_row, ea_dx, bias_a, lo, hi)
        lo, hi = clip_span(eb_row, eb_dx, bias_b, lo, hi)
        lo, hi = clip_span(ec_row, ec_dx, bias_c, lo, hi)
        iz = iz_row + wp.float64(lo) * gx
        for k in range(int(lo), int(hi) + 1):
            q = DEPTH_SCALE / (DEPTH_SCALE + wp.float32(wp.max(iz, wp.float64(0.0))))
            key = (wp.int64(q * 2147483520.0) << wp.int64(32)) | fid
            wp.atomic_min(keys, y, box[0] + k, key)
            iz += gx
        ea_row += ea_dy
        eb_row += eb_dy
        ec_row += ec_dy
        iz_row += gy


@wp.func
def perspective_barycentrics(sa: wp.vec3, sb: wp.vec3, sc: wp.vec3, px: float, py: float) -> wp.vec4:
    """Perspective-correct barycentrics (w_a, w_b, w_c) and depth (metres) at pixel point (px, py).

    With screen-space edge functions e_i (twice the signed area of the sub-triangle
    opposite corner i, each evaluated relative to a corner of its edge for accuracy)
    and corner depths d_i: w_i = (e_i / d_i) / sum_j (e_j / d_j),
    depth = sum_i e_i / sum_j (e_j / d_j).
    """
    ea = (sc[0] - sb[0]) * (py - sb[1]) - (sc[1] - sb[1]) * (px - sb[0])
    eb = (sa[0] - sc[0]) * (py - sc[1]) - (sa[1] - sc[1]) * (px - sc[0])
    ec = (sb[0] - sa[0]) * (py - sa[1]) - (sb[1] - sa[1]) * (px - sa[0])
    na = ea / sa[2]
    nb = eb / sb[2]
    nc = ec / sc[2]
    inv = 1.0 / (na + nb + nc)
    return wp.vec4(na * inv, nb * inv, nc * inv, (ea + eb + ec) * inv)


@wp.kernel
def resolve_band(start: int, span: int, keys: wp.array2d(dtype=wp.int64), faces: wp.array2d(dtype=wp.int32),
                 screen: wp.array(dtype=wp.vec3), tri_id: wp.array2d(dtype=wp.int32),
                 bary: wp.array2d(dtype=wp.vec3), depth: wp.array2d(dtype=wp.float32)):
    """keys (H, W) -> tri_id (H, W) (-1 background), bary (H, W), depth (H, W) metres (inf background); resets keys.

    Thread (i, j) handles pixels [j * span, (j + 1) * span) of row ``start + i``.
    """
    i, j = wp.tid()
    y = start + i
    x_end = wp.min((j + 1) * span, keys.shape[1])
    for x in range(j * span, x_end):
        key = keys[y, x]
        if key == EMPTY_KEY:
            tri_id[y, x] = -1
            bary[y, x] = wp.vec3(0.0, 0.0, 0.0)
            depth[y, x] = wp.inf
        else:
            keys[y, x] = EMPTY_KEY
            f = int(key & wp.int64(4294967295))
            r = perspective_barycentrics(screen[faces[f, 0]], screen[faces[f, 1]], screen[faces[f, 2]],
                                         float(x) + 0.5, float(y) + 0.5)
            tri_id[y, x] = f
            bary[y, x] = wp.vec3(r[0], r[1], r[2])
            depth[y, x] = r[3]


@dataclass
class RasterResult:
    """Output of :func:`rasterize` (Warp arrays on the raster's device).

    Attributes:
        tri_id: (H, W) int32 triangle index, -1 where no triangle covers the pixel centre.
        bary: (H, W) vec3 perspective-correct barycentrics of the triangle's corners
            ``faces[tri_id]`` at the pixel centre (zero on background).
        depth: (H, W) float32 depth along the optical axis, metres (``inf`` on background).
        screen: (V,) vec3 projected vertices (u px, v px, depth m); depth -1 for unusable ones.
        faces: (F, 3) int32 triangles used.
        points: (V,) vec3 world points used (metres).
        w2c, K: the camera as kernel arguments (see ``projection.py``).
        width, height: image size in pixels.
    """

    tri_id: wp.array
    bary: wp.array
    depth: wp.array
    screen: wp.array
    faces: wp.array
    points: wp.array
    w2c: wp.mat44
    K: wp.vec4
    width: int
    height: int
    keys: wp.array = field(repr=False)
    bbox: wp.array = field(repr=False)

    @property
    def device(self) -> wp.Device:
        return self.tri_id.device

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool, True where a triangle covers the pixel centre."""
        return self.tri_id.numpy() >= 0

    def numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(tri_id (H, W) int32, bary (H, W, 3) float32, depth (H, W) float32)`` as numpy arrays."""
        return self.tri_id.numpy(), self.bary.numpy(), self.depth.numpy()


def as_points(points, device: wp.Device) -> wp.array:
    """(V, 3) float array (numpy, list or Warp) -> (V,) vec3 Warp array on ``device``."""
    if isinstance(points, wp.array):
        if points.dtype == wp.vec3 and points.ndim == 1:
            return points if points.device == device else points.to(device)
        points = points.numpy()
    arr = np.asarray(points, dtype=np.float32)
    if arr.size == 0:
        arr = arr.reshape(0, 3)
    if arr.ndim != 2 or arr.shape[1] != 3:
        from lift3d.errors import InputError

        raise InputError(f"points must have shape (V, 3), got {arr.shape}.")
    return wp.array(np.ascontiguousarray(arr), dtype=wp.vec3, device=device)


def as_faces(faces, num_points: int, device: wp.Device) -> wp.array:
    """(F, 3) integer triangles (numpy, list or Warp) -> (F, 3) int32 Warp array.

    Indices of numpy input are checked against ``num_points``; Warp input is trusted (hot loops).
    """
    if isinstance(faces, wp.array):
        if faces.dtype == wp.int32 and faces.ndim == 2 and faces.shape[1] == 3:
            return faces if faces.device == device else faces.to(device)
        faces = faces.numpy()
    arr = np.asarray(faces)
    if arr.size == 0:
        arr = arr.reshape(0, 3)
    from lift3d.errors import InputError

    if arr.ndim != 2 or arr.shape[1] != 3 or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"faces must be an integer array of shape (F, 3), got {arr.dtype} {arr.shape}.")
    if arr.size and (arr.min() < 0 or arr.max() >= num_points):
        raise InputError(f"faces index vertices outside 0..{num_points - 1}.")
    return wp.array(np.ascontiguousarray(arr, dtype=np.int32), dtype=wp.int32, device=device)


def _camera_kernel_args(camera) -> tuple[wp.mat44, wp.vec4]:
    if isinstance(camera, tuple):
        return camera
    return camera_args(camera)


def rasterize(points, faces, camera, width: int, height: int, cull_backfaces: bool = False,
              device=None, out: RasterResult | None = None, threads: int | None = None) -> RasterResult:
    """Rasterize a triangle mesh for visibility.

    Args:
        points: (V, 3) world positions, metres (numpy or a Warp vec3 array).
        faces: (F, 3) vertex indices (numpy or a Warp int32 array).
        camera: a :class:`lift3d.camera.Camera` whose intrinsics are in pixels of
            this ``width`` x ``height`` image, or a ``(w2c, K)`` tuple from
            ``projection.camera_args``.
        width, height: image size in pixels (0 gives empty arrays).
        cull_backfaces: drop triangles that appear clockwise on screen (back faces
            of counter-clockwise, right-handed meshes).
        device: Warp device or name (default: launch.configure).
        out: a previous result of the same image size, mesh size and device whose
            buffers are reused (the hot loop of a camera search).
        threads: CPU threads (default: launch.configure).

    Returns:
        :class:`RasterResult` with Warp arrays.
    """
    from lift3d.errors import InputError

    if width < 0 or height < 0:
        raise InputError(f"image size must be non-negative, got {width} x {height}.")
    device = out.device if (out is not None and device is None) else resolve_device(device)
    pts = as_points(points, device)
    tris = as_faces(faces, pts.shape[0], device)
    w2c, K = _camera_kernel_args(camera)
    width, height = int(width), int(height)
    if (out is not None and out.device == device and out.width == width and out.height == height
            and out.screen.shape[0] == pts.shape[0] and out.bbox.shape[0] == tris.shape[0]):
        res = out
        res.points, res.faces, res.w2c, res.K = pts, tris, w2c, K
    else:
        res = RasterResult(
            tri_id=wp.empty((height, width), dtype=wp.int32, device=device),
            bary=wp.empty((height, width), dtype=wp.vec3, device=device),
            depth=wp.empty((height, width), dtype=wp.float32, device=device),
            screen=wp.empty(pts.shape[0], dtype=wp.vec3, device=device),
            faces=tris, points=pts, w2c=w2c, K=K, width=width, height=height,
            keys=wp.full((height, width), value=np.iinfo(np.int64).max, dtype=wp.int64, device=device),
            bbox=wp.empty(tris.shape[0], dtype=wp.vec4i, device=device),
        )
    if width == 0 or height == 0:
        return res
    threads = thread_count() if threads is None else max(1, int(threads))
    parallel_launch(project_vertices, pts.shape[0], [pts, w2c, K, res.screen], device, threads, min_chunk=4096)
    _setup_and_draw(res, cull_backfaces, threads)
    return res


def rasterize_screen(screen: wp.array, faces, width: int, height: int, cull_backfaces: bool = False,
                     threads: int | None = None) -> RasterResult:
    """Rasterize corners already in screen space: ``screen`` (V,) vec3 = (u px, v px, depth m).

    Used for flat parametrisations (a UV layout at depth 1 gives affine barycentrics).
    The result's ``points`` are the screen corners and its camera the identity, so
    interpolation gradients w.r.t. positions are not meaningful for it.
    """
    from lift3d.errors import InputError

    if width < 0 or height < 0:
        raise InputError(f"image size must be non-negative, got {width} x {height}.")
    device = screen.device
    tris = as_faces(faces, screen.shape[0], device)
    width, height = int(width), int(height)
    res = RasterResult(
        tri_id=wp.empty((height, width), dtype=wp.int32, device=device),
        bary=wp.empty((height, width), dtype=wp.vec3, device=device),
        depth=wp.empty((height, width), dtype=wp.float32, device=device),
        screen=screen, faces=tris, points=screen,
        w2c=wp.mat44(*np.eye(4, dtype=np.float32).ravel().tolist()), K=wp.vec4(1.0, 1.0, 0.0, 0.0),
        width=width, height=height,
        keys=wp.full((height, width), value=np.iinfo(np.int64).max, dtype=wp.int64, device=device),
        bbox=wp.empty(tris.shape[0], dtype=wp.vec4i, device=device),
    )
    if width and height:
        _setup_and_draw(res, cull_backfaces, thread_count() if threads is None else max(1, int(threads)))
    return res


def _setup_and_draw(res: RasterResult, cull_backfaces: bool, threads: int) -> None:
    parallel_launch(setup_triangles, res.faces.shape[0],
                    [res.faces, res.screen, int(cull_backfaces), res.width, res.height, res.bbox],
                    res.device, threads, min_chunk=4096)
    draw_screen_triangles(res, threads)


def draw_screen_triangles(res: RasterResult, threads: int) -> None:
    """Steps 3-4 for ``res.screen`` and ``res.bbox`` already filled: raster and resolve, in row bands on the CPU."""
    device = res.device
    width, height, num_faces = res.width, res.height, res.faces.shape[0]
    if device.is_cuda:
        if num_faces:
            wp.launch(raster_band, dim=num_faces, inputs=[0, res.faces, res.screen, res.bbox, 0, height, res.keys],
                      device=device)
        wp.launch(resolve_band, dim=(height, width),
                  inputs=[0, 1, res.keys, res.faces, res.screen, res.tri_id, res.bary, res.depth], device=device)
        return
    ensure_loaded(raster_band, device)

    def band(y0: int, rows: int) -> None:
        if num_faces:
            wp.launch(raster_band, dim=num_faces, inputs=[0, res.faces, res.screen, res.bbox, y0, y0 + rows, res.keys],
                      device=device)
        wp.launch(resolve_band, dim=(rows, 1),
                  inputs=[y0, width, res.keys, res.faces, res.screen, res.tri_id, res.bary, res.depth], device=device)

    run_chunks(height, band, threads, min_chunk=max(4, 4096 // max(width, 1)))
