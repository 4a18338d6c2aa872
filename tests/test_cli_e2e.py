"""End to end through the ``lift3d`` command (``docs/DESIGN.md`` section 4): bad input, ``--json``, image formats, stages.

Most cases call :func:`lift3d.cli.main` in-process with ``capfd`` (file-descriptor capture, so output
written by native code such as Warp's would be seen too); two run the installed entry point in a
subprocess to check what a user's terminal really receives. Every reconstruction uses the tiny
settings of :mod:`synthetic_inputs` (one to three seconds each).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pxr import Sdf, Usd, UsdGeom

from lift3d.api import CancelToken, ReconstructRequest
from lift3d.cli import main
from lift3d.pipeline.run import run_reconstruction

from synthetic_inputs import TINY_SETTINGS, car_blob, lift3d_entry_point


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder with the tiny settings, a car photo with alpha, the same photo on white, and bad inputs."""
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "tiny.toml").write_text(TINY_SETTINGS)
    rgba = np.asarray(Image.open(car_blob(folder / "car.png", 1)))
    rgb = rgba[..., :3].copy()
    rgb[rgba[..., 3] == 0] = 255
    Image.fromarray(rgb).save(folder / "car_rgb.png")
    return folder


@pytest.fixture(autouse=True)
def _tiny_settings(inputs, monkeypatch):
    monkeypatch.setenv("LIFT3D_CONFIG", str(inputs / "tiny.toml"))


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims ``width`` x ``height`` RGB pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def _transforms(path: Path, frames: list[dict], angle: float | str = 0.8) -> Path:
    text = json.dumps({"camera_angle_x": "ANGLE", "frames": frames}).replace('"ANGLE"', str(angle))
    path.write_text(text)
    return path


