"""Template invariants: symmetry, parts, atlas, closed surfaces, wheel rig, and the stored USD files."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lift3d.templates.car import CarParams
from make_templates import car_template, generic_template
from lift3d.templates import WHEEL_NAMES, Template


@pytest.fixture(scope="module")
def car() -> Template:
    return car_template()


@pytest.fixture(scope="module")
def generic() -> Template:
    return generic_template(4)


def _edge_counts(faces: np.ndarray) -> np.ndarray:
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return counts


def _volume(points: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = points[faces[:, 0]], points[faces[:, 1]], points[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


@pytest.mark.parametrize("name", ["car", "generic"])
def test_mirror_is_an_involution_onto_reflections(name, car, generic):
    t = car if name == "car" else generic
    assert np.array_equal(t.mirror[t.mirror], np.arange(len(t.points)))
    reflected = t.points * np.array([-1.0, 1.0, 1.0], dtype=np.float32)
    assert np.abs(t.points[t.mirror] - reflected).max() < 1e-5
    on_plane = t.mirror == np.arange(len(t.points))
    assert np.all(np.abs(t.points[on_plane, 0]) < 1e-6)
    # the independent half plus the mirror images of its off-plane vertices covers everything
    assert set(t.half.tolist()) | set(t.mirror[t.half].tolist()) == set(range(len(t.points)))


@pytest.mark.parametrize("name", ["car", "generic"])
def test_parts_partition_faces_and_uvs_in_unit_square(name, car, generic):
    t = car if name == "car" else generic
    assert t.face_part.shape == (len(t.faces),)
    assert t.face_part.min() >= 0 and t.face_part.max() == len(t.part_names) - 1
    for i in range(len(t.part_names)):
        assert np.any(t.face_part == i), t.part_names[i]
    assert t.uv_faces.shape == t.faces.shape
    assert t.uv.min() >= 0.0 and t.uv.max() <= 1.0
    # the atlas is not degenerate: UV triangles have area
    tri = t.uv[t.uv_faces]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    assert np.mean(area > 0) > 0.99


def test_car_frame_size_and_part_labels(car):
    lo, hi = car.points.min(axis=0), car.points.max(axis=0)
    assert hi[2] - lo[2] == pytest.approx(4.5, abs=1e-3)
    assert lo[1] == pytest.approx(0.0, abs=1e-4)  # tyres touch the ground
    assert abs(lo[0] + hi[0]) < 1e-5 and abs(lo[2] + hi[2]) < 1e-5
    assert set(car.part_labels) == {"body", "window", "headlight", "taillight", "wheel"}
    assert car.part_labels.count("headlight") == 2 and car.part_labels.count("taillight") == 2
    for name in WHEEL_NAMES:
        assert car.part_labels[car.part_names.index(name)] == "wheel"
    cent = car.points[car.faces].mean(axis=1)
    head, tail = car.faces_with_label("headlight"), car.faces_with_label("taillight")
    assert cent[head, 2].min() > 1.8 and cent[tail, 2].max() < -1.8  # front is +Z
    fl = cent[car.part_faces("wheel_fl")].mean(axis=0)
    assert fl[0] > 0.5 and fl[2] > 1.0  # front-left wheel: +X, +Z
    # lamps and wheels come in mirror pairs: same face counts on both sides
    assert len(car.part_faces("headlight_l")) == len(car.part_faces("headlight_r"))
    assert len(car.part_faces("wheel_fl")) == len(car.part_faces("wheel_fr"))
    assert 2000 <= len(car.faces) <= 4500


def test_closed_outward_surfaces(car, generic):
    assert np.all(_edge_counts(generic.faces) == 2)
    assert _volume(generic.points, generic.faces) == pytest.approx(4 / 3 * np.pi * 0.5 ** 3, rel=0.03)
    for i, name in enumerate(car.part_names):
        if name.startswith("wheel"):
            faces = car.faces[car.face_part == i]
            assert np.all(_edge_counts(faces) == 2), name
            assert _volume(car.points, faces) > 0, name
    body = car.faces[~np.isin(car.face_part, [car.part_names.index(n) for n in WHEEL_NAMES])]
    assert np.all(_edge_counts(body) == 2)
    vol = _volume(car.points, body)
    assert 0.5 * 4.5 * 1.8 * 1.45 < vol < 4.5 * 1.8 * 1.45


def test_wheel_rig_rebuilds_the_wheels(car):
    rig = car.wheels
    assert rig is not None
    pts = rig.points(rig.axle_z, rig.radius, rig.track, rig.width)
    idx = np.concatenate([rig.left, rig.right])
    assert np.abs(pts - car.points[idx]).max() < 1e-5
    assert np.array_equal(car.mirror[rig.left], rig.right)
    # a bigger radius keeps the tyres on the ground and round
    big = rig.points(rig.axle_z, 0.4, rig.track, rig.width)
    assert big[..., 1].min() == pytest.approx(0.0, abs=1e-6)
    centre = big[0].mean(axis=0)
    r = np.hypot(big[0, :, 1] - 0.4, big[0, :, 2] - rig.axle_z[0])
    assert r.max() == pytest.approx(0.4, rel=1e-5) and centre[0] > 0


def test_car_parameters_change_the_shape():
    tall = car_template(CarParams(height=1.9, length=5.0))
    assert tall.points[:, 1].max() == pytest.approx(1.9, abs=1e-3)
    assert np.ptp(tall.points[:, 2]) == pytest.approx(5.0, abs=1e-3)


def test_stored_templates_load_back_equal_to_the_generator(car, generic):
    from lift3d.settings import load_settings
    from lift3d.templates import load_template

    settings = load_settings()
    for fresh, category in ((car, "car"), (generic, "generic")):
        stored = load_template(settings.template_path(category))
        assert stored.name == fresh.name and stored.symmetric == fresh.symmetric
        assert np.abs(stored.points - fresh.points).max() < 1e-5
        assert np.array_equal(stored.faces, fresh.faces)
        assert stored.part_names == fresh.part_names and stored.part_labels == fresh.part_labels
        assert np.array_equal(stored.face_part, fresh.face_part)
        assert np.array_equal(stored.mirror, fresh.mirror)
        assert stored.uv_faces.shape == stored.faces.shape and 0.0 <= stored.uv.min() <= stored.uv.max() <= 1.0
    rig = load_template(settings.template_path("car")).wheels
    assert rig is not None and np.array_equal(rig.left, car.wheels.left) and rig.radius == car.wheels.radius


def test_shape_basis_is_the_generators_derivative(car):
    from dataclasses import replace

    from lift3d.templates.car import BODY_SHAPES, SHAPE_MODES, car_geometry, car_shape_basis, car_shapes

    names = list(SHAPE_MODES)
    for shape in ("sedan", "van"):
        basis = car_shape_basis(car, shape)
        assert basis.shape == (len(SHAPE_MODES), *car.points.shape)
        base_params = replace(CarParams(), **BODY_SHAPES[shape])
        base = car_shapes(car)[shape].astype(np.float64)
        for name in ("wheelbase", "wheel_radius", "hood"):  # wheels move linearly, the body nearly so
            k = names.index(name)
            step = 0.5 * SHAPE_MODES[name]
            moved = car_geometry(replace(base_params, **{name: getattr(base_params, name) + step}))[0]
            assert np.abs(base + 0.5 * basis[k] - moved).max() < 0.01
            assert np.abs(basis[k]).max() > 0.02  # every mode really moves the mesh
    # the wheel modes move only the wheels, rigidly along z for the wheelbase
    basis = car_shape_basis(car, "sedan")
    wheels = car.wheel_vertices
    body = np.setdiff1d(np.arange(len(car.points)), wheels)
    wb = basis[names.index("wheelbase")]
    assert np.abs(wb[body]).max() < 1e-9
    front, rear = car.wheels.left[0], car.wheels.left[1]
    assert np.allclose(wb[front], [0.0, 0.0, 0.5 * SHAPE_MODES["wheelbase"]], atol=1e-6)
    assert np.allclose(wb[rear], [0.0, 0.0, -0.5 * SHAPE_MODES["wheelbase"]], atol=1e-6)


def test_two_wheeler_pairs_its_tyres_on_the_centre_line(car):
    """The two-wheeler body keeps the four tyres; each axle's pair sits side by side as one tyre."""
    from lift3d.templates.car import car_shapes

    pts = car_shapes(car)["two_wheeler"].astype(np.float64)
    rig = car.wheels
    for left, right in zip(rig.left, rig.right):
        lx, rx = pts[left, 0], pts[right, 0]
        assert lx.min() == pytest.approx(0.0, abs=1e-6) and rx.max() == pytest.approx(0.0, abs=1e-6)
        assert np.allclose(np.sort(lx), np.sort(-rx), atol=1e-6)  # mirror images, touching, not overlapping
        assert np.allclose(pts[left, 1:].mean(axis=0), pts[right, 1:].mean(axis=0), atol=1e-9)
    body = np.setdiff1d(np.arange(len(pts)), car.wheel_vertices)
    assert np.ptp(pts[body, 0]) < 0.6 * np.ptp(car.points[:, 0])  # a narrow body, not a car's
    assert np.ptp(pts[:, 2]) < 0.6 * np.ptp(car.points[:, 2])


