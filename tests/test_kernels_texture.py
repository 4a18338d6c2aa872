"""Bilinear texture sampling: st convention, round trips, address modes and adjoints against finite differences."""

import numpy as np
import pytest

from kernel_fixtures import central_differences, devices
from lift3d.errors import InputError
from lift3d.kernels.texture import sample, sample_grad

DEVICES = devices()


def _reference(texture: np.ndarray, st: np.ndarray, mode: str) -> np.ndarray:
    """Plain numpy bilinear sampling in float64 with the same conventions."""
    h, w, _ = texture.shape
    x = st[:, 0] * w - 0.5
    y = (1.0 - st[:, 1]) * h - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    ax, ay = (x - x0)[:, None], (y - y0)[:, None]

    def idx(i, n):
        return np.mod(i, n) if mode == "wrap" else np.clip(i, 0, n - 1)

    t = texture.astype(np.float64)
    x0i, x1i, y0i, y1i = idx(x0, w), idx(x0 + 1, w), idx(y0, h), idx(y0 + 1, h)
    top = (1 - ax) * t[y0i, x0i] + ax * t[y0i, x1i]
    bottom = (1 - ax) * t[y1i, x0i] + ax * t[y1i, x1i]
    return (1 - ay) * top + ay * bottom


@pytest.mark.parametrize("device", DEVICES)
def test_texel_centres_return_texels_and_st_origin_is_bottom_left(device):
    rng = np.random.default_rng(0)
    tex = rng.random((5, 7, 3)).astype(np.float32)
    rows, cols = np.meshgrid(np.arange(5), np.arange(7), indexing="ij")
    st = np.stack([(cols + 0.5) / 7, 1.0 - (rows + 0.5) / 5], axis=-1)
    for mode in ("wrap", "clamp"):
        out = sample(tex, st, mode=mode, device=device).numpy()
        assert out.shape == (5, 7, 3)
        np.testing.assert_allclose(out, tex, atol=1e-6)
    # Bottom-left texel (last row, first column) sits near st = (0, 0).
    corner = sample(tex, np.array([0.5 / 7, 0.5 / 5]), mode="clamp", device=device).numpy()
    np.testing.assert_allclose(corner, tex[-1, 0], atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["wrap", "clamp"])
def test_matches_numpy_reference_inside_and_outside_the_unit_square(device, mode):
    rng = np.random.default_rng(1)
    tex = rng.random((6, 9, 2)).astype(np.float32)
    st = rng.uniform(-1.5, 2.5, (500, 2)).astype(np.float32)
    out = sample(tex, st, mode=mode, device=device).numpy()
    np.testing.assert_allclose(out, _reference(tex, st.astype(np.float64), mode), atol=2e-5)
    # Wrap: the left edge blends the first and the last column; clamp: the first column only.
    edge = sample(tex, np.array([0.0, 1.0 - 0.5 / 6]), mode=mode, device=device).numpy()
    expected = 0.5 * (tex[0, 0] + tex[0, -1]) if mode == "wrap" else tex[0, 0]
    np.testing.assert_allclose(edge, expected, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["wrap", "clamp"])
def test_gradients_match_finite_differences(device, mode):
    rng = np.random.default_rng(2)
    tex = rng.random((8, 6, 3)).astype(np.float32)
    st = rng.uniform(-0.3, 1.3, (40, 2)).astype(np.float32)
    # Keep samples away from texel-centre lines, where the st-gradient jumps.
    x = st[:, 0] * 6 - 0.5
    y = (1 - st[:, 1]) * 8 - 0.5
    st = st[(np.abs(x - np.round(x)) > 0.05) & (np.abs(y - np.round(y)) > 0.05)]
    weights = rng.standard_normal((len(st), 3))
    grad_tex, grad_st = sample_grad(tex, st, weights.astype(np.float32), mode=mode, device=device)
    grad_tex, grad_st = grad_tex.numpy(), grad_st.numpy()

    def loss(t, s):
        return float(np.sum(sample(t, s, mode=mode, device=device).numpy().astype(np.float64) * weights))

    # Linear in the texels: central differences are exact up to rounding.
    for r, c, ch in zip(rng.integers(0, 8, 12), rng.integers(0, 6, 12), rng.integers(0, 3, 12)):
        tp, tm = tex.copy(), tex.copy()
        tp[r, c, ch] += 0.5
        tm[r, c, ch] -= 0.5
        np.testing.assert_allclose(grad_tex[r, c, ch], loss(tp, st) - loss(tm, st), atol=1e-4)
    fd = central_differences(lambda s: loss(tex, s), st, 1e-3)
    np.testing.assert_allclose(grad_st, fd, rtol=1e-2, atol=2e-2)


def test_threaded_sampling_is_bit_identical():
    rng = np.random.default_rng(3)
    tex = rng.random((32, 32, 3)).astype(np.float32)
    st = rng.uniform(0, 1, (200_000, 2)).astype(np.float32)
    single = sample(tex, st, device="cpu", threads=1).numpy()
    g = rng.standard_normal((200_000, 3)).astype(np.float32)
    gt1, gs1 = sample_grad(tex, st, g, device="cpu", threads=1)
    for threads in (2, 3):
        np.testing.assert_array_equal(sample(tex, st, device="cpu", threads=threads).numpy(), single)
        gt, gs = sample_grad(tex, st, g, device="cpu", threads=threads)
        np.testing.assert_array_equal(gs.numpy(), gs1.numpy())
        np.testing.assert_allclose(gt.numpy(), gt1.numpy(), rtol=1e-4, atol=1e-3)


def test_bad_inputs():
    with pytest.raises(InputError):
        sample(np.zeros((0, 4, 3)), np.zeros((3, 2)), device="cpu")
    with pytest.raises(InputError):
        sample(np.zeros((4, 4, 3)), np.zeros((3, 3)), device="cpu")
    with pytest.raises(ValueError):
        sample(np.zeros((4, 4, 3)), np.zeros((3, 2)), mode="mirror", device="cpu")
    empty = sample(np.ones((4, 4, 3)), np.zeros((0, 2)), device="cpu")
    assert empty.shape == (0, 3)


def test_kernels_compile_for_cuda(tmp_path):
    import lift3d.kernels.texture as module
    from kernel_fixtures import compile_for_cuda

    compile_for_cuda(module, tmp_path)
