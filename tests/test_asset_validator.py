"""NVIDIA's Asset Validator (``omniverse-asset-validator``, the rules Omniverse applies beyond usdchecker)
finds no error in a written asset, in a plain stage referencing it, or in a shared stage."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from lift3d.camera import orbit_camera
from lift3d.usd.checker import check_asset
from lift3d.usd.compose import add_reference
from lift3d.usd.shared_stage import SharedStage
from lift3d.usd.writer import write_asset

from asset_factory import make_car_asset

av = pytest.importorskip("omni.asset_validator", reason="omniverse-asset-validator is in the test extra")


def _problems(target: Path) -> list[str]:
    """Issues of severity error or failure from the validator's default rules."""
    logging.getLogger("omni.asset_validator").setLevel(logging.WARNING)
    results = av.ValidationEngine().validate(str(target))
    bad = (av.IssueSeverity.ERROR, av.IssueSeverity.FAILURE)
    return [f"{issue.severity.name} {getattr(issue.rule, '__name__', issue.rule)}: {issue.message}"
            for issue in results.issues() if issue.severity in bad]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("validated")
    single = make_car_asset("single_photo")
    single.cameras = [orbit_camera(0.5, 0.2, 7.0, np.radians(50.0), 64, 48, name="photo_0.png")]
    return [write_asset(make_car_asset(), out / "assets"), write_asset(single, out / "assets")]


def test_the_validator_sees_a_broken_asset(tmp_path):
    bad = tmp_path / "bad.usda"
    bad.write_text('#usda 1.0\n(\n    defaultPrim = "x"\n)\ndef Mesh "x" { point3f[] points = '
                   + "[" + ", ".join(["(0, 0, 0)"] * 3000) + "] }\n")
    assert _problems(bad), "the validator reported nothing for a layer without up axis, units or crate arrays"


@pytest.mark.parametrize("which", [0, 1], ids=["three_views", "single_photo"])
def test_written_asset_has_no_errors(assets, which):
    assert _problems(assets[which]) == []
    assert check_asset(assets[which]) == []
    for layer in sorted(assets[which].parent.glob("*.usd*")):  # every layer of the asset on its own too
        assert _problems(layer) == [], layer.name


def test_plain_stage_has_no_errors(assets, tmp_path):
    stage = tmp_path / "scene.usda"
    for asset in assets:
        add_reference(stage, asset)
    add_reference(stage, assets[0])  # a second copy of the same asset
    assert _problems(stage) == []
    assert check_asset(stage) == []


def test_shared_stage_has_no_errors(assets, tmp_path):
    root = tmp_path / "shared" / "stage.usda"
    SharedStage(root, writer="alice").add(assets[0], source="front_left.png")
    SharedStage(root, writer="bob").add(assets[1], source="photo_0.png")
    assert _problems(root) == []
    for layer in sorted((root.parent / "writers").glob("*.usda")):
        assert _problems(layer) == [], layer.name
    assert check_asset(root) == []
