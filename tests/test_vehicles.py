"""The procedural vehicle generator: determinism, valid symmetric meshes, ranges, every body type."""

import numpy as np
import pytest

from lift3d.templates.car import car_geometry
from lift3d.templates.vehicles import (BODY_TYPES, COMMON, PARAM_NAMES, body_vertex_count, car_params,
                                       sample_vehicle, vehicle_from_car_params, vehicle_points,
                                       vehicle_shape_basis)


@pytest.fixture(scope="module")
def template():
    from lift3d.settings import load_settings
    from lift3d.templates import load_template

    return load_template(load_settings().template_path("car"))


def test_same_seed_same_vehicle_and_different_seeds_differ(template):
    a = sample_vehicle(np.random.default_rng(7))
    b = sample_vehicle(np.random.default_rng(7))
    c = sample_vehicle(np.random.default_rng(8))
    assert a.as_dict() == b.as_dict()
    np.testing.assert_array_equal(vehicle_points(a, template), vehicle_points(b, template))
    assert a.as_dict() != c.as_dict()


@pytest.mark.parametrize("body_type", list(BODY_TYPES))
def test_every_body_type_gives_valid_symmetric_vehicles_in_range(template, body_type):
    rng = np.random.default_rng(3)
    ranges = {**COMMON, **BODY_TYPES[body_type]}
    for _ in range(5):
        vehicle = sample_vehicle(rng, body_type)
        assert vehicle.body_type == body_type
        for name in PARAM_NAMES:
            low, high = ranges[name]
            assert low <= vehicle.params[name] <= high
        points = vehicle_points(vehicle, template)
        assert points.shape == template.points.shape and np.isfinite(points).all()
        # left-right symmetric, vertex for vertex, under the template's mirror map
        np.testing.assert_allclose(points[template.mirror], points * np.array([-1.0, 1.0, 1.0]), atol=1e-5)
        p = vehicle.car_params()
        extent = points[:body_vertex_count(p)].max(axis=0) - points[:body_vertex_count(p)].min(axis=0)
        assert extent[2] == pytest.approx(vehicle.params["length"], rel=0.02)
        assert extent[1] + p.clearance >= 0.9 * vehicle.params["height"]
        assert extent[1] <= 1.05 * vehicle.params["height"]
        # wheels: round and standing on the ground plane
        for side in np.concatenate([template.wheels.left, template.wheels.right]):
            tyre = points[side]
            assert tyre[:, 1].min() == pytest.approx(0.0, abs=1e-6)
            centre = 0.5 * (tyre.min(axis=0) + tyre.max(axis=0))
            radius = np.hypot(tyre[:, 1] - centre[1], tyre[:, 2] - centre[2]).max()
            assert tyre[:, 1].max() - tyre[:, 1].min() == pytest.approx(2 * radius, rel=1e-3)
            assert tyre[:, 2].max() - tyre[:, 2].min() == pytest.approx(2 * radius, rel=1e-3)


def test_shares_select_the_body_types():
    rng = np.random.default_rng(0)
    drawn = {sample_vehicle(rng, shares={"bus": 1.0, "sedan": 0.0}).body_type for _ in range(20)}
    assert drawn == {"bus"}
    drawn = {sample_vehicle(rng).body_type for _ in range(400)}
    assert drawn == set(BODY_TYPES)  # every body type is reachable with the default shares
    with pytest.raises(ValueError):
        sample_vehicle(rng, shares={"sedan": 0.0})
    with pytest.raises(ValueError):
        sample_vehicle(rng, "spaceship")


def test_tractor_rear_tyres_are_larger_and_two_wheeler_tyres_meet_on_the_centre_line(template):
    rng = np.random.default_rng(1)
    tractor = vehicle_points(sample_vehicle(rng, "tractor"), template)
    front, rear = template.wheels.left
    assert np.ptp(tractor[rear][:, 1]) > 1.4 * np.ptp(tractor[front][:, 1])
    bike = vehicle_points(sample_vehicle(rng, "two_wheeler"), template)
    left, right = bike[template.wheels.left[0]], bike[template.wheels.right[0]]
    assert left[:, 0].min() == pytest.approx(0.0, abs=1e-5) and right[:, 0].max() == pytest.approx(0.0, abs=1e-5)


def test_default_car_params_reproduce_the_stored_template(template):
    """The generator's new parameters default to the shape the template was made with."""
    from lift3d.templates.car import template_car_params

    points = car_geometry(template_car_params(template))[0]
    np.testing.assert_allclose(points, template.points, atol=1e-5)


def test_car_params_keep_any_regression_output_valid(template):
    wild = {name: v for name, v in zip(PARAM_NAMES, np.random.default_rng(2).uniform(-5, 5, len(PARAM_NAMES)))}
    p = car_params(wild)
    stations = [p.rear_window_base, p.roof_start, p.roof_end, p.windscreen_base]
    assert all(0.03 < s < 0.96 for s in stations) and stations == sorted(stations)
    vehicle = vehicle_from_car_params("sedan", p)
    assert np.isfinite(vehicle_points(vehicle, template)).all()


def test_shape_basis_is_the_derivative_of_the_generator(template):
    vehicle = sample_vehicle(np.random.default_rng(4), "suv")
    basis = vehicle_shape_basis(vehicle, template)
    from lift3d.templates.car import SHAPE_MODES

    assert basis.shape == (len(SHAPE_MODES), *template.points.shape)
    k = list(SHAPE_MODES).index("clearance")
    moved = dict(vehicle.params, clearance=vehicle.params["clearance"] + 0.01 * SHAPE_MODES["clearance"])
    from dataclasses import replace

    diff = vehicle_points(replace(vehicle, params=moved), template) - vehicle_points(vehicle, template)
    np.testing.assert_allclose(diff, 0.01 * basis[k], atol=2e-4)
