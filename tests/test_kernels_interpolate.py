"""Attribute interpolation: forward against the surface geometry, hand-written adjoints against finite differences."""

import numpy as np
import pytest
import warp as wp

from kernel_fixtures import devices, interior_pixels, noisy_sphere, random_camera
from lift3d.errors import InputError
from lift3d.kernels.interpolate import interpolate, interpolate_grad
from lift3d.kernels.raster import rasterize

DEVICES = devices()


def _scene(seed: int, size=(48, 40)):
    rng = np.random.default_rng(seed)
    pts, faces = noisy_sphere(rng, subdivisions=1, noise=0.1)
    cam = random_camera(rng, *size, distance=(2.5, 3.0))
    return rng, pts, faces, cam


@pytest.mark.parametrize("device", DEVICES)
def test_interpolated_positions_are_the_visible_surface_points(device):
    _, pts, faces, cam = _scene(1)
    res = rasterize(pts, faces, cam, cam.width, cam.height, device=device)
    world = interpolate(pts, res).numpy()
    tri = res.tri_id.numpy()
    ys, xs = np.nonzero(tri >= 0)
    uv, depth = cam.project(world[ys, xs])
    np.testing.assert_allclose(uv, np.stack([xs + 0.5, ys + 0.5], axis=1), atol=2e-3)
    np.testing.assert_allclose(depth, res.depth.numpy()[ys, xs], rtol=1e-5)
    assert np.all(world[tri < 0] == 0)


@pytest.mark.parametrize("device", DEVICES)
def test_face_varying_attributes_use_their_own_indices(device):
    rng, pts, faces, cam = _scene(2)
    corner_values = rng.standard_normal((3 * len(faces), 2)).astype(np.float32)
    corner_faces = np.arange(3 * len(faces), dtype=np.int32).reshape(-1, 3)
    res = rasterize(pts, faces, cam, cam.width, cam.height, device=device)
    out = interpolate(corner_values, res, corner_faces).numpy()
    tri, bary, _ = res.numpy()
    ys, xs = np.nonzero(tri >= 0)
    expected = np.einsum("nk,nkc->nc", bary[ys, xs], corner_values[corner_faces[tri[ys, xs]]])
    np.testing.assert_allclose(out[ys, xs], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError):
        interpolate(corner_values, res, corner_faces[:-1])


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_match_finite_differences(device):
    rng, pts, faces, cam = _scene(3)
    attr = np.concatenate([np.sin(3 * pts), pts[:, :1] ** 2], axis=1).astype(np.float32)  # (V, 4)
    res = rasterize(pts, faces, cam, cam.width, cam.height, device=device)
    weights = rng.standard_normal((cam.height, cam.width, attr.shape[1])).astype(np.float32)
    eps = 1e-3
    # Pick vertices that are seen, and weight only pixels that stay interior under every perturbation.
    seen = np.unique(faces[np.unique(res.tri_id.numpy()[res.tri_id.numpy() >= 0])])
    verts = rng.choice(seen, 5, replace=False)
    rasters = [res]
    for v in verts:
        for axis in range(3):
            for sign in (-1, 1):
                moved = pts.copy()
                moved[v, axis] += sign * eps
                rasters.append(rasterize(moved, faces, cam, cam.width, cam.height, device=device))
    keep = interior_pixels(rasters)
    assert keep.sum() > 200
    weights *= keep[..., None]
    grad_out = wp.array(weights, dtype=wp.float32, device=device)
    grad_attr, grad_points = interpolate_grad(attr, res, grad_out)
    grad_attr, grad_points = grad_attr.numpy(), grad_points.numpy()

    def loss(p, a):
        r = rasterize(p, faces, cam, cam.width, cam.height, device=device)
        return float(np.sum(interpolate(a, r).numpy().astype(np.float64) * weights))

    k = 1
    for v in verts:
        fd = np.zeros(3)
        for axis in range(3):
            plus, minus = rasters[k + 1], rasters[k]
            k += 2
            lp = float(np.sum(interpolate(attr, plus).numpy().astype(np.float64) * weights))
            lm = float(np.sum(interpolate(attr, minus).numpy().astype(np.float64) * weights))
            fd[axis] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(grad_points[v], fd, rtol=2e-2, atol=2e-2 * np.abs(fd).max() + 1e-3)
    # The output is linear in the attributes: any step size is exact up to rounding.
    for v, c in zip(rng.choice(seen, 6), rng.integers(0, attr.shape[1], 6)):
        a1, a0 = attr.copy(), attr.copy()
        a1[v, c] += 0.5
        a0[v, c] -= 0.5
        np.testing.assert_allclose(grad_attr[v, c], loss(pts, a1) - loss(pts, a0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_background_pixels_pass_no_gradient(device):
    rng, pts, faces, cam = _scene(4)
    res = rasterize(pts, faces, cam, cam.width, cam.height, device=device)
    background = (res.tri_id.numpy() < 0)[..., None].astype(np.float32)
    grad_out = wp.array(np.broadcast_to(background, (cam.height, cam.width, 3)).copy(), dtype=wp.float32, device=device)
    grad_attr, grad_points = interpolate_grad(pts, res, grad_out)
    assert np.all(grad_attr.numpy() == 0) and np.all(grad_points.numpy() == 0)


def test_threaded_launch_matches_single_thread():
    rng, pts, faces, cam = _scene(5, size=(64, 96))
    res = rasterize(pts, faces, cam, cam.width, cam.height, device="cpu")
    single = interpolate(pts, res, threads=1).numpy()
    grad_out = wp.array(rng.standard_normal((cam.height, cam.width, 3)).astype(np.float32), dtype=wp.float32)
    ga1, gp1 = interpolate_grad(pts, res, grad_out, threads=1)
    for threads in (2, 5):
        np.testing.assert_array_equal(interpolate(pts, res, threads=threads).numpy(), single)
        ga, gp = interpolate_grad(pts, res, grad_out, threads=threads)
        np.testing.assert_allclose(ga.numpy(), ga1.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(gp.numpy(), gp1.numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_empty_images_and_meshes(device):
    _, pts, faces, cam = _scene(6)
    empty_image = rasterize(pts, faces, cam, 0, 0, device=device)
    assert interpolate(pts, empty_image).shape == (0, 0, 3)
    grad_attr, grad_points = interpolate_grad(pts, empty_image, wp.zeros((0, 0, 3), dtype=wp.float32, device=device))
    assert np.all(grad_attr.numpy() == 0) and np.all(grad_points.numpy() == 0)
    no_faces = rasterize(pts, np.zeros((0, 3), np.int32), cam, 8, 6, device=device)
    out = interpolate(pts, no_faces).numpy()
    assert out.shape == (6, 8, 3) and np.all(out == 0)


def test_kernels_compile_for_cuda(tmp_path):
    import lift3d.kernels.interpolate as module
    from kernel_fixtures import compile_for_cuda

    compile_for_cuda(module, tmp_path)
