"""Reconstruction quality metrics: masks, surfaces, volumes, parts and colour.

Plain numpy / scipy / OpenCV, independent of the product's Warp kernels, so
the reconstructor is never graded by its own renderer.

A triangle mesh is a pair ``(points, faces)``: (V, 3) float positions in
metres and (F, 3) int vertex indices. Images follow :mod:`lift3d.camera`
(rows top-down, pixel centres at half-integers).

Metrics (the usual single-view reconstruction set, e.g. Tatarchenko et al.,
"What do single-view 3D reconstruction networks learn?", CVPR 2019, for the
F-score):

* :func:`mask_iou`: intersection over union of two binary masks.
* :func:`chamfer_l1`, :func:`fscore`: on points sampled uniformly on the
  surfaces (:func:`sample_surface`); :func:`surface_metrics` bundles them
  with thresholds relative to the ground truth's bounding-box diagonal.
* :func:`volume_iou`: both meshes voxelised on one grid with an inside test
  that tolerates open (non-watertight) and self-overlapping meshes
  (:func:`inside_mesh`).
* :func:`rasterize` / :func:`render_labels` / :func:`render_texture`: a small
  z-buffered software rasteriser for silhouettes, part-label images and
  albedo images; :func:`part_iou` and :func:`masked_psnr` score them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from lift3d.camera import Camera

NEAR = 1.0e-4
"""Geometry closer than this (metres) to the camera plane is not drawn."""


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two (H, W) masks (bool, or float thresholded at 0.5); 1.0 when both are empty."""
    a, b = np.asarray(pred), np.asarray(gt)
    a = a if a.dtype == bool else a > 0.5
    b = b if b.dtype == bool else b > 0.5
    if a.shape != b.shape:
        raise ValueError(f"masks differ in size: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def _mesh(points: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(f) and (f.min() < 0 or f.max() >= len(p)):
        raise ValueError("face index out of range")
    return p, f


def triangle_areas(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) areas (square metres) of the mesh's triangles."""
    p, f = _mesh(points, faces)
    tri = p[f]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def sample_surface(points: np.ndarray, faces: np.ndarray, count: int,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points uniformly distributed over the mesh's area (seeded, reproducible).

    Returns:
        (count, 3) float64 positions and (count,) int64 indices of the faces they lie on.
    """
    p, f = _mesh(points, faces)
    areas = triangle_areas(p, f)
    total = areas.sum()
    if not total > 0.0:
        raise ValueError("mesh has no area to sample")
    rng = np.random.default_rng(seed)
    face_idx = rng.choice(len(f), size=count, p=areas / total)
    r1 = np.sqrt(rng.random(count))
    r2 = rng.random(count)
    tri = p[f[face_idx]]
    samples = ((1.0 - r1)[:, None] * tri[:, 0] + (r1 * (1.0 - r2))[:, None] * tri[:, 1]
               + (r1 * r2)[:, None] * tri[:, 2])
    return samples, face_idx


def _nearest(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(N,) distance from each of ``src`` (N, 3) to the closest of ``dst`` (M, 3)."""
    return cKDTree(dst).query(src, k=1)[0]


def chamfer_l1(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Chamfer-L1 of two point sets: the mean of both directions' mean Euclidean distances."""
    return 0.5 * float(_nearest(a, b).mean() + _nearest(b, a).mean())


def fscore(pred: np.ndarray, gt: np.ndarray, tau: float) -> tuple[float, float, float]:
    """F-score at distance ``tau`` (metres) of point sets: ``(f, precision, recall)``.

    Precision: fraction of ``pred`` within ``tau`` of ``gt``; recall: fraction of
    ``gt`` within ``tau`` of ``pred``; F is their harmonic mean (0 when both are 0).
    """
    precision = float((_nearest(pred, gt) <= tau).mean())
    recall = float((_nearest(gt, pred) <= tau).mean())
    f = 0.0 if precision + recall == 0.0 else 2.0 * precision * recall / (precision + recall)
    return f, precision, recall


def bbox_diagonal(points: np.ndarray) -> float:
    """Length (metres) of the axis-aligned bounding box diagonal of (N, 3) points."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return float(np.linalg.norm(p.max(axis=0) - p.min(axis=0)))


def surface_metrics(pred: tuple[np.ndarray, np.ndarray], gt: tuple[np.ndarray, np.ndarray],
                    count: int = 20000, taus: tuple[float, ...] = (0.01, 0.02),
                    seed: int = 0) -> dict[str, float]:
    """Chamfer-L1 and F-scores between two meshes from ``count`` surface samples each.

    ``taus`` are fractions of the ground truth's bounding-box diagonal.

    Returns:
        ``chamfer_l1`` (metres), ``chamfer_l1_rel`` (divided by the GT diagonal),
        and per tau ``fscore@1%``, ``precision@1%``, ``recall@1%`` (for tau = 0.01), ...
    """
    a, _ = sample_surface(*pred, count, seed)
    b, _ = sample_surface(*gt, count, seed)
    diag = bbox_diagonal(gt[0])
    cd = chamfer_l1(a, b)
    out = {"chamfer_l1": cd, "chamfer_l1_rel": cd / diag}
    for tau in taus:
        f, p, r = fscore(a, b, tau * diag)
        key = f"{tau * 100:g}%"
        out[f"fscore@{key}"], out[f"precision@{key}"], out[f"recall@{key}"] = f, p, r
    return out


def _axis_crossings(p: np.ndarray, f: np.ndarray, axis: int, lo: np.ndarray, step: np.ndarray,
                    shape: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    """Ray crossings of the mesh along ``axis`` through every column of voxel centres.

    Returns four ``shape`` arrays indexed ``[ix, iy, iz]``: the number of
    crossings beyond each voxel centre (towards +axis) and behind it, and the
    same counts signed by the side each triangle faces (the half-ray's winding
    number up to a global sign, which does not matter to a "non-zero" test).
    """
    b, c = [k for k in range(3) if k != axis]
    nb, nc, na = shape[b], shape[c], shape[axis]
    # Rays sit at the voxel centres, nudged by an irrational fraction of a cell so they
    # never pass exactly through a vertex or along an edge of grid-aligned geometry.
    jitter = np.array([math.sqrt(2.0), math.sqrt(3.0)]) * 1e-4
    tri = p[f]
    u = (tri[:, :, b] - lo[b]) / step[b] - 0.5 - jitter[0]  # column coordinates: ray j sits at u = j
    v = (tri[:, :, c] - lo[c]) / step[c] - 0.5 - jitter[1]
    t = (tri[:, :, axis] - lo[axis]) / step[axis] - 0.5     # voxel i's centre sits at t = i
    area = (u[:, 1] - u[:, 0]) * (v[:, 2] - v[:, 0]) - (u[:, 2] - u[:, 0]) * (v[:, 1] - v[:, 0])
    keep = np.abs(area) > 1e-12
    u, v, t, area = u[keep], v[keep], t[keep], area[keep]
    j0 = np.clip(np.ceil(u.min(axis=1)), 0, nb).astype(np.int64)
    j1 = np.clip(np.floor(u.max(axis=1)), -1, nb - 1).astype(np.int64)
    k0 = np.clip(np.ceil(v.min(axis=1)), 0, nc).astype(np.int64)
    k1 = np.clip(np.floor(v.max(axis=1)), -1, nc - 1).astype(np.int64)
    nj, nk = np.maximum(j1 - j0 + 1, 0), np.maximum(k1 - k0 + 1, 0)
    counts = nj * nk
    hist = np.zeros((nb, nc, na + 1), dtype=np.int64)
    signed = np.zeros((nb, nc, na + 1), dtype=np.int64)
    tri_ids = np.repeat(np.arange(len(u)), counts)
    local = np.arange(len(tri_ids)) - np.repeat(np.cumsum(counts) - counts, counts)
    jj = j0[tri_ids] + local % np.maximum(nj[tri_ids], 1)
    kk = k0[tri_ids] + local // np.maximum(nj[tri_ids], 1)
    ar = area[tri_ids]
    w0 = ((u[tri_ids, 1] - jj) * (v[tri_ids, 2] - kk) - (u[tri_ids, 2] - jj) * (v[tri_ids, 1] - kk)) / ar
    w1 = ((u[tri_ids, 2] - jj) * (v[tri_ids, 0] - kk) - (u[tri_ids, 0] - jj) * (v[tri_ids, 2] - kk)) / ar
    w2 = 1.0 - w0 - w1
    hit = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    ids = tri_ids[hit]
    depth = w0[hit] * t[ids, 0] + w1[hit] * t[ids, 1] + w2[hit] * t[ids, 2]
    # Number of voxel centres strictly below the hit: the hit lies beyond voxels 0 .. slot-1.
    slot = np.clip(np.ceil(depth), 0, na).astype(np.int64)
    sign = np.where(ar[hit] > 0, 1, -1)
    np.add.at(hist, (jj[hit], kk[hit], slot), 1)
    np.add.at(signed, (jj[hit], kk[hit], slot), sign)
    behind = np.cumsum(hist, axis=2)[..., :na]          # hits at slots <= i lie below voxel i
    beyond = hist.sum(axis=2, keepdims=True) - behind
    s_behind = np.cumsum(signed, axis=2)[..., :na]
    s_beyond = signed.sum(axis=2, keepdims=True) - s_behind
    order = np.argsort([b, c, axis])
    return tuple(np.transpose(x, order) for x in (beyond, behind, s_beyond, s_behind))


def inside_mesh(points: np.ndarray, faces: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                shape: tuple[int, int, int]) -> np.ndarray:
    """Occupancy of the voxel centres of the box ``[lo, hi]`` split into ``shape`` cells.

    Robust inside test for imperfect meshes: six axis-aligned half-rays leave
    every voxel centre (+-X, +-Y, +-Z). A half-ray votes *inside* when it
    crosses the surface an odd number of times (parity; insensitive to face
    orientation) or when its signed crossings (the ray's winding number; counts
    overlapping closed parts, e.g. a wheel pushed into a body, as inside) are
    non-zero. The voxel is inside when at least 4 of the 6 rays agree, so a hole
    that one or two rays slip through does not flip the answer.

    Returns:
        ``shape`` bool array indexed ``[ix, iy, iz]``.
    """
    p, f = _mesh(points, faces)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    step = (hi - lo) / np.asarray(shape, dtype=np.float64)
    votes = np.zeros(shape, dtype=np.int8)
    for axis in range(3):
        beyond, behind, s_beyond, s_behind = _axis_crossings(p, f, axis, lo, step, shape)
        votes += ((beyond % 2 == 1) | (s_beyond != 0)).astype(np.int8)
        votes += ((behind % 2 == 1) | (s_behind != 0)).astype(np.int8)
    return votes >= 4


def volume_iou(pred: tuple[np.ndarray, np.ndarray], gt: tuple[np.ndarray, np.ndarray],
               resolution: int = 64) -> float:
    """Volumetric IoU of two meshes voxelised on one ``resolution``^3 grid over their joint bounding box."""
    pa, fa = _mesh(*pred)
    pb, fb = _mesh(*gt)
    lo = np.minimum(pa.min(axis=0), pb.min(axis=0))
    hi = np.maximum(pa.max(axis=0), pb.max(axis=0))
    pad = 1e-3 * np.maximum(hi - lo, 1e-9)
    shape = (resolution,) * 3
    a = inside_mesh(pa, fa, lo - pad, hi + pad, shape)
    b = inside_mesh(pb, fb, lo - pad, hi + pad, shape)
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


@dataclass
class Raster:
    """What a camera sees of a mesh, per pixel.

    Attributes:
        face: (H, W) int64 index of the visible triangle, -1 for background.
        bary: (H, W, 3) float64 perspective-correct barycentric weights of that triangle's corners.
        depth: (H, W) float64 distance along the optical axis (metres), ``inf`` for background.
    """

    face: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool silhouette."""
        return self.face >= 0


def rasterize(points: np.ndarray, faces: np.ndarray, camera: Camera, chunk_pixels: int = 2_000_000) -> Raster:
    """Z-buffered rasterisation of a mesh at pixel centres (both faces of every triangle drawn).

    Triangles with a corner nearer than :data:`NEAR` are skipped (no clipping);
    the evaluation cameras keep objects well in front of them.
    """
    p, f = _mesh(points, faces)
    w, h = camera.width, camera.height
    uv, depth = camera.project(p)
    tri_uv, tri_d = uv[f], depth[f]
    ok = np.all(tri_d > NEAR, axis=1)
    x0 = np.clip(np.ceil(tri_uv[..., 0].min(axis=1) - 0.5), 0, w).astype(np.int64)
    x1 = np.clip(np.floor(tri_uv[..., 0].max(axis=1) - 0.5), -1, w - 1).astype(np.int64)
    y0 = np.clip(np.ceil(tri_uv[..., 1].min(axis=1) - 0.5), 0, h).astype(np.int64)
    y1 = np.clip(np.floor(tri_uv[..., 1].max(axis=1) - 0.5), -1, h - 1).astype(np.int64)
    nx, ny = np.maximum(x1 - x0 + 1, 0), np.maximum(y1 - y0 + 1, 0)
    e1, e2 = tri_uv[:, 1] - tri_uv[:, 0], tri_uv[:, 2] - tri_uv[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok &= (np.abs(area) > 1e-12) & (nx > 0) & (ny > 0)
    ids = np.flatnonzero(ok)
    counts = (nx * ny)[ids]

    best = np.full(h * w, np.inf)
    face_img = np.full(h * w, -1, dtype=np.int64)
    bary_img = np.zeros((h * w, 3))
    csum = np.cumsum(counts)
    start = 0
    while start < len(ids):  # chunks of about chunk_pixels candidate (triangle, pixel) pairs
        done = csum[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(csum, done + chunk_pixels, side="right")))
        sel, cnt = ids[start:stop], counts[start:stop]
        start = stop
        tid = np.repeat(sel, cnt)
        local = np.arange(len(tid)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        ix = x0[tid] + local % nx[tid]
        iy = y0[tid] + local // nx[tid]
        px, py = ix + 0.5, iy + 0.5
        t = tri_uv[tid]
        a = area[tid]
        b0 = ((t[:, 1, 0] - px) * (t[:, 2, 1] - py) - (t[:, 2, 0] - px) * (t[:, 1, 1] - py)) / a
        b1 = ((t[:, 2, 0] - px) * (t[:, 0, 1] - py) - (t[:, 0, 0] - px) * (t[:, 2, 1] - py)) / a
        b2 = 1.0 - b0 - b1
        inside = (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
        tid = tid[inside]
        inv_d = np.stack([b0[inside], b1[inside], b2[inside]], axis=1) / tri_d[tid]
        z = 1.0 / inv_d.sum(axis=1)  # screen-linear 1/depth gives perspective-correct weights
        persp = inv_d * z[:, None]
        pix = iy[inside] * w + ix[inside]
        order = np.lexsort((z, pix))
        first = order[np.r_[True, pix[order][1:] != pix[order][:-1]]]
        closer = z[first] < best[pix[first]]
        first = first[closer]
        best[pix[first]] = z[first]
        face_img[pix[first]] = tid[first]
        bary_img[pix[first]] = persp[first]
    return Raster(face_img.reshape(h, w), bary_img.reshape(h, w, 3), best.reshape(h, w))


def render_labels(points: np.ndarray, faces: np.ndarray, face_labels: np.ndarray, camera: Camera,
                  raster: Raster | None = None) -> np.ndarray:
    """(H, W) int64 image of ``face_labels`` (one int per face) as seen by ``camera``; -1 is background.

    ``raster``: this mesh's :func:`rasterize` result for ``camera``, if already computed.
    """
    raster = raster if raster is not None else rasterize(points, faces, camera)
    labels = np.asarray(face_labels, dtype=np.int64)
    return np.where(raster.face >= 0, labels[np.maximum(raster.face, 0)], -1)


def render_texture(points: np.ndarray, faces: np.ndarray, uv: np.ndarray, uv_faces: np.ndarray | None,
                   texture: np.ndarray, camera: Camera, background: tuple[float, float, float] = (0.5, 0.5, 0.5),
                   raster: Raster | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unlit albedo image of a textured mesh: colour = bilinearly sampled texture.

    Args:
        uv: (T, 2) texture coordinates, USD ``st`` convention ((0, 0) = bottom-left of the image).
        uv_faces: (F, 3) indices into ``uv`` per face corner, or ``None`` for per-vertex ``uv``.
        texture: (Ht, Wt, 3 or 4) uint8 (sRGB) or float image, top row first.
        background: colour of uncovered pixels.
        raster: this mesh's :func:`rasterize` result for ``camera``, if already computed.

    Returns:
        (H, W, 3) float64 colour in [0, 1] (the texture's encoding) and the (H, W) bool silhouette.
    """
    raster = raster if raster is not None else rasterize(points, faces, camera)
    tex = np.asarray(texture)
    tex = tex[..., :3].astype(np.float64) / (255.0 if tex.dtype == np.uint8 else 1.0)
    corner_uv = np.asarray(uv, dtype=np.float64)[np.asarray(faces if uv_faces is None else uv_faces)]
    out = np.empty(raster.face.shape + (3,))
    out[:] = background
    hit = raster.mask
    st = np.einsum("nk,nkj->nj", raster.bary[hit], corner_uv[raster.face[hit]])
    th, tw = tex.shape[:2]
    x = np.clip(st[:, 0] * tw - 0.5, 0.0, tw - 1.0)
    y = np.clip((1.0 - st[:, 1]) * th - 0.5, 0.0, th - 1.0)
    xi, yi = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - xi)[:, None], (y - yi)[:, None]
    xj, yj = np.minimum(xi + 1, tw - 1), np.minimum(yi + 1, th - 1)
    out[hit] = ((1 - fx) * (1 - fy) * tex[yi, xi] + fx * (1 - fy) * tex[yi, xj]
                + (1 - fx) * fy * tex[yj, xi] + fx * fy * tex[yj, xj])
    return out, hit


def part_iou(pred: list[np.ndarray], gt: list[np.ndarray], classes: list[int]) -> dict[int, float]:
    """Per-class IoU of part-label images, averaged over views.

    Args:
        pred, gt: per view, (H, W) int label images (e.g. from :func:`render_labels`).
        classes: the labels to score.

    Returns:
        label -> mean IoU over the views where the label appears in ``pred`` or
        ``gt``; a label seen in no view is left out.
    """
    out: dict[int, float] = {}
    for label in classes:
        scores = [mask_iou(p == label, g == label) for p, g in zip(pred, gt, strict=True)
                  if np.any(p == label) or np.any(g == label)]
        if scores:
            out[label] = float(np.mean(scores))
    return out


def masked_psnr(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 1.0) of (H, W, C) images in [0, 1] over the pixels where ``mask`` is True.

    Returns ``inf`` for identical pixels; raises ``ValueError`` for an empty mask.
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        raise ValueError("masked PSNR needs a non-empty mask")
    diff = np.asarray(pred, dtype=np.float64)[m] - np.asarray(gt, dtype=np.float64)[m]
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)
