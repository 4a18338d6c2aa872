"""The learned predictor: training data, model files (safetensors + card), training, decoding."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from lift3d.learn.data import BODY_NAMES, augment, build_dataset, denormalise, normalise
from lift3d.learn.model import (Architecture, ModelError, Predictor, card_path, load_model, save_model, yaw_peaks,
                                yaw_target)
from lift3d.templates.vehicles import sample_vehicle

TINY = Architecture(input_size=32, widths=(8, 16), hidden=32)


@pytest.fixture(scope="module")
def template():
    from lift3d.settings import load_settings
    from lift3d.templates import load_template

    return load_template(load_settings().template_path("car"))


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    model = Predictor(TINY)
    path = save_model(model, tmp_path / "m.safetensors", {"seed": 0})
    return model, path


def test_model_round_trip(model_file):
    model, path = model_file
    loaded, card = load_model(path)
    assert card["architecture"] == TINY.as_dict() and card["seed"] == 0
    x = torch.rand(2, 4, 32, 32)
    model.eval()
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert path.read_bytes()[:8] != b"\x80\x04\x95"[:8]  # not a pickle


@pytest.mark.parametrize("damage", ["missing", "no_card", "truncated", "garbage", "bad_card", "wrong_shape",
                                    "other_generator", "nan"])
def test_bad_model_files_are_one_clear_error(model_file, damage):
    model, path = model_file
    card = card_path(path)
    if damage == "missing":
        path.unlink()
    elif damage == "no_card":
        card.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x80\x04\x95 not a tensor file" * 10)
    elif damage == "bad_card":
        card.write_text("{ not json")
    elif damage == "wrong_shape":
        data = json.loads(card.read_text())
        data["architecture"]["hidden"] = 64
        card.write_text(json.dumps(data))
    elif damage == "other_generator":
        data = json.loads(card.read_text())
        data["generator_version"] = -1
        card.write_text(json.dumps(data))
    elif damage == "nan":
        from safetensors.torch import save

        state = {k: v.clone() for k, v in model.state_dict().items()}
        state["yaw.bias"][0] = float("nan")
        path.write_bytes(save(state))
    with pytest.raises(ModelError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message and str(path.name) in message or card.name in message


def test_yaw_labels_and_peaks_wrap_around_the_circle():
    t = yaw_target(torch.tensor([0.01, math.pi]))
    assert t.shape == (2, 72) and torch.allclose(t.sum(dim=1), torch.ones(2))
    assert t[0, 0] > 0.3 and t[0, -1] > 0.2  # the mass wraps from bin 0 to bin 71
    logits = torch.log(yaw_target(torch.tensor([math.radians(357.0)]))[0] + 1e-9).numpy().astype(np.float64)
    (yaw, mass), = yaw_peaks(logits, 1)
    assert abs((math.degrees(yaw) - 357.0 + 180) % 360 - 180) < 1.5 and mass > 0.9
    two = np.log(0.5 * yaw_target(torch.tensor([0.3]))[0].numpy() + 0.5 * yaw_target(torch.tensor([0.3 + math.pi]))[0]
                 .numpy() + 1e-9)
    peaks = yaw_peaks(two.astype(np.float64), 2)
    assert len(peaks) == 2 and abs(abs(peaks[0][0] - peaks[1][0]) - math.pi) < 0.05


def test_parameter_normalisation_round_trip():
    v = sample_vehicle(np.random.default_rng(0), "pickup")
    b = BODY_NAMES.index("pickup")
    unit = normalise(b, v.params)
    assert ((unit >= 0) & (unit <= 1)).all()
    back = denormalise(b, unit)
    for k, value in v.params.items():
        assert back[k] == pytest.approx(value, rel=1e-5, abs=1e-6)


def test_dataset_is_deterministic_cached_and_a_prefix(template, tmp_path):
    a = build_dataset(template, 6, 32, seed=5, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("synth_*.npz"))) == 1
    b = build_dataset(template, 6, 32, seed=5, cache_dir=tmp_path)  # from the cache
    c = build_dataset(template, 3, 32, seed=5)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key][:3], c[key])
    assert a["rgb"].dtype == np.uint8 and a["mask"].max() == 255
    assert ((a["params"] >= 0) & (a["params"] <= 1)).all()
    x = augment(a["rgb"], a["mask"], np.random.default_rng(0))
    assert x.shape == (6, 4, 32, 32) and x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(x[:, 3] > 0.99, (a["mask"] / 255.0 > 0.99) & (x[:, 3] > 0.99))


def test_training_reduces_the_loss_and_writes_a_loadable_model(template, tmp_path):
    from lift3d.learn.train import TrainOptions, train

    options = TrainOptions(samples=48, val_samples=16, steps=30, batch=16, lr=3e-3, input_size=32,
                           widths=TINY.widths, hidden=TINY.hidden, checkpoint_every=10)
    seen = []
    card = train(template, tmp_path / "m.safetensors", options, tmp_path / "cache",
                 report=lambda phase, done, total, figures: seen.append((phase, done, dict(figures))))
    train_losses = [f["loss"] for phase, _, f in seen if phase == "train"]
    assert train_losses[-1] < train_losses[0]
    assert set(card["validation"]) >= {"front_back_accuracy", "median_yaw_error_deg", "body_type_accuracy",
                                       "silhouette_iou"}
    assert 0.0 <= card["validation"]["silhouette_iou"] <= 1.0
    model, loaded = load_model(tmp_path / "m.safetensors")
    assert loaded["steps"] == 30 and loaded["seed"] == 0
    assert not (tmp_path / "m.ckpt.safetensors").exists()  # the checkpoint goes once the model is written


def test_interrupted_training_keeps_a_checkpoint_and_resumes_from_it(template, tmp_path):
    from lift3d.learn.train import TrainOptions, train

    options = TrainOptions(samples=32, val_samples=8, steps=12, batch=8, input_size=32, widths=TINY.widths,
                           hidden=TINY.hidden, checkpoint_every=100)

    def interrupt(phase, done, total, figures):
        if phase == "train" and done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(template, tmp_path / "m.safetensors", options, tmp_path / "cache", report=interrupt)
    assert (tmp_path / "m.ckpt.safetensors").is_file() and not (tmp_path / "m.safetensors").exists()
    steps = []
    train(template, tmp_path / "m.safetensors", options, tmp_path / "cache",
          report=lambda phase, done, total, figures: steps.append(done) if phase == "train" else None)
    assert steps[0] == 6  # resumed after the 5 steps kept in the checkpoint


def test_cli_train_quick_rejects_a_bad_output_name(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lift3d.cli", "train", "--quick", "--out", str(tmp_path / "m.pt")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "must end in .safetensors" in result.stderr
    assert not any(tmp_path.iterdir())


def test_cli_train_refuses_an_unwritable_model_folder_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = subprocess.run([sys.executable, "-m", "lift3d.cli", "train", "--quick", "--out",
                             str(blocker / "m.safetensors"), "--cache", str(tmp_path / "cache")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "model folder" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "cache").exists()
