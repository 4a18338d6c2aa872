"""Mesh operators: topology tables, area-weighted vertex normals, edge lengths, Laplacians.

Every quantity lives in the mesh's own frame and units (world metres for the
reconstructor's template): ``points`` is ``(V, 3)`` float32, ``faces`` is
``(F, 3)`` int32 vertex indices in counter-clockwise order (seen from the
outside, so ``cross(p1 - p0, p2 - p0)`` points out).

Gradients are hand written and *gathered*, never scattered: each backward
kernel writes per-face or per-edge partial derivatives into private slots and
a per-vertex kernel sums the slots of its incident faces / edges through the
CSR tables of :class:`MeshTopology`. No atomics are needed, so the kernels are
deterministic and can be split over CPU threads (Warp's CPU atomics are plain
read-modify-writes).

* Vertex normals (area weighted): ``m_v = sum_{f ∋ v} cross(p1 - p0, p2 - p0)``
  (twice the area times the unit face normal), ``n_v = m_v / |m_v|``; a vertex
  whose ``|m_v|`` is below ``NORMAL_EPS`` gets the zero vector (and zero gradient).
* Edge lengths ``l_e = |p_a - p_b|`` over the unique undirected edges of
  :attr:`MeshTopology.edges`; the gradient of a zero-length edge is zero.
* Laplacians as ``scipy.sparse`` matrices (:func:`laplacian_matrix`): the
  uniform graph Laplacian ``L = D - A`` (``A`` the 0/1 vertex adjacency) and
  the cotangent Laplacian ``L_ij = -1/2 (cot a_ij + cot b_ij)``, ``L_ii = -sum_j L_ij``
  (Pinkall & Polthier 1993; Meyer et al. 2003), each cotangent clamped to
  ``[-COT_CLAMP, COT_CLAMP]`` so needle triangles cannot produce infinite
  weights. Both are symmetric positive semi-definite (the cotangent one as
  long as no clamp is active) and annihilate constants; the cotangent one also
  annihilates functions linear on a flat interior neighbourhood.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp
import warp as wp

from lift3d.errors import InputError
from lift3d.kernels.launch import parallel_launch

NORMAL_EPS = 1.0e-20
"""Squared length below which an accumulated vertex normal counts as zero (m^4)."""

_MIN_ITEMS = 4096
"""Launches are split over CPU threads only in chunks of at least this many items."""

COT_CLAMP = 1.0e3
"""Bound on each cotangent of the cotangent Laplacian (an angle of about 0.06 degrees)."""


def _as_faces(faces, num_vertices: int) -> np.ndarray:
    if isinstance(faces, wp.array):
        arr = faces.numpy()
    elif hasattr(faces, "detach"):  # a torch tensor, possibly on a GPU
        arr = faces.detach().cpu().numpy()
    else:
        arr = np.asarray(faces)
    if arr.size == 0:
        return np.zeros((0, 3), dtype=np.int32)
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"faces must be an (F, 3) integer array, got shape {arr.shape} of {arr.dtype}.")
    if arr.min() < 0 or arr.max() >= num_vertices:
        raise InputError(f"faces reference vertices outside 0..{num_vertices - 1}.")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _csr(keys: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Group ``values`` by integer ``keys`` in ``[0, size)``: (offsets (size+1,), values sorted by key)."""
    order = np.argsort(keys, kind="stable")
    offsets = np.zeros(size + 1, dtype=np.int32)
    np.cumsum(np.bincount(keys, minlength=size), out=offsets[1:])
    return offsets, np.ascontiguousarray(values[order], dtype=np.int32)


