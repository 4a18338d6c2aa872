"""``lift3d train --assets``: reading a user's vehicle files, registering them to the car template,
fitting generator parameters, and mixing their renders into the training data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lift3d.errors import InputError
from lift3d.learn.assets import (RegisteredShape, canonical_frame, find_assets, fit_vehicle, load_mesh,
                                 register_asset)
from lift3d.templates.vehicles import sample_vehicle, vehicle_points

TINY_PRESET = """[presets.tiny]
levels = [48]
steps = [12]
camera_yaw_steps = 4
camera_pitch_steps = 1
camera_hypotheses = 1
camera_refine_steps = 0
texture_size = 32
photometric_steps = 0
sigma = 1.0
"""


@pytest.fixture(scope="module")
def template():
    from lift3d.settings import load_settings
    from lift3d.templates import load_template

    return load_template(load_settings().template_path("car"))


@pytest.fixture(scope="module")
def suv(template):
    vehicle = sample_vehicle(np.random.default_rng(5), body_type="suv")
    return vehicle, vehicle_points(vehicle, template)


def _write_obj(path: Path, points: np.ndarray, faces: np.ndarray) -> Path:
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in points]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_usd(path: Path, points: np.ndarray, faces: np.ndarray, up: str, meters_per_unit: float,
               translate: tuple[float, float, float]) -> Path:
    from pxr import Gf, Usd, UsdGeom

    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z if up == "Z" else UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, meters_per_unit)
    root = UsdGeom.Xform.Define(stage, "/Car")
    root.AddTranslateOp().Set(Gf.Vec3d(*translate))
    mesh = UsdGeom.Mesh.Define(stage, "/Car/Body")
    mesh.CreatePointsAttr([Gf.Vec3f(*map(float, p)) for p in points])
    mesh.CreateFaceVertexCountsAttr([3] * len(faces))
    mesh.CreateFaceVertexIndicesAttr([int(i) for i in faces.ravel()])
    hidden = UsdGeom.Mesh.Define(stage, "/Car/Hidden")  # invisible prims are not part of the vehicle
    hidden.CreatePointsAttr([Gf.Vec3f(0, 0, 0), Gf.Vec3f(1000, 0, 0), Gf.Vec3f(0, 1000, 0)])
    hidden.CreateFaceVertexCountsAttr([3])
    hidden.CreateFaceVertexIndicesAttr([0, 1, 2])
    hidden.CreateVisibilityAttr(UsdGeom.Tokens.invisible)
    stage.SetDefaultPrim(root.GetPrim())
    stage.GetRootLayer().Save()
    return path


def test_obj_and_usd_files_come_out_in_the_canonical_frame(template, suv, tmp_path):
    _, points = suv
    expected = canonical_frame(points)
    got, faces = load_mesh(_write_obj(tmp_path / "suv.obj", points + [0.5, 0.2, -1.0], template.faces))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert faces.shape == template.faces.shape
    import trimesh  # glTF binary through trimesh: a node transform is applied

    scene = trimesh.Scene()
    scene.add_geometry(trimesh.Trimesh(points, template.faces, process=False),
                       transform=trimesh.transformations.translation_matrix([1.0, 2.0, 3.0]))
    (tmp_path / "suv.glb").write_bytes(scene.export(file_type="glb"))
    got, _ = load_mesh(tmp_path / "suv.glb")
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # a Z-up stage in centimetres, moved by its transform: front -Y there, so +Z here
    z_up_cm = np.stack([points[:, 0], -points[:, 2], points[:, 1]], axis=1) * 100.0
    got, _ = load_mesh(_write_usd(tmp_path / "suv.usda", z_up_cm, template.faces, "Z", 0.01, (30.0, 40.0, 50.0)))
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("case", ["garbage_usda", "garbage_glb", "empty_obj", "centimetres_obj"])
def test_a_bad_asset_file_is_one_clear_error(case, suv, template, tmp_path):
    _, points = suv
    path = {"garbage_usda": tmp_path / "car.usda", "garbage_glb": tmp_path / "car.glb",
            "empty_obj": tmp_path / "car.obj", "centimetres_obj": tmp_path / "car.obj"}[case]
    if case == "garbage_usda":
        path.write_text("#usda 1.0\ndef Mesh \"Body\" { point3f[] points = [(0, 0, \n")
    elif case == "garbage_glb":
        path.write_bytes(b"glTF\x02\x00\x00\x00" + bytes(range(200)))
    elif case == "empty_obj":
        path.write_text("# nothing here\n")
    else:
        _write_obj(path, points * 100.0, template.faces)
    with pytest.raises(InputError) as info:
        load_mesh(path)
    assert str(path.name) in str(info.value) and "\n" not in str(info.value)


def test_cli_train_with_a_corrupt_asset_exits_2_with_one_line(tmp_path, capsys):
    from lift3d.cli import main

    folder = tmp_path / "vehicles"
    folder.mkdir()
    (folder / "broken.usdc").write_bytes(b"PXR-USDC" + b"\x00" * 40)
    code = main(["train", "--quick", "--assets", str(folder), "--out", str(tmp_path / "m.safetensors"),
                 "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("lift3d: error:") and "broken.usdc" in err[0]
    assert not (tmp_path / "m.safetensors").exists()
    (folder / "broken.usdc").unlink()
    with pytest.raises(InputError, match="holds no"):
        find_assets(folder)


def test_the_parameter_fit_recovers_body_type_and_size(template, suv):
    vehicle, points = suv
    fitted, residual, errors = fit_vehicle(points, template, body_types=("sedan", "suv", "van"))
    assert fitted.body_type == "suv" and set(errors) == {"sedan", "suv", "van"}
    assert residual < 0.05 and residual == min(errors.values())
    for name in ("length", "width", "height", "wheel_radius"):
        assert fitted.params[name] == pytest.approx(vehicle.params[name], rel=0.03)


def test_registration_through_the_multi_view_fit_is_cached(template, suv, tmp_path, monkeypatch):
    vehicle, points = suv
    folder = tmp_path / "vehicles"
    folder.mkdir()
    path = _write_obj(folder / "my_suv.obj", points, template.faces)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_PRESET)
    types = ("sedan", "suv", "van", "bus")
    shape = register_asset(path, template, tmp_path / "cache", preset="tiny", config=config, body_types=types)
    assert shape.points.shape == template.points.shape and shape.fit_iou > 0.85 and not shape.reversed
    assert shape.vehicle.body_type in ("suv", "van")
    assert shape.vehicle.params["length"] == pytest.approx(vehicle.params["length"], rel=0.1)
    extent = shape.points.max(axis=0) - shape.points.min(axis=0)
    assert extent[2] == pytest.approx(np.ptp(points[:, 2]), rel=0.08) and abs(shape.points[:, 1].min()) < 1e-9
    assert shape.summary()["residual_m"] == round(shape.residual_m, 4)
    # a second run reads the cache: no fit at all
    import lift3d.learn.assets as assets

    monkeypatch.setattr(assets, "register_mesh", lambda *a, **k: pytest.fail("registered again"))
    again = register_asset(path, template, tmp_path / "cache", preset="tiny", config=config, body_types=types)
    np.testing.assert_array_equal(again.points, shape.points)
    assert again.vehicle.params == pytest.approx(shape.vehicle.params) and again.residual_m == shape.residual_m


def test_the_dataset_mixes_in_rendered_asset_samples(template, suv, tmp_path):
    from lift3d.learn.data import BODY_NAMES, build_dataset, normalise

    vehicle, points = suv
    shape = RegisteredShape("my_suv.obj", "0" * 64, canonical_frame(points), vehicle, 0.01, 0.95)
    plain = build_dataset(template, 12, 32, seed=3, cache_dir=tmp_path)
    mixed = build_dataset(template, 12, 32, seed=3, cache_dir=tmp_path, assets=[shape], asset_share=0.5)
    assert "asset" not in plain and len(list(tmp_path.glob("synth_*.npz"))) == 2
    ours = mixed["asset"] == 0
    assert 0 < ours.sum() < 12
    assert (mixed["body"][ours] == BODY_NAMES.index("suv")).all()
    np.testing.assert_allclose(mixed["params"][ours], normalise(BODY_NAMES.index("suv"), vehicle.params)[None]
                               .repeat(ours.sum(), 0))
    assert (mixed["mask"][ours].reshape(ours.sum(), -1).max(axis=1) == 255).all()
    for key in plain:  # the procedural samples are those of the procedural-only dataset
        np.testing.assert_array_equal(mixed[key][~ours], plain[key][~ours])
    again = build_dataset(template, 12, 32, seed=3, cache_dir=tmp_path, assets=[shape], asset_share=0.5)
    np.testing.assert_array_equal(again["rgb"], mixed["rgb"])


def test_training_with_assets_from_a_start_model_records_them(template, suv, tmp_path):
    import torch

    from lift3d.learn.model import Architecture, Predictor, load_model, save_model
    from lift3d.learn.train import TrainOptions, train

    vehicle, points = suv
    shape = RegisteredShape("my_suv.obj", "1" * 64, canonical_frame(points), vehicle, 0.02, 0.9)
    torch.manual_seed(0)
    start = save_model(Predictor(Architecture(input_size=32, widths=(8, 16), hidden=32)), tmp_path / "s.safetensors",
                       {"seed": 0})
    options = TrainOptions(samples=16, val_samples=4, steps=2, batch=4, input_size=32, asset_share=0.5,
                           init_from=str(start))
    card = train(template, tmp_path / "m.safetensors", options, tmp_path / "cache", assets=[shape])
    assert card["data"]["assets"][0]["name"] == "my_suv.obj" and card["data"]["asset_samples"] > 0
    assert card["data"]["assets"][0]["residual_m"] == 0.02 and card["options"]["init_from"] == str(start)
    model, _ = load_model(tmp_path / "m.safetensors")
    assert model.arch.widths == (8, 16)  # the start model's architecture
    with pytest.raises(InputError, match="input"):
        train(template, tmp_path / "n.safetensors", TrainOptions(samples=16, val_samples=4, steps=1, batch=4,
                                                                 input_size=64, init_from=str(start)))
