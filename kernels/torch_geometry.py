"""torch glue for the geometry kernels: autograd Functions, Laplacians, large-steps parametrization.

Tensors cross into Warp without copies (``wp.from_torch`` / ``wp.to_torch``), and on
CUDA the kernels run on torch's current stream:
``points`` is a ``(V, 3)`` float32 tensor (world metres) on the CPU or a CUDA
device, ``faces`` an ``(F, 3)`` integer tensor or array. Every backward is the
hand-written adjoint of :mod:`lift3d.kernels.soft_silhouette` or
:mod:`lift3d.kernels.mesh_ops`; nothing here is traced by ``wp.Tape``.

Large steps: Nicolet, Jacobson and Jakob 2021, "Large Steps in Inverse
Rendering of Geometry". The optimizer works on ``u = (I + lambda L) x`` and
maps back with ``x = (I + lambda L)^{-1} u``; a gradient step in ``u`` is then a
smoothed (Sobolev-preconditioned) step in ``x``, so the mesh stays regular
under large learning rates. The solve uses a sparse LU factorization
(``scipy.sparse.linalg.splu``) computed once; as ``I + lambda L`` is symmetric,
the adjoint of the solve is the same solve.
"""

from __future__ import annotations

import contextlib

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
import warp as wp

from lift3d.errors import InputError
from lift3d.kernels.mesh_ops import (
    MeshTopology,
    cached_topology,
    edge_lengths_backward,
    laplacian_matrix,
    vertex_normals_backward,
)
from lift3d.kernels.mesh_ops import edge_lengths as _edge_lengths
from lift3d.kernels.mesh_ops import vertex_normals as _vertex_normals
from lift3d.kernels.soft_silhouette import SoftSilhouetteContext, soft_silhouette, soft_silhouette_backward


def _points_to_warp(points: torch.Tensor) -> wp.array:
    if points.dim() != 2 or points.shape[1] != 3:
        raise InputError(f"points must be a (V, 3) tensor, got shape {tuple(points.shape)}.")
    return wp.from_torch(points.detach().to(torch.float32).contiguous(), dtype=wp.vec3)


def _on_torch_stream(tensor: torch.Tensor):
    """Run Warp launches on torch's current CUDA stream for ``tensor``'s device (nothing to do on the CPU)."""
    if tensor.is_cuda:
        return wp.ScopedStream(wp.stream_from_torch(tensor.device))
    return contextlib.nullcontext()


def _topology(faces, num_vertices: int) -> MeshTopology:
    return faces if isinstance(faces, MeshTopology) else cached_topology(faces, num_vertices)


class SoftSilhouette(torch.autograd.Function):
    """``SoftSilhouette.apply(points, faces, camera, width, height, sigma[, threads]) -> (H, W)`` float32.

    ``faces`` may also be a :class:`MeshTopology`. Gradients flow to ``points`` only.
    """

    @staticmethod
    def forward(ctx, points: torch.Tensor, faces, camera, width: int, height: int, sigma: float,
                threads: int | None = None) -> torch.Tensor:
        pts = _points_to_warp(points)
        topology = _topology(faces, points.shape[0])
        state = SoftSilhouetteContext()
        with _on_torch_stream(points):
            image = soft_silhouette(pts, None, camera, width, height, sigma, topology=topology, context=state,
                                    device=pts.device, threads=threads)
        ctx.state = state
        ctx.dtype = points.dtype
        return wp.to_torch(image)

    @staticmethod
    def backward(ctx, grad_image: torch.Tensor):
        grad = wp.from_torch(grad_image.detach().to(torch.float32).contiguous())
        with _on_torch_stream(grad_image):
            grad_points = wp.to_torch(soft_silhouette_backward(ctx.state, grad)).to(ctx.dtype)
        return grad_points, None, None, None, None, None, None


class _VertexNormals(torch.autograd.Function):
    @staticmethod
    def forward(ctx, points: torch.Tensor, topology: MeshTopology) -> torch.Tensor:
        ctx.topology = topology
        ctx.save_for_backward(points)
        with _on_torch_stream(points):
            return wp.to_torch(_vertex_normals(_points_to_warp(points), topology))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (points,) = ctx.saved_tensors
        g = wp.from_torch(grad.detach().to(torch.float32).contiguous(), dtype=wp.vec3)
        with _on_torch_stream(points):
            grad_points = wp.to_torch(vertex_normals_backward(_points_to_warp(points), ctx.topology, g))
        return grad_points.to(points.dtype), None


class _EdgeLengths(torch.autograd.Function):
    @staticmethod
    def forward(ctx, points: torch.Tensor, topology: MeshTopology) -> torch.Tensor:
        ctx.topology = topology
        ctx.save_for_backward(points)
        with _on_torch_stream(points):
            return wp.to_torch(_edge_lengths(_points_to_warp(points), topology))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (points,) = ctx.saved_tensors
        g = wp.from_torch(grad.detach().to(torch.float32).contiguous())
        with _on_torch_stream(points):
            grad_points = wp.to_torch(edge_lengths_backward(_points_to_warp(points), ctx.topology, g))
        return grad_points.to(points.dtype), None


