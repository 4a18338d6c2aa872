"""Shape fit: a perturbed car seen from known views is recovered from the default template."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from lift3d.camera import orbit_camera
from lift3d.pipeline.shape_fit import FitView, ObjectTransform, fit_shape
from lift3d.pipeline.silhouette import hard_mask, mask_iou
from lift3d.templates.car import CarParams
from make_templates import car_template, generic_template


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _views(points, faces, yaws_deg, size=128, distance=8.0):
    target = 0.5 * (points.min(axis=0) + points.max(axis=0))
    cams = [orbit_camera(math.radians(y), math.radians(15.0), distance, math.radians(45.0), size, size,
                         target=target) for y in yaws_deg]
    return [FitView(c, hard_mask(points, faces, c, size, size)) for c in cams]


def _chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean nearest-vertex distance (metres): insensitive to vertices sliding along the surface."""
    return 0.5 * (cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean())


def test_fit_recovers_a_different_car_from_three_views():
    template = car_template()
    # the target: same topology, other proportions (taller, higher hood, longer wheelbase)
    target = car_template(CarParams(height=1.65, hood=0.7, roof_end=0.66, wheelbase=2.9, wheel_radius=0.36))
    views = _views(target.points, target.faces, [40.0, 130.0, 270.0])
    held_out = _views(target.points, target.faces, [0.0, 200.0])
    before = _chamfer(template.points, target.points)
    iou_before = np.mean([mask_iou(hard_mask(template.points, template.faces, v.camera, 128, 128), v.mask)
                          for v in held_out])
    fit = fit_shape(template, views, template.points, ObjectTransform(), levels=[64, 128], steps=[40, 40],
                    sigma=1.0, fit_scale=(True, True, True))
    after = _chamfer(fit.points, target.points)
    iou_after = np.mean([mask_iou(hard_mask(fit.points, template.faces, v.camera, 128, 128), v.mask)
                         for v in held_out])
    assert after < 0.75 * before, (before, after)
    assert iou_after > iou_before + 0.03 and iou_after > 0.9, (iou_before, iou_after)
    # the result stays exactly mirror-symmetric and the wheels stay round, on the ground
    x = fit.object_points
    assert np.abs(x[template.mirror] * np.array([-1, 1, 1]) - x).max() < 1e-4
    w = fit.wheels
    assert w is not None and w.radius == pytest.approx(0.36, rel=0.15)
    fl = x[template.wheels.left[0]]
    r = np.hypot(fl[:, 1] - w.radius, fl[:, 2] - w.axle_z[0])
    assert fl[:, 1].min() == pytest.approx(0.0, abs=1e-4)
    assert r.max() == pytest.approx(w.radius, rel=1e-3)


def test_fit_with_pose_moves_a_sphere_onto_an_ellipsoid():
    sphere = generic_template(2)
    target = sphere.points * np.array([0.8, 0.6, 1.2]) + np.array([0.3, 0.0, -0.2])
    views = _views(target, sphere.faces, [0.0, 90.0, 225.0], size=96, distance=3.0)
    start = ObjectTransform(0.0, np.ones(3), np.zeros(3))
    fit = fit_shape(sphere, views, sphere.points, start, levels=[48, 96], steps=[40, 30], sigma=1.0,
                    fit_pose=True, fit_scale=(True, True, True))
    ious = [mask_iou(hard_mask(fit.points, sphere.faces, v.camera, 96, 96), v.mask) for v in views]
    assert min(ious) > 0.9, ious
    assert np.abs(fit.points.mean(axis=0) - target.mean(axis=0)).max() < 0.08


def test_relaxed_priors_follow_calibrated_silhouettes_more_closely():
    """The calibrated-views priors let a sphere take on a local bulge the default (photo) priors resist."""
    from lift3d.pipeline.shape_fit import CALIBRATED_PRIORS, PHOTO_PRIORS

    sphere = generic_template(2)
    pts = sphere.points.astype(np.float64)
    centre = pts.mean(axis=0)
    bulge = np.clip((pts[:, 0] - centre[0]) / 0.5, 0.0, 1.0) ** 2  # the +X cap grows outwards
    target = centre + (pts - centre) * (1.0 + 0.6 * bulge)[:, None]
    views = _views(target, sphere.faces, [0.0, 90.0, 180.0, 270.0], size=96, distance=3.0)

    def input_iou(priors):
        fit = fit_shape(sphere, views, pts, ObjectTransform(), levels=[48, 96], steps=[30, 30], sigma=1.0,
                        fit_scale=(True, True, True), priors=priors)
        return np.mean([mask_iou(hard_mask(fit.points, sphere.faces, v.camera, 96, 96), v.mask) for v in views])

    relaxed, photo = input_iou(CALIBRATED_PRIORS), input_iou(PHOTO_PRIORS)
    assert relaxed > photo + 0.004 and relaxed > 0.95, (relaxed, photo)