def _bad_case(name: str, folder: Path, inputs: Path) -> list[str]:
    """Write the inputs of bad-input case ``name`` into ``folder``; return the CLI arguments after ``reconstruct``."""
    car, car_rgb = inputs / "car.png", inputs / "car_rgb.png"
    eye = np.eye(4).tolist()
    if name == "missing file":
        return [str(folder / "nothere.png")]
    if name == "a folder":
        return [str(inputs)]
    if name == "truncated png":
        data = car.read_bytes()
        (folder / "cut.png").write_bytes(data[: len(data) // 2])
        return [str(folder / "cut.png")]
    if name == "text named png":
        (folder / "text.png").write_text("hello, I am not a picture")
        return [str(folder / "text.png")]
    if name == "zero bytes":
        (folder / "zero.png").write_bytes(b"")
        return [str(folder / "zero.png")]
    if name == "bomb header":
        (folder / "bomb.png").write_bytes(_png_claiming(20_000, 20_000))
        return [str(folder / "bomb.png")]
    if name == "uniform colour":
        Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(folder / "grey.png")
        return [str(folder / "grey.png")]
    if name in ("empty mask", "full mask", "mask of another size"):
        value, shape = {"empty mask": (0, (96, 96)), "full mask": (255, (96, 96)),
                        "mask of another size": (255, (50, 96))}[name]
        Image.fromarray(np.full(shape, value, np.uint8)).save(folder / "mask.png")
        return [str(car_rgb), "--mask", str(folder / "mask.png")]
    if name == "views name a missing image":
        shutil.copy(car, folder / "car.png")
        frames = [{"file_path": "car.png", "transform_matrix": eye}, {"file_path": "gone.png", "transform_matrix": eye}]
        return [str(folder / "car.png"), "--views", str(_transforms(folder / "transforms.json", frames))]
    if name == "views with NaN":
        shutil.copy(car, folder / "car.png")
        frames = [{"file_path": "car.png", "transform_matrix": eye}]
        return [str(folder / "car.png"), "--views", str(_transforms(folder / "transforms.json", frames, "NaN"))]
    if name == "views not JSON":
        (folder / "transforms.json").write_text("{frames: [")
        return [str(car), "--views", str(folder / "transforms.json")]
    if name == "image not in views":
        shutil.copy(car_rgb, folder / "other.png")
        frames = [{"file_path": "other.png", "transform_matrix": eye}]
        return [str(car), "--views", str(_transforms(folder / "transforms.json", frames))]
    if name == "unknown category":
        return [str(car), "--category", "boat"]
    if name == "unknown preset":
        return [str(car), "--preset", "ultra"]
    if name == "out below a file":
        (folder / "a_file").write_text("not a folder")
        return [str(car), "--out", str(folder / "a_file" / "sub")]
    raise AssertionError(name)


BAD_CASES = {  # case -> what its error line must say
    "missing file": "does not exist", "a folder": "is a folder", "truncated png": "corrupt or truncated",
    "text named png": "is not a PNG, JPEG or WebP image", "zero bytes": "is an empty file", "bomb header": "MP",
    "uniform colour": "no separable object", "empty mask": "is empty", "full mask": "covers 100%",
    "mask of another size": "different aspect ratio", "views name a missing image": "gone.png",
    "views with NaN": "not a finite number", "views not JSON": "not valid JSON", "image not in views": "has no frame",
    "unknown category": "unknown category 'boat'", "unknown preset": "unknown preset 'ultra'",
    "out below a file": "is not a folder",
}


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lift3d: error: "), err
    return lines[0]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_exits_2_with_one_line_and_leaves_nothing(case, inputs, tmp_path, capfd):
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    args = _bad_case(case, case_dir, inputs)
    before = _listing(tmp_path)
    out = tmp_path / "out"
    if "--out" not in args:
        args += ["--out", str(out)]
    if "--preset" not in args:
        args += ["--preset", "fast"]
    code = main(["reconstruct", *args, "--stage", str(tmp_path / "stage.usda")])
    captured = capfd.readouterr()
    assert code == 2
    assert BAD_CASES[case] in _one_error_line(captured.err)
    assert captured.out == ""
    assert _listing(tmp_path) == before  # no asset folder, no temporary debris, no stage or lock file


def test_corrupt_stage_through_the_installed_command(inputs, tmp_path):
    """The real entry point: one line on stderr (no traceback, banner or progress), stage and --out untouched."""
    stage = tmp_path / "stage.usda"
    stage.write_text("#usda 1.0\n(\n broken")
    proc = _run_entry_point(["reconstruct", str(inputs / "car.png"), "--preset", "fast", "--out",
                             str(tmp_path / "out"), "--stage", str(stage)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "is not a valid USD layer" in _one_error_line(proc.stderr)
    assert proc.stdout == ""
    assert stage.read_text() == "#usda 1.0\n(\n broken"
    assert _listing(tmp_path) == ["stage.usda"]


def test_unwritable_out_folder_exits_2(inputs, tmp_path, capfd):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user (root) whom folder permissions do not stop")
        code = main(["reconstruct", str(inputs / "car.png"), "--preset", "fast", "--out", str(locked / "out")])
        assert code == 2
        assert "not writable" in _one_error_line(capfd.readouterr().err)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def _run_entry_point(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([lift3d_entry_point(), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_json_prints_one_object_and_no_progress(inputs, tmp_path):
    proc = _run_entry_point(["reconstruct", str(inputs / "car.png"), "--preset", "fast", "--out", "out", "--json"],
                            tmp_path, TTY_COMPATIBLE="1")  # progress would show if --json did not silence it
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1
    result = json.loads(proc.stdout)
    assert result["asset"] == str(Path("out") / "car" / "car.usda") and (tmp_path / result["asset"]).is_file()
    assert result["prim"] is None
    assert result["cameras"][0]["width"] == 96 and len(result["cameras"][0]["cam_to_world"]) == 4
    assert 0.5 < result["metrics"]["input_view_iou"] <= 1.0
    assert set(result["timings"]) == {"load", "mask", "camera", "shape", "texture", "write"}
    progress = [line for line in proc.stderr.splitlines() if not line.startswith("lift3d: warning: ")]
    for stage in ("camera", "shape", "texture", "%"):
        assert not any(stage in line for line in progress)
    assert [line[len("lift3d: warning: "):] for line in proc.stderr.splitlines() if line not in progress] \
        == result["warnings"]  # one stderr line per warning


class _Clock:
    """Stands in for the ``time`` module of lift3d.progress: every reading is two seconds later."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 2.0
        return self.now


def test_progress_goes_to_a_terminal_stderr_only(inputs, tmp_path, capfd, monkeypatch):
    import lift3d.progress

    monkeypatch.setattr(lift3d.progress, "time", _Clock())
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # stderr counts as a terminal
    assert main(["reconstruct", str(inputs / "car.png"), "--preset", "fast", "--out", str(tmp_path / "out")]) == 0
    captured = capfd.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(tmp_path / "out" / "car" / "car.usda"))
    assert "input-view IoU" in lines[0]
    assert "100%" in captured.err  # the bar (rich redraws it on its own clock, so which stages show varies)
    assert any(stage in captured.err for stage in ("starting", "load", "camera", "shape", "texture", "write"))


def test_progress_bar_stays_off_a_redirected_stderr(inputs, tmp_path, capfd, monkeypatch):
    """Regression: a bar started on a pipe left a blank line before the error line when the run then failed."""
    import lift3d.progress

    monkeypatch.setattr(lift3d.progress, "time", _Clock())
    for var in ("TTY_COMPATIBLE", "FORCE_COLOR"):  # stderr is what it is: a capture, not a terminal
        monkeypatch.delenv(var, raising=False)
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    assert main(["reconstruct", str(tmp_path / "grey.png"), "--preset", "fast", "--out", str(tmp_path / "out")]) == 2
    assert "no separable object" in _one_error_line(capfd.readouterr().err)


def _write_formats(kind: str, folder: Path, inputs: Path) -> tuple[Path, tuple[int, int]]:
    """An input photo of ``kind``; returns its path and its displayed (width, height)."""
    rgba = np.asarray(Image.open(inputs / "car.png"))
    alpha = rgba[..., 3]
    on_white = rgba[..., :3].copy()
    on_white[alpha == 0] = 255
    if kind == "16-bit RGBA":
        path = folder / "deep.png"
        import cv2

        cv2.imwrite(str(path), rgba[..., [2, 1, 0, 3]].astype(np.uint16) * 257)
    elif kind == "16-bit grey":
        path = folder / "deep_grey.png"
        grey = on_white.mean(axis=2) * 0.6
        grey[alpha == 0] = 255
        Image.fromarray((grey * 257).astype(np.uint16)).save(path)
        assert Image.open(path).mode.startswith("I")
    elif kind == "palette with transparency":
        path = folder / "palette.png"
        quantized = Image.fromarray(rgba[..., :3]).quantize(15)
        index = np.asarray(quantized).copy()
        index[alpha == 0] = 15
        palette = Image.fromarray(index, "P")
        palette.putpalette(quantized.getpalette())
        palette.save(path, transparency=15)
    elif kind == "grey":
        path = folder / "grey.png"
        Image.fromarray(on_white.mean(axis=2).astype(np.uint8), "L").save(path)
    elif kind == "JPEG with EXIF orientation":
        path = folder / "rotated.jpg"
        wide = on_white[16:80]  # 96 x 64 as displayed
        exif = Image.Exif()
        exif[0x0112] = 6  # stored rotated: the viewer turns it 90 degrees clockwise
        Image.fromarray(np.ascontiguousarray(np.rot90(wide, 1))).save(path, exif=exif, quality=95)
        return path, (96, 64)
    elif kind == "WebP":
        path = folder / "car.webp"
        Image.fromarray(rgba, "RGBA").save(path, lossless=True)
    else:
        raise AssertionError(kind)
    return path, (96, 96)


@pytest.mark.parametrize("kind", ["16-bit RGBA", "16-bit grey", "palette with transparency", "grey",
                                  "JPEG with EXIF orientation", "WebP"])
def test_image_formats_reconstruct(kind, inputs, tmp_path, capfd):
    photo, size = _write_formats(kind, tmp_path, inputs)
    assert main(["reconstruct", str(photo), "--preset", "fast", "--out", str(tmp_path / "out"), "--json"]) == 0
    result = json.loads(capfd.readouterr().out)
    camera = result["cameras"][0]
    assert (camera["width"], camera["height"]) == size
    assert result["metrics"]["input_view_iou"] > 0.5
    assert Path(result["asset"]).is_file()


def test_stage_twice_gives_two_prims_and_two_assets(inputs, tmp_path, capfd):
    """Regression: the second run reused the asset folder, so both prims showed the second reconstruction."""
    stage_path = tmp_path / "stage.usda"
    results = []
    for _ in range(2):
        assert main(["reconstruct", str(inputs / "car.png"), "--preset", "fast", "--out", str(tmp_path / "out"),
                     "--stage", str(stage_path), "--json"]) == 0
        results.append(json.loads(capfd.readouterr().out))
    assert [r["prim"] for r in results] == ["/World/Reconstructions/car", "/World/Reconstructions/car_2"]
    assert results[0]["asset"] != results[1]["asset"]
    assert all(Path(r["asset"]).is_file() for r in results)
    stage = Usd.Stage.Open(str(stage_path))
    for result in results:
        prim = stage.GetPrimAtPath(result["prim"])
        meshes = [p for p in Usd.PrimRange(prim) if p.IsA(UsdGeom.Mesh)]
        assert prim.IsValid() and meshes and UsdGeom.Mesh(meshes[0]).GetPointsAttr().Get()
    assert main(["info", results[1]["asset"]]) == 0
    info = capfd.readouterr().out
    for expected in ("parts (", "wheel_fl", "materials (", "paint", "rubber", "cameras (1)", "SourceCamera"):
        assert expected in info


def test_explicit_name_replaces_its_asset(inputs, tmp_path, capfd):
    for _ in range(2):
        assert main(["reconstruct", str(inputs / "car.png"), "--preset", "fast", "--out", str(tmp_path / "out"),
                     "--name", "mine", "--json"]) == 0
        assert json.loads(capfd.readouterr().out)["asset"].endswith(str(Path("mine") / "mine.usda"))
    mine = Path("mine")  # one asset folder, replaced in place: interface, geometry payload, materials, texture
    assert _listing(tmp_path / "out") == sorted(["mine", str(mine / "mine.usda"), str(mine / "mine_geo.usdc"),
                                                 str(mine / "mine_mat.usda"), str(mine / "textures"),
                                                 str(mine / "textures" / "albedo.png")])


def test_cancel_arriving_while_the_asset_is_written_does_not_fail_the_run(inputs, tmp_path, monkeypatch):
    """Regression: a cancel during the write raised Cancelled after the asset was written and referenced."""
    import lift3d.usd.writer

    token = CancelToken()
    write = lift3d.usd.writer.write_asset

    def write_then_cancel(*args, **kwargs):
        path = write(*args, **kwargs)
        token.cancel()
        return path

    monkeypatch.setattr(lift3d.usd.writer, "write_asset", write_then_cancel)
    result = run_reconstruction(ReconstructRequest(images=[inputs / "car.png"], preset="fast", out_dir=tmp_path / "out",
                                                   stage=tmp_path / "stage.usda"), cancel=token)
    assert result.asset_path.is_file() and result.prim_path == "/World/Reconstructions/car"


@pytest.mark.parametrize("args, expected", [
    (["reconstruct"], "Missing argument"),
    (["reconstruct", "car.png", "--frobnicate"], "No such option: --frobnicate"),
    (["batch", "photos"], "Missing option '--stage'"),
    (["batch", "photos", "--stage", "s.usda", "--workers", "0"], "--workers"),
])
def test_usage_errors_are_one_line_too(args, expected, capfd):
    """Regression: usage errors printed Typer's boxed, multi-line usage block."""
    assert main(args) == 2
    captured = capfd.readouterr()
    assert expected in _one_error_line(captured.err) and captured.out == ""


def test_reconstruct_into_a_shared_stage_uses_the_writers_own_layer(inputs, tmp_path, capfd, monkeypatch):
    """Regression: --stage on a shared stage wrote the reference into the root layer, bypassing the writer layers."""
    monkeypatch.setenv("LIFT3D_STAGE__WRITER", "tester")
    stage = tmp_path / "shared.usda"
    assert main(["stage", "init", str(stage)]) == 0
    capfd.readouterr()
    assert main(["reconstruct", str(inputs / "car.png"), "--preset", "fast", "--out", str(tmp_path / "assets"),
                 "--stage", str(stage), "--json"]) == 0
    prim = json.loads(capfd.readouterr().out)["prim"]
    assert prim.startswith("/World/Reconstructions/tester__car_")
    assert main(["stage", "list", str(stage), "--json"]) == 0
    (entry,) = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert entry["prim_path"] == prim and entry["writer"] == "tester" and entry["source"].endswith("car.png")
    root = Sdf.Layer.OpenAsAnonymous(str(stage))
    assert not root.GetPrimAtPath("/World/Reconstructions").nameChildren  # the root holds no reconstruction
    assert Sdf.Layer.OpenAsAnonymous(str(tmp_path / "writers" / "tester.usda")).GetPrimAtPath(prim)


def _jpeg_with_damaged_exif(path: Path, rgb: np.ndarray) -> Path:
    """A JPEG whose EXIF block has a tag pointing past the end of the block (Pillow warns and skips it)."""
    tiff = (b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHII", 0x010F, 2, 100, 0x1000)
            + struct.pack("<I", 0))
    Image.fromarray(rgb).save(path, exif=b"Exif\x00\x00" + tiff, quality=95)
    return path


def test_damaged_exif_prints_no_warning_lines(tmp_path, capfd):
    """Regression: Pillow's 'Tag data larger than file' UserWarning went to stderr beside the error line."""
    from lift3d.io.images import load_image

    photo = _jpeg_with_damaged_exif(tmp_path / "grey.jpg", np.full((48, 64, 3), 128, np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_image(photo).size == (64, 48)
        code = main(["reconstruct", str(photo), "--preset", "fast", "--out", str(tmp_path / "out")])
    assert code == 2 and "no separable object" in _one_error_line(capfd.readouterr().err)
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []


def test_ctrl_c_exits_130_with_one_line(inputs, tmp_path, capfd, monkeypatch):
    """Regression: an interrupted run exited 130 silently (Typer swallowed the KeyboardInterrupt)."""
    import lift3d.progress

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lift3d.progress, "run_with_progress", interrupted)
    assert main(["reconstruct", str(inputs / "car.png"), "--out", str(tmp_path / "out")]) == 130
    captured = capfd.readouterr()
    assert captured.err.splitlines() == ["lift3d: interrupted"] and captured.out == ""
