"""Texture baking: project photographs onto a UV-mapped mesh, mirror unseen texels, inpaint the rest.

Steps (Warp kernels, CPU and CUDA):

1. **UV raster** — the mesh is rasterized in UV space at ``size x size``
   texels (``raster.rasterize_screen`` with the USD ``st`` convention: st
   (0, 0) = bottom-left, texel centres at half-integers of ``st * size``):
   per texel the face, affine barycentrics, hence the surface point (world
   metres) and the face normal. Face-varying UVs are supported (``uv`` (T, 2),
   ``uv_faces`` (F, 3)); the texture covers the unit square, so UV triangles
   outside it are not baked, and where charts overlap the lower face id wins.
2. **Per view** — the view is rasterized with ``raster.rasterize`` for its
   depth buffer. A texel's surface point is projected into the image; it is
   *visible* when it lies in front of the camera, inside the image, and its
   depth is at most ``(1 + depth_tolerance)`` times the depth buffer at each of
   the four pixels its bilinear colour lookup reads. Its weight is
   ``|cos(view angle)|^cos_power`` (face normal against the direction to the
   camera; the absolute value makes the result independent of the winding)
   times the bilinearly sampled *mask-edge weight*: ``min(1, distance to the
   mask boundary / edge_width)`` computed with OpenCV's distance transform, so
   silhouette pixels (mixed with the background) count little and background
   pixels not at all. ``colour * weight`` and ``weight`` are accumulated.
3. **Symmetry** (optional plane ``n . x = d``) — a texel no view sees takes the
   colour of its mirror image ``x - 2 (n . x - d) n``, looked up in the views
   with the same visibility test and weights.
4. **Fill** — known texels are dilated by ``dilate`` texels (the average of
   known 8-neighbours, so chart borders take colours from their own chart),
   then push-pull inpainting (Gortler et al. 1996, "The Lumigraph"): a mip
   pyramid built down with known-weights, then blended back up with bilinear
   upsampling, gives every remaining texel (unseen surface, gaps between charts)
   a smooth plausible colour. Only weighted (seen) samples enter, so no
   background colour bleeds across UV seams.

Colour space: images are (H, W, 3) float32 and averaged as given; pass linear
values for physically meaningful averages (the output is in the same space as
the input). Masks are (H, W) floats in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import warp as wp

from lift3d.errors import InputError

from .launch import parallel_launch, pixel_span, resolve_device, thread_count
from .projection import NEAR, camera_args, project, to_camera
from .raster import as_faces, as_points, rasterize, rasterize_screen

wp.set_module_options({"enable_backward": False})

UNSEEN = 0
SEEN = 1
MIRRORED = 2


@wp.kernel
def uv_to_screen(start: int, uv: wp.array(dtype=wp.vec2), size: int, screen: wp.array(dtype=wp.vec3)):
    """uv (T,) st -> screen (T,) texel-space corners (x, y, depth 1); row 0 at st t = 1."""
    i = start + wp.tid()
    st = uv[i]
    screen[i] = wp.vec3(st[0] * float(size), (1.0 - st[1]) * float(size), 1.0)


@wp.func
def bilinear_rgb(image: wp.array3d(dtype=wp.float32), x: float, y: float) -> wp.vec3:
    """Bilinear colour at continuous pixel position (x, y) (pixel centres at integers), clamped."""
    h = image.shape[0]
    w = image.shape[1]
    fx = wp.floor(x)
    fy = wp.floor(y)
    ax = x - fx
    ay = y - fy
    x0 = wp.clamp(int(fx), 0, w - 1)
    x1 = wp.clamp(int(fx) + 1, 0, w - 1)
    y0 = wp.clamp(int(fy), 0, h - 1)
    y1 = wp.clamp(int(fy) + 1, 0, h - 1)
    out = wp.vec3(0.0, 0.0, 0.0)
    for c in range(3):
        top = (1.0 - ax) * image[y0, x0, c] + ax * image[y0, x1, c]
        bottom = (1.0 - ax) * image[y1, x0, c] + ax * image[y1, x1, c]
        out[c] = (1.0 - ay) * top + ay * bottom
    return out


@wp.func
def view_sample(point: wp.vec3, normal: wp.vec3, w2c: wp.mat44, K: wp.vec4, cam_pos: wp.vec3,
                image: wp.array3d(dtype=wp.float32), edge: wp.array2d(dtype=wp.float32),
                depth: wp.array2d(dtype=wp.float32), cos_power: float, tolerance: float) -> wp.vec4:
    """(r, g, b, weight) of a surface point seen in one view; weight 0 when not visible."""
    s = project(K, to_camera(w2c, point))
    h = depth.shape[0]
    w = depth.shape[1]
    if not (s[2] > NEAR and s[0] >= 0.0 and s[1] >= 0.0 and s[0] <= float(w) and s[1] <= float(h)):
        return wp.vec4(0.0, 0.0, 0.0, 0.0)
    x = s[0] - 0.5
    y = s[1] - 0.5
    fx = wp.floor(x)
    fy = wp.floor(y)
    x0 = wp.clamp(int(fx), 0, w - 1)
    x1 = wp.clamp(int(fx) + 1, 0, w - 1)
    y0 = wp.clamp(int(fy), 0, h - 1)
    y1 = wp.clamp(int(fy) + 1, 0, h - 1)
    limit = s[2] / (1.0 + tolerance)
    if depth[y0, x0] < limit or depth[y0, x1] < limit or depth[y1, x0] < limit or depth[y1, x1] < limit:
        return wp.vec4(0.0, 0.0, 0.0, 0.0)
    ax = x - fx
    ay = y - fy
    e = (1.0 - ay) * ((1.0 - ax) * edge[y0, x0] + ax * edge[y0, x1]) + ay * (
        (1.0 - ax) * edge[y1, x0] + ax * edge[y1, x1])
    cosine = wp.abs(wp.dot(normal, wp.normalize(cam_pos - point)))
    weight = wp.pow(cosine, cos_power) * e
    if weight <= 0.0:
        return wp.vec4(0.0, 0.0, 0.0, 0.0)
    rgb = bilinear_rgb(image, x, y)
    return wp.vec4(rgb[0] * weight, rgb[1] * weight, rgb[2] * weight, weight)


@wp.kernel
def accumulate_view(start: int, span: int, uv_tri: wp.array2d(dtype=wp.int32), uv_bary: wp.array2d(dtype=wp.vec3),
                    points: wp.array(dtype=wp.vec3), faces: wp.array2d(dtype=wp.int32),
                    w2c: wp.mat44, K: wp.vec4, cam_pos: wp.vec3, image: wp.array3d(dtype=wp.float32),
                    edge: wp.array2d(dtype=wp.float32), depth: wp.array2d(dtype=wp.float32),
                    cos_power: float, tolerance: float, plane: wp.vec4, mirror: int,
                    acc: wp.array3d(dtype=wp.float32), acc_mirror: wp.array3d(dtype=wp.float32)):
    """Add one view's weighted colour to acc (T, T, 4) = (r w, g w, b w, w); mirrored points to acc_mirror."""
    i, j = wp.tid()
    y = start + i
    for x in range(j * span, wp.min((j + 1) * span, uv_tri.shape[1])):
        f = uv_tri[y, x]
        if f >= 0:
            b = uv_bary[y, x]
            pa = points[faces[f, 0]]
            pb = points[faces[f, 1]]
            pc = points[faces[f, 2]]
            p = b[0] * pa + b[1] * pb + b[2] * pc
            n = wp.cross(pb - pa, pc - pa)
            length = wp.length(n)
            if length > 0.0:
                n = n / length
            r = view_sample(p, n, w2c, K, cam_pos, image, edge, depth, cos_power, tolerance)
            for c in range(4):
                acc[y, x, c] = acc[y, x, c] + r[c]
            if mirror != 0:
                pn = wp.vec3(plane[0], plane[1], plane[2])
                pm = p - 2.0 * (wp.dot(pn, p) - plane[3]) * pn
                nm = n - 2.0 * wp.dot(pn, n) * pn
                rm = view_sample(pm, nm, w2c, K, cam_pos, image, edge, depth, cos_power, tolerance)
                for c in range(4):
                    acc_mirror[y, x, c] = acc_mirror[y, x, c] + rm[c]


