"""Reconstruction from the learned predictor: hypothesis -> template, --init choices, provenance, bad models."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest
import torch

from lift3d.api import ReconstructRequest
from lift3d.errors import InputError
from lift3d.learn.model import Architecture, ModelError, Predictor, save_model
from lift3d.learn.predict import Hypothesis, place
from lift3d.pipeline.initialise import SEARCH_SKIP_LOSS
from lift3d.pipeline.run import run_reconstruction
from lift3d.pipeline.silhouette import hard_mask, mask_iou
from lift3d.templates.vehicles import sample_vehicle, vehicle_points
from lift3d.usd.reader import read_asset
from synthetic_inputs import TINY_SETTINGS, car_blob, lift3d_entry_point


@pytest.fixture(scope="module")
def template():
    from lift3d.settings import load_settings
    from lift3d.templates import load_template

    return load_template(load_settings().template_path("car"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_model(Predictor(Architecture(input_size=32, widths=(8, 16), hidden=32)), path, {"seed": 0})


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    return car_blob(tmp_path_factory.mktemp("photo") / "blob.png", seed=3)


def _settings(tmp_path, model) -> str:
    path = tmp_path / "settings.toml"
    path.write_text(TINY_SETTINGS + f'\n[predictor]\nmodel = "{model}"\nhypotheses = 2\n')
    return path


def test_a_hypothesis_becomes_the_template_shape_placed_on_the_photo(template):
    """The predictor-to-template conversion: a correct hypothesis reproduces the photo's silhouette."""
    from lift3d.camera import Camera
    from lift3d.pipeline.crops import square_box

    vehicle = sample_vehicle(np.random.default_rng(11), "suv")
    points = vehicle_points(vehicle, template)
    yaw, pitch, focal_px = math.radians(40.0), math.radians(20.0), 300.0
    target = 0.5 * (points.min(axis=0) + points.max(axis=0))
    from lift3d.pipeline.pose import Pose

    truth = Camera(focal_px, focal_px, 160.0, 120.0, 320, 240,
                   Pose(yaw, pitch, 0.0, 12.0, 0.3, -0.2).cam_to_world(target))
    mask = hard_mask(points, template.faces, truth, 320, 240)
    box = square_box(mask)
    hyp = Hypothesis(yaw, pitch, focal_px / box[2], vehicle, 1.0)
    placed, pose, centre, base = place(hyp, template, mask, box)
    np.testing.assert_allclose(placed, points)  # same generator, same topology
    assert placed.shape == template.points.shape
    camera = Camera(base.fx, base.fy, base.cx, base.cy, 320, 240, pose.cam_to_world(centre))
    assert mask_iou(hard_mask(placed, template.faces, camera, 320, 240), mask) > 0.93
    record = hyp.summary()
    assert record["body_type"] == "suv" and record["yaw_deg"] == pytest.approx(40.0)


@pytest.mark.slow
def test_init_choices_and_their_provenance(photo, tiny_model, tmp_path):
    settings = _settings(tmp_path, tiny_model)
    chosen = {}
    for init in ("search", "learned", "both"):
        result = run_reconstruction(ReconstructRequest(images=[photo], preset="fast", init=init, name=init,
                                                       out_dir=tmp_path / "out", config=settings))
        camera = read_asset(result.asset_path).provenance["camera"]
        assert camera["init"] == init
        chosen[init] = camera["chosen"]
        if init != "search":
            learned = camera if camera["chosen"] == "learned" else None
            if learned is not None:
                assert learned["body_type"] in learned["body_probabilities"] or learned["body_probabilities"]
                assert set(learned["generator_params"]) >= {"length", "width", "height", "wheel_radius"}
                assert 1 <= len(learned["hypotheses"]) <= 2 and learned["model"] == "tiny.safetensors"
                assert learned["fov_x_deg"] == pytest.approx(45.0)  # assumed, as the search does
                assert learned["fov_source"] == "assumed"
        if init == "both" and "search_skipped" in camera:
            assert camera["chosen"] == "learned" and camera["loss"] <= SEARCH_SKIP_LOSS
        elif init == "both":
            assert set(camera["losses"]) == {"learned", "search"}
            assert camera["chosen"] == min(camera["losses"], key=camera["losses"].get)
    assert chosen["search"] == "search" and chosen["learned"] == "learned"


