"""CLI basics: help, ``lift3d info`` on good and bad files, and bad-input exit codes (in-process and real)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lift3d.cli import main
from lift3d.usd.writer import write_asset

from asset_factory import make_car_asset
from synthetic_inputs import lift3d_entry_point


@pytest.fixture(scope="module")
def asset_layer(tmp_path_factory) -> Path:
    return write_asset(make_car_asset(), tmp_path_factory.mktemp("cli"))


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("reconstruct", "batch", "stage", "info"):
        assert command in out


def test_info_prints_parts_materials_cameras_triangles(asset_layer, capsys):
    assert main(["info", str(asset_layer)]) == 0
    out = capsys.readouterr().out
    for expected in ("108 triangles", "parts (8)", "wheel_fl", "materials (5)", "glass", "cameras (3)",
                     "side", "lights (2)", "./textures/albedo.png", "kind component"):
        assert expected in out


def test_info_accepts_the_folder_and_prints_json(asset_layer, capsys):
    assert main(["info", str(asset_layer.parent), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["triangles"] == 108 and summary["defaultPrim"] == "toy_car"
    assert [c["name"] for c in summary["cameras"]] == ["front_left", "rear", "side"]


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lift3d: error: ")
    return lines[0]


def test_info_on_missing_file_exits_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.usda")]) == 2
    captured = capsys.readouterr()
    assert "does not exist" in _one_error_line(captured.err) and captured.out == ""


@pytest.mark.parametrize("content", [b"#usda 1.0\n(\n broken", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_info_on_corrupt_file_exits_2(tmp_path, capsys, content):
    bad = tmp_path / "bad.usda"
    bad.write_bytes(content)
    assert main(["info", str(bad)]) == 2
    assert "not a readable USD layer" in _one_error_line(capsys.readouterr().err)


def test_unknown_category_exits_2(tmp_path, capsys):
    assert main(["reconstruct", str(tmp_path / "car.png"), "--category", "truck"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "unknown category 'truck'" in line and "car, generic" in line


def test_unknown_preset_exits_2(tmp_path, capsys):
    assert main(["reconstruct", str(tmp_path / "car.png"), "--preset", "ultra"]) == 2
    assert "unknown preset 'ultra'" in _one_error_line(capsys.readouterr().err)


def test_usage_error_exits_2(capsys):
    assert main(["info"]) == 2  # missing argument: Click's usage error
    assert main(["no-such-command"]) == 2


def test_real_entry_point(asset_layer, tmp_path):
    exe = lift3d_entry_point()
    helped = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "info" in helped.stdout
    ok = subprocess.run([exe, "info", str(asset_layer)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "108 triangles" in ok.stdout and "front_left" in ok.stdout and "headlight" in ok.stdout
    bad = subprocess.run([exe, "info", str(tmp_path / "missing.usda")], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "lift3d: error:" in bad.stderr