@wp.kernel
def resolve_texels(start: int, span: int, acc: wp.array3d(dtype=wp.float32), acc_mirror: wp.array3d(dtype=wp.float32),
                   color: wp.array3d(dtype=wp.float32), known: wp.array2d(dtype=wp.float32),
                   weight: wp.array2d(dtype=wp.float32), source: wp.array2d(dtype=wp.uint8)):
    """Direct colour where any view saw the texel, else the mirrored colour, else unknown (known = 0)."""
    i, j = wp.tid()
    y = start + i
    for x in range(j * span, wp.min((j + 1) * span, acc.shape[1])):
        w = acc[y, x, 3]
        wm = acc_mirror[y, x, 3]
        if w > 0.0:
            for c in range(3):
                color[y, x, c] = acc[y, x, c] / w
            known[y, x] = 1.0
            weight[y, x] = w
            source[y, x] = wp.uint8(1)
        elif wm > 0.0:
            for c in range(3):
                color[y, x, c] = acc_mirror[y, x, c] / wm
            known[y, x] = 1.0
            weight[y, x] = wm
            source[y, x] = wp.uint8(2)
        else:
            for c in range(3):
                color[y, x, c] = 0.0
            known[y, x] = 0.0
            weight[y, x] = 0.0
            source[y, x] = wp.uint8(0)