def test_wheels_measured_from_points_rebuild_them(car):
    from lift3d.pipeline.wheels import TorchWheels, WheelParams, wheels_from_points

    truth = WheelParams((1.5, -1.2), 0.38, 1.5, 0.25)
    rig = car.wheels
    pts = car.points.astype(np.float64).copy()
    pts[np.concatenate([rig.left.ravel(), rig.right.ravel()])] = rig.points(
        np.array(truth.axle_z), truth.radius, truth.track, truth.width).reshape(-1, 3)
    got = wheels_from_points(rig, pts)
    assert np.allclose(got.axle_z, truth.axle_z, atol=1e-6)
    assert got.radius == pytest.approx(truth.radius, abs=1e-6)
    assert got.track == pytest.approx(truth.track, abs=1e-6)
    assert got.width == pytest.approx(truth.width, abs=1e-6)
    wheels = TorchWheels(rig, start=got)
    assert np.abs(wheels().detach().numpy().reshape(-1, 3) - pts[wheels.indices()]).max() < 1e-6


def test_windowless_parts_merge_the_windows_into_the_body(car):
    from lift3d.pipeline.texture import parts_of

    with_glass, materials = parts_of(car)
    without, materials_without = parts_of(car, glass=False)
    names = {p.name: p for p in with_glass}
    merged = {p.name: p for p in without}
    assert "window" in names and "window" not in merged and "glass" in materials and "glass" not in materials_without
    assert set(merged["body"].faces) == set(names["body"].faces) | set(names["window"].faces)
    assert sorted(np.concatenate([p.faces for p in without])) == list(range(len(car.faces)))  # still a partition


