"""torch glue for the rendering kernels: interpolation and texture sampling as autograd Functions.

Tensors cross into Warp without copies (``wp.from_torch``; outputs are torch
tensors written in place by the kernels). Each forward runs under no-grad and
each backward calls the hand-written adjoint kernels of
:mod:`lift3d.kernels.interpolate` and :mod:`lift3d.kernels.texture`; nothing
is traced by ``wp.Tape``. Tensors may live on the CPU or a CUDA device; the
kernels run on the matching Warp device.

Shapes and units: ``points`` (V, 3) float32 world metres; ``faces`` /
``uv_faces`` (F, 3) integer; ``uv`` (T, 2) USD ``st`` coordinates; textures
(Ht, Wt, C) float32 with row 0 at the top of the image; images (H, W, C).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import warp as wp

from .interpolate import interpolate, interpolate_grad
from .raster import RasterResult, rasterize
from .texture import sample, sample_grad


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous()


def _warp_device(t: torch.Tensor) -> wp.Device:
    return wp.device_from_torch(t.device)


def _torch_stream(t: torch.Tensor) -> contextlib.AbstractContextManager:
    """On CUDA, run Warp launches on torch's current stream so both see each other's writes in order."""
    return wp.ScopedStream(wp.stream_from_torch(t.device)) if t.is_cuda else contextlib.nullcontext()


class Interpolate(torch.autograd.Function):
    """``Interpolate.apply(attr, points, raster, attr_faces=None) -> (H, W, C)``.

    ``raster`` must have been rasterized from ``points`` (same values) and must not
    be rasterized into again (``out=``) before the backward pass. Gradients
    flow to ``attr`` (V_attr, C) and to ``points`` (V, 3) through the
    perspective-correct barycentrics; background pixels pass none.
    """

    @staticmethod
    def forward(ctx, attr: torch.Tensor, points: torch.Tensor, raster: RasterResult, attr_faces=None) -> torch.Tensor:
        values = _f32(attr if attr.dim() == 2 else attr[:, None])
        out = torch.empty((raster.height, raster.width, values.shape[1]), dtype=torch.float32, device=attr.device)
        with _torch_stream(values):
            interpolate(wp.from_torch(values), raster, attr_faces, out=wp.from_torch(out))
        ctx.raster, ctx.attr_faces, ctx.attr_shape = raster, attr_faces, attr.shape
        ctx.save_for_backward(values)
        return out if attr.dim() == 2 else out[..., 0]

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (values,) = ctx.saved_tensors
        raster: RasterResult = ctx.raster
        g = _f32(grad_out if grad_out.dim() == 3 else grad_out[..., None])
        grad_attr = torch.zeros_like(values)
        grad_points = torch.zeros((raster.points.shape[0], 3), dtype=torch.float32, device=values.device)
        with _torch_stream(values):
            interpolate_grad(wp.from_torch(values), raster, wp.from_torch(g), ctx.attr_faces,
                             want_points=ctx.needs_input_grad[1], grad_attr=wp.from_torch(grad_attr),
                             grad_points=wp.from_torch(grad_points, dtype=wp.vec3))
        return grad_attr.reshape(ctx.attr_shape), grad_points, None, None


class SampleTexture(torch.autograd.Function):
    """``SampleTexture.apply(texture, st, mode="wrap") -> (..., C)`` bilinear samples.

    Gradients flow to ``texture`` (Ht, Wt, C) and to ``st`` (..., 2).
    """

    @staticmethod
    def forward(ctx, texture: torch.Tensor, st: torch.Tensor, mode: str = "wrap") -> torch.Tensor:
        tex = _f32(texture)
        coords = _f32(st)
        out = torch.empty((*coords.shape[:-1], tex.shape[2]), dtype=torch.float32, device=texture.device)
        with _torch_stream(tex):
            sample(wp.from_torch(tex), wp.from_torch(coords.reshape(-1, 2), dtype=wp.vec2), mode, _warp_device(tex),
                   out=wp.from_torch(out.reshape(-1, tex.shape[2])))
        ctx.mode = mode
        ctx.save_for_backward(tex, coords)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        tex, coords = ctx.saved_tensors
        grad_tex = torch.zeros_like(tex)
        grad_st = torch.empty_like(coords)
        g = _f32(grad_out).reshape(-1, tex.shape[2])
        with _torch_stream(tex):
            sample_grad(wp.from_torch(tex), wp.from_torch(coords.reshape(-1, 2), dtype=wp.vec2), wp.from_torch(g),
                        ctx.mode, _warp_device(tex), grad_texture=wp.from_torch(grad_tex),
                        grad_st=wp.from_torch(grad_st.reshape(-1, 2), dtype=wp.vec2))
        return grad_tex, grad_st, None


def rasterize_torch(points: torch.Tensor, faces, camera, width: int, height: int, cull_backfaces: bool = False,
                    out: RasterResult | None = None) -> RasterResult:
    """:func:`lift3d.kernels.raster.rasterize` of a (V, 3) tensor, on the tensor's device (no gradient)."""
    values = _f32(points)
    pts = wp.from_torch(values, dtype=wp.vec3)
    if isinstance(faces, torch.Tensor):
        faces = faces.detach().cpu().numpy()
    with _torch_stream(values):
        return rasterize(pts, faces, camera, width, height, cull_backfaces, device=pts.device, out=out)


def render_textured(points: torch.Tensor, faces, uv: torch.Tensor, uv_faces, texture: torch.Tensor, camera,
                    width: int, height: int, mode: str = "wrap", cull_backfaces: bool = False,
                    raster: RasterResult | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Render a UV-textured mesh: rasterize, interpolate ``uv``, sample ``texture``.

    Args:
        points: (V, 3) world positions (metres), float32 tensor.
        faces: (F, 3) vertex indices (numpy or tensor).
        uv: (T, 2) st coordinates (tensor); uv_faces: (F, 3) indices into ``uv``
            (face-varying UVs; pass ``faces`` for per-vertex UVs).
        texture: (Ht, Wt, C) float32 tensor, row 0 = top of the image.
        camera: :class:`lift3d.camera.Camera` (intrinsics in pixels of this image).
        width, height: image size in pixels.
        mode: texture addressing, "wrap" or "clamp".
        cull_backfaces: drop faces that appear clockwise on screen.
        raster: optional result to reuse buffers from (see ``rasterize``'s ``out``).

    Returns:
        ``(image (H, W, C), mask (H, W))`` float32 tensors: the image is zero on
        background pixels, the mask is 1 where a triangle covers the pixel centre.
        Gradients flow to ``texture``, ``uv`` and ``points`` (through the
        barycentrics; silhouettes need the soft rasterizer).
    """
    res = rasterize_torch(points, faces, camera, width, height, cull_backfaces, out=raster)
    if isinstance(uv_faces, torch.Tensor):
        uv_faces = uv_faces.detach().cpu().numpy()
    st = Interpolate.apply(uv, points, res, np.asarray(uv_faces))
    image = SampleTexture.apply(texture, st, mode)
    mask = wp.to_torch(res.tri_id).ge(0).to(torch.float32)
    return image * mask[..., None], mask