@pytest.mark.parametrize("threshold", [-1.0, 10.0])
def test_both_skips_the_search_only_when_the_learned_camera_fits(photo, tiny_model, tmp_path, monkeypatch, threshold):
    from lift3d.pipeline import initialise

    searched = []
    real_search = initialise._search
    monkeypatch.setattr(initialise, "SEARCH_SKIP_LOSS", threshold)
    monkeypatch.setattr(initialise, "_search", lambda *a, **k: searched.append(1) or real_search(*a, **k))
    result = run_reconstruction(ReconstructRequest(images=[photo], preset="fast", init="both", name="gate",
                                                   out_dir=tmp_path / "out", config=_settings(tmp_path, tiny_model)))
    camera = read_asset(result.asset_path).provenance["camera"]
    if threshold > 0:  # every learned loss is below 10: the search is skipped and says why
        assert not searched and camera["chosen"] == "learned" and "search_skipped" in camera
        assert "losses" not in camera
    else:  # no loss is below -1: the search runs and the lower loss wins
        assert searched and "search_skipped" not in camera and set(camera["losses"]) == {"learned", "search"}


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_bad_model_file_is_a_clear_error_and_writes_nothing(photo, tiny_model, tmp_path, damage):
    model = tmp_path / "model.safetensors"
    if damage == "corrupt":
        model.write_bytes(tiny_model.read_bytes()[:100])
        model.with_suffix(".json").write_text(tiny_model.with_suffix(".json").read_text())
    settings = _settings(tmp_path, model)
    with pytest.raises(ModelError):
        run_reconstruction(ReconstructRequest(images=[photo], preset="fast", init="learned",
                                              out_dir=tmp_path / "out", config=settings))
    assert not (tmp_path / "out").exists()
    assert issubclass(ModelError, InputError)  # the CLI's exit status 2
    result = subprocess.run([lift3d_entry_point(), "reconstruct", str(photo), "--init", "learned", "--preset", "fast",
                             "--config", str(settings), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "model" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_both_falls_back_to_the_search_with_a_warning(photo, tmp_path):
    settings = _settings(tmp_path, tmp_path / "nowhere.safetensors")
    result = run_reconstruction(ReconstructRequest(images=[photo], preset="fast", init="both",
                                                   out_dir=tmp_path / "out", config=settings))
    camera = read_asset(result.asset_path).provenance["camera"]
    assert camera["chosen"] == "search" and "predictor could not be used" in camera["warnings"][0]


def test_unknown_init_is_refused_before_any_work(photo, tmp_path):
    with pytest.raises(InputError, match="unknown init"):
        run_reconstruction(ReconstructRequest(images=[photo], init="magic", out_dir=tmp_path / "out"))
    result = subprocess.run([lift3d_entry_point(), "reconstruct", str(photo), "--init", "magic",
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "init" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_predicted_field_of_view_is_used_when_asked(template):
    """``place`` with no assumed field of view takes the hypothesis' focal length, scaled from the crop."""
    from lift3d.learn.predict import base_camera

    hyp = Hypothesis(0.0, 0.1, 1.5, sample_vehicle(np.random.default_rng(0), "sedan"), 1.0)
    predicted = base_camera(hyp, (10, 20, 100), 640, 480)
    assumed = base_camera(hyp, (10, 20, 100), 640, 480, 45.0)
    assert predicted.fx == pytest.approx(150.0) and (predicted.cx, predicted.cy) == (320.0, 240.0)
    assert math.degrees(2 * math.atan(320.0 / assumed.fx)) == pytest.approx(45.0)
