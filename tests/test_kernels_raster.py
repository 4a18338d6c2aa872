"""Visibility rasterizer: agreement with an independent ray caster, fill rule, edge cases, threading."""

import numpy as np
import pytest
import warp as wp

from kernel_fixtures import devices, noisy_sphere, random_camera, ray_cast, triangle_soup
from lift3d.camera import Camera, look_at
from lift3d.errors import InputError
from lift3d.kernels.raster import rasterize

DEVICES = devices()


def _front_camera(width: int, height: int) -> Camera:
    """Camera at (0, 0, 1) looking down -Z with f = 1 px/m: world (X, Y, 0) -> pixel (W/2 + X, H/2 - Y)."""
    return Camera(1.0, 1.0, width / 2.0, height / 2.0, width, height, look_at(np.array([0.0, 0.0, 1.0]), np.zeros(3)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["sphere", "soup"])
def test_matches_ray_caster(device, kind):
    rng = np.random.default_rng(7 if kind == "sphere" else 8)
    agree = total = 0
    for _ in range(6):
        pts, faces = noisy_sphere(rng) if kind == "sphere" else triangle_soup(rng)
        cam = random_camera(rng, 96, 72)
        res = rasterize(pts, faces, cam, cam.width, cam.height, device=device)
        tri, bary, depth = res.numpy()
        ref_tri, ref_depth = ray_cast(pts, faces, cam, device)
        agree += int((tri == ref_tri).sum())
        total += tri.size
        hit = (tri >= 0) & (tri == ref_tri)
        assert hit.sum() > 500
        np.testing.assert_allclose(depth[hit], ref_depth[hit], rtol=1e-5)
        assert np.all(np.isinf(depth[tri < 0])) and np.all(bary[tri < 0] == 0)
        # The barycentric combination of the corners is the surface point seen through the pixel centre.
        ys, xs = np.nonzero(hit)
        corners = pts[faces[tri[ys, xs]]].astype(np.float64)
        surface = np.einsum("nk,nkc->nc", bary[ys, xs].astype(np.float64), corners)
        uv, d = cam.project(surface)
        np.testing.assert_allclose(uv, np.stack([xs + 0.5, ys + 0.5], axis=1), atol=2e-3)
        np.testing.assert_allclose(d, depth[ys, xs], rtol=1e-5)
        np.testing.assert_allclose(bary[ys, xs].sum(axis=1), 1.0, atol=1e-5)
    assert agree / total >= 0.999


@pytest.mark.parametrize("device", DEVICES)
def test_culling_keeps_the_visible_side_of_a_closed_mesh(device):
    rng = np.random.default_rng(3)
    pts, faces = noisy_sphere(rng, subdivisions=2, noise=0.03)
    cam = random_camera(rng, 64, 64)
    culled = rasterize(pts, faces, cam, 64, 64, cull_backfaces=True, device=device).tri_id.numpy()
    ref, _ = ray_cast(pts, faces, cam, device)
    assert (culled == ref).mean() >= 0.998
    # Reversed winding: only the far (inner) side remains, every drawn face turned away from the camera.
    normals = np.cross(pts[faces[:, 1]] - pts[faces[:, 0]], pts[faces[:, 2]] - pts[faces[:, 0]])
    towards = np.einsum("fc,fc->f", normals, cam.position - pts[faces[:, 0]]) > 0
    inside = rasterize(pts, faces[:, ::-1].copy(), cam, 64, 64, cull_backfaces=True, device=device).tri_id.numpy()
    drawn = np.unique(inside[inside >= 0])
    assert drawn.size > 10 and not towards[drawn].any()
    assert towards[np.unique(culled[culled >= 0])].all()


def _grid_mesh(n: int, origin: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """n x n quads on z = 0, each split along alternating diagonals, plus a fan around the centre vertex."""
    xs = origin + step * np.arange(n + 1)
    gx, gy = np.meshgrid(xs, xs)
    pts = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], axis=1)
    faces = []
    for j in range(n):
        for i in range(n):
            a, b, c, d = j * (n + 1) + i, j * (n + 1) + i + 1, (j + 1) * (n + 1) + i + 1, (j + 1) * (n + 1) + i
            faces += [(a, b, c), (a, c, d)] if (i + j) % 2 else [(a, b, d), (b, c, d)]
    return pts.astype(np.float32), np.array(faces, dtype=np.int32)


