"""CLI polish: --version, readable help, the notice for a sanitised --name, plain stages in `stage list`/`stage init --from`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lift3d import __version__
from lift3d.cli import main
from lift3d.usd.compose import add_reference
from lift3d.usd.shared_stage import SharedStage, is_shared_stage
from lift3d.usd.writer import write_asset

from asset_factory import make_car_asset

COMMANDS = [[], ["reconstruct"], ["batch"], ["info"], ["stage"], ["stage", "init"], ["stage", "add"],
            ["stage", "list"], ["stage", "watch"], ["preview"], ["export"]]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lift3d {__version__}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "lift3d")
def test_help_shows_readable_metavars(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    for raw in ("<bool>", "<path>", "<str>", "<int", "<float", "list[", "{"):
        assert raw not in out, f"raw metavar {raw!r} in `lift3d {' '.join(command)} --help`"
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert re.search(r"\[OPTIONS\]", usage)


def test_reconstruct_help_names_argument_and_values(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["reconstruct", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: lift3d reconstruct [OPTIONS] IMAGES..." in out
    assert re.search(r"--mask\s+PATH", out) and re.search(r"--preset\s+TEXT", out)
    assert re.search(r"--json\s+Print one JSON", out), "a flag takes no value, so it shows no metavar"


def test_sanitised_name_gets_a_one_line_notice(tmp_path, capsys):
    missing = str(tmp_path / "missing.png")
    assert main(["reconstruct", missing, "--category", "nope", "--name", "../../x"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "lift3d: note: name '../../x' is used as 'x' (names keep to letters, digits and _, at most 64 characters)"
    assert err[1].startswith("lift3d: error:") and len(err) == 2
    assert main(["reconstruct", missing, "--category", "nope", "--name", "a" * 300]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "is used as 'aaaa" in err[0] and "..." in err[0] and len(err[0]) < 300
    assert main(["reconstruct", missing, "--category", "nope", "--name", "clean_name"]) == 2
    assert "note" not in capsys.readouterr().err


@pytest.fixture
def plain_stage(tmp_path) -> Path:
    """A plain stage, as `reconstruct --stage` and the demo write it, with two references."""
    stage = tmp_path / "stage.usda"
    for name in ("red", "blue"):
        asset = make_car_asset(name)
        asset.provenance = {"source": f"photos/{name}.png"}
        add_reference(stage, write_asset(asset, tmp_path / "assets"))
    return stage


def test_stage_list_lists_a_plain_stage_and_explains_it(plain_stage, capsys):
    assert main(["stage", "list", str(plain_stage), "--json"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["prim_path"] for r in rows] == ["/World/Reconstructions/blue", "/World/Reconstructions/red"]
    assert all(Path(r["asset"]).is_file() and r["writer"] == "" for r in rows)
    note = captured.err.strip()
    assert len(note.splitlines()) == 1 and "plain stage" in note and "one sublayer per writer" in note
    assert f"lift3d stage init NEW.usda --from {plain_stage}" in note


def test_stage_init_from_converts_a_plain_stage(plain_stage, tmp_path, capsys):
    before = plain_stage.read_bytes()
    shared = tmp_path / "shared.usda"
    assert main(["stage", "init", str(shared), "--from", str(plain_stage), "--writer", "dana"]) == 0
    assert "2 reconstructions" in capsys.readouterr().out
    assert plain_stage.read_bytes() == before and is_shared_stage(shared)
    entries = SharedStage(shared, create=False).list()
    assert sorted(e.prim_path.rsplit("/", 1)[1].rsplit("_", 1)[0] for e in entries) == ["dana__blue", "dana__red"]
    assert all(e.writer == "dana" and Path(e.asset).is_file() for e in entries)


def test_stage_init_refusals_leave_no_lock(plain_stage, tmp_path):
    Path(str(plain_stage) + ".lock").unlink(missing_ok=True)  # left by the writes that built the plain stage
    assert main(["stage", "init", str(plain_stage)]) == 2, "a plain stage is not overwritten"
    assert not Path(str(plain_stage) + ".lock").exists()
    (tmp_path / "assets" / "red").rename(tmp_path / "assets" / "gone")
    target = tmp_path / "new.usda"
    assert main(["stage", "init", str(target), "--from", str(plain_stage)]) == 2
    assert not target.exists() and not Path(str(target) + ".lock").exists()
