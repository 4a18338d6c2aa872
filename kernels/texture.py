"""Bilinear texture sampling with hand-written adjoints to the texels and to the UVs.

Conventions (USD ``primvars:st``):

* a texture is a plain ``(Ht, Wt, C)`` float32 array whose row 0 is the *top*
  of the image;
* ``st = (0, 0)`` is the bottom-left corner of the image and ``(1, 1)`` the
  top-right corner, so ``st`` maps to continuous texel coordinates
  ``x = s * Wt - 0.5`` (column), ``y = (1 - t) * Ht - 0.5`` (row), with texel
  centres at integers there (half-integers in ``st * size``);
* addressing outside ``[0, 1]``: ``WRAP`` repeats the texture, ``CLAMP``
  repeats the border texels.

``wp.texture_sample`` does not propagate gradients to texture data, so the
sampler here is written out: forward, then an adjoint that scatters
``d(loss)/d(texel)`` with atomic adds and returns ``d(loss)/d(st)`` (the
bilinear weights' derivatives; the gradient is piecewise constant across
texel-centre lines).
"""

from __future__ import annotations

import numpy as np
import warp as wp

from .launch import parallel_launch, resolve_device, thread_count

wp.set_module_options({"enable_backward": False})

CLAMP = 0
WRAP = 1
_MODES = {"clamp": CLAMP, "wrap": WRAP}


@wp.func
def texel_index(i: int, size: int, mode: int) -> int:
    if mode == 1:
        return ((i % size) + size) % size
    return wp.clamp(i, 0, size - 1)


@wp.func
def texel_coords(st: wp.vec2, width: int, height: int) -> wp.vec2:
    """st -> continuous texel coordinates (column, row); texel centres at integers."""
    return wp.vec2(st[0] * float(width) - 0.5, (1.0 - st[1]) * float(height) - 0.5)


@wp.func
def bilinear_corners(p: wp.vec2, width: int, height: int, mode: int) -> wp.vec4i:
    """Texel coordinates ``p`` -> the four texels around it as (x0, x1, y0, y1), addressed by ``mode``.

    The bilinear weights are the fractional parts of ``p``: ``ax`` towards x1, ``ay`` towards y1.
    """
    fx0 = int(wp.floor(p[0]))
    fy0 = int(wp.floor(p[1]))
    return wp.vec4i(texel_index(fx0, width, mode), texel_index(fx0 + 1, width, mode),
                    texel_index(fy0, height, mode), texel_index(fy0 + 1, height, mode))


@wp.kernel
def sample_forward(start: int, texture: wp.array3d(dtype=wp.float32), st: wp.array(dtype=wp.vec2), mode: int,
                   out: wp.array2d(dtype=wp.float32)):
    """texture (Ht, Wt, C), st (N,) -> out (N, C) bilinear samples."""
    n = start + wp.tid()
    height = texture.shape[0]
    width = texture.shape[1]
    p = texel_coords(st[n], width, height)
    corners = bilinear_corners(p, width, height, mode)
    x0 = corners[0]
    x1 = corners[1]
    y0 = corners[2]
    y1 = corners[3]
    ax = p[0] - wp.floor(p[0])
    ay = p[1] - wp.floor(p[1])
    for c in range(texture.shape[2]):
        top = (1.0 - ax) * texture[y0, x0, c] + ax * texture[y0, x1, c]
        bottom = (1.0 - ax) * texture[y1, x0, c] + ax * texture[y1, x1, c]
        out[n, c] = (1.0 - ay) * top + ay * bottom


@wp.kernel
def sample_backward(start: int, texture: wp.array3d(dtype=wp.float32), st: wp.array(dtype=wp.vec2), mode: int,
                    grad_out: wp.array2d(dtype=wp.float32), grad_texture: wp.array3d(dtype=wp.float32),
                    grad_st: wp.array(dtype=wp.vec2)):
    """grad_out (N, C) -> grad_texture (Ht, Wt, C) (accumulated with +=) and grad_st (N,) (written)."""
    n = start + wp.tid()
    height = texture.shape[0]
    width = texture.shape[1]
    p = texel_coords(st[n], width, height)
    corners = bilinear_corners(p, width, height, mode)
    x0 = corners[0]
    x1 = corners[1]
    y0 = corners[2]
    y1 = corners[3]
    ax = p[0] - wp.floor(p[0])
    ay = p[1] - wp.floor(p[1])
    d_ax = float(0.0)
    d_ay = float(0.0)
    for c in range(texture.shape[2]):
        g = grad_out[n, c]
        t00 = texture[y0, x0, c]
        t01 = texture[y0, x1, c]
        t10 = texture[y1, x0, c]
        t11 = texture[y1, x1, c]
        wp.atomic_add(grad_texture, y0, x0, c, (1.0 - ax) * (1.0 - ay) * g)
        wp.atomic_add(grad_texture, y0, x1, c, ax * (1.0 - ay) * g)
        wp.atomic_add(grad_texture, y1, x0, c, (1.0 - ax) * ay * g)
        wp.atomic_add(grad_texture, y1, x1, c, ax * ay * g)
        d_ax += g * ((1.0 - ay) * (t01 - t00) + ay * (t11 - t10))
        d_ay += g * ((1.0 - ax) * (t10 - t00) + ax * (t11 - t01))
    # x = s * Wt - 0.5, y = (1 - t) * Ht - 0.5
    grad_st[n] = wp.vec2(d_ax * float(width), -d_ay * float(height))