def vertex_normals(points: torch.Tensor, faces) -> torch.Tensor:
    """Area-weighted unit vertex normals ``(V, 3)``, differentiable w.r.t. ``points`` ``(V, 3)``."""
    return _VertexNormals.apply(points, _topology(faces, points.shape[0]))


def edge_lengths(points: torch.Tensor, faces) -> torch.Tensor:
    """Lengths ``(E,)`` of the unique edges (order of :attr:`MeshTopology.edges`), differentiable."""
    return _EdgeLengths.apply(points, _topology(faces, points.shape[0]))


def laplacian(points: torch.Tensor, faces, kind: str = "uniform") -> torch.Tensor:
    """``(V, V)`` float32 sparse COO Laplacian on ``points.device`` (see :func:`mesh_ops.laplacian_matrix`).

    The cotangent weights are taken from ``points`` as they are now; the matrix
    is a constant (no gradient flows into the weights).
    """
    topology = _topology(faces, points.shape[0])
    pts = points.detach().cpu().double().numpy() if kind == "cotangent" else None
    coo = laplacian_matrix(topology, kind, pts).tocoo()
    index = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(coo.data.astype(np.float32)), coo.shape,
                                   device=points.device, check_invariants=False).coalesce()


def laplacian_energy(points: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """``sum_i |(L x)_i|^2`` (units of ``L``^2 x metres^2) for ``points`` ``(V, 3)`` and a sparse ``L`` ``(V, V)``."""
    return (torch.sparse.mm(L, points) ** 2).sum()


def normal_consistency(points: torch.Tensor, faces) -> torch.Tensor:
    """Mean over edges with exactly two faces of ``1 - n_f . n_g`` (unit face normals); 0 for a flat mesh."""
    topology = _topology(faces, points.shape[0])
    pairs = torch.from_numpy(topology.interior_edge_faces().astype(np.int64)).to(points.device)
    if pairs.numel() == 0:
        return points.sum() * 0.0
    f = torch.from_numpy(topology.faces.astype(np.int64)).to(points.device)
    p0, p1, p2 = points[f[:, 0]], points[f[:, 1]], points[f[:, 2]]
    n = torch.nn.functional.normalize(torch.linalg.cross(p1 - p0, p2 - p0), dim=1, eps=1e-12)
    return (1.0 - (n[pairs[:, 0]] * n[pairs[:, 1]]).sum(dim=1)).mean()


class _Solve(torch.autograd.Function):
    """``x = M^{-1} u`` with a prefactorized symmetric ``M``; the adjoint is the same solve."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, param: "LargeStepsParam") -> torch.Tensor:
        ctx.param = param
        return param._solve(u)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.param._solve(grad), None


class LargeStepsParam:
    """Large-steps parametrization ``u = (I + lam L) x`` (Nicolet et al. 2021).

    Args:
        faces: ``(F, 3)`` faces (or a :class:`MeshTopology`).
        num_vertices: ``V``.
        lam: smoothing weight ``lambda`` (> 0; the paper uses 10 to 100 for meshes of a few thousand vertices).
        kind: Laplacian kind, ``"uniform"`` (as in the paper) or ``"cotangent"``.
        points: ``(V, 3)`` positions, needed for the cotangent kind.

    Usage::

        param = LargeStepsParam(faces, len(x0), lam=20.0)
        u = param.to_params(x0).requires_grad_()
        opt = torch.optim.Adam([u], lr=1e-2)
        x = param.to_points(u)      # differentiable; call once per step
    """

    def __init__(self, faces, num_vertices: int, lam: float = 10.0, kind: str = "uniform",
                 points: np.ndarray | None = None) -> None:
        if not (lam > 0.0 and np.isfinite(lam)):
            raise InputError(f"the large-steps weight lambda must be positive, got {lam}.")
        topology = _topology(faces, num_vertices)
        L = laplacian_matrix(topology, kind, points)
        self.matrix = (sp.identity(num_vertices, format="csc") + lam * L).tocsc()
        self._factor = spla.splu(self.matrix, permc_spec="MMD_AT_PLUS_A") if num_vertices > 0 else None

    def to_params(self, points: torch.Tensor) -> torch.Tensor:
        """``u = (I + lam L) x`` ``(V, 3)``, detached, same dtype and device as ``points``."""
        u = self.matrix @ points.detach().cpu().double().numpy()
        return torch.from_numpy(np.asarray(u)).to(dtype=points.dtype, device=points.device)

    def to_points(self, u: torch.Tensor) -> torch.Tensor:
        """``x = (I + lam L)^{-1} u`` ``(V, 3)``, differentiable w.r.t. ``u``."""
        return _Solve.apply(u, self)

    def _solve(self, rhs: torch.Tensor) -> torch.Tensor:
        if self._factor is None:
            return rhs.clone()
        x = self._factor.solve(np.ascontiguousarray(rhs.detach().cpu().double().numpy()))
        return torch.from_numpy(x).to(dtype=rhs.dtype, device=rhs.device)