@pytest.mark.parametrize("device", DEVICES)
def test_shared_edges_cover_each_pixel_exactly_once(device):
    width = height = 40
    cam = _front_camera(width, height)
    # Corners on pixel centres so that many edges pass exactly through pixel centres.
    pts, faces = _grid_mesh(6, -15.5, 5.0)
    fan_centre = np.array([[0.5, 0.5, 0.0]], dtype=np.float32)
    ring = np.array([[18, 3], [10, 14], [-7, 17], [-15, 2], [-11, -12], [4, -17], [16, -9]], dtype=np.float32) + 0.5
    ring_pts = np.concatenate([ring, np.zeros((len(ring), 1), np.float32)], axis=1)
    n = len(ring)
    fan_faces = np.array([(0, 1 + k, 1 + (k + 1) % n) for k in range(n)], dtype=np.int32)
    for mesh_pts, mesh_faces in [(pts, faces), (np.concatenate([fan_centre, ring_pts]), fan_faces)]:
        count = np.zeros((height, width), dtype=np.int32)
        for f in mesh_faces:
            tri = rasterize(mesh_pts, f[None], cam, width, height, device=device).tri_id.numpy()
            count += tri >= 0
        whole = rasterize(mesh_pts, mesh_faces, cam, width, height, device=device).tri_id.numpy()
        assert count.max() == 1, "a pixel centre was covered by two triangles sharing an edge"
        np.testing.assert_array_equal(count == 1, whole >= 0)
    # The grid spans pixel centres 4.5 .. 34.5 in both axes: all of them, and only them, are covered.
    grid = rasterize(pts, faces, cam, width, height, device=device).tri_id.numpy() >= 0
    assert grid[4:35, 4:35].sum() >= 30 * 30 and grid.sum() <= 31 * 31


@pytest.mark.parametrize("device", DEVICES)
def test_nearest_surface_wins_regardless_of_order(device):
    cam = _front_camera(16, 16)
    quad = np.array([[-4, -4, 0], [4, -4, 0], [4, 4, 0], [-4, 4, 0]], dtype=np.float32)
    pts = np.concatenate([quad + [0, 0, -0.5], quad + [1, 1, -0.2]]).astype(np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]], dtype=np.int32)
    for order in (faces, faces[::-1].copy()):
        tri, _, depth = rasterize(pts, order, cam, 16, 16, device=device).numpy()
        ids = order[tri[tri >= 0]]
        near = np.isclose(depth[tri >= 0], 1.2, rtol=1e-5)
        assert near.any() and np.all(ids[near].min(axis=1) >= 4) and np.all(ids[~near].max(axis=1) <= 3)


@pytest.mark.parametrize("device", DEVICES)
def test_edge_cases_do_not_crash_or_produce_nan(device):
    cam = _front_camera(32, 24)
    good = [[-5, -5, 0], [5, -5, 0], [0, 5, 0]]
    behind = [[-5, -5, 2], [5, -5, 2], [0, 5, 2]]          # the camera is at z = 1
    crossing = [[-5, -5, 0.5], [5, -5, 1.5], [0, 5, 0.9]]  # straddles the camera plane
    on_plane = [[-5, -5, 1.0], [5, -5, 1.0], [0, 5, 1.0]]  # depth exactly 0
    degenerate = [[-5, -5, 0], [0, 0, 0], [5, 5, 0]]       # collinear
    pts = np.array(good + behind + crossing + on_plane + degenerate + [[1e30, 0, 0], [np.nan, 0, 0]],
                   dtype=np.float32)
    faces = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [12, 13, 14], [0, 1, 1], [0, 15, 16]],
                     dtype=np.int32)
    tri, bary, depth = rasterize(pts, faces, cam, 32, 24, device=device).numpy()
    assert set(np.unique(tri)) == {-1, 0}
    assert np.isfinite(bary).all() and not np.isnan(depth).any()
    np.testing.assert_allclose(depth[tri == 0], 1.0, rtol=1e-6)
    # Alone, the unusable triangles draw nothing.
    tri_bad = rasterize(pts, faces[1:], cam, 32, 24, device=device).tri_id.numpy()
    assert np.all(tri_bad == -1)