@wp.kernel
def dilate_step(start: int, span: int, color: wp.array3d(dtype=wp.float32), known: wp.array2d(dtype=wp.float32),
                color_out: wp.array3d(dtype=wp.float32), known_out: wp.array2d(dtype=wp.float32)):
    """One ring of dilation: an unknown texel with known 8-neighbours takes their average."""
    i, j = wp.tid()
    y = start + i
    h = color.shape[0]
    w = color.shape[1]
    for x in range(j * span, wp.min((j + 1) * span, w)):
        if known[y, x] > 0.0:
            for c in range(3):
                color_out[y, x, c] = color[y, x, c]
            known_out[y, x] = known[y, x]
        else:
            total = wp.vec3(0.0, 0.0, 0.0)
            count = float(0.0)
            for dy in range(-1, 2):
                for dx in range(-1, 2):
                    yy = y + dy
                    xx = x + dx
                    if yy >= 0 and yy < h and xx >= 0 and xx < w:
                        if known[yy, xx] > 0.0:
                            total += wp.vec3(color[yy, xx, 0], color[yy, xx, 1], color[yy, xx, 2])
                            count += 1.0
            if count > 0.0:
                for c in range(3):
                    color_out[y, x, c] = total[c] / count
                known_out[y, x] = 1.0
            else:
                for c in range(3):
                    color_out[y, x, c] = 0.0
                known_out[y, x] = 0.0


@wp.kernel
def pull_step(start: int, span: int, color: wp.array3d(dtype=wp.float32), known: wp.array2d(dtype=wp.float32),
              coarse: wp.array3d(dtype=wp.float32), coarse_known: wp.array2d(dtype=wp.float32)):
    """Push-pull, down: each coarse texel = known-weighted mean of its (up to) 2x2 fine texels."""
    i, j = wp.tid()
    y = start + i
    h = color.shape[0]
    w = color.shape[1]
    for x in range(j * span, wp.min((j + 1) * span, coarse.shape[1])):
        total = wp.vec3(0.0, 0.0, 0.0)
        wsum = float(0.0)
        for dy in range(2):
            for dx in range(2):
                yy = 2 * y + dy
                xx = 2 * x + dx
                if yy < h and xx < w:
                    k = known[yy, xx]
                    total += k * wp.vec3(color[yy, xx, 0], color[yy, xx, 1], color[yy, xx, 2])
                    wsum += k
        if wsum > 0.0:
            for c in range(3):
                coarse[y, x, c] = total[c] / wsum
        else:
            for c in range(3):
                coarse[y, x, c] = 0.0
        coarse_known[y, x] = wp.min(wsum, 1.0)


@wp.kernel
def push_step(start: int, span: int, coarse: wp.array3d(dtype=wp.float32), color: wp.array3d(dtype=wp.float32),
              known: wp.array2d(dtype=wp.float32)):
    """Push-pull, up: blend fine texels with the bilinearly upsampled coarse level by (1 - known)."""
    i, j = wp.tid()
    y = start + i
    ch = coarse.shape[0]
    cw = coarse.shape[1]
    for x in range(j * span, wp.min((j + 1) * span, color.shape[1])):
        k = known[y, x]
        if k < 1.0:
            # Fine texel centre in coarse texel coordinates (centres at integers).
            cx = (float(x) + 0.5) * 0.5 - 0.5
            cy = (float(y) + 0.5) * 0.5 - 0.5
            fx = wp.floor(cx)
            fy = wp.floor(cy)
            ax = cx - fx
            ay = cy - fy
            x0 = wp.clamp(int(fx), 0, cw - 1)
            x1 = wp.clamp(int(fx) + 1, 0, cw - 1)
            y0 = wp.clamp(int(fy), 0, ch - 1)
            y1 = wp.clamp(int(fy) + 1, 0, ch - 1)
            for c in range(3):
                up = (1.0 - ay) * ((1.0 - ax) * coarse[y0, x0, c] + ax * coarse[y0, x1, c]) + ay * (
                    (1.0 - ax) * coarse[y1, x0, c] + ax * coarse[y1, x1, c])
                color[y, x, c] = k * color[y, x, c] + (1.0 - k) * up