def test_mirror_map_pairs_reflections_and_rejects_asymmetry():
    from lift3d.templates.model import mirror_map

    rng = np.random.default_rng(3)
    half = rng.uniform(0.05, 1.0, size=(1500, 3))  # more than one block of the search
    centre = np.column_stack([np.zeros(40), rng.uniform(size=(40, 2))])
    points = np.vstack([half, half * [-1.0, 1.0, 1.0], centre])
    order = rng.permutation(len(points))
    points = points[order]
    mirror = mirror_map(points)
    assert np.allclose(points[mirror] * [-1.0, 1.0, 1.0], points)
    assert np.array_equal(mirror[mirror], np.arange(len(points)))
    points[0, 0] += 0.01
    with pytest.raises(ValueError, match="1 vertices|2 vertices"):
        mirror_map(points)


def test_interp_rows_matches_numpy_interp_row_by_row():
    from lift3d.templates.car import _interp_rows

    rng = np.random.default_rng(4)
    xp = np.cumsum(rng.uniform(0.0, 2.0, size=(6, 30)), axis=1)  # increasing, with repeats allowed
    xp[:, 5] = xp[:, 4]
    fp = rng.normal(size=(6, 30))
    x = rng.uniform(xp[:, :1] - 1.0, xp[:, -1:] + 1.0, size=(6, 12))  # also outside each row's range
    expected = np.stack([np.interp(x[i], xp[i], fp[i]) for i in range(6)])
    assert np.allclose(_interp_rows(x, xp, fp), expected, atol=1e-9)


def test_car_points_are_car_geometry_without_labels():
    from lift3d.templates.car import BODY_SHAPES, CarParams, car_geometry, car_points

    for overrides in BODY_SHAPES.values():
        p = replace(CarParams(), **overrides)
        points, faces, names, _ = car_geometry(p)
        cheap_points, cheap_faces = car_points(p)
        assert np.array_equal(points, cheap_points) and np.array_equal(faces, cheap_faces)
        assert len(names) == len(faces) and {"body", "window", "wheel_fl"} <= set(names)
