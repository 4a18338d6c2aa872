"""Attribute interpolation over a rasterized image, with hand-written adjoints.

Forward, for a pixel ``p`` covered by triangle ``f`` (see ``raster.py``)::

    out[p, c] = sum_k w_k(p) * attr[attr_faces[f, k], c]

with ``w`` the perspective-correct barycentrics::

    w_k = (b_k / d_k) / sum_j (b_j / d_j)

where ``b_k`` are the screen-space barycentrics of the pixel centre with
respect to the projected corners ``(u_k, v_k)`` (pixels) and ``d_k`` the corner
depths (metres). Background pixels get zeros and pass no gradient.

Backward gives gradients to the vertex attributes and, as in DIB-R's
foreground rule (Chen et al. 2019, "Learning to Predict 3D Objects with an
Interpolation-based Differentiable Renderer"), to the vertex positions through
``w`` as a function of the projected corners; the triangle id per pixel is
held fixed. With ``g_k = sum_c dL/dout[c] * a_k[c]`` and ``G = sum_k w_k g_k``::

    dL/db_i = (g_i - G) / (d_i S)                S = sum_j b_j / d_j
    dL/dd_i = -(g_i - G) b_i / (d_i^2 S)
    dL/dP_j = -b_j sum_i dL/db_i grad_p(b_i)     (P_j = (u_j, v_j); grad_p(b_i) constant per triangle)

then through the projection (``project_adjoint``) and the rigid world-to-camera
transform to world-space positions (metres).

Attributes may use their own indexing (face-varying, e.g. UVs: ``attr`` (T, C),
``attr_faces`` (F, 3)); positions always use the raster's ``faces``.
"""

from __future__ import annotations

import numpy as np
import warp as wp

from .launch import parallel_launch, pixel_span, thread_count
from .projection import project_adjoint, to_camera
from .raster import RasterResult

wp.set_module_options({"enable_backward": False})


@wp.kernel
def interpolate_forward(start: int, span: int, tri_id: wp.array2d(dtype=wp.int32), bary: wp.array2d(dtype=wp.vec3),
                        attr: wp.array2d(dtype=wp.float32), attr_faces: wp.array2d(dtype=wp.int32),
                        out: wp.array3d(dtype=wp.float32)):
    """tri_id (H, W), bary (H, W), attr (V, C), attr_faces (F, 3) -> out (H, W, C)."""
    i, j = wp.tid()
    y = start + i
    channels = attr.shape[1]
    for x in range(j * span, wp.min((j + 1) * span, tri_id.shape[1])):
        f = tri_id[y, x]
        if f < 0:
            for c in range(channels):
                out[y, x, c] = 0.0
        else:
            w = bary[y, x]
            ia = attr_faces[f, 0]
            ib = attr_faces[f, 1]
            ic = attr_faces[f, 2]
            for c in range(channels):
                out[y, x, c] = w[0] * attr[ia, c] + w[1] * attr[ib, c] + w[2] * attr[ic, c]


@wp.func
def world_gradient(w2c: wp.mat44, K: wp.vec4, point: wp.vec3, g_screen: wp.vec3) -> wp.vec3:
    """d(loss)/d(world point) from d(loss)/d(u, v, depth) of its projection."""
    g_cam = project_adjoint(K, to_camera(w2c, point), g_screen)
    # Transpose of the rotation part of w2c.
    return wp.vec3(w2c[0, 0] * g_cam[0] + w2c[1, 0] * g_cam[1] + w2c[2, 0] * g_cam[2],
                   w2c[0, 1] * g_cam[0] + w2c[1, 1] * g_cam[1] + w2c[2, 1] * g_cam[2],
                   w2c[0, 2] * g_cam[0] + w2c[1, 2] * g_cam[1] + w2c[2, 2] * g_cam[2])


