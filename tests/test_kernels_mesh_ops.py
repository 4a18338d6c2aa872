"""Mesh operators and their torch glue: topology, normals, edge lengths, Laplacians, large steps."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import warp as wp

from lift3d.errors import InputError
from lift3d.kernels.mesh_ops import (
    MeshTopology,
    edge_lengths,
    edge_lengths_backward,
    laplacian_matrix,
    vertex_normals,
    vertex_normals_backward,
)
from lift3d.kernels.torch_geometry import (
    LargeStepsParam,
    laplacian,
    laplacian_energy,
    normal_consistency,
)
from lift3d.kernels import torch_geometry as tg

from kernel_fixtures import central_differences, icosphere


def bumpy_sphere(level: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    v, f = icosphere(level)
    rng = np.random.default_rng(seed)
    return (v * (1.0 + 0.1 * rng.standard_normal((len(v), 1)))).astype(np.float32), f


def grid(n: int, jitter: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n x n vertices on the z = 0 plane (spacing 1 / (n - 1)), two triangles per cell."""
    ys, xs = np.mgrid[0:n, 0:n] / (n - 1)
    v = np.stack([xs.ravel(), ys.ravel(), np.zeros(n * n)], axis=1)
    if jitter:
        interior = ((xs > 0) & (xs < 1) & (ys > 0) & (ys < 1)).ravel()
        v[interior, :2] += np.random.default_rng(seed).uniform(-jitter, jitter, (interior.sum(), 2)) / (n - 1)
    faces = []
    for j in range(n - 1):
        for i in range(n - 1):
            a, b, c, d = j * n + i, j * n + i + 1, (j + 1) * n + i, (j + 1) * n + i + 1
            faces += [(a, b, d), (a, d, c)]
    return v.astype(np.float32), np.array(faces, dtype=np.int32)


def assert_gradient_close(grad: np.ndarray, fd: np.ndarray, rel: float) -> None:
    assert np.abs(fd).max() > 1e-3
    assert np.linalg.norm(grad - fd) <= rel * np.linalg.norm(fd), np.linalg.norm(grad - fd) / np.linalg.norm(fd)


def test_topology_of_a_closed_mesh():
    v, f = icosphere(2)
    t = MeshTopology(f, len(v))
    assert t.num_edges == 3 * len(f) // 2 and np.all(np.diff(t.edge_face_offsets) == 2)
    assert np.all(t.edges[:, 0] < t.edges[:, 1])
    for fi in (0, 17, len(f) - 1):  # face_edges points at the right sides
        for k in range(3):
            assert set(t.edges[t.face_edges[fi, k]]) == {f[fi, k], f[fi, (k + 1) % 3]}
    # vertex -> edge-end and vertex -> face-corner tables decode back to the vertex
    codes = t.vertex_edges[t.vertex_edge_offsets[5]:t.vertex_edge_offsets[6]]
    assert np.all(t.edges.reshape(-1)[codes] == 5) and len(codes) in (5, 6)
    corners = t.vertex_faces[t.vertex_face_offsets[5]:t.vertex_face_offsets[6]]
    assert np.all(f.reshape(-1)[corners] == 5)
    assert t.closed_oriented
    assert not MeshTopology(f[:-1], len(v)).closed_oriented  # a hole
    assert not MeshTopology(np.vstack([f[:1, ::-1], f[1:]]), len(v)).closed_oriented  # one face flipped
    with pytest.raises(InputError):
        MeshTopology(f, 10)
    with pytest.raises(InputError):
        MeshTopology(np.zeros((3, 4), np.int32), 10)


def test_vertex_normals_of_a_sphere_are_radial_and_isolated_vertices_zero():
    v, f = icosphere(2)
    v = np.vstack([v, [[5.0, 5.0, 5.0]]]).astype(np.float32)
    n = vertex_normals(wp.array(v, dtype=wp.vec3), MeshTopology(f, len(v))).numpy()
    radial = v[:-1] / np.linalg.norm(v[:-1], axis=1, keepdims=True)
    assert np.all(np.einsum("ij,ij->i", n[:-1], radial) > 0.999)
    assert np.all(n[-1] == 0.0)


