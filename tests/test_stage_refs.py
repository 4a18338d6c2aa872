"""One way into a stage: the panel (Kit command, under the stand-ins) and the CLI/API make identical prims."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock
from pxr import Sdf, Usd, UsdGeom

from lift3d.cli import main
from lift3d.errors import InputError
from lift3d.usd import stage_refs
from lift3d.usd.compose import add_reference
from lift3d.usd.shared_stage import SharedStage, init_shared_stage
from lift3d.usd.writer import write_asset
from omni_stubs.harness import kit  # noqa: F401  (the fixture)
from test_kit_extension import _finished, disc_png

from asset_factory import make_car_asset


class WriteCar:
    """Stands in for lift3d.api.reconstruct: writes the toy car as the requested asset."""

    def __call__(self, request, progress=None, cancel=None, settings=None):
        from lift3d.api import ReconstructResult

        layer = write_asset(make_car_asset(request.name), request.out_dir)
        return ReconstructResult(name=request.name, asset_path=layer, metrics={"input_view_iou": 0.9})


def _spec(layer: Sdf.Layer, path: str) -> dict:
    """What a reconstruction prim is, minus when it was made."""
    spec = layer.GetPrimAtPath(path)
    data = dict(spec.customData["lift3d"])
    data.pop("time")
    return {"specifier": spec.specifier, "type": spec.typeName, "kind": spec.kind,
            "references": [(r.assetPath, r.primPath) for r in spec.referenceList.prependedItems],
            "payloads": list(spec.payloadList.prependedItems), "lift3d": data,
            "other_keys": sorted(set(spec.ListInfoKeys()) - {"customData", "references", "specifier", "typeName"})}


def _scaffold(layer: Sdf.Layer) -> list[tuple]:
    return [(str(p), layer.GetPrimAtPath(p).specifier, layer.GetPrimAtPath(p).typeName, layer.GetPrimAtPath(p).kind)
            for p in (stage_refs.WORLD, stage_refs.RECONSTRUCTIONS)]


def _panel_drop(kit, photo: Path, monkeypatch) -> str:
    """Drop ``photo`` on the viewport and wait for the panel's job; the prim path it added."""
    monkeypatch.setattr("lift3d.api.reconstruct", WriteCar())
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(photo)])
    kit.pump_until(lambda: _finished(ext))
    job = ext.jobs.jobs[-1]
    assert job.state.value == "done", (job.error, kit.notes())
    return job.result.prim_path


def test_panel_and_cli_make_the_same_prim_in_a_shared_stage(kit, tmp_path, monkeypatch):
    root = tmp_path / "shared.usda"
    init_shared_stage(root)
    SharedStage(root, writer="alice").add(write_asset(make_car_asset("seed"), tmp_path / "lib"))  # alice joins
    photo = disc_png(tmp_path / "car.png")
    kit.usd.get_context().open_stage(str(root))
    kit.set("writer", "alice")
    panel_prim = _panel_drop(kit, photo, monkeypatch)
    asset = tmp_path / "car" / "car.usda"
    assert asset.is_file(), "the panel writes the asset beside the stage"
    alice = next(layer for layer in kit.usd.get_context().get_stage().GetLayerStack()
                 if layer.realPath.endswith("alice.usda"))
    alice.Save()  # File > Save in Kit

    # The CLI, as the same writer, finds the panel's prim: same name, nothing added.
    assert main(["stage", "add", str(root), str(asset), "--writer", "alice"]) == 0
    bob_prim = SharedStage(root, writer="bob").add(asset, source=str(photo))  # what reconstruct --stage does
    alice_disk = Sdf.Layer.OpenAsAnonymous(str(root.parent / "writers" / "alice.usda"))
    bob_disk = Sdf.Layer.OpenAsAnonymous(str(root.parent / "writers" / "bob.usda"))
    assert len(alice_disk.GetPrimAtPath(stage_refs.RECONSTRUCTIONS).nameChildren) == 2  # seed + car, no copy
    assert panel_prim == bob_prim.replace("/bob__", "/alice__")
    assert panel_prim.startswith("/World/Reconstructions/alice__car_")

    panel, cli = _spec(alice_disk, panel_prim), _spec(bob_disk, bob_prim)
    assert panel.pop("lift3d") == {"source": str(photo), "writer": "alice"}
    assert cli.pop("lift3d") == {"source": str(photo), "writer": "bob"}
    assert panel == cli and panel["references"] == [("../car/car.usda", Sdf.Path())]
    assert _scaffold(alice_disk) == _scaffold(bob_disk)
    entries = {e.prim_path: e for e in SharedStage(root, create=False).list()}
    assert entries[panel_prim].asset == entries[bob_prim].asset == str(asset)


