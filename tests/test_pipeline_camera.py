"""Camera search and pose conventions: known poses of the car template are recovered."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lift3d.camera import Camera, orbit_camera
from lift3d.pipeline.camera_search import guess_intrinsics, search_camera
from lift3d.pipeline.pose import Pose, mirrored_camera, pose_from_cam_to_world
from lift3d.pipeline.silhouette import hard_mask, mask_iou
from make_templates import car_template


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def car():
    return car_template()


def _silhouette(points: np.ndarray, faces: np.ndarray, width: int, height: int, yaw_deg: float, pitch_deg: float,
                distance: float) -> np.ndarray:
    """(H, W) bool mask of ``points`` seen by the guessed intrinsics from a yaw and pitch about its box centre."""
    base = guess_intrinsics(width, height)
    target = 0.5 * (points.min(axis=0) + points.max(axis=0))
    pose = Pose(math.radians(yaw_deg), math.radians(pitch_deg), 0.0, distance)
    cam = Camera(base.fx, base.fy, base.cx, base.cy, width, height, pose.cam_to_world(target))
    return hard_mask(points, faces, cam, width, height)


def test_pose_matches_orbit_camera_and_round_trips():
    target = np.array([0.1, 0.7, -0.2])
    cam = orbit_camera(0.8, 0.3, 7.0, 0.8, 64, 64, target=target)
    assert np.allclose(Pose(0.8, 0.3, 0.0, 7.0).cam_to_world(target), cam.cam_to_world, atol=1e-12)
    pose = Pose(-2.0, 0.4, 0.05, 9.0, 0.3, -0.2)
    back = pose_from_cam_to_world(pose.cam_to_world(target), target)
    for a, b in zip((back.yaw, back.pitch, back.roll, back.distance, back.tx, back.ty),
                    (pose.yaw, pose.pitch, pose.roll, pose.distance, pose.tx, pose.ty)):
        assert a == pytest.approx(b, abs=1e-9)


def test_mirrored_camera_sees_the_flipped_image(car):
    cam = Camera(150.0, 150.0, 70.0, 52.0, 128, 96,
                 Pose(0.7, 0.25, 0.1, 8.0, 0.4, 0.1).cam_to_world(np.array([0.0, 0.7, 0.0])))
    mirrored = mirrored_camera(cam)
    assert np.linalg.det(mirrored.cam_to_world[:3, :3]) == pytest.approx(1.0)
    # exact for points: X seen by the mirrored camera lands where P X lands in the original, flipped
    pts = np.random.default_rng(0).normal(size=(20, 3))
    uv_m, d_m = mirrored.project(pts)
    uv, d = cam.project(pts * np.array([-1.0, 1.0, 1.0]))
    assert np.allclose(uv_m[:, 0], cam.width - uv[:, 0]) and np.allclose(uv_m[:, 1], uv[:, 1])
    assert np.allclose(d_m, d)
    # and for the symmetric template the silhouettes are mirror images
    a = hard_mask(car.points, car.faces, cam, cam.width, cam.height)
    b = hard_mask(car.points, car.faces, mirrored, cam.width, cam.height)
    assert mask_iou(a[:, ::-1], b) > 0.97


@pytest.mark.parametrize("yaw_deg,pitch_deg", [(40.0, 12.0), (215.0, 25.0)])
def test_search_recovers_known_pose(car, yaw_deg, pitch_deg):
    width, height = 160, 120
    base = guess_intrinsics(width, height)
    pts = car.points.astype(np.float64)
    target = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
    pose = Pose(math.radians(yaw_deg), math.radians(pitch_deg), 0.0, 9.0, 0.2, -0.1)
    cam = Camera(base.fx, base.fy, base.cx, base.cy, width, height, pose.cam_to_world(target))
    mask = hard_mask(pts, car.faces, cam, width, height)
    est = search_camera(car, mask, yaw_steps=12, pitch_steps=3, hypotheses=2, refine_steps=25)
    yaw_err = abs((math.degrees(est.pose.yaw) - yaw_deg + 180.0) % 360.0 - 180.0)
    assert yaw_err < 10.0, est.alternatives  # includes the front/back choice
    assert abs(math.degrees(est.pose.pitch) - pitch_deg) < 7.0
    assert len(est.alternatives) >= 2 and est.alternatives[0]["loss"] <= est.alternatives[1]["loss"]
    fitted = hard_mask(pts * est.scale, car.faces, est.camera, width, height)
    assert mask_iou(fitted, mask) > 0.9
    assert (est.camera.width, est.camera.height) == (width, height)


def test_shape_modes_fit_the_proportions_of_another_car(car):
    """A car with a longer wheelbase, a higher hood and a longer roof: the modes recover them."""
    from dataclasses import replace

    from lift3d.templates.car import CarParams, car_geometry, car_shape_basis
    from lift3d.pipeline.wheels import wheels_from_points

    truth = replace(CarParams(), wheelbase=2.95, hood=0.68, roof_end=0.66, wheel_radius=0.36)
    pts = car_geometry(truth)[0]
    width, height = 192, 144
    mask = _silhouette(pts, car.faces, width, height, 60.0, 10.0, 9.0)
    shapes = {"sedan": car.points}
    plain = search_camera(car, mask, 12, 3, 1, 40, shapes=shapes)
    modes = search_camera(car, mask, 12, 3, 1, 40, shapes=shapes, bases={"sedan": car_shape_basis(car, "sedan")})

    def iou(est):
        return mask_iou(hard_mask(est.points, car.faces, est.camera, width, height), mask)

    assert iou(modes) > max(0.95, iou(plain))
    got = wheels_from_points(car.wheels, modes.points)
    assert abs((got.axle_z[0] - got.axle_z[1]) - truth.wheelbase) < abs(2.70 - truth.wheelbase)


def test_search_tells_a_two_wheeler_from_the_car_bodies(car):
    """A motorbike-like silhouette is matched by the two-wheeler body, a sedan's by a car body."""
    from lift3d.templates.car import BODY_SEARCH, car_shapes

    shapes = car_shapes(car)
    for truth in ("two_wheeler", "sedan"):
        pts = shapes[truth].astype(np.float64)
        mask = _silhouette(pts, car.faces, 160, 120, 50.0, 10.0, 3.0 * np.ptp(pts[:, 2]))
        est = search_camera(car, mask, yaw_steps=12, pitch_steps=2, hypotheses=2, refine_steps=20, shapes=shapes,
                            body_search=BODY_SEARCH)
        assert (est.shape == "two_wheeler") == (truth == "two_wheeler"), est.alternatives
        assert abs((math.degrees(est.pose.yaw) - 50.0 + 180.0) % 360.0 - 180.0) < 10.0


def test_scale_ranges_bound_the_refined_proportions(car):
    """The refined width and height scales stay inside the given ranges, which the free refinement leaves."""
    from dataclasses import replace

    from lift3d.templates.car import BodySearch, CarParams, car_geometry

    mask = _silhouette(car_geometry(replace(CarParams(), width=2.3, height=1.8))[0], car.faces, 160, 120,
                       40.0, 10.0, 10.0)
    shapes = {"sedan": car.points}
    free = search_camera(car, mask, 12, 2, 1, 30, shapes=shapes)
    held = search_camera(car, mask, 12, 2, 1, 30, shapes=shapes,
                         body_search={"sedan": BodySearch(((0.9, 1.0), (0.9, 1.0)))})

    def inside(est):
        return all(0.9 - 1e-6 <= v <= 1.0 + 1e-6 for v in est.scale[:2])

    assert not inside(free), free.scale  # a taller, wider car: the free proportions leave the range
    assert inside(held), held.scale