def test_vertex_normals_backward_matches_finite_differences():
    v, f = bumpy_sphere(1)
    t = MeshTopology(f, len(v))
    w = np.random.default_rng(1).standard_normal((len(v), 3))

    def loss(x):
        return float(np.sum(vertex_normals(wp.array(x, dtype=wp.vec3), t).numpy() * w))

    grad = vertex_normals_backward(wp.array(v, dtype=wp.vec3), t, wp.array(w.astype(np.float32), dtype=wp.vec3))
    assert_gradient_close(grad.numpy(), central_differences(loss, v, 1e-3), 1e-2)


def test_edge_lengths_and_backward():
    v, f = bumpy_sphere(1, seed=3)
    t = MeshTopology(f, len(v))
    lengths = edge_lengths(wp.array(v, dtype=wp.vec3), t).numpy()
    np.testing.assert_allclose(lengths, np.linalg.norm(v[t.edges[:, 0]] - v[t.edges[:, 1]], axis=1), rtol=1e-6)
    w = np.random.default_rng(2).standard_normal(t.num_edges)

    def loss(x):
        return float(np.sum(edge_lengths(wp.array(x, dtype=wp.vec3), t).numpy() * w))

    grad = edge_lengths_backward(wp.array(v, dtype=wp.vec3), t, wp.array(w.astype(np.float32)))
    assert_gradient_close(grad.numpy(), central_differences(loss, v, 1e-3), 1e-2)


def test_zero_length_edge_and_degenerate_face_give_finite_values():
    v = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0]], dtype=np.float32)
    t = MeshTopology(np.array([[0, 1, 2]]), 3)
    pts = wp.array(v, dtype=wp.vec3)
    ones_v = wp.array(np.ones((3, 3), np.float32), dtype=wp.vec3)
    for out in (vertex_normals(pts, t), vertex_normals_backward(pts, t, ones_v), edge_lengths(pts, t),
                edge_lengths_backward(pts, t, wp.array(np.ones(t.num_edges, np.float32)))):
        assert np.all(np.isfinite(out.numpy()))
    assert np.all(vertex_normals(pts, t).numpy() == 0.0)


def test_laplacians_are_symmetric_and_annihilate_constants():
    v, f = bumpy_sphere(2)
    t = MeshTopology(f, len(v))
    for kind in ("uniform", "cotangent"):
        L = laplacian_matrix(t, kind, v)
        assert abs(L - L.T).max() < 1e-12
        np.testing.assert_allclose(L @ np.ones(len(v)), 0.0, atol=1e-9)
        assert np.linalg.eigvalsh(L.toarray()).min() > -1e-9  # positive semi-definite
    U = laplacian_matrix(t, "uniform")
    np.testing.assert_array_equal(U.diagonal(), np.bincount(t.edges.ravel(), minlength=len(v)))


