"""Initial placement from calibrated views: a voxel visual hull and the template fitted to its box.

With cameras given (``transforms.json``), the asset lives in their world frame
(+Y up, metres). The masks are carved into a voxel grid (a voxel survives if it
projects inside the object mask of every view that sees it; views that do not
see it do not vote), then the template is placed on the hull:

* its ground (``y = 0``) on the hull's lowest point, its centre on the hull's
  footprint centre;
* for a car, its length axis (+Z) along the principal axis of the hull's
  footprint (PCA in the XZ plane), with width, height and length scaled to the
  hull's extents; the front/back choice (yaw or yaw + 180 degrees) is the one
  whose hard silhouettes match the masks better (mean IoU over the views);
* for other objects, scaled to the hull's box without rotation.

The visual hull is a superset of the object, so this start is a little too
large; the shape fit that follows shrinks it to the silhouettes.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..camera import Camera
from ..errors import InputError
from ..templates import Template
from .shape_fit import ObjectTransform
from .silhouette import hard_mask, mask_iou

HULL_RESOLUTION = 64


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
        keep &= inside | ~seen
    if keep.sum() < 8:
        raise InputError("the object masks do not agree on any common volume; check the cameras in the camera file")
    return grid[keep]


def place_template(template: Template, cameras: list[Camera], masks: list[np.ndarray],
                   category_is_car: bool) -> tuple[np.ndarray, ObjectTransform, np.ndarray]:
    """Place the template on the visual hull of the views.

    Returns:
        ``(start, transform, scale)``: (V, 3) object-frame start vertices (the template
        scaled by ``scale``), the object-to-world transform (yaw, unit scale,
        translation), and the (3,) scale applied to the template.
    """
    hull = carve(cameras, masks)
    tpl = template.points.astype(np.float64)
    t_size = np.ptp(tpl, axis=0)
    y0, y1 = hull[:, 1].min(), hull[:, 1].max()
    xz = hull[:, [0, 2]]
    mid = xz.mean(axis=0)
    if category_is_car:
        _, vecs = np.linalg.eigh(np.cov((xz - mid).T))
        e = vecs[:, -1]
        yaw = math.atan2(e[0], e[1])
    else:
        yaw = 0.0
    along = np.array([math.sin(yaw), math.cos(yaw)])
    across = np.array([math.cos(yaw), -math.sin(yaw)])
    a, b = (xz - mid) @ along, (xz - mid) @ across
    size = np.array([np.ptp(b), y1 - y0, np.ptp(a)])
    foot = mid + along * 0.5 * (a.max() + a.min()) + across * 0.5 * (b.max() + b.min())
    scale = size / np.maximum(t_size, 1e-9)
    start = tpl * scale
    best: tuple[float, ObjectTransform] | None = None
    for candidate in ([yaw, yaw + math.pi] if category_is_car else [yaw]):
        transform = ObjectTransform(candidate, np.ones(3), np.array([foot[0], y0, foot[1]]))
        world = transform.apply(start)
        score = float(np.mean([mask_iou(hard_mask(world, template.faces, cam, cam.width, cam.height), m)
                               for cam, m in zip(cameras, masks)]))
        if best is None or score > best[0]:
            best = (score, transform)
    return start, best[1], scale