def test_panel_and_compose_make_the_same_prim_in_a_plain_stage(kit, tmp_path, monkeypatch):
    stage_path = tmp_path / "scene.usda"
    stage = Usd.Stage.CreateNew(str(stage_path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    stage.Save()
    photo = disc_png(tmp_path / "car.png")
    kit.usd.get_context().open_stage(str(stage_path))
    panel_prim = _panel_drop(kit, photo, monkeypatch)
    kit.usd.get_context().get_stage().GetRootLayer().Save()
    asset = tmp_path / "car" / "car.usda"
    cli_prim = add_reference(stage_path, asset, source=str(photo))  # what reconstruct --stage does
    assert (panel_prim, cli_prim) == ("/World/Reconstructions/car", "/World/Reconstructions/car_2")
    layer = Sdf.Layer.OpenAsAnonymous(str(stage_path))
    assert _spec(layer, panel_prim) == _spec(layer, cli_prim)
    assert _scaffold(layer) == [("/World", Sdf.SpecifierDef, "Xform", "assembly"),
                                ("/World/Reconstructions", Sdf.SpecifierDef, "Xform", "group")]
    assert layer.defaultPrim == "World"


# -- the rules themselves -------------------------------------------------------------------------


def test_prim_names():
    assert stage_refs.prim_name("my car (2).jpg", []) == "my_car_2"
    assert stage_refs.prim_name("car", ["car", "car_2"]) == "car_3"
    assert stage_refs.prim_name("", []) == "asset"
    assert stage_refs.prim_name("_car", ["x"], writer="alice", digest="0123abcd") == "alice__car_0123abcd"
    assert stage_refs.prim_name("car", ["alice__car_0123abcd"], writer="alice", digest="0123abcd") == \
        "alice__car_0123abcd", "a writer's names are deterministic, so a second add finds the first prim"


def test_add_then_remove_leaves_the_layer_as_it_was(tmp_path):
    asset = stage_refs.inspect_asset(write_asset(make_car_asset(), tmp_path))
    layer = Sdf.Layer.CreateAnonymous(".usda")
    before = layer.ExportToString()
    added = stage_refs.add_reference(layer, asset, tmp_path, source="car.png", time="2026-01-01T00:00:00Z")
    assert added.created == [stage_refs.WORLD, stage_refs.RECONSTRUCTIONS] and added.set_default_prim
    spec = layer.GetPrimAtPath(added.prim_path)
    assert spec.customData["lift3d"] == {"source": "car.png", "time": "2026-01-01T00:00:00Z"}
    assert [r.assetPath for r in spec.referenceList.prependedItems] == ["./toy_car/toy_car.usda"]
    stage_refs.remove_reference(layer, added)
    assert layer.ExportToString() == before


def test_an_existing_world_from_another_layer_gets_an_over(tmp_path):
    asset = stage_refs.inspect_asset(write_asset(make_car_asset(), tmp_path))
    layer = Sdf.Layer.CreateAnonymous(".usda")
    added = stage_refs.add_reference(layer, asset, None, defined_elsewhere=[stage_refs.WORLD])
    assert layer.GetPrimAtPath("/World").specifier == Sdf.SpecifierOver and not layer.GetPrimAtPath("/World").typeName
    assert layer.GetPrimAtPath("/World/Reconstructions").typeName == "Xform"
    assert not added.set_default_prim and not layer.defaultPrim
    ref = layer.GetPrimAtPath(added.prim_path).referenceList.prependedItems[0]
    assert Path(ref.assetPath).is_absolute(), "an anonymous layer gets the absolute path"
    # No source given: the photo the asset records (its provenance holds a list of dicts, stored as JSON).
    assert layer.GetPrimAtPath(added.prim_path).customData["lift3d"]["source"] == "front_left.png"


def test_a_held_lock_is_an_input_error_after_the_one_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(stage_refs, "LOCK_TIMEOUT_S", 0.2)
    stage_path = tmp_path / "scene.usda"
    asset = write_asset(make_car_asset(), tmp_path)
    shared = tmp_path / "shared.usda"
    with FileLock(str(stage_path) + ".lock"), FileLock(str(shared) + ".lock"):
        with pytest.raises(InputError, match="locked by another writer"):
            add_reference(stage_path, asset)
        with pytest.raises(InputError, match="locked by another writer"):
            SharedStage(shared, writer="w")
    assert not stage_path.exists() and not shared.exists()