@pytest.mark.parametrize("device", DEVICES)
def test_empty_inputs_and_tiny_images(device):
    cam = _front_camera(8, 8)
    pts = np.array([[-3, -3, 0], [3, -3, 0], [0, 3, 0]], dtype=np.float32)
    faces = np.array([[0, 1, 2]], dtype=np.int32)
    empty_mesh = rasterize(np.zeros((0, 3)), np.zeros((0, 3), np.int32), cam, 8, 8, device=device)
    assert np.all(empty_mesh.tri_id.numpy() == -1) and np.all(np.isinf(empty_mesh.depth.numpy()))
    zero = rasterize(pts, faces, cam, 0, 0, device=device)
    assert zero.tri_id.shape == (0, 0) and zero.numpy()[1].shape == (0, 0, 3)
    one = Camera(1.0, 1.0, 0.5, 0.5, 1, 1, cam.cam_to_world)
    tri, bary, depth = rasterize(pts, faces, one, 1, 1, device=device).numpy()
    assert tri[0, 0] == 0 and np.isclose(depth[0, 0], 1.0) and np.isclose(bary.sum(), 1.0)
    with pytest.raises(InputError):
        rasterize(pts, faces, cam, -1, 8, device=device)
    with pytest.raises(InputError):
        rasterize(pts, np.array([[0, 1, 3]]), cam, 8, 8, device=device)
    with pytest.raises(InputError):
        rasterize(pts[:, :2], faces, cam, 8, 8, device=device)


def test_threaded_launch_is_bit_identical_to_single_thread():
    rng = np.random.default_rng(11)
    pts, faces = triangle_soup(rng, count=400)
    cam = random_camera(rng, 96, 160)
    ref = rasterize(pts, faces, cam, 96, 160, device="cpu", threads=1).numpy()
    for threads in (2, 3, 7):
        out = rasterize(pts, faces, cam, 96, 160, device="cpu", threads=threads).numpy()
        for a, b in zip(ref, out):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_reused_buffers_give_fresh_results(device):
    rng = np.random.default_rng(5)
    pts, faces = noisy_sphere(rng, subdivisions=2)
    pts_wp = wp.array(pts, dtype=wp.vec3, device=device)
    faces_wp = wp.array(faces, dtype=wp.int32, device=device)
    cams = [random_camera(rng, 48, 40) for _ in range(3)]
    out = None
    for cam in cams:
        out = rasterize(pts_wp, faces_wp, cam, 48, 40, device=device, out=out)
        fresh = rasterize(pts, faces, cam, 48, 40, device=device)
        for a, b in zip(out.numpy(), fresh.numpy()):
            np.testing.assert_array_equal(a, b)


def test_launcher_chunks_devices_and_errors():
    from lift3d.kernels.launch import chunk_bounds, default_device, run_chunks

    for total, chunks in [(10, 3), (5, 8), (1, 4), (1000, 7)]:
        pieces = chunk_bounds(total, chunks)
        assert sum(c for _, c in pieces) == total and len(pieces) == min(total, chunks)
        assert all(a + c == b for (a, c), (b, _) in zip(pieces, pieces[1:]))
    assert default_device("cpu").is_cpu
    assert default_device("auto").is_cuda == (wp.get_cuda_device_count() > 0)
    if wp.get_cuda_device_count() == 0:
        with pytest.raises(InputError):
            default_device("cuda")
    seen = []

    def body(start, count):
        seen.append((start, count))
        if start > 0:
            raise RuntimeError("chunk failed")

    with pytest.raises(RuntimeError):
        run_chunks(100, body, threads=4)
    assert sorted(seen) == chunk_bounds(100, 4)


@pytest.mark.parametrize("device", DEVICES)
def test_parallel_launch_gives_private_accumulators_to_each_chunk(device):
    from kernel_fixtures import scatter_count
    from lift3d.kernels.launch import parallel_launch

    values = np.arange(100_000, dtype=np.float32)
    expected = np.bincount(values.astype(np.int64) % 4, minlength=4).astype(np.float32)
    for threads in (1, 2, 4):
        vals = wp.array(values, dtype=wp.float32, device=device)
        bins = wp.full(4, 10.0, dtype=wp.float32, device=device)  # accumulates on top of existing contents
        doubled = wp.zeros(len(values), dtype=wp.float32, device=device)
        parallel_launch(scatter_count, len(values), [vals, bins, doubled], device, threads, private=(1,))
        np.testing.assert_array_equal(bins.numpy(), expected + 10.0)
        np.testing.assert_array_equal(doubled.numpy(), 2.0 * values)


def test_kernels_compile_for_cuda(tmp_path):
    import lift3d.kernels.raster as module
    from kernel_fixtures import compile_for_cuda

    compile_for_cuda(module, tmp_path)