@wp.func
def barycentric_adjoint(sa: wp.vec3, sb: wp.vec3, sc: wp.vec3, px: float, py: float, g: wp.vec3) -> wp.mat33:
    """Adjoint of the perspective-correct barycentrics at pixel point (px, py).

    sa, sb, sc: projected corners (u px, v px, depth m); g: d(loss)/d(w_a, w_b, w_c).
    Returns rows d(loss)/d(u, v, depth) of corners a, b, c.
    """
    area = (sb[0] - sa[0]) * (sc[1] - sa[1]) - (sb[1] - sa[1]) * (sc[0] - sa[0])
    inv_area = 1.0 / area
    # Screen-space barycentrics and their (constant) gradients w.r.t. the pixel position.
    ba = ((sc[0] - sb[0]) * (py - sb[1]) - (sc[1] - sb[1]) * (px - sb[0])) * inv_area
    bb = ((sa[0] - sc[0]) * (py - sc[1]) - (sa[1] - sc[1]) * (px - sc[0])) * inv_area
    bc = ((sb[0] - sa[0]) * (py - sa[1]) - (sb[1] - sa[1]) * (px - sa[0])) * inv_area
    grad_a = wp.vec2(-(sc[1] - sb[1]), sc[0] - sb[0]) * inv_area
    grad_b = wp.vec2(-(sa[1] - sc[1]), sa[0] - sc[0]) * inv_area
    grad_c = wp.vec2(-(sb[1] - sa[1]), sb[0] - sa[0]) * inv_area
    na = ba / sa[2]
    nb = bb / sb[2]
    nc = bc / sc[2]
    s = na + nb + nc
    big_g = (g[0] * na + g[1] * nb + g[2] * nc) / s
    db_a = (g[0] - big_g) / (sa[2] * s)
    db_b = (g[1] - big_g) / (sb[2] * s)
    db_c = (g[2] - big_g) / (sc[2] * s)
    sum_grad = db_a * grad_a + db_b * grad_b + db_c * grad_c
    pa = -ba * sum_grad
    pb = -bb * sum_grad
    pc = -bc * sum_grad
    return wp.mat33(pa[0], pa[1], -db_a * ba / sa[2],
                    pb[0], pb[1], -db_b * bb / sb[2],
                    pc[0], pc[1], -db_c * bc / sc[2])


@wp.kernel
def interpolate_backward(start: int, span: int, tri_id: wp.array2d(dtype=wp.int32), bary: wp.array2d(dtype=wp.vec3),
                         attr: wp.array2d(dtype=wp.float32), attr_faces: wp.array2d(dtype=wp.int32),
                         faces: wp.array2d(dtype=wp.int32), screen: wp.array(dtype=wp.vec3),
                         points: wp.array(dtype=wp.vec3), w2c: wp.mat44, K: wp.vec4,
                         grad_out: wp.array3d(dtype=wp.float32), want_points: int,
                         grad_attr: wp.array2d(dtype=wp.float32), grad_points: wp.array(dtype=wp.vec3)):
    """grad_out (H, W, C) -> grad_attr (V_attr, C) and grad_points (V,) (world metres), accumulated with +=."""
    i, j = wp.tid()
    y = start + i
    channels = attr.shape[1]
    for x in range(j * span, wp.min((j + 1) * span, tri_id.shape[1])):
        f = tri_id[y, x]
        if f >= 0:
            w = bary[y, x]
            ia = attr_faces[f, 0]
            ib = attr_faces[f, 1]
            ic = attr_faces[f, 2]
            g = wp.vec3(0.0, 0.0, 0.0)
            for c in range(channels):
                go = grad_out[y, x, c]
                wp.atomic_add(grad_attr, ia, c, w[0] * go)
                wp.atomic_add(grad_attr, ib, c, w[1] * go)
                wp.atomic_add(grad_attr, ic, c, w[2] * go)
                g += go * wp.vec3(attr[ia, c], attr[ib, c], attr[ic, c])
            if want_points != 0:
                va = faces[f, 0]
                vb = faces[f, 1]
                vc = faces[f, 2]
                m = barycentric_adjoint(screen[va], screen[vb], screen[vc], float(x) + 0.5, float(y) + 0.5, g)
                wp.atomic_add(grad_points, va, world_gradient(w2c, K, points[va], m[0]))
                wp.atomic_add(grad_points, vb, world_gradient(w2c, K, points[vb], m[1]))
                wp.atomic_add(grad_points, vc, world_gradient(w2c, K, points[vc], m[2]))