def _mode(mode: str) -> int:
    try:
        return _MODES[mode]
    except KeyError:
        raise ValueError(f"unknown texture address mode {mode!r}; choose clamp or wrap") from None


def as_texture(texture, device: wp.Device) -> wp.array:
    """(Ht, Wt, C) or (Ht, Wt) float texture (numpy or Warp) -> (Ht, Wt, C) float32 Warp array."""
    if isinstance(texture, wp.array) and texture.dtype == wp.float32 and texture.ndim == 3:
        return texture if texture.device == device else texture.to(device)
    arr = texture.numpy() if isinstance(texture, wp.array) else texture
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        from lift3d.errors import InputError

        raise InputError(f"a texture must have shape (height, width, channels) with a non-zero size, got {arr.shape}.")
    return wp.array(np.ascontiguousarray(arr), dtype=wp.float32, device=device)


def as_st(st, device: wp.Device) -> tuple[wp.array, tuple[int, ...]]:
    """(..., 2) st coordinates -> flat (N,) vec2 Warp array and the leading shape."""
    if isinstance(st, wp.array):
        if st.dtype == wp.vec2:
            return (st if st.device == device else st.to(device)).flatten(), tuple(st.shape)
        if st.dtype == wp.float32 and st.shape[-1] == 2 and st.is_contiguous:
            lead = tuple(st.shape[:-1])
            flat = st.reshape((int(np.prod(lead)), 2)).view(wp.vec2)
            return (flat if flat.device == device else flat.to(device)), lead
        st = st.numpy()
    arr = np.asarray(st, dtype=np.float32)
    if arr.shape[-1:] != (2,):
        from lift3d.errors import InputError

        raise InputError(f"st coordinates must have shape (..., 2), got {arr.shape}.")
    lead = arr.shape[:-1]
    return wp.array(np.ascontiguousarray(arr.reshape(-1, 2)), dtype=wp.vec2, device=device), lead


def _device_of(texture, device) -> wp.Device:
    """The explicit device, else the texture's own (for Warp arrays), else the default device."""
    if device is None and isinstance(texture, wp.array):
        return texture.device
    return resolve_device(device)


def sample(texture, st, mode: str = "wrap", device=None, out: wp.array | None = None,
           threads: int | None = None) -> wp.array:
    """Bilinearly sample ``texture`` (Ht, Wt, C) at ``st`` (..., 2); returns (..., C) float32 Warp array."""
    device = _device_of(texture, device)
    tex = as_texture(texture, device)
    coords, lead = as_st(st, device)
    count = coords.shape[0]
    if out is None or out.shape[0] != count or out.ndim != 2:
        out = wp.empty((count, tex.shape[2]), dtype=wp.float32, device=device)
    parallel_launch(sample_forward, count, [tex, coords, _mode(mode), out], device,
                    thread_count() if threads is None else threads, min_chunk=4096)
    return out.reshape((*lead, tex.shape[2]))


def sample_grad(texture, st, grad_out, mode: str = "wrap", device=None, grad_texture: wp.array | None = None,
                grad_st: wp.array | None = None, threads: int | None = None) -> tuple[wp.array, wp.array]:
    """Adjoint of :func:`sample`.

    Args:
        texture, st, mode: as for :func:`sample`.
        grad_out: (..., C) float32 d(loss)/d(samples).
        grad_texture: optional zeroed (Ht, Wt, C) float32 array to accumulate into.
        grad_st: optional (N,) vec2 array to write d(loss)/d(st) into.

    Returns:
        ``(grad_texture (Ht, Wt, C) float32, grad_st (..., 2) float32)`` Warp arrays.
    """
    device = _device_of(texture, device)
    tex = as_texture(texture, device)
    coords, lead = as_st(st, device)
    count = coords.shape[0]
    g = grad_out if isinstance(grad_out, wp.array) else wp.array(np.asarray(grad_out, np.float32), device=device)
    g = g.reshape((count, tex.shape[2]))
    if grad_texture is None:
        grad_texture = wp.zeros(tex.shape, dtype=wp.float32, device=device)
    if grad_st is None:
        grad_st = wp.empty(count, dtype=wp.vec2, device=device)
    # Each CPU chunk after the first needs a private copy of the texture gradient (added in by a
    # reduction kernel): use a few threads at most.
    threads = min(thread_count() if threads is None else threads, 4)
    parallel_launch(sample_backward, count, [tex, coords, _mode(mode), g, grad_texture, grad_st], device, threads,
                    private=(4,), min_chunk=65536)
    return grad_texture, grad_st.view(wp.float32).reshape((*lead, 2))
