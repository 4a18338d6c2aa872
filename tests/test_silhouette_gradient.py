"""tools/silhouette_gradient.py: its DIB-R reference is exact where it is restricted, and the comparison is sound."""

from __future__ import annotations

import math

import numpy as np
import torch

import bench_kernels
import silhouette_gradient as sg
from lift3d.camera import orbit_camera


def _scene(size: int = 48):
    points, faces = bench_kernels.icosphere(1, noise=0.05)
    return points, faces, orbit_camera(0.3, 0.2, 3.0, 0.8, size, size)


def test_band_and_face_culling_give_the_full_dibr_gradient():
    points, faces, camera = _scene()
    weights = np.random.default_rng(0).uniform(-1.0, 1.0, (camera.height, camera.width)).astype(np.float32)
    _, extrapolated, full = bench_kernels.torch_soft_silhouette_grad(
        torch.from_numpy(points), torch.from_numpy(faces.astype(np.int64)), camera, sg.SIGMA,
        torch.from_numpy(weights), 1 << 18)
    assert not extrapolated
    restricted = sg.reference_grad(points, faces, camera, weights)
    assert np.abs(full.numpy()).max() > 1e-3
    assert np.allclose(restricted, full.numpy(), rtol=1e-4, atol=1e-5 * np.abs(full.numpy()).max())


def test_ours_agrees_with_dibr_on_smooth_weights_and_reaches_fewer_vertices():
    points, faces, camera = _scene(64)
    weights = sg.weight_fields(64)["smooth"]
    ours = sg.ours_grad(points, faces, camera, weights)
    ref = sg.reference_grad(points, faces, camera, weights)
    assert sg.cosine(ours, ref) > 0.9
    assert sg.cosine(ours, -ref) < -0.9  # the cosine is signed: a sign error would show
    reached = lambda g: int((np.abs(g).sum(1) > 0).sum())  # noqa: E731
    assert 0 < reached(ours) <= reached(ref)


def test_fit_with_either_gradient_improves_on_the_start():
    from lift3d.templates.vehicles import sample_vehicle

    vehicle = sample_vehicle(np.random.default_rng(7), "van")
    for gradient in ("ours", "dibr"):
        result = sg.fit_vehicle(vehicle, 96, gradient, [32], [4])
        assert result["input_iou"] > result["start"]["input_iou"], gradient
        assert math.isfinite(result["vertex_error"]) and result["s_per_step"] > 0