class MeshTopology:
    """Connectivity tables of a triangle mesh, built once per face list (host numpy, int32).

    Attributes:
        num_vertices: ``V``.
        faces: ``(F, 3)`` vertex indices.
        edges: ``(E, 2)`` unique undirected edges, ``edges[e, 0] <= edges[e, 1]``.
        face_edges: ``(F, 3)`` edge id of the face side ``(k, k+1 mod 3)``.
        edge_face_offsets, edge_faces: CSR of the faces on each edge (1 on an open
            boundary, 2 on a manifold interior edge, more on a non-manifold one).
        vertex_edge_offsets, vertex_edges: CSR of each vertex's edge endpoints,
            coded ``2 * e + k`` where the vertex is ``edges[e, k]``.
        vertex_face_offsets, vertex_faces: CSR of each vertex's face corners,
            coded ``3 * f + k`` where the vertex is ``faces[f, k]``.
        closed_oriented: every edge has exactly two faces that run through it in
            opposite directions (a watertight, consistently oriented surface).
    """

    def __init__(self, faces, num_vertices: int) -> None:
        if num_vertices < 0:
            raise InputError("the vertex count must not be negative.")
        self.num_vertices = int(num_vertices)
        self.faces = _as_faces(faces, self.num_vertices)
        f = self.faces
        nf = len(f)
        a = f.reshape(-1)
        b = f[:, [1, 2, 0]].reshape(-1)
        lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
        keys, inverse = np.unique(lo * max(1, self.num_vertices) + hi, return_inverse=True)
        self.edges = np.stack([keys // max(1, self.num_vertices), keys % max(1, self.num_vertices)],
                              axis=1).astype(np.int32).reshape(-1, 2)
        self.face_edges = inverse.astype(np.int32).reshape(nf, 3)
        ne = len(self.edges)
        self.edge_face_offsets, self.edge_faces = _csr(inverse.reshape(-1), np.repeat(np.arange(nf), 3), ne)
        codes = np.arange(2 * ne, dtype=np.int64)
        self.vertex_edge_offsets, self.vertex_edges = _csr(self.edges.reshape(-1), codes, self.num_vertices)
        self.vertex_face_offsets, self.vertex_faces = _csr(f.reshape(-1), np.arange(3 * nf), self.num_vertices)
        directed = a.astype(np.int64) * max(1, self.num_vertices) + b
        reverse = b.astype(np.int64) * max(1, self.num_vertices) + a
        self.closed_oriented = bool(
            nf > 0 and np.all(np.diff(self.edge_face_offsets) == 2) and len(np.unique(directed)) == len(directed)
            and np.all(np.isin(reverse, directed)))
        self._device_cache: dict[str, dict[str, wp.array]] = {}

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    def interior_edge_faces(self) -> np.ndarray:
        """``(M, 2)`` face pairs across the edges that have exactly two faces."""
        counts = np.diff(self.edge_face_offsets)
        starts = self.edge_face_offsets[:-1][counts == 2]
        return np.stack([self.edge_faces[starts], self.edge_faces[starts + 1]], axis=1)

    def on(self, device) -> dict[str, wp.array]:
        """The tables as Warp arrays on ``device`` (cached): faces (F,3), edges (E,2), and the CSR pairs."""
        key = str(device)
        if key not in self._device_cache:
            def arr(x: np.ndarray) -> wp.array:
                return wp.array(np.ascontiguousarray(x, dtype=np.int32), dtype=wp.int32, device=device)

            self._device_cache[key] = {
                "faces": wp.array(self.faces.reshape(-1, 3), dtype=wp.int32, device=device),
                "edges": wp.array(self.edges.reshape(-1, 2), dtype=wp.int32, device=device),
                "edge_face_offsets": arr(self.edge_face_offsets),
                "edge_faces": arr(self.edge_faces),
                "vertex_edge_offsets": arr(self.vertex_edge_offsets),
                "vertex_edges": arr(self.vertex_edges),
                "vertex_face_offsets": arr(self.vertex_face_offsets),
                "vertex_faces": arr(self.vertex_faces),
            }
        return self._device_cache[key]


_topology_cache: dict[tuple[bytes, int], MeshTopology] = {}
_TOPOLOGY_CACHE_SIZE = 8


def cached_topology(faces, num_vertices: int) -> MeshTopology:
    """A :class:`MeshTopology` for ``faces``, reused while the same face list comes back (content-keyed, 8 kept)."""
    arr = _as_faces(faces, num_vertices)
    key = (hashlib.blake2b(arr.tobytes(), digest_size=16).digest() + bytes(str(arr.shape), "ascii"), num_vertices)
    topology = _topology_cache.get(key)
    if topology is None:
        topology = MeshTopology(arr, num_vertices)
        if len(_topology_cache) >= _TOPOLOGY_CACHE_SIZE:
            _topology_cache.pop(next(iter(_topology_cache)))
        _topology_cache[key] = topology
    return topology


# --------------------------------------------------------------------------- kernels


@wp.kernel
def _face_vectors(start: int, points: wp.array(dtype=wp.vec3), faces: wp.array2d(dtype=wp.int32),
                  out: wp.array(dtype=wp.vec3)):
    """(F,) ``cross(p1 - p0, p2 - p0)``: twice the face area times its unit normal (m^2)."""
    f = start + wp.tid()
    p0 = points[faces[f, 0]]
    out[f] = wp.cross(points[faces[f, 1]] - p0, points[faces[f, 2]] - p0)


@wp.func
def _vertex_sum(face_vec: wp.array(dtype=wp.vec3), offsets: wp.array(dtype=wp.int32),
                corners: wp.array(dtype=wp.int32), v: int) -> wp.vec3:
    m = wp.vec3(0.0)
    for k in range(offsets[v], offsets[v + 1]):
        m += face_vec[corners[k] // 3]
    return m


@wp.kernel
def _vertex_normals(start: int, face_vec: wp.array(dtype=wp.vec3), offsets: wp.array(dtype=wp.int32),
                    corners: wp.array(dtype=wp.int32), out: wp.array(dtype=wp.vec3)):
    v = start + wp.tid()
    m = _vertex_sum(face_vec, offsets, corners, v)
    n = wp.vec3(0.0)
    if wp.dot(m, m) > NORMAL_EPS:
        n = wp.normalize(m)
    out[v] = n


@wp.kernel
def _vertex_normals_grad_m(start: int, face_vec: wp.array(dtype=wp.vec3), offsets: wp.array(dtype=wp.int32),
                           corners: wp.array(dtype=wp.int32), grad_n: wp.array(dtype=wp.vec3),
                           out: wp.array(dtype=wp.vec3)):
    """d(loss)/d(m_v) = (g - n (n . g)) / |m_v| for n = m_v / |m_v|."""
    v = start + wp.tid()
    m = _vertex_sum(face_vec, offsets, corners, v)
    gm = wp.vec3(0.0)
    if wp.dot(m, m) > NORMAL_EPS:
        inv = 1.0 / wp.length(m)
        n = m * inv
        g = grad_n[v]
        gm = (g - n * wp.dot(n, g)) * inv
    out[v] = gm


@wp.kernel
def _vertex_normals_grad_p(start: int, points: wp.array(dtype=wp.vec3), faces: wp.array2d(dtype=wp.int32),
                           grad_m: wp.array(dtype=wp.vec3), offsets: wp.array(dtype=wp.int32),
                           corners: wp.array(dtype=wp.int32), out: wp.array(dtype=wp.vec3)):
    """Gather over each vertex's face corners of d(cross(e1, e2))/d(p_corner)^T g_f, g_f = sum of its vertices' grad_m."""
    v = start + wp.tid()
    acc = wp.vec3(0.0)
    for c in range(offsets[v], offsets[v + 1]):
        f = corners[c] // 3
        k = corners[c] - 3 * f
        i0 = faces[f, 0]
        i1 = faces[f, 1]
        i2 = faces[f, 2]
        g = grad_m[i0] + grad_m[i1] + grad_m[i2]
        e1 = points[i1] - points[i0]
        e2 = points[i2] - points[i0]
        # m = e1 x e2:  dL/de1 = e2 x g,  dL/de2 = g x e1,  p0 enters both with a minus sign
        g1 = wp.cross(e2, g)
        g2 = wp.cross(g, e1)
        if k == 0:
            acc -= g1 + g2
        elif k == 1:
            acc += g1
        else:
            acc += g2
    out[v] = acc


@wp.kernel
def _edge_lengths(start: int, points: wp.array(dtype=wp.vec3), edges: wp.array2d(dtype=wp.int32),
                  out: wp.array(dtype=wp.float32)):
    e = start + wp.tid()
    out[e] = wp.length(points[edges[e, 0]] - points[edges[e, 1]])


@wp.kernel
def _edge_lengths_grad(start: int, points: wp.array(dtype=wp.vec3), edges: wp.array2d(dtype=wp.int32),
                       grad_len: wp.array(dtype=wp.float32), offsets: wp.array(dtype=wp.int32),
                       ends: wp.array(dtype=wp.int32), out: wp.array(dtype=wp.vec3)):
    """Per vertex: sum over incident edges of g_e * (p_a - p_b) / l_e, with a minus sign at the ``b`` end."""
    v = start + wp.tid()
    acc = wp.vec3(0.0)
    for c in range(offsets[v], offsets[v + 1]):
        e = ends[c] // 2
        d = points[edges[e, 0]] - points[edges[e, 1]]
        length = wp.length(d)
        if length > 0.0:
            g = d * (grad_len[e] / length)
            if ends[c] - 2 * e == 0:
                acc += g
            else:
                acc -= g
    out[v] = acc


# --------------------------------------------------------------------------- Python API


def _check_points(points: wp.array, topology: MeshTopology) -> None:
    if points.dtype != wp.vec3 or points.ndim != 1 or points.shape[0] != topology.num_vertices:
        raise InputError(f"points must be a ({topology.num_vertices},) vec3 Warp array matching the topology.")


def _face_vector_array(points: wp.array, topology: MeshTopology, threads: int | None
                       ) -> tuple[wp.array, dict[str, wp.array]]:
    """Area vectors ``(F,)`` vec3 of ``points`` (after checking them) and the topology's arrays on their device."""
    _check_points(points, topology)
    t = topology.on(points.device)
    face_vec = wp.empty(topology.num_faces, dtype=wp.vec3, device=points.device)
    parallel_launch(_face_vectors, topology.num_faces, [points, t["faces"], face_vec], points.device, threads,
                    min_chunk=_MIN_ITEMS)
    return face_vec, t


def vertex_normals(points: wp.array, topology: MeshTopology, threads: int | None = None) -> wp.array:
    """Area-weighted unit vertex normals ``(V,)`` vec3 of ``points`` ``(V,)`` vec3 (see the module doc)."""
    face_vec, t = _face_vector_array(points, topology, threads)
    out = wp.zeros(topology.num_vertices, dtype=wp.vec3, device=points.device)
    parallel_launch(_vertex_normals, topology.num_vertices,
                    [face_vec, t["vertex_face_offsets"], t["vertex_faces"], out], points.device, threads,
                    min_chunk=_MIN_ITEMS)
    return out


def vertex_normals_backward(points: wp.array, topology: MeshTopology, grad_normals: wp.array,
                            threads: int | None = None) -> wp.array:
    """d(loss)/d(points) ``(V,)`` vec3 given d(loss)/d(normals) ``(V,)`` vec3 (face vectors recomputed, not stored)."""
    face_vec, t = _face_vector_array(points, topology, threads)
    device = points.device
    grad_m = wp.zeros(topology.num_vertices, dtype=wp.vec3, device=device)
    parallel_launch(_vertex_normals_grad_m, topology.num_vertices,
                    [face_vec, t["vertex_face_offsets"], t["vertex_faces"], grad_normals, grad_m], device, threads,
                    min_chunk=_MIN_ITEMS)
    out = wp.zeros(topology.num_vertices, dtype=wp.vec3, device=device)
    parallel_launch(_vertex_normals_grad_p, topology.num_vertices,
                    [points, t["faces"], grad_m, t["vertex_face_offsets"], t["vertex_faces"], out], device, threads,
                    min_chunk=_MIN_ITEMS)
    return out


def edge_lengths(points: wp.array, topology: MeshTopology, threads: int | None = None) -> wp.array:
    """Lengths ``(E,)`` float32 (mesh units) of the unique edges :attr:`MeshTopology.edges`."""
    _check_points(points, topology)
    device = points.device
    out = wp.zeros(topology.num_edges, dtype=wp.float32, device=device)
    parallel_launch(_edge_lengths, topology.num_edges, [points, topology.on(device)["edges"], out], device, threads,
                    min_chunk=_MIN_ITEMS)
    return out


def edge_lengths_backward(points: wp.array, topology: MeshTopology, grad_lengths: wp.array,
                          threads: int | None = None) -> wp.array:
    """d(loss)/d(points) ``(V,)`` vec3 given d(loss)/d(lengths) ``(E,)`` float32."""
    _check_points(points, topology)
    device = points.device
    t = topology.on(device)
    out = wp.zeros(topology.num_vertices, dtype=wp.vec3, device=device)
    parallel_launch(_edge_lengths_grad, topology.num_vertices,
                    [points, t["edges"], grad_lengths, t["vertex_edge_offsets"], t["vertex_edges"], out],
                    device, threads, min_chunk=_MIN_ITEMS)
    return out


def laplacian_matrix(topology: MeshTopology, kind: str = "uniform", points: np.ndarray | None = None) -> sp.csr_matrix:
    """``(V, V)`` float64 symmetric Laplacian ``L`` (``L @ x`` is zero for constant ``x``).

    Args:
        topology: the mesh connectivity.
        kind: ``"uniform"`` (``L = D - A``, unit weight per edge) or ``"cotangent"``
            (``w_ij = 1/2 (cot a + cot b)`` over the one or two faces on edge ``ij``,
            each cotangent clamped to ``[-COT_CLAMP, COT_CLAMP]``; needs ``points``).
        points: ``(V, 3)`` vertex positions, only for the cotangent kind.
    """
    n = topology.num_vertices
    if kind == "uniform":
        e = topology.edges[topology.edges[:, 0] != topology.edges[:, 1]]
        rows, cols, w = e[:, 0], e[:, 1], np.ones(len(e))
    elif kind == "cotangent":
        if points is None:
            raise InputError("the cotangent Laplacian needs the vertex positions.")
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if len(p) != n:
            raise InputError(f"points must have {n} rows for this topology, got {len(p)}.")
        f = topology.faces
        rows_l, cols_l, w_l = [], [], []
        for k in range(3):  # the corner k is opposite the side (i, j)
            i, j, c = f[:, (k + 1) % 3], f[:, (k + 2) % 3], f[:, k]
            u, v = p[i] - p[c], p[j] - p[c]
            cross = np.linalg.norm(np.cross(u, v), axis=1)
            dot = np.einsum("ij,ij->i", u, v)
            cot = np.clip(dot / np.maximum(cross, 1e-300), -COT_CLAMP, COT_CLAMP)
            rows_l.append(i)
            cols_l.append(j)
            w_l.append(0.5 * cot)
        rows, cols, w = np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(w_l)
        keep = rows != cols
        rows, cols, w = rows[keep], cols[keep], w[keep]
    else:
        raise InputError(f"unknown Laplacian kind {kind!r}; choose 'uniform' or 'cotangent'.")
    adjacency = sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([rows, cols]), np.concatenate([cols, rows]))),
                              shape=(n, n)).tocsr()
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    return (sp.diags(degree) - adjacency).tocsr()
