"""Start-up: light commands import neither torch, Warp nor OpenCV, and bad input is refused before any of them is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from lift3d.errors import ConfigError, InputError
from lift3d.preflight import check_request
from lift3d.requests import ReconstructRequest
from lift3d.usd.writer import write_asset

from asset_factory import make_car_asset

HEAVY = ("torch", "warp", "cv2")

# Runs lift3d commands one after another in one fresh interpreter and reports, after each, its exit status
# and which heavy modules were imported by then.
PROBE = """
import json, sys
from lift3d.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out.append([argv[0], code, sorted(m for m in {heavy} if m in sys.modules)])
print("PROBE" + json.dumps(out))
""".format(heavy=repr(HEAVY))


def _probe(commands: list[list[str]], cwd: Path) -> list:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)
    line = [x for x in proc.stdout.splitlines() if x.startswith("PROBE")]
    assert line, proc.stdout + proc.stderr
    return json.loads(line[-1][5:])


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "car.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path)
    return path


def test_help_info_and_stage_commands_import_neither_torch_nor_warp(tmp_path):
    asset = write_asset(make_car_asset(), tmp_path / "assets")
    stage = tmp_path / "shared.usda"
    commands = [["--help"], ["info", str(asset)], ["stage", "init", str(stage)], ["stage", "list", str(stage)],
                ["stage", "add", str(stage), str(asset)], ["stage", "list", str(stage), "--json"]]
    results = _probe(commands, tmp_path)
    assert [r[1] for r in results] == [0] * len(commands), results
    assert all(r[2] == [] for r in results), results


def test_bad_input_is_refused_before_torch_or_warp_load(tmp_path, photo):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    not_image = tmp_path / "notes.png"
    not_image.write_text("not a picture")
    commands = [
        ["reconstruct", str(tmp_path / "missing.png")],
        ["reconstruct", str(not_image)],
        ["reconstruct", str(photo), "--preset", "ultra"],
        ["reconstruct", str(photo), "--mask", str(tmp_path / "missing_mask.png")],
        ["reconstruct", str(photo), "--views", str(tmp_path / "missing.json")],
        ["reconstruct", str(photo), "--out", str(blocker / "sub")],
        ["reconstruct", str(photo), "--stage", str(tmp_path / "stage.txt")],
        ["reconstruct", str(photo), "--config", str(tmp_path / "missing.toml")],
    ]
    results = _probe(commands, tmp_path)
    assert [r[1] for r in results] == [2] * len(commands), results
    assert all(r[2] == [] for r in results), results


def test_check_request_names_each_problem(tmp_path, photo):
    def refused(**kwargs) -> str:
        with pytest.raises(InputError) as info:
            check_request(ReconstructRequest(**{"images": [photo], "out_dir": tmp_path / "out", **kwargs}))
        return str(info.value)

    assert "does not exist" in refused(images=[tmp_path / "nope.png"])
    assert "no input images" in refused(images=[])
    assert "--views" in refused(images=[photo, photo])
    assert "single image" in refused(images=[photo, photo], mask=photo, views=tmp_path / "t.json")
    assert "mask" in refused(mask=tmp_path / "nope.png")
    assert "camera file" in refused(views=tmp_path / "nope.json")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert "is not a folder" in refused(out_dir=blocker / "out")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert "empty file" in refused(images=[empty])
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (8, 8)).save(gif)
    assert "not a PNG, JPEG or WebP" in refused(images=[gif])
    assert "must end in" in refused(stage=tmp_path / "stage.txt")
    with pytest.raises(ConfigError):
        check_request(ReconstructRequest(images=[photo], preset="ultra", out_dir=tmp_path / "out"))
    with pytest.raises(ConfigError):
        check_request(ReconstructRequest(images=[photo], category="boat", out_dir=tmp_path / "out"))
    settings = check_request(ReconstructRequest(images=[photo], out_dir=tmp_path / "out"))
    assert settings.preset("balanced")
    assert not (tmp_path / "out").exists()  # nothing is created


def test_reconstruct_hands_the_runtime_settings_to_the_kernels(tmp_path, photo, monkeypatch):
    import lift3d.pipeline.objects as objects
    from lift3d.api import reconstruct
    from lift3d.kernels import launch

    saved = launch.configuration()
    config = tmp_path / "user.toml"
    config.write_text('[runtime]\ndevice = "cpu"\nthreads = 3\n')
    seen = {}

    def fake_run(request, progress=None, cancel=None, settings=None):
        seen["configuration"] = launch.configuration()
        seen["settings"] = settings
        return "done"

    monkeypatch.setattr(objects, "reconstruct_objects", fake_run)
    try:
        assert reconstruct(ReconstructRequest(images=[photo], out_dir=tmp_path / "out", config=config)) == "done"
        assert seen["configuration"] == ("cpu", 3) and launch.thread_count() == 3
        assert seen["settings"].runtime.threads == 3  # loaded once, passed on
    finally:
        launch.configure(device=saved[0], threads=saved[1])


def test_runtime_device_defaults_to_auto(monkeypatch):
    from lift3d.settings import RuntimeSettings, load_settings

    monkeypatch.delenv("LIFT3D_CONFIG", raising=False)
    monkeypatch.delenv("LIFT3D_RUNTIME__DEVICE", raising=False)
    assert RuntimeSettings().device == "auto"
    assert load_settings().runtime.device == "auto"
