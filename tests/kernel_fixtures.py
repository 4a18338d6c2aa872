"""Shared test data for the Warp kernel tests: random meshes, cameras and a reference ray caster."""

from __future__ import annotations

import numpy as np
import warp as wp

from lift3d.camera import Camera, look_at, orbit_camera
import make_templates

wp.set_module_options({"enable_backward": False})


def devices() -> list[str]:
    """Warp devices to test on: the CPU, plus CUDA when present."""
    wp.init()
    return ["cpu"] + (["cuda:0"] if wp.get_cuda_device_count() > 0 else [])


def icosphere(subdivisions: int = 2, radius: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Icosphere of ``radius``: (V, 3) float32 points, (F, 3) int32 counter-clockwise outward faces."""
    points, faces = make_templates.icosphere(subdivisions)
    return (points * radius).astype(np.float32), faces.astype(np.int32)


def noisy_sphere(rng: np.random.Generator, subdivisions: int = 3, noise: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """Icosphere with radial noise: a closed, star-shaped mesh with self-occlusion."""
    pts, faces = icosphere(subdivisions)
    pts = pts * (1.0 + noise * rng.standard_normal((len(pts), 1))).astype(np.float32)
    return pts.astype(np.float32), faces


def triangle_soup(rng: np.random.Generator, count: int = 200, size: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random, mutually intersecting triangles inside a 2 m cube."""
    centres = rng.uniform(-1.0, 1.0, (count, 1, 3))
    pts = (centres + rng.uniform(-size, size, (count, 3, 3))).reshape(-1, 3).astype(np.float32)
    return pts, np.arange(3 * count, dtype=np.int32).reshape(count, 3)


def random_camera(rng: np.random.Generator, width: int = 80, height: int = 64, distance=(3.0, 4.5)) -> Camera:
    """Camera on a random orbit looking near the origin, with an off-centre principal point."""
    cam = orbit_camera(rng.uniform(-np.pi, np.pi), rng.uniform(-1.2, 1.2), rng.uniform(*distance),
                       rng.uniform(0.6, 1.0), width, height)
    target = rng.uniform(-0.2, 0.2, 3)
    c2w = look_at(cam.position, target)
    return Camera(cam.fx, cam.fy * rng.uniform(0.9, 1.1), cam.cx + rng.uniform(-5, 5), cam.cy + rng.uniform(-5, 5),
                  width, height, c2w)


@wp.kernel
def _cast(mesh: wp.uint64, origin: wp.vec3, c2w_rot: wp.mat33, K: wp.vec4,
          tri: wp.array2d(dtype=wp.int32), depth: wp.array2d(dtype=wp.float32)):
    y, x = wp.tid()
    d = wp.vec3((float(x) + 0.5 - K[2]) / K[0], -(float(y) + 0.5 - K[3]) / K[1], -1.0)
    scale = wp.length(d)
    q = wp.mesh_query_ray(mesh, origin, c2w_rot * (d / scale), 1.0e6)
    if q.result:
        tri[y, x] = q.face
        depth[y, x] = q.t / scale
    else:
        tri[y, x] = -1
        depth[y, x] = wp.inf


def ray_cast(points: np.ndarray, faces: np.ndarray, camera: Camera,
             device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: nearest hit of the ray through each pixel centre with ``wp.Mesh``.

    Returns (H, W) int32 triangle ids (-1 = miss) and (H, W) float32 depth along the optical axis (metres).
    """
    mesh = wp.Mesh(points=wp.array(points, dtype=wp.vec3, device=device),
                   indices=wp.array(faces.reshape(-1), dtype=wp.int32, device=device))
    tri = wp.empty((camera.height, camera.width), dtype=wp.int32, device=device)
    depth = wp.empty((camera.height, camera.width), dtype=wp.float32, device=device)
    rot = wp.mat33(*camera.cam_to_world[:3, :3].astype(np.float32).reshape(-1).tolist())
    wp.launch(_cast, dim=(camera.height, camera.width),
              inputs=[mesh.id, wp.vec3(*camera.position.tolist()), rot, wp.vec4(*camera.intrinsics.tolist()),
                      tri, depth],
              device=device)
    return tri.numpy(), depth.numpy()


def interior_pixels(results, min_bary=0.08):
    """Pixels whose triangle is the same in every raster and whose screen barycentrics stay >= min_bary."""
    tri0 = results[0].tri_id.numpy()
    keep = tri0 >= 0
    for res in results:
        tri = res.tri_id.numpy()
        keep &= tri == tri0
        screen = res.screen.numpy()
        faces = res.faces.numpy()
        ys, xs = np.nonzero(tri >= 0)
        corners = screen[faces[tri[ys, xs]]][:, :, :2].astype(np.float64)
        p = np.stack([xs + 0.5, ys + 0.5], axis=1)
        m = np.stack([corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]], axis=2)
        lam = np.linalg.solve(m, (p - corners[:, 0])[..., None])[..., 0]
        b = np.concatenate([1.0 - lam.sum(1, keepdims=True), lam], axis=1)
        ok = np.zeros_like(keep)
        ok[ys, xs] = b.min(axis=1) >= min_bary
        keep &= ok
    return keep


@wp.kernel
def scatter_count(start: int, values: wp.array(dtype=wp.float32), bins: wp.array(dtype=wp.float32),
                  doubled: wp.array(dtype=wp.float32)):
    """Launcher test kernel: histogram of values into 4 bins with atomic adds, plus a gather-style output."""
    i = start + wp.tid()
    wp.atomic_add(bins, int(values[i]) % 4, 1.0)
    doubled[i] = 2.0 * values[i]


def compile_for_cuda(module, folder) -> None:
    """Compile a kernel module to PTX with NVRTC (no GPU needed); skip the test when NVRTC is missing."""
    import pytest

    wp.init()
    archs = wp.get_cuda_supported_archs()
    if not archs:
        pytest.skip("NVRTC is not available to compile CUDA kernels")
    paths = wp.compile_aot_module(module, arch=archs[0], module_dir=str(folder), use_ptx=True)
    assert paths and all(p.stat().st_size > 0 for p in paths)


def central_differences(fn, x: np.ndarray, h: float) -> np.ndarray:
    """Central-difference gradient (float64, shape of ``x``) of the scalar ``fn`` at ``x``, step ``h`` per entry."""
    out = np.zeros_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        out[idx] = (fn(xp) - fn(xm)) / (2 * h)
    return out
