"""Soft silhouette of a triangle mesh (DIB-R family) with a hand-written adjoint.

What is computed
----------------
Inputs: world-space ``points`` ``(V, 3)`` (metres), ``faces`` ``(F, 3)``, a
:class:`lift3d.camera.Camera` (OpenGL axes, pixels with ``v`` down, pixel
centres at half-integers) and the sharpness ``sigma`` (pixels^2). Vertices are
projected with :func:`lift3d.kernels.projection.project` to ``q_i = (u_i, v_i)``.
A face with a vertex closer to the camera plane than ``projection.NEAR`` is
culled (it is neither drawn nor differentiated), exactly like a face behind
the camera.

For the pixel centre ``p`` the output is::

    A(p) = 1                                              if p is inside a projected face (hard mask)
    A(p) = 1 - prod_{e in C, D_e(p) >= D_MIN} (1 - D_e(p))  otherwise,
    D_e(p) = exp(-d_e(p)^2 / sigma),

where ``d_e(p)`` is the distance in pixels from ``p`` to the projected segment of
edge ``e`` and ``C`` is the set of **contour edges**: edges whose drawn
(non-culled) adjacent faces do not all share one screen-space facing (sign of
the projected area; a zero-area face counts as a facing of its own), open
boundary edges (one drawn face) and non-manifold edges (more than two). The
``D_MIN`` cut-off drops terms below 1e-6, i.e. edges farther than
``sqrt(sigma * ln(1e6)) ~ 3.7 sqrt(sigma)`` pixels, so ``A`` is exactly 0 far
from the mesh.

Relation to DIB-R (Chen et al. 2019, "Learning to Predict 3D Objects with an
Interpolation-based Differentiable Renderer") and Soft Rasterizer (Liu et al.
2019): they use ``A = 1 - prod_{faces j} (1 - D_j)`` with ``D_j = 1`` inside
face ``j`` and ``exp(-d_j^2 / sigma)`` outside, ``d_j`` the distance to the
projected triangle. Inside the hard mask both give exactly 1. Outside it, the
nearest point of the projected mesh always lies on a contour edge (an edge whose
two faces project to the same side of it is covered on both sides, so it cannot
be on the boundary of the union), so ``max_j D_j = max_{e in C} D_e`` and both
formulas share their dominant term and tend to 1 at the silhouette. They differ
in the weaker terms: DIB-R multiplies one factor per *face* (each contour edge
of a closed mesh is usually counted twice, through its two faces, plus faces
that merely come near the boundary), we multiply one factor per *contour edge*
(including contour edges inside the silhouette that come within the cut-off).
``A`` is continuous in the vertex positions (a pixel that enters the mask has
``d -> 0`` and ``A -> 1`` on the way), except when the contour set changes
(a face turns edge-on) and at the ``D_MIN`` cut-off (a jump below 1e-6).

Algorithm (cost ~ pixels + pixels near the contour x contour edges per tile)
----------------------------------------------------------------------------
1. project vertices; classify faces (culled / facing / zero area);
2. hard mask: each drawn face marks the pixel centres inside it (inclusive edge
   test on the row spans between its sides), ``O(covered pixels + rows)``; for a
   closed, consistently oriented mesh with no culled face only one facing is
   drawn (every covered pixel is covered by both), halving the work;
3. contour edges: one pass over the unique edges of :class:`MeshTopology`, compacted;
4. binning: each contour edge is appended to every 8x8 tile within its cut-off
   distance (a tight row-by-row band, not its bounding box);
5. forward, one image row per thread: outside the mask, the product over the
   edges of the pixel's tile; the product of the nonzero factors and the count
   of zero factors are kept (pixels of empty tiles are not touched);
6. backward, per contour edge (a gather, so no atomics and deterministic):
   ``dA/dD_e = prod_{k != e} (1 - D_k)`` from the stored product, chained
   through ``D_e = exp(-s/sigma)``, ``s = |p - c|^2``, ``c = a + t (b - a)``
   the closest point (``ds/da = -2 (p - c)(1 - t)``, ``ds/db = -2 (p - c) t``;
   ``t`` needs no derivative because ``s`` is stationary in it), summed over the
   pixels within the cut-off of the edge; then per vertex: the sum over its
   edges, :func:`projection.project_adjoint` and the camera rotation transposed.

Steps 1, 2, 3, 5 and 6 and the per-vertex kernels are split over CPU threads by
:func:`lift3d.kernels.launch.parallel_launch`; binning (small) runs in one launch
because it counts with atomics. All kernels also run on CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import warp as wp

from lift3d.errors import InputError
from lift3d.kernels.launch import parallel_launch, resolve_device
from lift3d.kernels.mesh_ops import MeshTopology
from lift3d.kernels.projection import NEAR, camera_args, project, project_adjoint, to_camera

TILE = wp.constant(8)
"""Edge of the square screen tiles the contour edges are binned into (pixels)."""

D_MIN = 1.0e-6
"""Smallest soft term kept; farther edges are dropped (see the module doc)."""

_MIN_ITEMS = 4096
"""Light per-item launches (vertices, faces, edges) are split over threads only in chunks at least this long."""

_CULLED = wp.constant(0)
_DEGENERATE = wp.constant(3)


# --------------------------------------------------------------------------- functions


@wp.func
def _closest(p: wp.vec2, a: wp.vec2, b: wp.vec2) -> wp.vec2:
    """(squared distance in pixels^2, parameter t in [0, 1]) of the point of segment ab closest to p."""
    ab = b - a
    l2 = wp.dot(ab, ab)
    t = float(0.0)
    if l2 > 0.0:
        t = wp.clamp(wp.dot(p - a, ab) / l2, 0.0, 1.0)
    d = p - (a + ab * t)
    return wp.vec2(wp.dot(d, d), t)


@wp.func
def _one_minus_exp_neg(x: float) -> float:
    """1 - exp(-x) for x >= 0 without cancellation near 0."""
    if x < 1.0e-3:
        return x * (1.0 - x * (0.5 - x * (1.0 / 6.0)))
    return 1.0 - wp.exp(-x)


@wp.func
def _u_range_in_band(a: wp.vec2, b: wp.vec2, v0: float, v1: float) -> wp.vec3:
    """(hit, u_min, u_max) of the part of segment ab with v in [v0, v1]; hit = 0 when there is none."""
    dv = b[1] - a[1]
    t0 = float(0.0)
    t1 = float(1.0)
    if wp.abs(dv) > 1.0e-12:
        ta = (v0 - a[1]) / dv
        tb = (v1 - a[1]) / dv
        t0 = wp.max(0.0, wp.min(ta, tb))
        t1 = wp.min(1.0, wp.max(ta, tb))
    elif a[1] < v0 or a[1] > v1:
        t0 = 2.0
    if t0 > t1:
        return wp.vec3(0.0, 0.0, 0.0)
    u0 = a[0] + t0 * (b[0] - a[0])
    u1 = a[0] + t1 * (b[0] - a[0])
    return wp.vec3(1.0, wp.min(u0, u1), wp.max(u0, u1))


@wp.func
def _first_index(x: float, limit: int) -> int:
    """ceil(x) clamped to [0, limit] (safe for huge or infinite x)."""
    return int(wp.ceil(wp.clamp(x, 0.0, float(limit))))


@wp.func
def _last_index(x: float, limit: int) -> int:
    """floor(x) clamped to [-1, limit - 1]."""
    return int(wp.floor(wp.clamp(x, -1.0, float(limit - 1))))


# --------------------------------------------------------------------------- kernels


@wp.kernel
def _project_vertices(start: int, points: wp.array(dtype=wp.vec3), w2c: wp.mat44, K: wp.vec4,
                      cam: wp.array(dtype=wp.vec3), uvd: wp.array(dtype=wp.vec3)):
    """(V,) camera-space points (metres) and (u, v, depth) (pixels, pixels, metres)."""
    i = start + wp.tid()
    pc = to_camera(w2c, points[i])
    cam[i] = pc
    uvd[i] = project(K, pc)


@wp.kernel
def _classify_faces(start: int, faces: wp.array2d(dtype=wp.int32), uvd: wp.array(dtype=wp.vec3),
                    facing: wp.array(dtype=wp.int32), any_culled: wp.array(dtype=wp.int32)):
    """(F,) 0 culled (a vertex nearer than NEAR), 1 / 2 positive / negative projected area, 3 zero area.

    ``any_culled[0]`` is set to 1 when a face is culled (every writer stores 1, so chunks may race).
    """
    f = start + wp.tid()
    a = uvd[faces[f, 0]]
    b = uvd[faces[f, 1]]
    c = uvd[faces[f, 2]]
    state = int(_CULLED)
    if a[2] > NEAR and b[2] > NEAR and c[2] > NEAR:
        area2 = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if area2 > 0.0:
            state = 1
        elif area2 < 0.0:
            state = 2
        else:
            state = _DEGENERATE
    else:
        any_culled[0] = 1
    facing[f] = state


@wp.kernel
def _hard_mask(start: int, faces: wp.array2d(dtype=wp.int32), uvd: wp.array(dtype=wp.vec3),
               facing: wp.array(dtype=wp.int32), one_facing: int, mask: wp.array2d(dtype=wp.int32)):
    """Sets mask[y, x] = 1 for every pixel centre inside (or on the border of) a drawn face.

    With ``one_facing`` only faces of positive projected area are drawn: for a closed,
    consistently oriented mesh entirely in front of the camera every covered pixel
    is covered by faces of both facings (a ray enters and leaves the solid), so
    the mask is the same at half the cost. Per row, only the span between the
    triangle's sides (plus one pixel) is tested. Faces overlap, but every writer
    stores the same value, so chunks may run concurrently.
    """
    f = start + wp.tid()
    state = facing[f]
    if state == 1 or (state == 2 and one_facing == 0):
        a = wp.vec2(uvd[faces[f, 0]][0], uvd[faces[f, 0]][1])
        b = wp.vec2(uvd[faces[f, 1]][0], uvd[faces[f, 1]][1])
        c = wp.vec2(uvd[faces[f, 2]][0], uvd[faces[f, 2]][1])
        s = float(1.0)
        if state == 2:
            s = -1.0
        height = mask.shape[0]
        width = mask.shape[1]
        y0 = _first_index(wp.min(a[1], wp.min(b[1], c[1])) - 0.5, height)
        y1 = _last_index(wp.max(a[1], wp.max(b[1], c[1])) - 0.5, height)
        for y in range(y0, y1 + 1):
            py = float(y) + 0.5
            lo = float(1.0e30)
            hi = float(-1.0e30)
            r = _u_range_in_band(a, b, py, py)
            if r[0] > 0.0:
                lo = wp.min(lo, r[1])
                hi = wp.max(hi, r[2])
            r = _u_range_in_band(b, c, py, py)
            if r[0] > 0.0:
                lo = wp.min(lo, r[1])
                hi = wp.max(hi, r[2])
            r = _u_range_in_band(c, a, py, py)
            if r[0] > 0.0:
                lo = wp.min(lo, r[1])
                hi = wp.max(hi, r[2])
            x0 = _first_index(lo - 1.5, width)
            x1 = _last_index(hi + 0.5, width)
            for x in range(x0, x1 + 1):
                px = float(x) + 0.5
                w0 = s * ((b[0] - a[0]) * (py - a[1]) - (b[1] - a[1]) * (px - a[0]))
                w1 = s * ((c[0] - b[0]) * (py - b[1]) - (c[1] - b[1]) * (px - b[0]))
                w2 = s * ((a[0] - c[0]) * (py - c[1]) - (a[1] - c[1]) * (px - c[0]))
                if w0 >= 0.0 and w1 >= 0.0 and w2 >= 0.0:
                    mask[y, x] = 1


@wp.kernel
def _contour_flags(start: int, offsets: wp.array(dtype=wp.int32), edge_faces: wp.array(dtype=wp.int32),
                   facing: wp.array(dtype=wp.int32), flags: wp.array(dtype=wp.int32)):
    """(E,) 1 for a contour edge (see the module doc), else 0."""
    e = start + wp.tid()
    drawn = int(0)
    kinds = int(0)
    for k in range(offsets[e], offsets[e + 1]):
        state = facing[edge_faces[k]]
        if state != _CULLED:
            drawn += 1
            kinds = kinds | (1 << state)
    flag = int(0)
    if drawn > 0:
        if drawn != 2 or (kinds != 2 and kinds != 4):  # not exactly two drawn faces of one non-zero facing
            flag = 1
    flags[e] = flag


@wp.kernel
def _compact(flags: wp.array(dtype=wp.int32), offsets: wp.array(dtype=wp.int32), out: wp.array(dtype=wp.int32)):
    e = wp.tid()
    if flags[e] != 0:
        out[offsets[e]] = e


@wp.kernel
def _open_tiles(start: int, width: int, height: int, tiles_x: int, mask: wp.array(dtype=wp.int32),
                tile_open: wp.array(dtype=wp.int32)):
    """(tiles,) 1 for a tile with at least one pixel outside the hard mask (only those need soft terms)."""
    tile = start + wp.tid()
    ty = tile // tiles_x
    tx = tile - ty * tiles_x
    flag = int(0)
    for y in range(ty * TILE, wp.min(ty * TILE + TILE, height)):
        for x in range(tx * TILE, wp.min(tx * TILE + TILE, width)):
            if mask[y * width + x] == 0:
                flag = 1
    tile_open[tile] = flag


@wp.kernel
def _bin_edges(contour: wp.array(dtype=wp.int32), edges: wp.array2d(dtype=wp.int32), uvd: wp.array(dtype=wp.vec3),
               reach: float, tiles_x: int, tiles_y: int, tile_open: wp.array(dtype=wp.int32), fill: int,
               counts: wp.array(dtype=wp.int32), offsets: wp.array(dtype=wp.int32), items: wp.array(dtype=wp.int32)):
    """Counts (fill = 0) or stores (fill = 1) the contour edges of every open tile whose pixel centres lie within ``reach``.

    For each tile row the segment is clipped to the row's band widened by ``reach``,
    so a long diagonal edge visits only the tiles along it.
    """
    i = wp.tid()
    e = contour[i]
    a = wp.vec2(uvd[edges[e, 0]][0], uvd[edges[e, 0]][1])
    b = wp.vec2(uvd[edges[e, 1]][0], uvd[edges[e, 1]][1])
    t = float(TILE)
    ty0 = _first_index((wp.min(a[1], b[1]) - reach + 0.5 - t) / t, tiles_y)
    ty1 = _last_index((wp.max(a[1], b[1]) + reach - 0.5) / t, tiles_y)
    for ty in range(ty0, ty1 + 1):
        band = _u_range_in_band(a, b, float(ty) * t + 0.5 - reach, float(ty) * t + t - 0.5 + reach)
        if band[0] > 0.0:
            tx0 = _first_index((band[1] - reach + 0.5 - t) / t, tiles_x)
            tx1 = _last_index((band[2] + reach - 0.5) / t, tiles_x)
            for tx in range(tx0, tx1 + 1):
                tile = ty * tiles_x + tx
                if tile_open[tile] != 0:
                    slot = wp.atomic_add(counts, tile, 1)
                    if fill != 0:
                        items[offsets[tile] + slot] = e


@wp.kernel
def _soft_forward(start: int, width: int, uvd: wp.array(dtype=wp.vec3), edges: wp.array2d(dtype=wp.int32),
                  mask: wp.array(dtype=wp.int32), tile_offsets: wp.array(dtype=wp.int32),
                  tile_items: wp.array(dtype=wp.int32), tiles_x: int, inv_sigma: float, cut2: float,
                  image: wp.array(dtype=wp.float32), prod: wp.array(dtype=wp.float32),
                  zeros: wp.array(dtype=wp.int32)):
    """One image row per thread; per pixel (flattened row-major, H*W): A, the product of the
    nonzero factors (1 - D_e) and the count of zero factors.

    ``image`` must come in as 0, ``prod`` as 1 and ``zeros`` as 0: pixels of tiles
    without edges keep those values and are not written.
    """
    y = start + wp.tid()
    p_y = float(y) + 0.5
    row_tiles = (y // TILE) * tiles_x
    for x in range(width):
        i = y * width + x
        if mask[i] != 0:
            image[i] = 1.0
            continue
        tile = row_tiles + x // TILE
        k0 = tile_offsets[tile]
        k1 = tile_offsets[tile + 1]
        if k0 == k1:
            continue
        p = wp.vec2(float(x) + 0.5, p_y)
        acc = float(1.0)
        n0 = int(0)
        for k in range(k0, k1):
            e = tile_items[k]
            a = wp.vec2(uvd[edges[e, 0]][0], uvd[edges[e, 0]][1])
            b = wp.vec2(uvd[edges[e, 1]][0], uvd[edges[e, 1]][1])
            st = _closest(p, a, b)
            if st[0] <= cut2:
                f = _one_minus_exp_neg(st[0] * inv_sigma)
                if f > 0.0:
                    acc *= f
                else:
                    n0 += 1
        a_out = 1.0 - acc
        if n0 > 0:
            a_out = 1.0
        image[i] = a_out
        prod[i] = acc
        zeros[i] = n0


@wp.kernel
def _soft_backward_edges(start: int, contour: wp.array(dtype=wp.int32), edges: wp.array2d(dtype=wp.int32),
                         uvd: wp.array(dtype=wp.vec3), width: int, height: int, reach: float,
                         inv_sigma: float, cut2: float, mask: wp.array(dtype=wp.int32),
                         tiles_x: int, tile_open: wp.array(dtype=wp.int32),
                         prod: wp.array(dtype=wp.float32), zeros: wp.array(dtype=wp.int32),
                         grad_image: wp.array(dtype=wp.float32), grad_a: wp.array(dtype=wp.vec2),
                         grad_b: wp.array(dtype=wp.vec2)):
    """Per contour edge: d(loss)/d(a), d(loss)/d(b) in pixels, gathered over the pixels within its cut-off.

    Runs of pixels in tiles entirely inside the mask are skipped a tile at a time.
    """
    e = contour[start + wp.tid()]
    a = wp.vec2(uvd[edges[e, 0]][0], uvd[edges[e, 0]][1])
    b = wp.vec2(uvd[edges[e, 1]][0], uvd[edges[e, 1]][1])
    ga = wp.vec2(0.0)
    gb = wp.vec2(0.0)
    y0 = _first_index(wp.min(a[1], b[1]) - reach - 0.5, height)
    y1 = _last_index(wp.max(a[1], b[1]) + reach - 0.5, height)
    for y in range(y0, y1 + 1):
        yc = float(y) + 0.5
        band = _u_range_in_band(a, b, yc - reach, yc + reach)
        if band[0] > 0.0:
            x0 = _first_index(band[1] - reach - 0.5, width)
            x1 = _last_index(band[2] + reach - 0.5, width)
            row_tiles = (y // TILE) * tiles_x
            x = x0
            while x <= x1:
                if tile_open[row_tiles + x // TILE] == 0:
                    x = (x // TILE + 1) * TILE
                    continue
                xi = x
                x += 1
                i = y * width + xi
                g = grad_image[i]
                if mask[i] == 0 and g != 0.0:
                    p = wp.vec2(float(xi) + 0.5, yc)
                    st = _closest(p, a, b)
                    if st[0] <= cut2:
                        f = _one_minus_exp_neg(st[0] * inv_sigma)
                        others = float(0.0)  # prod_{k != e} (1 - D_k)
                        if zeros[i] == 0:
                            others = prod[i] / f
                        elif zeros[i] == 1 and f <= 0.0:
                            others = prod[i]
                        # dL/ds = g * dA/dD * dD/ds = g * others * (-D / sigma)
                        dls = -g * others * wp.exp(-st[0] * inv_sigma) * inv_sigma
                        t = st[1]
                        r = p - (a + (b - a) * t)
                        ga += r * (-2.0 * dls * (1.0 - t))
                        gb += r * (-2.0 * dls * t)
    grad_a[e] = ga
    grad_b[e] = gb


@wp.kernel
def _vertex_grads(start: int, offsets: wp.array(dtype=wp.int32), ends: wp.array(dtype=wp.int32),
                  grad_a: wp.array(dtype=wp.vec2), grad_b: wp.array(dtype=wp.vec2), cam: wp.array(dtype=wp.vec3),
                  w2c: wp.mat44, K: wp.vec4, out: wp.array(dtype=wp.vec3)):
    """Per vertex: sum of its edge-end pixel gradients, through the projection to world coordinates."""
    v = start + wp.tid()
    g = wp.vec2(0.0)
    for k in range(offsets[v], offsets[v + 1]):
        e = ends[k] // 2
        if ends[k] - 2 * e == 0:
            g += grad_a[e]
        else:
            g += grad_b[e]
    gc = project_adjoint(K, cam[v], wp.vec3(g[0], g[1], 0.0))
    out[v] = wp.transform_vector(wp.transpose(w2c), gc)


# --------------------------------------------------------------------------- Python API


@dataclass
class SoftSilhouetteContext:
    """What :func:`soft_silhouette` keeps for :func:`soft_silhouette_backward` (all on one Warp device).

    Create it empty (``SoftSilhouetteContext()``) and pass it as ``context=``; the
    forward fills every field. Reusing one context across calls reuses its topology.

    Attributes:
        topology: the mesh connectivity (reusable across calls with the same faces).
        width, height, sigma: image size (pixels) and sharpness (pixels^2).
        w2c, K: camera kernel arguments (see :mod:`lift3d.kernels.projection`).
        cam: (V,) vec3 camera-space vertices (metres); uvd: (V,) vec3 (u, v, depth).
        mask: (H*W,) int32 hard mask; prod: (H*W,) float32 product of the nonzero
            factors ``1 - D_e``; zeros: (H*W,) int32 number of zero factors.
        contour: (C,) int32 contour edge ids; tile_open: (T,) int32, 1 for a tile with a
            pixel outside the mask; tile_offsets (T+1,), tile_items: the edges binned to open tiles.
    """

    topology: MeshTopology | None = None
    width: int = 0
    height: int = 0
    sigma: float = 1.0
    threads: int | None = None
    w2c: wp.mat44 | None = None
    K: wp.vec4 | None = None
    cam: wp.array | None = None
    uvd: wp.array | None = None
    mask: wp.array | None = None
    prod: wp.array | None = None
    zeros: wp.array | None = None
    contour: wp.array | None = None
    tile_open: wp.array | None = None
    tile_offsets: wp.array | None = None
    tile_items: wp.array | None = None

    @property
    def reach(self) -> float:
        """Cut-off distance in pixels: ``D_e < D_MIN`` beyond it."""
        return math.sqrt(self.sigma * math.log(1.0 / D_MIN))


def _as_points(points, device) -> wp.array:
    if isinstance(points, wp.array):
        if points.dtype == wp.vec3 and points.ndim == 1:
            return points
        if points.dtype == wp.float32 and points.ndim == 2 and points.shape[1] == 3:
            return points.view(wp.vec3) if points.is_contiguous else wp.array(points.numpy(), dtype=wp.vec3,
                                                                              device=points.device)
        raise InputError(f"points must be (V, 3) float32, got a Warp array of {points.dtype} with shape {points.shape}.")
    arr = np.asarray(points, dtype=np.float32)
    if arr.size == 0:
        arr = arr.reshape(0, 3)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"points must be a (V, 3) array, got shape {arr.shape}.")
    return wp.array(arr, dtype=wp.vec3, device=device)


def _check_image(width: int, height: int, sigma: float) -> None:
    if int(width) <= 0 or int(height) <= 0:
        raise InputError(f"the image size must be positive, got {width} x {height} pixels.")
    if not (math.isfinite(sigma) and sigma > 0.0):
        raise InputError(f"the soft silhouette sharpness sigma must be a positive number of pixels^2, got {sigma}.")


def soft_silhouette(points, faces, camera, width: int, height: int, sigma: float, *,
                    topology: MeshTopology | None = None, context: SoftSilhouetteContext | None = None,
                    device=None, threads: int | None = None) -> wp.array:
    """Soft silhouette ``A`` ``(H, W)`` float32 in [0, 1] of a mesh seen by ``camera`` (see the module doc).

    Args:
        points: ``(V, 3)`` world positions (metres): numpy, or a Warp vec3 / float32 array.
        faces: ``(F, 3)`` vertex indices (ignored when ``topology`` is given).
        camera: :class:`lift3d.camera.Camera`; its intrinsics must be those of a
            ``width`` x ``height`` image.
        width, height: image size in pixels (positive).
        sigma: sharpness in pixels^2 (positive): a contour edge at ``d`` pixels
            contributes ``exp(-d^2 / sigma)``.
        topology: connectivity from a previous call, to skip rebuilding it (with
            ``faces=None`` the topology of ``context`` is reused).
        context: filled with the forward's intermediates for :func:`soft_silhouette_backward`.
        device: Warp device (default: the device of ``points`` if it is a Warp array,
            else lift3d's runtime device).
        threads: CPU threads (default: launch.configure).
    """
    _check_image(width, height, sigma)
    width, height = int(width), int(height)
    if device is None and isinstance(points, wp.array):
        device = points.device
    device = resolve_device(device)
    pts = _as_points(points, device)
    if topology is None and context is not None and context.topology is not None \
            and faces is None and context.topology.num_vertices == pts.shape[0]:
        topology = context.topology
    if topology is None:
        topology = MeshTopology(faces, pts.shape[0])
    elif topology.num_vertices != pts.shape[0]:
        raise InputError(f"points has {pts.shape[0]} vertices but the topology was built for {topology.num_vertices}.")
    ctx = context if context is not None else SoftSilhouetteContext()
    ctx.topology, ctx.width, ctx.height, ctx.sigma, ctx.threads = topology, width, height, float(sigma), threads
    n_pix = width * height
    image = wp.zeros(n_pix, dtype=wp.float32, device=device)
    ctx.w2c, ctx.K = camera_args(camera)
    nv, nf, ne = topology.num_vertices, topology.num_faces, topology.num_edges
    ctx.cam = wp.zeros(nv, dtype=wp.vec3, device=device)
    ctx.uvd = wp.zeros(nv, dtype=wp.vec3, device=device)
    ctx.mask = wp.zeros(n_pix, dtype=wp.int32, device=device)
    ctx.prod = wp.ones(n_pix, dtype=wp.float32, device=device)
    ctx.zeros = wp.zeros(n_pix, dtype=wp.int32, device=device)
    ctx.contour = wp.zeros(0, dtype=wp.int32, device=device)
    tiles_x, tiles_y = -(-width // TILE), -(-height // TILE)
    ctx.tile_offsets = wp.zeros(tiles_x * tiles_y + 1, dtype=wp.int32, device=device)
    ctx.tile_items = wp.zeros(0, dtype=wp.int32, device=device)
    if nf == 0:
        return image.reshape((height, width))
    t = topology.on(device)
    parallel_launch(_project_vertices, nv, [pts, ctx.w2c, ctx.K, ctx.cam, ctx.uvd], device, threads,
                    min_chunk=_MIN_ITEMS)
    facing = wp.empty(nf, dtype=wp.int32, device=device)
    any_culled = wp.zeros(1, dtype=wp.int32, device=device)
    parallel_launch(_classify_faces, nf, [t["faces"], ctx.uvd, facing, any_culled], device, threads,
                    min_chunk=_MIN_ITEMS)
    one_facing = int(topology.closed_oriented and any_culled.numpy()[0] == 0)
    parallel_launch(_hard_mask, nf, [t["faces"], ctx.uvd, facing, one_facing, ctx.mask.reshape((height, width))],
                    device, threads, min_chunk=_MIN_ITEMS // 16)

    flags = wp.empty(ne, dtype=wp.int32, device=device)
    parallel_launch(_contour_flags, ne, [t["edge_face_offsets"], t["edge_faces"], facing, flags], device,
                    threads, min_chunk=_MIN_ITEMS)
    slots = wp.empty(ne, dtype=wp.int32, device=device)
    wp.utils.array_scan(flags, slots, inclusive=False)
    n_contour = int(slots[ne - 1:].numpy()[0] + flags[ne - 1:].numpy()[0])
    ctx.contour = wp.empty(n_contour, dtype=wp.int32, device=device)
    wp.launch(_compact, ne, [flags, slots, ctx.contour], device=device)

    n_tiles = tiles_x * tiles_y
    ctx.tile_open = wp.empty(n_tiles, dtype=wp.int32, device=device)
    parallel_launch(_open_tiles, n_tiles, [width, height, tiles_x, ctx.mask, ctx.tile_open], device, threads,
                    min_chunk=_MIN_ITEMS // (TILE * TILE))
    counts = wp.zeros(n_tiles, dtype=wp.int32, device=device)
    if n_contour > 0:
        reach = ctx.reach + 1.0  # one pixel of slack against rounding at the cut-off
        wp.launch(_bin_edges, n_contour, [ctx.contour, t["edges"], ctx.uvd, reach, tiles_x, tiles_y, ctx.tile_open, 0, counts,
                                          ctx.tile_offsets, ctx.tile_items], device=device)
        wp.utils.array_scan(counts, ctx.tile_offsets[:n_tiles], inclusive=False)
        total = int(ctx.tile_offsets[n_tiles - 1:n_tiles].numpy()[0] + counts[n_tiles - 1:].numpy()[0])
        wp.copy(ctx.tile_offsets, wp.array([total], dtype=wp.int32, device=device), dest_offset=n_tiles)
        ctx.tile_items = wp.empty(max(total, 1), dtype=wp.int32, device=device)
        counts.zero_()
        wp.launch(_bin_edges, n_contour, [ctx.contour, t["edges"], ctx.uvd, reach, tiles_x, tiles_y, ctx.tile_open, 1, counts,
                                          ctx.tile_offsets, ctx.tile_items], device=device)
    cut2 = float(ctx.sigma * math.log(1.0 / D_MIN))
    parallel_launch(_soft_forward, height, [width, ctx.uvd, t["edges"], ctx.mask, ctx.tile_offsets, ctx.tile_items,
                                            tiles_x, 1.0 / ctx.sigma, cut2, image, ctx.prod, ctx.zeros],
                    device, threads, min_chunk=8)
    return image.reshape((height, width))


def soft_silhouette_backward(context: SoftSilhouetteContext, grad_image) -> wp.array:
    """d(loss)/d(points) ``(V,)`` vec3 (per metre) given d(loss)/dA ``(H, W)`` float32 (numpy or Warp).

    Costs about one forward soft pass: each contour edge revisits the pixels
    within its cut-off; the hard mask and the culled faces carry no gradient.
    """
    ctx = context
    if ctx.mask is None:
        raise InputError("soft_silhouette_backward needs the context filled by a soft_silhouette call.")
    device = ctx.mask.device
    n_pix = ctx.width * ctx.height
    if isinstance(grad_image, wp.array):
        grad = grad_image
        if grad.dtype != wp.float32 or grad.size != n_pix:
            raise InputError(f"grad_image must be {ctx.height} x {ctx.width} float32, got {grad.dtype} {grad.shape}.")
        grad = grad.reshape((n_pix,)) if grad.is_contiguous else wp.array(grad.numpy().reshape(-1), device=device)
    else:
        arr = np.asarray(grad_image, dtype=np.float32)
        if arr.size != n_pix:
            raise InputError(f"grad_image must be {ctx.height} x {ctx.width}, got shape {arr.shape}.")
        grad = wp.array(arr.reshape(-1), dtype=wp.float32, device=device)
    topology = ctx.topology
    out = wp.zeros(topology.num_vertices, dtype=wp.vec3, device=device)
    n_contour = ctx.contour.shape[0]
    if n_contour == 0:
        return out
    t = topology.on(device)
    grad_a = wp.zeros(topology.num_edges, dtype=wp.vec2, device=device)
    grad_b = wp.zeros(topology.num_edges, dtype=wp.vec2, device=device)
    cut2 = float(ctx.sigma * math.log(1.0 / D_MIN))
    parallel_launch(_soft_backward_edges, n_contour,
                    [ctx.contour, t["edges"], ctx.uvd, ctx.width, ctx.height, ctx.reach + 1.0, 1.0 / ctx.sigma,
                     cut2, ctx.mask, -(-ctx.width // TILE), ctx.tile_open, ctx.prod, ctx.zeros, grad, grad_a, grad_b],
                    device, ctx.threads, min_chunk=_MIN_ITEMS // 64)
    parallel_launch(_vertex_grads, topology.num_vertices,
                    [t["vertex_edge_offsets"], t["vertex_edges"], grad_a, grad_b, ctx.cam, ctx.w2c, ctx.K, out],
                    device, ctx.threads, min_chunk=_MIN_ITEMS)
    return out