@dataclass
class BakeResult:
    """Output of :func:`bake_texture` (numpy arrays, row 0 = top of the texture image).

    Attributes:
        texture: (T, T, 3) float32 colour, in the colour space of the input images.
        weight: (T, T) float32 accumulated view weight of each texel (0 where inpainted).
        source: (T, T) uint8: 1 seen in a view, 2 taken from the mirror image, 0 inpainted.
        chart: (T, T) bool, True where a texel centre lies inside a UV triangle.
    """

    texture: np.ndarray
    weight: np.ndarray
    source: np.ndarray
    chart: np.ndarray

    @property
    def coverage(self) -> float:
        """Fraction of chart texels seen directly or through the mirror."""
        inside = self.chart.sum()
        return float((self.source[self.chart] > 0).sum() / inside) if inside else 0.0


def mask_edge_weight(mask: np.ndarray, edge_width: float) -> np.ndarray:
    """(H, W) weight in [0, 1]: ``min(1, distance to the mask boundary / edge_width) * mask`` (pixels)."""
    m = np.asarray(mask, dtype=np.float32)
    binary = (m > 0.5).astype(np.uint8)
    if edge_width <= 0:
        return (binary * m).astype(np.float32)
    padded = cv2.copyMakeBorder(binary, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    return (np.clip(dist / edge_width, 0.0, 1.0) * np.clip(m, 0.0, 1.0)).astype(np.float32)


def _check_view(k: int, image, mask, camera) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(image)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    img = np.asarray(img, dtype=np.float32)
    msk = np.asarray(mask, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"view {k}: the image must have shape (H, W, 3), got {img.shape}.")
    if msk.shape != img.shape[:2]:
        raise InputError(f"view {k}: the mask shape {msk.shape} does not match the image {img.shape[:2]}.")
    if (camera.height, camera.width) != img.shape[:2]:
        raise InputError(f"view {k}: the camera is {camera.width} x {camera.height} pixels "
                         f"but the image is {img.shape[1]} x {img.shape[0]}.")
    if not np.isfinite(img).all():
        raise InputError(f"view {k}: the image contains non-finite values.")
    return img, msk


def bake_texture(points, faces, uv, uv_faces, views, size: int, symmetry_plane=None, device=None,
                 cos_power: float = 2.0, edge_width: float = 3.0, depth_tolerance: float = 0.01,
                 dilate: int = 4, threads: int | None = None) -> BakeResult:
    """Bake a (size, size, 3) texture of a UV-mapped mesh from photographs.

    Args:
        points: (V, 3) world positions, metres. faces: (F, 3) vertex indices.
        uv: (T, 2) st coordinates; uv_faces: (F, 3) indices into ``uv`` (pass
            ``faces`` for per-vertex UVs).
        views: sequence of ``(image (H, W, 3) float32, mask (H, W) float, Camera)``
            with the camera in the mesh's world frame and sized like its image.
        size: texture edge in texels.
        symmetry_plane: optional ``(nx, ny, nz, d)`` plane ``n . x = d`` (world
            frame; ``(1, 0, 0, 0)`` is X = 0) used for texels no view sees.
        cos_power: exponent of the view-angle cosine weight.
        edge_width: mask-edge ramp width in pixels (0 disables the ramp).
        depth_tolerance: relative depth slack of the visibility test.
        dilate: texels of dilation around known texels before push-pull.
        device, threads: Warp device and CPU threads (defaults: those set by launch.configure).
    """
    if int(size) < 1:
        raise InputError(f"the texture size must be at least 1 texel, got {size}.")
    size = int(size)
    device = resolve_device(device)
    threads = thread_count() if threads is None else max(1, int(threads))
    pts = as_points(points, device)
    tris = as_faces(faces, pts.shape[0], device)
    uv_np = np.asarray(uv.numpy() if isinstance(uv, wp.array) else uv, dtype=np.float32).reshape(-1, 2)
    if not np.isfinite(uv_np).all():
        raise InputError("the UV coordinates contain non-finite values.")
    uv_tris = as_faces(uv_faces, uv_np.shape[0], device)
    if uv_tris.shape[0] != tris.shape[0]:
        raise InputError(f"uv_faces ({uv_tris.shape[0]}) and faces ({tris.shape[0]}) differ in count.")
    plane = None
    if symmetry_plane is not None:
        plane = np.asarray(symmetry_plane, dtype=np.float64).reshape(-1)
        norm = np.linalg.norm(plane[:3]) if plane.size == 4 else 0.0
        if plane.size != 4 or not np.isfinite(plane).all() or norm == 0:
            raise InputError("symmetry_plane must be four finite numbers (nx, ny, nz, d) with a non-zero normal.")
        plane = plane / norm
    checked = [(*_check_view(k, img, msk, cam), cam) for k, (img, msk, cam) in enumerate(views)]

    # 1. UV raster.
    uv_wp = wp.array(uv_np, dtype=wp.vec2, device=device)
    screen = wp.empty(uv_np.shape[0], dtype=wp.vec3, device=device)
    parallel_launch(uv_to_screen, uv_np.shape[0], [uv_wp, size, screen], device, threads, min_chunk=4096)
    uv_raster = rasterize_screen(screen, uv_tris, size, size, threads=threads)

    # 2-3. Views (and their mirror images).
    span = pixel_span(device, size)
    dims = (size, -(-size // span))
    acc = wp.zeros((size, size, 4), dtype=wp.float32, device=device)
    acc_mirror = wp.zeros((size, size, 4), dtype=wp.float32, device=device)
    plane_arg = wp.vec4(*(plane.tolist() if plane is not None else [1.0, 0.0, 0.0, 0.0]))
    view_raster = None
    for img, msk, cam in checked:
        view_raster = rasterize(pts, tris, cam, cam.width, cam.height, device=device, threads=threads,
                                out=view_raster)
        w2c, K = camera_args(cam)
        edge = wp.array(mask_edge_weight(msk, edge_width), dtype=wp.float32, device=device)
        parallel_launch(accumulate_view, dims,
                        [span, uv_raster.tri_id, uv_raster.bary, pts, tris, w2c, K, wp.vec3(*cam.position.tolist()),
                         wp.array(img, dtype=wp.float32, device=device), edge, view_raster.depth,
                         float(cos_power), float(depth_tolerance), plane_arg, int(plane is not None), acc, acc_mirror],
                        device, threads, min_chunk=4)

    # 4. Resolve, dilate, push-pull.
    color = wp.empty((size, size, 3), dtype=wp.float32, device=device)
    known = wp.empty((size, size), dtype=wp.float32, device=device)
    weight = wp.empty((size, size), dtype=wp.float32, device=device)
    source = wp.empty((size, size), dtype=wp.uint8, device=device)
    parallel_launch(resolve_texels, dims, [span, acc, acc_mirror, color, known, weight, source], device, threads,
                    min_chunk=4)
    if known.numpy().any():
        color, known = _dilate(color, known, dilate, device, threads)
        _push_pull(color, known, device, threads)
        texture = color.numpy()
    else:
        texture = np.full((size, size, 3), 0.5, dtype=np.float32)
    return BakeResult(texture=texture, weight=weight.numpy(), source=source.numpy(),
                      chart=uv_raster.tri_id.numpy() >= 0)


def _dilate(color: wp.array, known: wp.array, rings: int, device, threads: int) -> tuple[wp.array, wp.array]:
    size_y, size_x = known.shape
    span = pixel_span(device, size_x)
    other_c, other_k = wp.empty_like(color), wp.empty_like(known)
    for _ in range(max(0, int(rings))):
        parallel_launch(dilate_step, (size_y, -(-size_x // span)), [span, color, known, other_c, other_k], device,
                        threads, min_chunk=4)
        color, other_c = other_c, color
        known, other_k = other_k, known
    return color, known


def _push_pull(color: wp.array, known: wp.array, device, threads: int) -> None:
    """Fill texels with known < 1 in place from a known-weighted mip pyramid."""
    levels = [(color, known)]
    while levels[-1][1].shape[0] > 1 or levels[-1][1].shape[1] > 1:
        fine_c, fine_k = levels[-1]
        h, w = fine_k.shape
        ch, cw = (h + 1) // 2, (w + 1) // 2
        coarse_c = wp.empty((ch, cw, 3), dtype=wp.float32, device=device)
        coarse_k = wp.empty((ch, cw), dtype=wp.float32, device=device)
        span = pixel_span(device, cw)
        parallel_launch(pull_step, (ch, -(-cw // span)), [span, fine_c, fine_k, coarse_c, coarse_k], device, threads,
                        min_chunk=4)
        levels.append((coarse_c, coarse_k))
    for (fine_c, fine_k), (coarse_c, _) in zip(reversed(levels[:-1]), reversed(levels[1:])):
        h, w = fine_k.shape
        span = pixel_span(device, w)
        parallel_launch(push_step, (h, -(-w // span)), [span, coarse_c, fine_c, fine_k], device, threads, min_chunk=4)