def as_attr(attr, device: wp.Device) -> wp.array:
    """(V, C) or (V,) float attribute (numpy or Warp) -> (V, C) float32 Warp array on ``device``."""
    if isinstance(attr, wp.array) and attr.dtype == wp.float32 and attr.ndim == 2:
        return attr if attr.device == device else attr.to(device)
    arr = attr.numpy() if isinstance(attr, wp.array) else np.asarray(attr, dtype=np.float32)
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        from lift3d.errors import InputError

        raise InputError(f"attributes must have shape (V, C), got {arr.shape}.")
    return wp.array(np.ascontiguousarray(arr), dtype=wp.float32, device=device)


def _attr_faces(attr_faces, raster: RasterResult, num_attr: int) -> wp.array:
    if attr_faces is None:
        return raster.faces
    from .raster import as_faces

    tris = as_faces(attr_faces, num_attr, raster.device)
    if tris.shape[0] != raster.faces.shape[0]:
        from lift3d.errors import InputError

        raise InputError(f"attribute faces ({tris.shape[0]}) and mesh faces ({raster.faces.shape[0]}) differ in count.")
    return tris


def interpolate(attr, raster: RasterResult, attr_faces=None, out: wp.array | None = None,
                threads: int | None = None) -> wp.array:
    """Interpolate per-vertex (or face-varying) attributes over the pixels of ``raster``.

    Args:
        attr: (V, C) float attributes (numpy or Warp float32 2-D array); (V,) is taken as C = 1.
        raster: a :class:`RasterResult`.
        attr_faces: (F, 3) indices into ``attr`` per triangle corner (default: the mesh faces).
        out: optional (H, W, C) float32 Warp array to write into.
        threads: CPU threads (default: launch.configure).

    Returns:
        (H, W, C) float32 Warp array; zeros on background pixels.
    """
    device = raster.device
    values = as_attr(attr, device)
    tris = _attr_faces(attr_faces, raster, values.shape[0])
    shape = (raster.height, raster.width, values.shape[1])
    if out is None or tuple(out.shape) != shape:
        out = wp.empty(shape, dtype=wp.float32, device=device)
    span = pixel_span(device, raster.width)
    if raster.width and raster.height:
        parallel_launch(interpolate_forward, (raster.height, -(-raster.width // span)),
                        [span, raster.tri_id, raster.bary, values, tris, out], device,
                        thread_count() if threads is None else threads, min_chunk=4)
    return out


def interpolate_grad(attr, raster: RasterResult, grad_out: wp.array, attr_faces=None, want_points: bool = True,
                     grad_attr: wp.array | None = None, grad_points: wp.array | None = None,
                     threads: int | None = None) -> tuple[wp.array, wp.array]:
    """Adjoint of :func:`interpolate`.

    Args:
        attr, raster, attr_faces: as for :func:`interpolate`.
        grad_out: (H, W, C) float32 d(loss)/d(output).
        want_points: also compute the gradient w.r.t. the raster's world points.
        grad_attr, grad_points: optional zeroed (V_attr, C) float32 and (V,) vec3
            arrays to accumulate into.

    Returns:
        ``(grad_attr (V_attr, C), grad_points (V,) vec3 world metres)`` Warp arrays.
    """
    device = raster.device
    values = as_attr(attr, device)
    tris = _attr_faces(attr_faces, raster, values.shape[0])
    if grad_attr is None:
        grad_attr = wp.zeros(values.shape, dtype=wp.float32, device=device)
    if grad_points is None:
        grad_points = wp.zeros(raster.points.shape[0], dtype=wp.vec3, device=device)
    span = pixel_span(device, raster.width)
    if raster.width and raster.height:
        parallel_launch(interpolate_backward, (raster.height, -(-raster.width // span)),
                        [span, raster.tri_id, raster.bary, values, tris, raster.faces, raster.screen, raster.points,
                         raster.w2c, raster.K, grad_out, int(want_points), grad_attr, grad_points],
                        device, thread_count() if threads is None else threads, private=(12, 13), min_chunk=8)
    return grad_attr, grad_points
