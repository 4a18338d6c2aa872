"""Read every mesh of any USD file as one triangle soup in the stage's world frame.

Used to bring a user's own vehicle library into training (:mod:`lift3d.learn.assets`):
each ``UsdGeom.Mesh`` (instance proxies included, invisible prims and guide/proxy
purposes skipped) is triangulated as a fan per polygon and moved by its
local-to-world transform at the default time. The stage's ``upAxis`` and
``metersPerUnit`` are returned with it; the caller turns them into the canonical
frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pxr import Sdf, Tf, Usd, UsdGeom

from ..errors import InputError


@dataclass
class WorldMesh:
    """Triangles of a whole stage: (V, 3) float64 points (stage units), (F, 3) int64 faces, and the stage metrics."""

    points: np.ndarray
    faces: np.ndarray
    up_axis: str
    meters_per_unit: float


def triangulate(counts: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """(F, 3) fan triangles of polygons given by ``faceVertexCounts`` and ``faceVertexIndices``."""
    counts = np.asarray(counts, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    if counts.size == 0 or counts.sum() != indices.size or (counts < 3).any():
        return np.zeros((0, 3), np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    tris = []
    for k in range(1, int(counts.max()) - 1):
        sel = counts > k + 1
        s = starts[sel]
        tris.append(np.stack([indices[s], indices[s + k], indices[s + k + 1]], axis=1))
    return np.concatenate(tris) if tris else np.zeros((0, 3), np.int64)


def read_world_meshes(path: Path | str) -> WorldMesh:
    """All renderable mesh triangles of the USD file at ``path`` in world coordinates.

    Raises :class:`InputError` (one line) when the file cannot be opened as USD or holds no mesh.
    """
    path = Path(path)
    try:
        layer = Sdf.Layer.FindOrOpen(str(path))
        stage = Usd.Stage.Open(layer, Usd.Stage.LoadAll) if layer is not None else None
    except Tf.ErrorException:
        stage = None
    if stage is None:
        raise InputError(f"{path} is not a readable USD file")
    cache = UsdGeom.XformCache(Usd.TimeCode.Default())
    all_points, all_faces, offset = [], [], 0
    for prim in stage.Traverse(Usd.TraverseInstanceProxies(Usd.PrimDefaultPredicate)):
        if not prim.IsA(UsdGeom.Mesh):
            continue
        imageable = UsdGeom.Imageable(prim)
        if imageable.ComputeVisibility() == UsdGeom.Tokens.invisible:
            continue
        if imageable.ComputePurpose() in (UsdGeom.Tokens.guide, UsdGeom.Tokens.proxy):
            continue
        mesh = UsdGeom.Mesh(prim)
        points = mesh.GetPointsAttr().Get()
        counts = mesh.GetFaceVertexCountsAttr().Get()
        indices = mesh.GetFaceVertexIndicesAttr().Get()
        if points is None or counts is None or indices is None or len(points) == 0:
            continue
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        faces = triangulate(np.asarray(counts), np.asarray(indices))
        if faces.size == 0 or faces.max() >= len(pts) or faces.min() < 0:
            continue
        m = np.asarray(cache.GetLocalToWorldTransform(prim), dtype=np.float64)  # row-vector convention
        pts = pts @ m[:3, :3] + m[3, :3]
        if np.linalg.det(m[:3, :3]) < 0:  # a mirroring transform flips the winding
            faces = faces[:, ::-1]
        all_points.append(pts)
        all_faces.append(faces + offset)
        offset += len(pts)
    if not all_points:
        raise InputError(f"{path} holds no mesh")
    points = np.concatenate(all_points)
    if not np.isfinite(points).all():
        raise InputError(f"{path} has non-finite mesh points")
    return WorldMesh(points, np.concatenate(all_faces), str(UsdGeom.GetStageUpAxis(stage)),
                     float(UsdGeom.GetStageMetersPerUnit(stage)))
