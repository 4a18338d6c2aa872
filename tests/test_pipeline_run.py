"""End to end: run_reconstruction on tiny synthetic photos, cancellation, and bad input."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
from PIL import Image

from lift3d.api import CancelToken, ReconstructRequest
from lift3d.camera import orbit_camera
from lift3d.errors import Cancelled, ConfigError, InputError
from lift3d.kernels.raster import rasterize
from lift3d.pipeline.run import run_reconstruction
from lift3d.templates.car import CarParams
from make_templates import car_template, generic_template
from lift3d.usd.checker import check_asset
from lift3d.usd.reader import read_asset

TINY = """
[presets.tiny]
levels = [32, 64]
steps = [8, 6]
camera_yaw_steps = 8
camera_pitch_steps = 2
camera_hypotheses = 1
camera_refine_steps = 8
texture_size = 64
photometric_steps = 2
sigma = 1.0
"""

COLOURS = np.array([[0.7, 0.1, 0.1], [0.2, 0.3, 0.5], [0.9, 0.9, 0.8], [0.9, 0.9, 0.8], [0.9, 0.2, 0.2],
                    [0.9, 0.2, 0.2], [0.05, 0.05, 0.05], [0.05, 0.05, 0.05], [0.05, 0.05, 0.05], [0.05, 0.05, 0.05]])


def _render_png(path, points, faces, face_part, camera) -> np.ndarray:
    tri = rasterize(points, faces, camera, camera.width, camera.height, device="cpu").tri_id.numpy()
    rgba = np.zeros(tri.shape + (4,), dtype=np.uint8)
    hit = tri >= 0
    rgba[hit, :3] = (COLOURS[face_part[tri[hit]] % len(COLOURS)] * 255).astype(np.uint8)
    rgba[hit, 3] = 255
    Image.fromarray(rgba, "RGBA").save(path)
    return hit


@pytest.fixture(scope="module")
def settings_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def car_photo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photo")
    target = car_template(CarParams(height=1.55, width=1.85))
    cam = orbit_camera(math.radians(50.0), math.radians(12.0), 8.0, math.radians(45.0), 96, 72,
                       target=np.array([0.0, 0.75, 0.0]))
    _render_png(folder / "my car.png", target.points, target.faces, target.face_part, cam)
    return folder / "my car.png"


def test_single_photo_car_writes_a_valid_asset(car_photo, settings_file, tmp_path):
    stages = []
    result = run_reconstruction(ReconstructRequest(images=[car_photo], category="car", preset="tiny",
                                                   out_dir=tmp_path / "out", stage=tmp_path / "stage.usda",
                                                   config=settings_file),
                                progress=lambda stage, f: stages.append((stage, f)))
    assert result.name == "my_car"
    assert result.asset_path == tmp_path / "out" / "my_car" / "my_car.usda"
    assert check_asset(result.asset_path) == []
    assert result.metrics["input_view_iou"] > 0.85
    assert result.prim_path == "/World/Reconstructions/my_car"
    assert set(result.timings) == {"load", "mask", "camera", "shape", "texture", "write"}
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    asset = read_asset(result.asset_path)
    labels = {p.label for p in asset.parts}
    assert labels == {"body", "window", "headlight", "taillight", "wheel"}
    assert asset.texture is not None and asset.texture.shape[:2] == (64, 64)
    cam = asset.cameras[0]
    assert (cam.width, cam.height) == (96, 72)  # the ORIGINAL photo's size
    assert result.cameras[0]["width"] == 96 and len(result.cameras[0]["cam_to_world"]) == 4
    prov = asset.provenance
    assert len(prov["sources"][0]["sha256"]) == 64 and prov["preset"] == "tiny"
    assert prov["metrics"]["input_view_iou"] == pytest.approx(result.metrics["input_view_iou"])
    assert len(prov["camera"]["alternatives"]) >= 2
    json.dumps(result.to_json())


def test_baseline_without_shape_fit_and_generic_category(settings_file, tmp_path):
    ball = generic_template(2, size=0.8)
    cam = orbit_camera(math.radians(30.0), math.radians(10.0), 2.5, math.radians(45.0), 64, 64,
                       target=np.array([0.0, 0.4, 0.0]))
    photo = tmp_path / "ball.png"
    _render_png(photo, ball.points * np.array([1.0, 0.8, 1.0]), ball.faces, ball.face_part, cam)
    fitted = run_reconstruction(ReconstructRequest(images=[photo], category="generic", preset="tiny",
                                                   out_dir=tmp_path / "a", config=settings_file))
    plain = run_reconstruction(ReconstructRequest(images=[photo], category="generic", preset="tiny", name="plain",
                                                  out_dir=tmp_path / "b", config=settings_file, fit_shape=False))
    assert check_asset(fitted.asset_path) == [] and check_asset(plain.asset_path) == []
    assert fitted.metrics["input_view_iou"] > 0.9
    assert [p.label for p in read_asset(plain.asset_path).parts] == ["object"]


def test_calibrated_views_reconstruct_in_the_world_frame(settings_file, tmp_path):
    car = car_template()
    shift = np.array([0.5, 0.0, -0.3])
    frames = []
    for i, yaw in enumerate([45.0, 135.0, 270.0]):
        cam = orbit_camera(math.radians(yaw), math.radians(15.0), 8.0, math.radians(45.0), 64, 64,
                           target=np.array([0.0, 0.7, 0.0]) + shift)
        _render_png(tmp_path / f"v{i}.png", car.points + shift, car.faces, car.face_part, cam)
        frames.append({"file_path": f"v{i}.png", "transform_matrix": cam.cam_to_world.tolist()})
    (tmp_path / "transforms.json").write_text(json.dumps({"camera_angle_x": math.radians(45.0), "frames": frames}))
    result = run_reconstruction(ReconstructRequest(images=[tmp_path / f"v{i}.png" for i in range(3)],
                                                   views=tmp_path / "transforms.json", category="car",
                                                   preset="tiny", out_dir=tmp_path / "out", config=settings_file))
    assert result.metrics["input_view_iou"] > 0.85
    asset = read_asset(result.asset_path)
    centre = 0.5 * (asset.points.min(axis=0) + asset.points.max(axis=0))
    assert np.abs(centre[[0, 2]] - shift[[0, 2]]).max() < 0.3  # in the cameras' world frame
    assert len(asset.cameras) == 3
    assert np.allclose(asset.cameras[0].cam_to_world, np.array(frames[0]["transform_matrix"]), atol=1e-5)


def test_cancel_stops_within_a_step_and_leaves_nothing(car_photo, settings_file, tmp_path):
    token = CancelToken()
    calls_after_cancel = []

    def progress(stage, fraction):
        if token.cancelled:
            calls_after_cancel.append(stage)
        elif stage == "shape" and fraction > 0.3:
            token.cancel()

    with pytest.raises(Cancelled):
        run_reconstruction(ReconstructRequest(images=[car_photo], preset="tiny", out_dir=tmp_path / "out",
                                              config=settings_file), progress=progress, cancel=token)
    assert len(calls_after_cancel) <= 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cancel_from_another_thread(car_photo, settings_file, tmp_path):
    token = CancelToken()
    threading.Timer(0.0, token.cancel).start()
    threading.Event().wait(0.05)
    with pytest.raises(Cancelled):
        run_reconstruction(ReconstructRequest(images=[car_photo], preset="tiny", out_dir=tmp_path / "out",
                                              config=settings_file), cancel=token)
    assert not (tmp_path / "out").exists()


def _bad_requests(tmp_path, car_photo, settings_file):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((32, 32, 4), dtype=np.uint8), "RGBA").save(empty)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    out = tmp_path / "out"
    return [
        ReconstructRequest(images=[], out_dir=out, config=settings_file),
        ReconstructRequest(images=[garbage], out_dir=out, config=settings_file, preset="tiny"),
        ReconstructRequest(images=[tmp_path / "missing.png"], out_dir=out, config=settings_file, preset="tiny"),
        ReconstructRequest(images=[empty], out_dir=out, config=settings_file, preset="tiny"),
        ReconstructRequest(images=[car_photo], category="boat", out_dir=out, config=settings_file),
        ReconstructRequest(images=[car_photo], preset="ultra", out_dir=out, config=settings_file),
        ReconstructRequest(images=[car_photo], out_dir=blocker / "sub", config=settings_file, preset="tiny"),
        ReconstructRequest(images=[car_photo], views=bad_json, out_dir=out, config=settings_file, preset="tiny"),
        ReconstructRequest(images=[car_photo], views=tmp_path / "none.json", out_dir=out, config=settings_file,
                           preset="tiny"),
        ReconstructRequest(images=[car_photo, car_photo], out_dir=out, config=settings_file, preset="tiny"),
    ]


def test_bad_input_raises_input_error_and_writes_nothing(car_photo, settings_file, tmp_path):
    for request in _bad_requests(tmp_path, car_photo, settings_file):
        with pytest.raises(InputError) as info:
            run_reconstruction(request)
        message = str(info.value)
        assert message and "\n" not in message
        assert not (tmp_path / "out").exists(), request
    with pytest.raises(ConfigError):
        run_reconstruction(ReconstructRequest(images=[car_photo], category="boat", config=settings_file))


def test_failed_stage_add_keeps_the_asset_it_would_have_replaced(car_photo, settings_file, tmp_path, monkeypatch):
    """Re-running with the same ``--name`` into a stage that refuses the reference loses nothing."""
    import lift3d.pipeline.run as run_module

    request = dict(images=[car_photo], category="car", preset="tiny", name="car", out_dir=tmp_path / "out",
                   config=settings_file)
    first = run_reconstruction(ReconstructRequest(**request))
    before = first.asset_path.read_bytes()

    def refuse(stage, asset_path, source):
        assert asset_path.exists()  # the new asset is in place while the stage is edited
        raise InputError("stage is locked by another writer")

    monkeypatch.setattr(run_module, "_add_to_stage", refuse)
    with pytest.raises(InputError, match="locked"):
        run_reconstruction(ReconstructRequest(**request, stage=tmp_path / "stage.usda"))
    assert first.asset_path.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["car"]
