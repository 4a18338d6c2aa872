"""The shared stage: layout, adding, listing, concurrent writers, kill -9 during a save, watching."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pxr import Sdf, Usd, UsdGeom

from lift3d.cli import main
from lift3d.errors import InputError
from lift3d.usd.checker import check_asset
from lift3d.usd.shared_stage import RECONSTRUCTIONS, SharedStage, init_shared_stage, writer_name
from stage_writer_proc import make_tiny_asset

HELPER = str(Path(__file__).with_name("stage_writer_proc.py"))


def _fresh_stage(root: Path) -> Usd.Stage:
    """Open ``root`` bypassing any layer this process already holds (reload root and sublayers)."""
    stage = Usd.Stage.Open(str(root))
    for layer in stage.GetLayerStack(includeSessionLayers=False):
        layer.Reload(force=True)
    return stage


def test_init_writes_an_omniverse_ready_root(tmp_path):
    root = tmp_path / "shared.usda"
    assert init_shared_stage(root) == str(root)
    layer = Sdf.Layer.OpenAsAnonymous(str(root))
    assert layer.customLayerData["lift3d"]["sharedStage"] is True
    stage = Usd.Stage.Open(str(root))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert stage.GetDefaultPrim().GetPath() == Sdf.Path("/World")
    assert stage.GetPrimAtPath(RECONSTRUCTIONS).IsValid()
    before = root.read_bytes()
    init_shared_stage(root)  # idempotent: an existing shared stage is left alone
    assert root.read_bytes() == before
    assert oct(root.stat().st_mode & 0o044) == oct(0o044), "the team must be able to read the stage"


def test_init_refuses_foreign_files(tmp_path):
    other = tmp_path / "scene.usda"
    Usd.Stage.CreateNew(str(other)).Save()
    with pytest.raises(InputError, match="not a lift3d shared stage"):
        init_shared_stage(other)
    with pytest.raises(InputError, match=r"\.usda"):
        init_shared_stage(tmp_path / "scene.usdc")
    with pytest.raises(InputError, match="does not exist"):
        SharedStage(tmp_path / "missing.usda", create=False)


def test_writer_names_are_identifiers_without_double_underscores():
    assert writer_name("alice@ws-3.lan") == "alice_ws_3_lan"
    assert writer_name("a__b") == "a_b"
    name = writer_name(None)
    assert name and "__" not in name and Sdf.Path.IsValidIdentifier(name)


def test_add_references_asset_with_provenance_and_is_idempotent(tmp_path):
    root = tmp_path / "stage" / "shared.usda"
    asset = make_tiny_asset(tmp_path / "assets", "car", 1)
    alice = SharedStage(root, writer="alice")
    prim = alice.add(asset, source="photos/car.png")
    assert prim.startswith("/World/Reconstructions/alice__car_")
    assert alice.add(asset, source="photos/car.png") == prim
    bob_prim = SharedStage(root, writer="bob").add(asset, source="photos/car.png")
    assert bob_prim != prim

    # The writer layer holds a relative reference, the root only lists sublayers.
    layer = Sdf.Layer.OpenAsAnonymous(str(alice.writer_layer))
    spec = layer.GetPrimAtPath(prim)
    assert [r.assetPath for r in spec.referenceList.prependedItems] == ["../../assets/car/car.usda"]
    root_layer = Sdf.Layer.OpenAsAnonymous(str(root))
    assert list(root_layer.subLayerPaths) == ["./writers/alice.usda", "./writers/bob.usda"]
    assert not root_layer.GetPrimAtPath(prim)

    entries = {e.prim_path: e for e in alice.list()}
    assert set(entries) == {prim, bob_prim}
    e = entries[prim]
    assert (e.writer, e.source, e.layer) == ("alice", "photos/car.png", "writers/alice.usda")
    assert Path(e.asset) == asset
    assert e.time.endswith("Z") and e.time[:4].isdigit()
    stage = _fresh_stage(root)
    assert stage.GetPrimAtPath(prim + "/mesh").IsA(UsdGeom.Mesh)
    # What usdchecker / the USD validators check, for the composed root and a writer layer alone.
    assert check_asset(root) == [] and check_asset(alice.writer_layer) == []

    # A different asset content under the same name gets a different prim.
    asset2 = make_tiny_asset(tmp_path / "assets2", "car", 2)
    assert alice.add(asset2) != prim


def test_add_rejects_bad_assets(tmp_path):
    stage = SharedStage(tmp_path / "s.usda", writer="w")
    with pytest.raises(InputError, match="does not exist"):
        stage.add(tmp_path / "nope.usda")
    junk = tmp_path / "junk.usda"
    junk.write_text("this is not usd")
    with pytest.raises(InputError, match="not a valid USD layer"):
        stage.add(junk)
    assert not stage.writer_layer.exists()


def test_cli_stage_commands(tmp_path, capsys):
    root = tmp_path / "cli.usda"
    asset = make_tiny_asset(tmp_path, "truck", 3)
    assert main(["stage", "init", str(root)]) == 0
    assert main(["stage", "add", str(root), str(asset), "--writer", "carol", "--name", "red truck"]) == 0
    prim = capsys.readouterr().out.strip().splitlines()[-1]
    assert prim.startswith("/World/Reconstructions/carol__red_truck_")
    assert main(["stage", "list", str(root), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["prim_path"], r["writer"]) for r in rows] == [(prim, "carol")]
    assert main(["stage", "list", str(tmp_path / "absent.usda")]) == 2


def test_four_concurrent_writers_lose_nothing(tmp_path):
    root = tmp_path / "shared.usda"
    init_shared_stage(root)
    writers = [f"w{i}" for i in range(4)]
    procs = [subprocess.Popen([sys.executable, HELPER, "add", str(root), w, str(tmp_path / "assets"), "10", "0.05",
                               str(i + 1)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, w in enumerate(writers)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err

    for path in [root, *sorted((tmp_path / "writers").glob("*.usda"))]:
        assert Sdf.Layer.FindOrOpen(str(path)) is not None, f"{path} is corrupt"
    assert sorted(Sdf.Layer.OpenAsAnonymous(str(root)).subLayerPaths) == [f"./writers/{w}.usda" for w in writers]

    entries = SharedStage(root, create=False).list()
    assert len(entries) == 40
    reported = {line for out, _ in outputs for line in out.split()}
    assert {e.prim_path for e in entries} == reported
    stage = _fresh_stage(root)
    for e in entries:
        prim = stage.GetPrimAtPath(e.prim_path)
        assert prim.GetChild("mesh").IsA(UsdGeom.Mesh), f"{e.prim_path}: reference does not resolve"
        # Only the writer's own layer authors the prim, and it is the writer recorded in customData.
        assert [s.layer.realPath for s in prim.GetPrimStack() if s.path == prim.GetPath()] == [
            str((tmp_path / e.layer).resolve())]
        assert e.layer == f"writers/{e.writer}.usda"
        assert Sdf.Path(e.prim_path).name.startswith(e.writer + "__")


def test_kill_9_during_saves_keeps_the_previous_layer(tmp_path):
    root = tmp_path / "shared.usda"
    init_shared_stage(root)
    layer_path = tmp_path / "writers" / "grower.usda"
    rng = random.Random(5)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, HELPER, "grow", str(root), "grower", str(tmp_path / "a"), "3000"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        saved: list[int] = []
        started = threading.Event()

        def read(stream=proc.stdout, saved=saved, started=started):
            for line in stream:
                saved.append(int(line.split()[1]))
                started.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert started.wait(120), proc.stderr.read() if proc.poll() is not None else "writer did not start"
        time.sleep(rng.uniform(0.05, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        reader.join(10)
        last = saved[-1]
        layer = Sdf.Layer.OpenAsAnonymous(str(layer_path))
        assert layer is not None, "the writer layer on disk is corrupt after kill -9"
        count = len(layer.GetPrimAtPath(RECONSTRUCTIONS).nameChildren)
        assert count >= last >= 3000
    assert Sdf.Layer.FindOrOpen(str(layer_path)) is not None
    # The next save by this writer cleans up temporary files a killed save left behind.
    SharedStage(root, writer="grower").add(make_tiny_asset(tmp_path, "after", 9))
    assert not list(layer_path.parent.glob(".grower.usda.*"))
    assert len(SharedStage(root, create=False).list()) >= 3001


def test_watch_reports_other_processes_additions(tmp_path):
    root = tmp_path / "shared.usda"
    SharedStage(root, writer="local").add(make_tiny_asset(tmp_path / "assets", "first", 4))
    events = SharedStage(root, create=False).watch(interval=0.1, duration=120)
    first = next(events)
    assert "watching" in first and "1 reconstructions" in first

    def add_from(writer: str, seed: int) -> None:
        subprocess.run([sys.executable, HELPER, "add", str(root), writer, str(tmp_path / "assets"), "1", "0", str(seed)],
                       check=True, capture_output=True, timeout=120)

    seen: list[str] = []
    # A new writer joins (root and a new sublayer change), then an existing writer adds (its layer only).
    for writer, seed in (("remote", 11), ("local", 12)):
        thread = threading.Thread(target=add_from, args=(writer, seed))
        thread.start()
        for line in events:
            seen.append(line)
            if " appeared " in line and f"writer={writer} " in line:
                break
        thread.join()
    events.close()
    appeared = [line for line in seen if " appeared " in line]
    assert len(appeared) == 2, seen
    assert "/World/Reconstructions/remote__remote_0_" in appeared[0] and "source=remote_0.png" in appeared[0]
    assert "/World/Reconstructions/local__local_0_" in appeared[1]
    assert not any(" vanished " in line for line in seen)