def test_cotangent_laplacian_of_a_flat_grid_annihilates_linear_functions():
    n = 7
    v, f = grid(n, jitter=0.25, seed=4)
    L = laplacian_matrix(MeshTopology(f, len(v)), "cotangent", v)
    xs, ys = v[:, 0].astype(np.float64), v[:, 1].astype(np.float64)
    interior = np.array([0 < i % n < n - 1 and 0 < i // n < n - 1 for i in range(n * n)])
    for lin in (xs, ys, 2.0 * xs - 3.0 * ys + 1.0):
        np.testing.assert_allclose((L @ lin)[interior], 0.0, atol=1e-5)
    assert np.abs((L @ (xs ** 2))[interior]).min() > 1e-3  # but not quadratics
    # regular right-triangle grid: cot 90 = 0, cot 45 = 1 -> the 4-neighbour stencil
    v0, f0 = grid(4)
    L0 = laplacian_matrix(MeshTopology(f0, len(v0)), "cotangent", v0).toarray()
    assert L0[5, 5] == pytest.approx(4.0) and L0[5, 6] == pytest.approx(-1.0) and L0[5, 10] == pytest.approx(0.0)


def test_cotangent_weights_are_clamped_for_needles():
    v = np.array([[0, 0, 0], [1, 0, 0], [0.5, 1e-9, 0], [0.5, -1, 0]], dtype=np.float64)
    L = laplacian_matrix(MeshTopology(np.array([[0, 1, 2], [0, 3, 1]]), 4), "cotangent", v)
    assert np.all(np.isfinite(L.data)) and np.abs(L.data).max() <= 2e3


def test_torch_wrappers_match_finite_differences():
    v, f = bumpy_sphere(1, seed=5)
    x = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    t = MeshTopology(f, len(v))
    w_n = torch.randn(len(v), 3, dtype=torch.float64)
    w_e = torch.randn(t.num_edges, dtype=torch.float64)
    L = laplacian(x, f, "uniform").double()

    def total(p):
        return ((tg.vertex_normals(p, f) * w_n).sum() + (tg.edge_lengths(p, t) * w_e).sum()
                + 0.1 * laplacian_energy(p, L) + normal_consistency(p, f))

    total(x).backward()
    fd = central_differences(lambda a: float(total(torch.tensor(a, dtype=torch.float64))), v.astype(np.float64), 1e-3)
    assert_gradient_close(x.grad.numpy(), fd, 1e-2)


def test_normal_consistency_is_zero_when_flat_and_positive_when_folded():
    v, f = grid(4)
    x = torch.tensor(v)
    assert float(normal_consistency(x, f)) == pytest.approx(0.0, abs=1e-7)
    x[5, 2] = 0.3
    assert float(normal_consistency(x, f)) > 1e-3


def test_torch_laplacian_matches_scipy():
    v, f = bumpy_sphere(1)
    x = torch.tensor(v)
    for kind in ("uniform", "cotangent"):
        L = laplacian(x, f, kind)
        assert L.is_sparse and L.shape == (len(v), len(v)) and L.dtype == torch.float32
        ref = laplacian_matrix(MeshTopology(f, len(v)), kind, v)
        np.testing.assert_allclose(L.to_dense().numpy(), ref.toarray(), atol=1e-5)


def test_large_steps_round_trip_and_adjoint():
    v, f = bumpy_sphere(1, seed=6)
    param = LargeStepsParam(f, len(v), lam=5.0)
    x0 = torch.tensor(v, dtype=torch.float64)
    u = param.to_params(x0).requires_grad_()
    x = param.to_points(u)
    np.testing.assert_allclose(x.detach().numpy(), v, atol=1e-5)
    w = torch.randn(len(v), 3, dtype=torch.float64)
    (x * w).sum().backward()
    u0 = u.detach().numpy()
    fd = central_differences(lambda a: float((param.to_points(torch.tensor(a)) * w).sum()), u0, 1e-4)
    assert_gradient_close(u.grad.numpy(), fd, 1e-5)
    # the solve smooths: a spike in u spreads over the neighbours of its vertex in x
    spike = torch.zeros(len(v), 3, dtype=torch.float64)
    spike[0, 1] = 1.0
    response = param.to_points(spike)[:, 1].numpy()
    assert response[0] < 1.0 and np.count_nonzero(np.abs(response) > 1e-3) > 6
    with pytest.raises(InputError):
        LargeStepsParam(f, len(v), lam=0.0)
    assert isinstance(param.matrix, sp.csc_matrix)


def test_threaded_launches_match_one_thread():
    v, f = bumpy_sphere(5, seed=7)  # > 4096 vertices, so launches are split
    t = MeshTopology(f, len(v))
    pts = wp.array(v, dtype=wp.vec3)
    g = wp.array(np.random.default_rng(0).standard_normal((len(v), 3)).astype(np.float32), dtype=wp.vec3)
    results = [(vertex_normals(pts, t, threads=n).numpy(), vertex_normals_backward(pts, t, g, threads=n).numpy(),
                 edge_lengths(pts, t, threads=n).numpy()) for n in (1, 2)]
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
