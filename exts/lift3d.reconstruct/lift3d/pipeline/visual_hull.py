"""Initial placement from calibrated views: a voxel visual hull and the template fitted to its box.

With cameras given (``transforms.json``), the asset lives in their world frame
(+Y up, metres). The masks are carved into a voxel grid (a voxel survives if it
projects inside the (slightly dilated) object mask of every view; the object
is expected to be fully in frame in every view, as in a turntable or walk-around
capture), then the template is placed on the hull:

* its ground (``y = 0``) on the hull's lowest point, its centre on the hull's
  footprint centre;
* for a car, its length axis (+Z) along the yaw whose placement's hard
  silhouettes match the masks best (yaws every 15 degrees: this also settles
  front and back), scaled uniformly to the hull's length along that axis;
* for other objects, scaled to the hull's box without rotation;

then the best few placements are refined through the soft silhouettes (pose and
anisotropic scale only) and the best one starts the shape fit.

The visual hull is a superset of the object, so this start is a little too
large; the shape fit that follows shrinks it to the silhouettes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from ..camera import Camera
from ..errors import InputError
from ..templates import Template
from .crops import crop_camera, crop_mask, square_box
from .shape_fit import FitView, ObjectTransform, fit_shape
from .silhouette import hard_mask, mask_iou

HULL_RESOLUTION = 64
YAW_STEP_DEG = 15.0
SIZE_FACTORS = (1.0, 0.9, 0.8)
SCORE_SIZE = 96
PLACEMENT_STARTS = 3
PLACEMENT_STEPS = 40


def _centre_and_radius(cameras: list[Camera], masks: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Point closest to every optical axis, and a radius enclosing the masked object in every view."""
    a = np.zeros((3, 3))
    b = np.zeros(3)
    for cam in cameras:
        d = -cam.cam_to_world[:3, 2]
        d /= np.linalg.norm(d)
        proj = np.eye(3) - np.outer(d, d)
        a += proj
        b += proj @ cam.position
    centre = np.linalg.lstsq(a, b, rcond=None)[0]
    radius = 0.0
    for cam, mask in zip(cameras, masks):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        depth = float(np.linalg.norm(cam.position - centre))
        du = max(abs(cols[0] - cam.cx), abs(cols[-1] + 1 - cam.cx)) / cam.fx
        dv = max(abs(rows[0] - cam.cy), abs(rows[-1] + 1 - cam.cy)) / cam.fy
        radius = max(radius, depth * math.hypot(du, dv))
    return centre, 1.1 * radius


def carve(cameras: list[Camera], masks: list[np.ndarray], resolution: int = HULL_RESOLUTION) -> np.ndarray:
    """(K, 3) centres (world metres) of the voxels of the visual hull of (H, W) bool ``masks``.

    The grid is a cube of ``resolution``^3 voxels around the point closest to all optical axes.

    Raises :class:`InputError` if the masks have no common volume (inconsistent cameras).
    """
    centre, radius = _centre_and_radius(cameras, masks)
    axis = np.linspace(-radius, radius, resolution)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3) + centre
    keep = np.ones(len(grid), dtype=bool)
    for cam, mask in zip(cameras, masks):
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        uv, depth = cam.project(grid)
        u, v = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
        seen = (depth > 0) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
        inside = np.zeros(len(grid), dtype=bool)
        inside[seen] = grown[v[seen], u[seen]]
        keep &= inside
    if keep.sum() < 8:
        raise InputError("the object masks do not agree on any common volume; check the cameras in the camera file")
    return grid[keep]


def place_template(template: Template, cameras: list[Camera], masks: list[np.ndarray], category_is_car: bool,
                   sigma: float = 1.0, check: Callable[[], None] | None = None
                   ) -> tuple[np.ndarray, ObjectTransform]:
    """Place the template on the visual hull of the views.

    Candidates: yaws every :data:`YAW_STEP_DEG` degrees (only yaw 0 for non-cars), each
    with the template scaled to the hull: a car uniformly to the hull's length along
    that yaw (a hull from a few views is too wide and reaches below the ground), other
    objects to the hull's box; both also shrunk by :data:`SIZE_FACTORS` (a hull is
    larger than its object). The candidates' hard silhouettes against the masks (mean IoU
    over the views at :data:`SCORE_SIZE` pixels) ranks them; the best
    :data:`PLACEMENT_STARTS` distinct yaws are then refined by the shape fit with the
    shape frozen (yaw, translation and anisotropic scale only) and the lowest
    silhouette loss wins.

    Returns:
        ``(start, transform)``: (V, 3) object-frame start vertices (the template scaled)
        and the object-to-world transform (yaw, unit scale, translation).
    """
    check = check or (lambda: None)
    hull = carve(cameras, masks)
    tpl = template.points.astype(np.float64)
    t_size = np.ptp(tpl, axis=0)
    y0, y1 = hull[:, 1].min(), hull[:, 1].max()
    xz = hull[:, [0, 2]]
    mid = xz.mean(axis=0)
    boxes = [square_box(m) for m in masks]
    crops = [(crop_camera(c, b, SCORE_SIZE), crop_mask(m, b, SCORE_SIZE) >= 0.5)
             for c, m, b in zip(cameras, masks, boxes)]
    yaws = np.radians(np.arange(0.0, 360.0, YAW_STEP_DEG)) if category_is_car else np.zeros(1)
    scored: list[tuple[float, np.ndarray, ObjectTransform]] = []
    for yaw in yaws:
        along = np.array([math.sin(yaw), math.cos(yaw)])
        across = np.array([math.cos(yaw), -math.sin(yaw)])
        a, b = (xz - mid) @ along, (xz - mid) @ across
        foot = mid + along * 0.5 * (a.max() + a.min()) + across * 0.5 * (b.max() + b.min())
        for factor in SIZE_FACTORS:
            if category_is_car:
                # The hull's length is reliable, its width and bottom are not (few views, seen from
                # above): keep the template's proportions and stand it on the ground below the hull's top.
                scale = np.full(3, factor * np.ptp(a) / t_size[2])
            else:
                scale = factor * np.array([np.ptp(b), y1 - y0, np.ptp(a)]) / np.maximum(t_size, 1e-9)
            ground = y1 - scale[1] * t_size[1] if category_is_car else y0
            transform = ObjectTransform(float(yaw), np.ones(3), np.array([foot[0], ground, foot[1]]))
            start = tpl * scale
            world = transform.apply(start)
            score = float(np.mean([mask_iou(hard_mask(world, template.faces, cam, SCORE_SIZE, SCORE_SIZE), m)
                                   for cam, m in crops]))
            scored.append((score, start, transform))
    scored.sort(key=lambda item: -item[0])
    views = [FitView(c, m) for c, m in zip(cameras, masks)]
    best: tuple[float, np.ndarray, ObjectTransform] | None = None
    tried: list[float] = []
    for _, start, transform in scored:
        if len(tried) >= PLACEMENT_STARTS:
            break
        if any(abs((transform.yaw - y + math.pi) % (2 * math.pi) - math.pi) < math.radians(20.0) for y in tried):
            continue
        tried.append(transform.yaw)
        check()
        fit = fit_shape(template, views, start, transform, [SCORE_SIZE], [PLACEMENT_STEPS], sigma,
                        fit_pose=True, fit_scale=(True, True, True), deform=False, check=check)
        if best is None or fit.level_losses[-1] < best[0]:
            best = (fit.level_losses[-1], start * fit.transform.scale,
                    ObjectTransform(fit.transform.yaw, np.ones(3), fit.transform.translation))
    return best[1], best[2]
