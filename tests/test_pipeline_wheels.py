"""Wheels found in the photo: the car template rendered with dark tyres from a known camera."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lift3d.camera import Camera, orbit_camera
from lift3d_eval.metrics import rasterize
from make_templates import car_template
from lift3d.pipeline.wheel_detect import detect_wheel_ellipses, wheels_from_photo
from lift3d.pipeline.wheels import WheelParams, wheels_from_points

SIZE = 256


def _photo(template, camera: Camera, tyre=(0.06, 0.06, 0.07)) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) albedo photo (red body, ``tyre``-coloured wheels) and its (H, W) bool mask."""
    raster = rasterize(template.points, template.faces, camera)
    wheel = np.isin(template.face_part, [i for i, lab in enumerate(template.part_labels) if lab == "wheel"])
    face = np.maximum(raster.face, 0)
    rgb = np.where(wheel[face][..., None], np.array(tyre), np.array([0.8, 0.15, 0.1]))
    mask = raster.face >= 0
    return np.where(mask[..., None], rgb, 0.5).astype(np.float32), mask


@pytest.fixture(scope="module")
def template():
    return car_template()


def _three_quarter(template, yaw_deg: float) -> Camera:
    target = 0.5 * (template.points.min(axis=0) + template.points.max(axis=0))
    return orbit_camera(math.radians(yaw_deg), math.radians(12.0), 8.0, math.radians(40.0), SIZE, SIZE, target)


@pytest.mark.parametrize("yaw_deg,tyre", [(55.0, (0.06, 0.06, 0.07)), (-55.0, (0.06, 0.06, 0.07)),
                                          (55.0, (0.45, 0.45, 0.47))])  # mid-grey, sunlit tyres too
def test_detector_finds_the_visible_tyres(template, yaw_deg, tyre):
    camera = _three_quarter(template, yaw_deg)
    rgb, mask = _photo(template, camera, tyre)
    found = detect_wheel_ellipses(rgb, mask)
    rig = template.wheels
    side = rig.left if yaw_deg > 0 else rig.right  # +X is the car's left side (canonical frame)
    true_uv, _ = camera.project(np.array([[math.copysign(rig.track / 2, yaw_deg), rig.radius, z]
                                          for z in rig.axle_z]))
    assert len(found) >= 2
    for uv in true_uv:  # each visible wheel centre has a detection within a third of a tyre diameter
        dist = [math.dist(e.centre, uv) for e in found]
        best = found[int(np.argmin(dist))]
        assert min(dist) < best.major / 3
    tyre_px = np.ptp(camera.project(template.points[side[0]])[0][:, 1])
    assert found[0].major == pytest.approx(tyre_px, rel=0.3)


@pytest.mark.parametrize("yaw_deg", [50.0, -130.0])
def test_wheels_from_photo_recovers_the_tyre_radius(template, yaw_deg):
    camera = _three_quarter(template, yaw_deg)
    rgb, mask = _photo(template, camera)
    truth = wheels_from_points(template.wheels, template.points)
    wrong = WheelParams((truth.axle_z[0] - 0.15, truth.axle_z[1] + 0.1), truth.radius * 0.75, truth.track,
                        truth.width)
    z = template.points[:, 2]
    fixed, used = wheels_from_photo(rgb, mask, camera, wrong, (float(z.min()), float(z.max())))
    assert used == 2
    assert fixed.radius == pytest.approx(truth.radius, rel=0.15)
    assert (fixed.axle_z, fixed.track, fixed.width) == (wrong.axle_z, wrong.track, wrong.width)


def test_no_visible_tyres_keeps_the_wheels(template):
    z = template.points[:, 2]
    start = wheels_from_points(template.wheels, template.points)
    camera = _three_quarter(template, 50.0)
    rgb, mask = _photo(template, camera, tyre=(0.8, 0.15, 0.1))  # tyres painted like the body
    assert detect_wheel_ellipses(rgb, mask) == []
    assert wheels_from_photo(rgb, mask, camera, start, (float(z.min()), float(z.max()))) == (start, 0)
    front = _three_quarter(template, 0.0)  # straight front view: no side of the car is seen
    rgb, mask = _photo(template, front)
    assert wheels_from_photo(rgb, mask, front, start, (float(z.min()), float(z.max()))) == (start, 0)
