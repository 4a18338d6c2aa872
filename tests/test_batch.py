"""Batch reconstruction: folder scan, digests, manifest, the local process pool, and a real end-to-end batch."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lift3d.batch import (BatchSummary, ImageRecord, ImageTask, Manifest, image_digest, reconstruct_one, run_batch, scan_folder,
                          settings_fingerprint)
from lift3d.batch_engines import LocalEngine
from lift3d.cli import main
from lift3d.errors import InputError

from synthetic_inputs import TINY_SETTINGS, car_blob, two_cars


def _square(x: int) -> int:
    return x * x


def _die_on_three(x: int) -> int:
    if x == 3:
        os._exit(17)  # a worker process dying mid-task, as a segfault or an OOM kill would
    return x * x


# ----------------------------------------------------------------------------- no reconstructor needed


def test_scan_folder_selects_images_by_extension(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "out").mkdir()
    for rel in ("A.PNG", "sub/b.jpeg", "sub/deeper/c.WebP", "d.jpg", "notes.txt", "sub/model.obj",
                ".secret.png", ".hidden/e.png", "out/texture.png"):
        (tmp_path / rel).write_bytes(b"x")
    images, ignored = scan_folder(tmp_path, exclude=tmp_path / "out")
    assert [p.relative_to(tmp_path).as_posix() for p in images] == ["A.PNG", "d.jpg", "sub/b.jpeg",
                                                                     "sub/deeper/c.WebP"]
    assert [p.relative_to(tmp_path).as_posix() for p in ignored] == ["notes.txt", "sub/model.obj"]


def test_digest_depends_on_bytes_and_settings(tmp_path, monkeypatch):
    fast = settings_fingerprint("car", "fast")
    assert fast != settings_fingerprint("car", "balanced")
    assert fast != settings_fingerprint("generic", "fast")
    assert image_digest(b"abc", fast) == image_digest(b"abc", fast)
    assert image_digest(b"abc", fast) != image_digest(b"abd", fast)
    assert image_digest(b"abc", fast) != image_digest(b"abc", settings_fingerprint("car", "balanced"))
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_SETTINGS)
    monkeypatch.setenv("LIFT3D_CONFIG", str(cfg))
    assert settings_fingerprint("car", "fast") != fast, "a changed preset must not reuse old results"
    assert json.loads(settings_fingerprint("car", "fast"))["preset_settings"]["steps"] == [4]
    assert settings_fingerprint("car", "fast", "largest") != settings_fingerprint("car", "fast", "all") \
        == settings_fingerprint("car", "fast"), "a batch of the largest objects must not reuse one of all objects"


def test_manifest_appends_lines_and_settles_outcomes(tmp_path):
    m = Manifest(tmp_path / "batch_manifest.jsonl")
    assert m.settled() == {}
    m.append(ImageRecord("/a.png", "d1", "ok", asset="/x/a.usda", prim="/World/Reconstructions/w__a_1",
                         assets=["/x/a.usda", "/x/a_2.usda"], prims=["/World/Reconstructions/w__a_1",
                                                                       "/World/Reconstructions/w__a_2_2"]), "w")
    m.append(ImageRecord("/b.png", "d2", "failed", "image /b.png is corrupt", retry=False), "w")
    m.append(ImageRecord("/c.png", "d3", "failed", "internal error: boom"), "w")
    m.append(ImageRecord("/a.png", "d1", "skipped", "already reconstructed with the same settings"), "w")
    with open(m.path, "a") as fh:
        fh.write('{"truncated": ')  # a write cut short must not break the next run
    lines = m.path.read_text().splitlines()
    assert len(lines) == 5
    first = json.loads(lines[0])
    assert set(first) == {"time", "image", "digest", "status", "reason", "asset", "prim", "assets", "prims", "seconds",
                          "writer"}, "a success carries no retry flag"
    assert first["assets"] == ["/x/a.usda", "/x/a_2.usda"] and len(first["prims"]) == 2
    assert json.loads(lines[1])["retry"] is False and json.loads(lines[2])["retry"] is True
    assert "assets" not in json.loads(lines[1]) and "prims" not in json.loads(lines[1]), "a failure lists no assets"
    assert "retry" not in json.loads(lines[3]), "a skip carries no retry flag"
    settled = m.settled()
    assert set(settled) == {"d1", "d2"}, "ok and input failures settle; internal errors are retried"
    assert settled["d1"]["status"] == "ok"
    assert m.retryable() == {"d3"}
    m.append(ImageRecord("/a.png", "d1", "failed", "internal error: later"), "w")
    assert "d1" not in m.settled() and m.retryable() == {"d1", "d3"}
    m.append(ImageRecord("/c.png", "d3", "ok", asset="/x/c.usda", retried=True), "w")
    assert json.loads(m.path.read_text().splitlines()[-1])["retried"] is True
    assert m.retryable() == {"d1"}


def _summary(records: list[ImageRecord], workers: int = 1) -> BatchSummary:
    return BatchSummary(folder="/in", stage="/s.usda", writer="w", out_dir="/out", manifest="/m.jsonl",
                        engine="local", workers=workers, records=records, ignored=["/in/notes.txt"], seconds=2.0)


def test_summary_wording_tells_skipped_failed_and_retried_apart():
    skipped = [ImageRecord(f"/in/{i}.png", f"d{i}", "skipped", "already reconstructed with the same settings")
               for i in range(10)]
    text = _summary(skipped).format()
    assert text.startswith("10 images: 0 ok, 0 failed, 10 skipped; 0 assets in the stage; 1 other file ignored;")
    assert "(0.00 images/min, local engine, 1 worker)" in text and "failed:" not in text
    records = [ImageRecord("/in/a.png", "a", "failed", "failed before, not retried: image is corrupt", retry=False),
               ImageRecord("/in/b.png", "b", "failed", "no separable object", seconds=1.5, retry=False),
               ImageRecord("/in/c.png", "c", "ok", asset="/out/c.usda", seconds=3.0, retried=True,
                           assets=["/out/c.usda", "/out/c_2.usda"])]
    summary = _summary(records, workers=3)
    text = summary.format()
    assert "3 images: 1 ok, 2 failed (1 of them in an earlier run, not retried), 0 skipped, 1 retried; " \
           "2 assets in the stage;" in text
    assert "3 workers)" in text
    data = summary.to_json()
    assert (data["failed"], data["failed_before"], data["retried"], data["assets"]) == (2, 1, 1, 2)
    assert "retry" not in data["records"][2] and data["records"][2]["retried"] is True


def test_local_engine_runs_in_spawned_processes_and_survives_a_dying_worker():
    engine = LocalEngine(workers=2)
    try:
        results = dict(engine.run(_square, [1, 2, 3, 4], lambda t, r: -1))
        assert results == {1: 1, 2: 4, 3: 9, 4: 16}
        crashed: list[tuple[int, str]] = []

        def on_crash(task: int, reason: str) -> int:
            crashed.append((task, reason))
            return -1

        results = dict(engine.run(_die_on_three, [1, 2, 3, 4, 5], on_crash))
    finally:
        engine.close()
    assert results[3] == -1 and [t for t, _ in crashed] == [3]
    assert "died" in crashed[0][1]
    assert {k: v for k, v in results.items() if k != 3} == {1: 1, 2: 4, 4: 16, 5: 25}


def test_worker_refuses_tasks_from_another_lift3d_version(tmp_path):
    task = ImageTask(str(tmp_path / "car.png"), "d" * 64, "car_dddddddddd", str(tmp_path), "car", "fast",
                     version="0.0.0-other")
    outcome = reconstruct_one(task)
    assert outcome.asset is None and outcome.retry
    assert "driver runs 0.0.0-other" in outcome.reason and "same version on every node" in outcome.reason
    assert not any(tmp_path.iterdir()), "a refused task writes nothing"


def test_run_batch_rejects_bad_folders(tmp_path):
    with pytest.raises(InputError, match="is not a folder"):
        run_batch(tmp_path / "missing", tmp_path / "s.usda", quiet=True)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("no images")
    with pytest.raises(InputError, match="no PNG, JPEG or WebP images"):
        run_batch(tmp_path / "docs", tmp_path / "s.usda", quiet=True)
    assert main(["batch", str(tmp_path / "docs"), "--stage", str(tmp_path / "s.usda")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), "--stage", str(tmp_path / "s.usda")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "empty"], "a refused batch leaves no stage or lock"


def test_batch_cli_refuses_an_unknown_objects_choice(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (32, 32)).save(folder / "a.png")
    assert main(["batch", str(folder), "--stage", str(tmp_path / "s.usda"), "--objects", "many"]) == 2
    assert "unknown objects 'many'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"], "a refused batch leaves no stage or lock"


# ----------------------------------------------------------------------------- real reconstructions


def make_batch_folder(folder: Path) -> Path:
    """Two good car blobs, a corrupt PNG, a text file and a uniform image with nothing to separate."""
    (folder / "more").mkdir(parents=True)
    car_blob(folder / "red_car.png", 1)
    car_blob(folder / "more" / "blue_car.PNG", 2)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0garbage" * 20)
    (folder / "notes.txt").write_text("not an image")
    Image.new("RGB", (96, 96), (128, 128, 128)).save(folder / "flat.jpg")
    return folder


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.endswith(".lock") and p.name != "batch_manifest.jsonl":
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def tiny_settings(tmp_path, monkeypatch):
    """A fast preset shrunk to one tiny level (LIFT3D_CONFIG); skips when the reconstructor is unavailable.

    The import check lives here, not at module level, because worker processes
    import this module to unpickle the engine tests' functions and should stay light.
    """
    pytest.importorskip("lift3d.pipeline.run", reason="the reconstructor (lift3d.pipeline.run) is not available yet")
    cfg = tmp_path / "tiny_settings.toml"
    cfg.write_text(TINY_SETTINGS)
    monkeypatch.setenv("LIFT3D_CONFIG", str(cfg))
    return cfg


def check_first_run(summary: dict, stage: Path) -> None:
    """Assertions shared by the local and Ray batch tests (``summary`` is the CLI's JSON)."""
    from lift3d.usd.shared_stage import SharedStage

    by_name = {Path(r["image"]).name: r for r in summary["records"]}
    assert summary["ok"] == 2 and summary["failed"] == 2 and summary["skipped"] == 0
    assert [Path(p).name for p in summary["ignored"]] == ["notes.txt"]
    assert by_name["red_car.png"]["status"] == by_name["blue_car.PNG"]["status"] == "ok"
    assert "broken.png" in by_name["broken.png"]["reason"]
    assert any(w in by_name["broken.png"]["reason"] for w in ("corrupt", "not a PNG"))
    assert "no separable object" in by_name["flat.jpg"]["reason"]
    entries = SharedStage(stage, create=False).list()
    assert sorted(e.source for e in entries) == ["images/more/blue_car.PNG", "images/red_car.png"]
    assert {e.prim_path for e in entries} == {by_name["red_car.png"]["prim"], by_name["blue_car.PNG"]["prim"]}
    for e in entries:
        assert Path(e.asset).is_file() and Path(e.asset).parent.parent == stage.parent / "assets"
        assert e.writer == "tester"


def test_batch_end_to_end_with_failures_and_resume(tmp_path, tiny_settings, capsys):
    stage = tmp_path / "team" / "shared.usda"
    folder = make_batch_folder(tmp_path / "team" / "images")
    args = ["batch", str(folder), "--stage", str(stage), "--workers", "2", "--preset", "fast",
            "--writer", "tester", "--json"]
    assert main(args) == 1
    first = json.loads(capsys.readouterr().out)
    check_first_run(first, stage)
    assert not any(p.name == "textures" for p in folder.rglob("*")), "assets must not land among the images"
    manifest = [json.loads(line) for line in (stage.parent / "batch_manifest.jsonl").read_text().splitlines()]
    assert sorted(r["status"] for r in manifest) == ["failed", "failed", "ok", "ok"]

    # Re-running does no repeated work: good images skipped, bad ones not retried, nothing on disk changes.
    before = _tree_digest(stage.parent)
    assets_before = sorted(p.name for p in (stage.parent / "assets").iterdir())
    assert main(args) == 1
    second = json.loads(capsys.readouterr().out)
    by_name = {Path(r["image"]).name: r for r in second["records"]}
    assert second["ok"] == 0 and second["skipped"] == 2 and second["failed"] == 2
    assert all(r["seconds"] == 0 for r in second["records"])
    assert "not retried" in by_name["flat.jpg"]["reason"] and "no separable object" in by_name["flat.jpg"]["reason"]
    assert sorted(p.name for p in (stage.parent / "assets").iterdir()) == assets_before
    assert _tree_digest(stage.parent) == before, "a re-run must leave the stage and assets untouched"

    # Assets that exist without their manifest lines (a run killed in between) are adopted, not redone.
    (stage.parent / "batch_manifest.jsonl").unlink()
    assert main(args) == 1
    third = json.loads(capsys.readouterr().out)
    adopted = [r for r in third["records"] if r["status"] == "skipped"]
    assert len(adopted) == 2 and all("already present" in r["reason"] for r in adopted)
    assert _tree_digest(stage.parent) == before

    # The human summary names every failure with its reason.
    assert main(args[:-1]) == 1
    text = capsys.readouterr().out
    assert "4 images: 0 ok, 2 failed (2 of them in an earlier run, not retried), 2 skipped; 2 assets in the stage; " \
           "1 other file ignored" in text
    assert "failed: " in text and "flat.jpg" in text


class InProcessEngine:
    """Runs the batch's tasks one after the other in this process (the real reconstructor, no worker start-up)."""

    def run(self, fn, tasks, on_crash):
        for task in tasks:
            yield task, fn(task)

    def close(self) -> None:
        pass


@pytest.fixture
def in_process(monkeypatch):
    monkeypatch.setattr("lift3d.batch_engines.make_engine", lambda *args, **kwargs: InProcessEngine())


def test_batch_makes_one_asset_and_one_prim_per_object_and_resumes_them(tmp_path, tiny_settings, in_process):
    from lift3d.usd.shared_stage import SharedStage

    folder = tmp_path / "images"
    folder.mkdir()
    two_cars(folder / "two cars.png")
    car_blob(folder / "car.png", 3)
    stage = tmp_path / "shared.usda"
    summary = run_batch(folder, stage, writer="tester", quiet=True)
    assert (summary.ok, summary.failed, summary.assets) == (2, 0, 3)
    by_name = {Path(r.image).name: r for r in summary.records}
    pair, single = by_name["two cars.png"], by_name["car.png"]
    first = Path(pair.asset).parent.name
    assert [Path(a).parent.name for a in pair.assets] == [first, first + "_2"]
    assert len(single.assets) == 1 and single.prims == [single.prim]
    assert all(Path(a).is_file() for a in pair.assets) and pair.prim == pair.prims[0]
    entries = {e.prim_path: e for e in SharedStage(stage, create=False).list()}
    assert set(entries) == set(pair.prims) | set(single.prims) and len(entries) == 3
    assert [p.rsplit("/", 1)[1].rsplit("_", 1)[0] for p in pair.prims] == ["tester__two_cars", "tester__two_cars_2"]
    assert {entries[p].source for p in pair.prims} == {"images/two cars.png"}
    assert sorted(Path(entries[p].asset) for p in pair.prims) == sorted(Path(a) for a in pair.assets)
    assert "2 images: 2 ok, 0 failed, 0 skipped; 3 assets in the stage;" in summary.format()
    lines = [json.loads(line) for line in (tmp_path / "batch_manifest.jsonl").read_text().splitlines()]
    line = next(e for e in lines if e["image"] == pair.image)
    assert line["status"] == "ok" and line["assets"] == pair.assets and line["prims"] == pair.prims

    # A re-run skips both images, lists every object's asset, and changes nothing.
    before = _tree_digest(tmp_path)
    again = run_batch(folder, stage, writer="tester", quiet=True)
    assert (again.ok, again.skipped, again.assets) == (0, 2, 3)
    assert {Path(r.image).name: r.assets for r in again.records} == {"two cars.png": pair.assets,
                                                                     "car.png": single.assets}
    assert {Path(r.image).name: r.prims for r in again.records}["two cars.png"] == pair.prims
    assert _tree_digest(tmp_path) == before

    # Without the manifest, the assets on disk are adopted: every object the provenance names is there.
    (tmp_path / "batch_manifest.jsonl").unlink()
    adopted = run_batch(folder, stage, writer="tester", quiet=True)
    assert adopted.skipped == 2 and all("already present" in r.reason for r in adopted.records)
    assert {Path(r.image).name: r.assets for r in adopted.records}["two cars.png"] == pair.assets
    assert _tree_digest(tmp_path) == before

    # An image whose second object is missing is not complete: it is done again, whole.
    import shutil

    (tmp_path / "batch_manifest.jsonl").unlink()
    shutil.rmtree(Path(pair.assets[1]).parent)
    redone = run_batch(folder, stage, writer="tester", quiet=True)
    by_name = {Path(r.image).name: r for r in redone.records}
    assert by_name["two cars.png"].status == "ok" and by_name["car.png"].status == "skipped"
    assert by_name["two cars.png"].assets == pair.assets and all(Path(a).is_file() for a in pair.assets)
    assert redone.assets == 3


def test_batch_of_the_largest_objects_makes_one_asset_per_photo(tmp_path, tiny_settings, in_process):
    folder = tmp_path / "images"
    folder.mkdir()
    two_cars(folder / "two cars.png")
    summary = run_batch(folder, tmp_path / "shared.usda", writer="tester", quiet=True, objects="largest")
    (record,) = summary.records
    assert record.status == "ok" and len(record.assets) == 1 and len(record.prims) == 1 and summary.assets == 1
    assert sorted(p.name for p in (tmp_path / "assets").iterdir()) == [Path(record.asset).parent.name]
    # "all" is another setting: its own assets beside these, none replaced
    every = run_batch(folder, tmp_path / "shared.usda", writer="tester", quiet=True, objects="all")
    assert every.ok == 1 and every.assets == 2 and record.asset not in every.records[0].assets
    assert Path(record.asset).is_file()


def test_run_batch_refuses_a_bad_objects_value_before_touching_the_stage(tmp_path):
    (tmp_path / "images").mkdir()
    car_blob(tmp_path / "images" / "car.png", 1)
    with pytest.raises(InputError, match="unknown objects 'many'"):
        run_batch(tmp_path / "images", tmp_path / "s.usda", quiet=True, objects="many")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_long_image_names_keep_room_for_the_object_suffix(tmp_path, monkeypatch):
    from lift3d import batch

    image = tmp_path / ("a" * 80 + ".png")
    image.write_bytes(b"x")
    ((_, task, _, _),) = batch._plan([image], "fp", tmp_path, "usda", "car", "fast", "all", {})
    assert len(task.name) == 61 and len(task.name + "_99") == 64


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a live process from /proc, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[0]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[1] not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_sigkill_of_the_batch_driver_leaves_no_process_behind(tmp_path, tiny_settings):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        car_blob(folder / f"car{i}.png", 20 + i)
    cmd = [sys.executable, "-m", "lift3d.cli", "batch", str(folder), "--stage", str(tmp_path / "shared.usda"),
           "--workers", "2", "--writer", "tester", "--json"]
    with open(tmp_path / "driver.err", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            children = {p for p in _descendants(proc.pid) if _running(p)}
            workers = [p for p in children if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
            if len(workers) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the batch ended before its workers were seen: " + \
            (tmp_path / "driver.err").read_text()[-2000:]
        assert len(children) >= 2
        time.sleep(0.5)  # let the workers settle into their imports or first task
        children |= {p for p in _descendants(proc.pid) if _running(p)}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_running(p) for p in children):
            time.sleep(0.1)
        survivors = [p for p in children if _running(p)]
        assert not survivors, f"processes outlived the killed driver: {survivors}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # never leave anything behind, even when the test fails
        proc.wait(timeout=30)


def test_interrupted_batch_resumes(tmp_path, tiny_settings):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        car_blob(folder / f"car{i}.png", 10 + i)
    stage = tmp_path / "shared.usda"
    manifest = tmp_path / "batch_manifest.jsonl"
    cmd = [sys.executable, "-m", "lift3d.cli", "batch", str(folder), "--stage", str(stage), "--workers", "1",
           "--writer", "tester", "--json"]
    # A test runner started in the background inherits SIGINT as ignored (and Python then installs no
    # KeyboardInterrupt handler); give the driver a terminal's default, as a user's shell does.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        if manifest.exists() and manifest.read_text().count("\n") >= 1:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the driver and its workers
            break
        time.sleep(0.05)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (130, 0), err.decode()[-2000:]
    done_first = manifest.read_text().count("\n")
    assert done_first >= 1

    result = subprocess.run(cmd, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    summary = json.loads(result.stdout)
    assert summary["ok"] + summary["skipped"] == 4 and summary["failed"] == 0
    assert summary["skipped"] >= done_first
    from lift3d.usd.shared_stage import SharedStage

    entries = SharedStage(stage, create=False).list()
    assert sorted(e.source for e in entries) == [f"images/car{i}.png" for i in range(4)], "no image twice, none lost"
    assert len(list((tmp_path / "assets").iterdir())) == 4
