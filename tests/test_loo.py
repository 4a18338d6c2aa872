"""tools/loo.py's pure parts: fold planning, the asset folders, the settings file and the table."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

_TOOLS = Path(__file__).resolve().parents[1] / "tools"
if "evaluate" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("evaluate", _TOOLS / "evaluate.py")
    _evaluate = importlib.util.module_from_spec(_spec)
    sys.modules["evaluate"] = _evaluate  # dataclasses look their module up while the file executes
    _spec.loader.exec_module(_evaluate)
_SPEC = importlib.util.spec_from_file_location("loo", _TOOLS / "loo.py")
loo = importlib.util.module_from_spec(_SPEC)
sys.modules["loo"] = loo
_SPEC.loader.exec_module(loo)


def test_every_fold_leaves_one_vehicle_out():
    folds = loo.plan_folds(loo.evaluate.VEHICLES)
    assert len(folds) == 8 and [f.held_out for f in folds] == list(loo.evaluate.VEHICLES)
    for fold in folds:
        assert fold.held_out not in fold.train and len(fold.train) == 7
        assert set(fold.train) | {fold.held_out} == set(loo.evaluate.VEHICLES)
    assert [f.held_out for f in loo.plan_folds(["a", "b", "c", "d"], 3)] == ["a", "b", "c"]
    assert len(loo.plan_folds(["a", "b"], 10)) == 2
    with pytest.raises(ValueError):
        loo.plan_folds(["a"])


def test_fold_asset_folder_and_settings_file(tmp_path):
    from lift3d.settings import load_settings

    faces = np.array([[0, 1, 2]])
    meshes = {name: loo.write_obj(tmp_path / "meshes" / f"{name}.obj", np.eye(3) * (i + 1), faces)
              for i, name in enumerate(("a", "b", "c"))}
    assert meshes["a"].read_text().splitlines()[-1] == "f 1 2 3"
    fold = loo.plan_folds(["a", "b", "c"])[1]
    folder = loo.fold_asset_folder(fold, meshes, tmp_path / "fold" / "assets")
    assert sorted(p.name for p in folder.iterdir()) == ["a.obj", "c.obj"]
    model = tmp_path / "odd \"name\"" / "m.safetensors"
    config = loo.settings_file(tmp_path / "settings.toml", model)
    assert load_settings(config).predictor.model_path() == model.resolve()


def test_the_table_compares_with_the_default_model():
    results = [{"asset": "x", "mode": "single-fl", "method": "predictor+fit", "preset": "balanced",
                "metrics": {"heldout_iou": 0.8, "volume_iou": 0.5, "fscore@2%": 0.6, "part_iou_wheel": 0.4}},
               {"asset": "x", "mode": "single-fr", "method": "predictor+fit", "preset": "balanced",
                "metrics": {"heldout_iou": 0.9, "volume_iou": 0.7, "fscore@2%": 0.4, "part_iou_wheel": None}},
               {"asset": "x", "mode": "single-fl", "method": "search", "preset": "balanced",
                "metrics": {"heldout_iou": 0.1}},
               {"asset": "x", "mode": "multi4", "method": "predictor+fit", "preset": "balanced",
                "metrics": {"heldout_iou": 0.1}}]
    default = loo.default_figures(results, "x", "balanced")
    assert default["heldout_iou"] == pytest.approx(0.85) and default["part_iou_wheel"] == pytest.approx(0.4)
    assert loo.default_figures(results, "x", "fast") is None and loo.default_figures(results, "y", "balanced") is None
    rows = [{"fold": 0, "asset": "x", "figures": {"heldout_iou": 0.9, "volume_iou": 0.6, "fscore@2%": 0.7,
                                                  "part_iou_wheel": math.nan}, "default": default, "cases": 2},
            {"fold": 1, "asset": "y", "figures": {"heldout_iou": 0.7, "volume_iou": 0.4, "fscore@2%": 0.5,
                                                  "part_iou_wheel": 0.3}, "default": None, "cases": 2, "failed": 1}]
    table = loo.format_loo_table(rows).splitlines()
    assert table[0].startswith("| fold | left out | held-out IoU | default | 3D IoU | default | F@2% |")
    assert len(table) == 5 and all(line.count("|") == table[0].count("|") for line in table)
    assert table[2] == "| 0 | x | 0.900 | 0.850 | 0.600 | 0.600 | 0.700 | 0.500 | – | 0.400 | 2 |"
    assert table[3].startswith("| 1 | y | 0.700 | – |") and table[3].endswith("| 2 (1 failed) |")
    # means over the folds where both models have the value (fold 0 here); with no such fold, our own mean
    assert table[4] == "| | **mean** (2 folds) | 0.900 | 0.850 | 0.600 | 0.600 | 0.700 | 0.500 | 0.300 | – | |"


def test_the_report_is_written(tmp_path):
    rows = [{"fold": 0, "asset": "x", "figures": {}, "default": None, "cases": 2, "failed": 2,
             "errors": ["RuntimeError: boom"], "assets": [{"name": "y.obj", "body_type": "van", "residual_m": 0.12}]}]
    out = tmp_path / "LOO.md"
    loo.write_report(out, rows, "a note")
    text = out.read_text()
    assert text.startswith("# Leave-one-out") and "a note" in text and "y as van (0.120 m)" in text
    assert "RuntimeError: boom" in text
