"""Texture baking round trips (render -> bake -> re-render), symmetry, inpainting, and the torch render glue."""

import numpy as np
import pytest
import torch
import warp as wp
import xatlas
from scipy import ndimage

from kernel_fixtures import devices, icosphere, interior_pixels
from lift3d.camera import orbit_camera
from lift3d.errors import InputError
from lift3d.kernels.bake import MIRRORED, SEEN, UNSEEN, bake_texture, mask_edge_weight
from lift3d.kernels.interpolate import interpolate
from lift3d.kernels.raster import rasterize, rasterize_screen
from lift3d.kernels.torch_render import Interpolate, SampleTexture, render_textured

DEVICES = devices()
SIZE = 128


def _colour(p: np.ndarray) -> np.ndarray:
    """Smooth procedural albedo of a surface point (N, 3) -> (N, 3), symmetric in X."""
    x, y, z = np.abs(p[:, 0]), p[:, 1], p[:, 2]
    return np.stack([0.5 + 0.35 * np.sin(9.0 * x + 4.0 * y), 0.5 + 0.3 * np.cos(7.0 * y - 5.0 * z),
                     0.45 + 0.3 * np.sin(6.0 * z + 8.0 * x * y)], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def textured_sphere():
    """A sphere with an xatlas UV atlas and a ground-truth texture painted from the surface position."""
    pts, faces = icosphere(3, radius=0.8)
    pts[:, 1] *= 0.8  # an ellipsoid: symmetric about X = 0, not trivially about every plane
    _, uv_faces, uv = xatlas.parametrize(pts, faces)
    uv = uv.astype(np.float32)
    uv_faces = uv_faces.astype(np.int32)
    size = 256
    screen = wp.array(np.stack([uv[:, 0] * size, (1 - uv[:, 1]) * size, np.ones(len(uv))], 1), dtype=wp.vec3)
    chart_raster = rasterize_screen(screen, uv_faces, size, size)
    world = interpolate(pts, chart_raster, faces).numpy()
    inside = chart_raster.tri_id.numpy() >= 0
    texture = _colour(world.reshape(-1, 3)).reshape(size, size, 3)
    # Texels outside the charts copy their nearest chart texel, so bilinear lookups at chart borders stay smooth.
    _, (iy, ix) = ndimage.distance_transform_edt(~inside, return_indices=True)
    return pts, faces, uv, uv_faces, texture[iy, ix]


def _render(mesh, texture, camera):
    pts, faces, uv, uv_faces, _ = mesh
    image, mask = render_textured(torch.from_numpy(pts), faces, torch.from_numpy(uv), uv_faces,
                                  torch.from_numpy(np.ascontiguousarray(texture)), camera, camera.width, camera.height)
    return image.numpy(), mask.numpy()


def _masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    mse = float(np.mean((a[mask > 0.5] - b[mask > 0.5]) ** 2))
    return 10.0 * np.log10(1.0 / max(mse, 1e-12))


def _cameras(yaws, pitches=(-0.5, 0.0, 0.6)):
    return [orbit_camera(yaw, pitch, 3.0, 0.75, SIZE, SIZE) for yaw in yaws for pitch in pitches]


@pytest.mark.parametrize("device", DEVICES)
def test_bake_then_render_reproduces_the_views(textured_sphere, device):
    pts, faces, uv, uv_faces, truth = textured_sphere
    cams = _cameras(np.linspace(0, 2 * np.pi, 6, endpoint=False))
    views = [(*_render(textured_sphere, truth, cam), cam) for cam in cams]
    result = bake_texture(pts, faces, uv, uv_faces, views, 256, device=device)
    assert result.texture.shape == (256, 256, 3) and np.isfinite(result.texture).all()
    assert result.coverage > 0.98
    assert np.all(result.weight[result.source == SEEN] > 0) and np.all(result.weight[result.source == UNSEEN] == 0)
    for image, mask, cam in views:
        again, mask_again = _render(textured_sphere, result.texture, cam)
        np.testing.assert_array_equal(mask_again, mask)
        assert _masked_psnr(again, image, mask) >= 35.0
    # The bar is sensitive: the same texture shifted by two texels misses it.
    image, mask, cam = views[0]
    assert _masked_psnr(_render(textured_sphere, np.roll(result.texture, 2, axis=1), cam)[0], image, mask) < 35.0
    # A held-out view agrees as well.
    held_out = orbit_camera(0.4, 0.3, 2.8, 0.75, SIZE, SIZE)
    image, mask = _render(textured_sphere, truth, held_out)
    assert _masked_psnr(_render(textured_sphere, result.texture, held_out)[0], image, mask) >= 33.0


def test_symmetry_fills_the_unseen_half(textured_sphere):
    pts, faces, uv, uv_faces, truth = textured_sphere
    cams = _cameras([0.9, 1.5, 2.2])  # cameras on the +X side only
    views = [(*_render(textured_sphere, truth, cam), cam) for cam in cams]
    plain = bake_texture(pts, faces, uv, uv_faces, views, 256, device="cpu")
    mirrored = bake_texture(pts, faces, uv, uv_faces, views, 256, symmetry_plane=(1, 0, 0, 0), device="cpu")
    assert (mirrored.source == MIRRORED).sum() > 0.3 * mirrored.chart.sum()
    assert np.array_equal(plain.source == SEEN, mirrored.source == SEEN)
    assert mirrored.coverage > plain.coverage + 0.3
    back = orbit_camera(-1.5, 0.0, 3.0, 0.75, SIZE, SIZE)
    image, mask = _render(textured_sphere, truth, back)
    assert _masked_psnr(_render(textured_sphere, mirrored.texture, back)[0], image, mask) >= 30.0
    # Without the mirror the unseen side is only inpainted: clearly worse.
    assert _masked_psnr(_render(textured_sphere, plain.texture, back)[0], image, mask) < 28.0


def test_background_never_bleeds_into_the_texture(textured_sphere):
    pts, faces, uv, uv_faces, truth = textured_sphere
    cams = _cameras(np.linspace(0, 2 * np.pi, 4, endpoint=False), pitches=(0.0,))
    views = []
    for cam in cams:
        image, mask = _render(textured_sphere, truth, cam)
        image[mask < 0.5] = (1.0, 0.0, 1.0)  # loud magenta background
        views.append((image, mask, cam))
    result = bake_texture(pts, faces, uv, uv_faces, views, 128, device="cpu")
    magenta = (result.texture[..., 0] > 0.9) & (result.texture[..., 1] < 0.1) & (result.texture[..., 2] > 0.9)
    assert not magenta.any()
    assert truth.min() > 0.05 and np.abs(result.texture[result.chart] - 0.5).max() < 0.5


def test_no_views_and_bad_inputs(textured_sphere):
    pts, faces, uv, uv_faces, _ = textured_sphere
    empty = bake_texture(pts, faces, uv, uv_faces, [], 32, device="cpu")
    assert np.allclose(empty.texture, 0.5) and not empty.source.any() and empty.chart.any()
    cam = orbit_camera(0.0, 0.0, 3.0, 0.75, 16, 16)
    with pytest.raises(InputError):
        bake_texture(pts, faces, uv, uv_faces, [(np.zeros((8, 8, 3)), np.ones((8, 8)), cam)], 32, device="cpu")
    with pytest.raises(InputError):
        bake_texture(pts, faces, uv, uv_faces, [(np.zeros((16, 16, 3)), np.ones((8, 8)), cam)], 32, device="cpu")
    with pytest.raises(InputError):
        bake_texture(pts, faces, uv, uv_faces[:-1], [], 32, device="cpu")
    with pytest.raises(InputError):
        bake_texture(pts, faces, uv, uv_faces, [], 0, device="cpu")
    with pytest.raises(InputError):
        bake_texture(pts, faces, uv, uv_faces, [], 32, symmetry_plane=(0, 0, 0, 1), device="cpu")


def test_mask_edge_weight_ramps_inside_the_mask():
    mask = np.zeros((20, 20), np.float32)
    mask[5:15, 5:15] = 1.0
    w = mask_edge_weight(mask, 3.0)
    assert np.all(w[mask == 0] == 0) and w[10, 10] == 1.0
    assert 0 < w[5, 10] < w[6, 10] < w[7, 10] <= 1.0
    full = mask_edge_weight(np.ones((6, 6)), 3.0)
    assert np.all(full == 1.0)  # the image border is not a mask boundary


def test_render_textured_gradients_match_finite_differences(textured_sphere):
    pts, faces, uv, uv_faces, truth = textured_sphere
    cam = orbit_camera(0.7, 0.2, 3.0, 0.75, 48, 48)
    rng = np.random.default_rng(0)
    tex = torch.tensor(truth[::4, ::4].copy(), requires_grad=True)  # 64 x 64: several texels per pixel footprint
    points = torch.tensor(pts, requires_grad=True)
    uv_t = torch.tensor(uv, requires_grad=True)
    base = rasterize(pts, faces, cam, 48, 48)
    eps = 2e-3
    seen = np.unique(faces[np.unique(base.tri_id.numpy()[base.tri_id.numpy() >= 0])])
    verts = rng.choice(seen, 3, replace=False)
    moved = []
    for v in verts:
        for axis in range(3):
            for sign in (-1, 1):
                p = pts.copy()
                p[v, axis] += sign * eps
                moved.append(p)
    keep = interior_pixels([base] + [rasterize(p, faces, cam, 48, 48) for p in moved])
    weights = torch.tensor(rng.standard_normal((48, 48, 3)).astype(np.float32) * keep[..., None])
    image, mask = render_textured(points, faces, uv_t, uv_faces, tex, cam, 48, 48)
    (image * weights).sum().backward()

    def loss(p=pts, t=None):
        out, _ = render_textured(torch.tensor(p), faces, torch.tensor(uv), uv_faces,
                                 tex.detach() if t is None else t, cam, 48, 48)
        return float((out.double() * weights.double()).sum())

    grad_tex = tex.grad.numpy()
    for r, c, ch in zip(*np.nonzero(np.abs(grad_tex) > 1e-3)[:3]):
        t_plus, t_minus = tex.detach().clone(), tex.detach().clone()
        t_plus[r, c, ch] += 0.5
        t_minus[r, c, ch] -= 0.5
        np.testing.assert_allclose(grad_tex[r, c, ch], loss(t=t_plus) - loss(t=t_minus), rtol=1e-3, atol=1e-4)
        break
    grad_points = points.grad.numpy()
    for k, v in enumerate(verts):
        fd = np.array([(loss(moved[6 * k + 2 * a + 1]) - loss(moved[6 * k + 2 * a])) / (2 * eps) for a in range(3)])
        np.testing.assert_allclose(grad_points[v], fd, rtol=5e-2, atol=5e-2 * np.abs(fd).max() + 1e-3)
    assert uv_t.grad is not None and torch.isfinite(uv_t.grad).all() and uv_t.grad.abs().sum() > 0


def test_torch_functions_agree_with_the_kernels():
    rng = np.random.default_rng(1)
    pts, faces = icosphere(1)
    cam = orbit_camera(0.3, 0.4, 3.0, 0.8, 32, 24)
    res = rasterize(pts, faces, cam, 32, 24)
    attr = torch.tensor(rng.standard_normal((len(pts), 2)).astype(np.float32), requires_grad=True)
    points = torch.tensor(pts, requires_grad=True)
    out = Interpolate.apply(attr, points, res)
    np.testing.assert_array_equal(out.detach().numpy(), interpolate(attr.detach().numpy(), res).numpy())
    out.sum().backward()
    # d(sum of interpolated attributes)/d(attr) counts the barycentric weight each vertex receives.
    tri, bary, _ = res.numpy()
    expected = np.zeros(len(pts))
    np.add.at(expected, faces[tri[tri >= 0]].ravel(), bary[tri >= 0].ravel())
    np.testing.assert_allclose(attr.grad.numpy()[:, 0], expected, rtol=1e-5, atol=1e-5)
    tex = torch.tensor(rng.random((4, 4, 3)).astype(np.float32), requires_grad=True)
    st = torch.tensor(rng.random((10, 2)).astype(np.float32), requires_grad=True)
    SampleTexture.apply(tex, st).sum().backward()
    np.testing.assert_allclose(tex.grad.sum().item(), 30.0, rtol=1e-5)  # bilinear weights sum to one per sample


def test_threaded_bake_is_bit_identical(textured_sphere):
    pts, faces, uv, uv_faces, truth = textured_sphere
    cams = _cameras([0.3, 2.5], pitches=(0.2,))
    views = [(*_render(textured_sphere, truth, cam), cam) for cam in cams]
    single = bake_texture(pts, faces, uv, uv_faces, views, 96, symmetry_plane=(1, 0, 0, 0), device="cpu", threads=1)
    for threads in (2, 3):
        multi = bake_texture(pts, faces, uv, uv_faces, views, 96, symmetry_plane=(1, 0, 0, 0), device="cpu",
                             threads=threads)
        for name in ("texture", "weight", "source", "chart"):
            np.testing.assert_array_equal(getattr(multi, name), getattr(single, name))


def test_kernels_compile_for_cuda(tmp_path):
    import lift3d.kernels.bake as module
    from kernel_fixtures import compile_for_cuda

    compile_for_cuda(module, tmp_path)
