"""The Kit extension (lift3d.kit) under stand-in omni/carb modules: lifecycle, panel, drops, jobs, undo."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pxr import Sdf, Usd, UsdGeom
from synthetic_inputs import TINY_SETTINGS, two_cars

from lift3d.api import ReconstructResult
from lift3d.errors import InputError
from omni_stubs.harness import kit  # noqa: F401  (the fixture)

WINDOW = "lift3d Reconstruct"
WAIT = 60.0


def _pipeline_available() -> bool:
    try:
        return importlib.util.find_spec("lift3d.pipeline.run") is not None
    except ModuleNotFoundError:
        return False


needs_pipeline = pytest.mark.skipif(not _pipeline_available(),
                                    reason="the reconstruction pipeline (lift3d.pipeline.run) is not available yet")


def disc_png(path: Path, size: int = 64) -> Path:
    """A size x size RGBA image of an orange disc on transparent background (alpha = mask)."""
    yy, xx = np.mgrid[0:size, 0:size]
    inside = (xx - size / 2 + 0.5) ** 2 + (yy - size / 2 + 0.5) ** 2 < (0.3 * size) ** 2
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[inside] = (230, 120, 40, 255)
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def new_stage(path: Path) -> Usd.Stage:
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    stage.SetDefaultPrim(UsdGeom.Xform.Define(stage, "/World").GetPrim())
    stage.Save()
    return stage


class FakeReconstruct:
    """Stands in for lift3d.api.reconstruct: writes a tiny asset (root Xform + SourceCamera) after ``steps``.

    Every step checks the cancel token and, when ``gate`` is set, waits for the test to release it.
    With ``objects`` > 1 the photo "shows" that many objects: unless the request asks for the
    largest only, each gets its own asset (``NAME``, ``NAME_2``, ...) as in lift3d.pipeline.objects.
    """

    def __init__(self, steps: int = 3, gate: threading.Semaphore | None = None, error: Exception | None = None,
                 objects: int = 1):
        self.steps, self.gate, self.error, self.objects = steps, gate, error, objects
        self.requests: list = []
        self.started = threading.Event()

    @staticmethod
    def _write(out_dir: Path, name: str) -> ReconstructResult:
        folder = Path(out_dir) / name
        folder.mkdir(parents=True)
        asset = folder / f"{name}.usda"
        stage = Usd.Stage.CreateNew(str(asset))
        stage.SetDefaultPrim(UsdGeom.Xform.Define(stage, f"/{name}").GetPrim())
        UsdGeom.Camera.Define(stage, f"/{name}/SourceCamera")
        stage.Save()
        return ReconstructResult(name=name, asset_path=asset, metrics={"input_view_iou": 0.875})

    def __call__(self, request, progress=None, cancel=None, settings=None) -> ReconstructResult:
        self.requests.append((request, settings))
        self.started.set()
        if self.error is not None:
            raise self.error
        for step in range(self.steps):
            cancel.raise_if_cancelled()
            if self.gate is not None:
                assert self.gate.acquire(timeout=WAIT)
            progress("shape", (step + 1) / self.steps)
        count = 1 if request.objects == "largest" else self.objects if request.objects == "all" \
            else min(int(request.objects), self.objects)
        result = self._write(request.out_dir, request.name)
        result.other_objects = [self._write(request.out_dir, f"{request.name}_{i}") for i in range(2, count + 1)]
        return result


class FakePreview:
    """Stands in for lift3d.preview.preview_image: a plain sheet of ``size``, or ``error`` raised."""

    def __init__(self, size: tuple[int, int] = (120, 70), error: Exception | None = None) -> None:
        self.size, self.error = size, error
        self.calls: list[tuple[Path, Path | None, int, str]] = []

    def __call__(self, path, photo=None, tile=256) -> Image.Image:
        self.calls.append((Path(path), None if photo is None else Path(photo), tile, threading.current_thread().name))
        if self.error is not None:
            raise self.error
        return Image.new("RGB", self.size, (10, 200, 30))


@pytest.fixture
def fake(monkeypatch):
    runner = FakeReconstruct()
    monkeypatch.setattr("lift3d.api.reconstruct", runner)
    runner.preview = FakePreview()
    monkeypatch.setattr("lift3d.preview.preview_image", runner.preview)
    return runner


def _finished(ext) -> bool:
    """Jobs were queued and all of them ended, and no viewport drop waits for the next update."""
    return bool(ext.jobs.jobs) and not ext.jobs.active() and not ext._pending_drops


# -- lifecycle ------------------------------------------------------------------------------------


def test_startup_then_shutdown_leaves_nothing_registered(kit, tmp_path):
    ext = kit.start()
    registry = kit.actions.get_action_registry()
    assert registry.get_action("lift3d.reconstruct", "show_window") is not None
    assert [item.name for item in kit.menu.menus["Window"]] == [WINDOW]
    assert "Lift3dAddReconstruction" in kit.commands.get_commands()
    assert len(kit.app.get_app().get_update_event_stream().subscriptions) == 1
    delegate_cls = kit.viewport_drop.DragDropDelegate
    assert len(list(delegate_cls.get_instances())) == 1
    ext.show_window()
    assert len(kit.ui.windows) == 1 and len(kit.os_drop.instances) == 1

    kit.stop()
    assert vars(ext) and all(value is None for value in vars(ext).values()), \
        f"attributes still holding objects after shutdown: {[k for k, v in vars(ext).items() if v is not None]}"
    assert kit.module("lift3d.kit.extension").get_instance() is None
    assert registry.get_all_actions() == []
    assert kit.menu.menus == {}
    assert kit.commands.get_commands() == {}
    assert kit.app.get_app().get_update_event_stream().subscriptions == []
    assert list(delegate_cls.get_instances()) == []
    assert kit.os_drop.instances == []
    assert kit.ui.windows == []
    assert kit.ui.find("lift3d.reconstruct") is None


def test_startup_warms_the_kernels_up_off_the_ui_thread(kit):
    ext = kit.start()
    ext._warmup.join(timeout=30)
    assert kit.warmups == ["lift3d-warmup"] and threading.current_thread().name != "lift3d-warmup"


def test_menu_action_opens_the_panel(kit):
    kit.start()
    assert kit.ui.windows == []
    item = kit.menu.menus["Window"][0]
    assert item.onclick_action == ("lift3d.reconstruct", "show_window") and not item.ticked_fn()
    kit.menu.click("Window", WINDOW)
    assert [w.title for w in kit.ui.windows] == [WINDOW] and kit.ui.windows[0].visible
    assert item.ticked_fn()
    for identifier in ("lift3d.add_images", "lift3d.images", "lift3d.category", "lift3d.preset", "lift3d.views",
                       "lift3d.reconstruct", "lift3d.cancel", "lift3d.stage", "lift3d.progress", "lift3d.results"):
        assert kit.ui.find(identifier) is not None, identifier
    # Pickers offer the configured choices, preselected from the extension settings.
    assert kit.ui.find("lift3d.category").model.items == ["car", "generic"]
    assert kit.ext.window.category == "car" and kit.ext.window.preset == "balanced"
    # A second click brings the same panel back rather than opening another one.
    kit.ext.window.visible = False
    kit.menu.click("Window", WINDOW)
    assert len(kit.ui.windows) == 1 and kit.ui.windows[0].visible


# -- drops ----------------------------------------------------------------------------------------


def test_os_drop_of_two_pngs_queues_two_jobs(kit, fake, tmp_path):
    fake.gate = threading.Semaphore(0)
    new_stage(tmp_path / "scene.usda")
    kit.usd.get_context().open_stage(str(tmp_path / "scene.usda"))
    a, b = disc_png(tmp_path / "front.png"), disc_png(tmp_path / "side.png")
    ext = kit.start()
    ext.show_window()
    assert kit.os_drop.simulate_drop(WINDOW, [str(a), str(b)]) == 1
    assert [job.request.images for job in ext.jobs.jobs] == [[a], [b]]
    assert [job.request.name for job in ext.jobs.jobs] == ["front", "side"]
    assert all(job.request.out_dir == tmp_path for job in ext.jobs.jobs), "assets go beside the stage"
    assert ext.window.images == [a, b]
    thumbs = [w for w in kit.ui.find("lift3d.images").children[0].children]
    assert len(thumbs) == 2
    assert kit.ui.find("lift3d.cancel").enabled
    for _ in range(2 * fake.steps):
        fake.gate.release()
    kit.pump_until(lambda: _finished(ext))
    stage = kit.usd.get_context().get_stage()
    assert [p.GetName() for p in stage.GetPrimAtPath("/World/Reconstructions").GetChildren()] == ["front", "side"]
    assert [r.prim_path for r in ext.window.results] == ["/World/Reconstructions/front", "/World/Reconstructions/side"]
    assert ext.window.results[0].input_view_iou == pytest.approx(0.875)
    assert not kit.ui.find("lift3d.cancel").enabled


def test_content_browser_drop_onto_the_panel_queues_a_job(kit, fake, tmp_path):
    a = disc_png(tmp_path / "car.png")
    kit.set("output_folder", str(tmp_path / "out"))
    ext = kit.start()
    ext.show_window()
    frame = kit.ui.windows[0].frame
    assert frame.accept_drop_fn(str(a))
    assert frame.accept_drop_fn(a.as_uri())  # file: URL
    assert not frame.accept_drop_fn("omniverse://server/car.png")
    frame.drop_fn(kit.ui.WidgetMouseDropEvent(a.as_uri()))
    assert [job.request.images for job in ext.jobs.jobs] == [[a]]
    # No stage open: the asset goes to the configured output folder and is not added anywhere.
    assert ext.jobs.jobs[0].request.out_dir == tmp_path / "out"
    kit.pump_until(lambda: _finished(ext))
    assert (tmp_path / "out" / "car" / "car.usda").is_file()
    assert "no stage is open" in kit.notes()[-1]


def test_drop_of_a_text_file_is_refused(kit, fake, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    ext = kit.start()
    ext.show_window()
    assert not kit.ui.windows[0].frame.accept_drop_fn(str(notes))
    assert kit.viewport_drop.simulate_drop([str(notes)]) == [], "the viewport delegate took a .txt"
    kit.os_drop.simulate_drop(WINDOW, [str(notes)])
    assert ext.jobs.jobs == []
    assert kit.notes() == ["lift3d: error: notes.txt is not a PNG, JPEG or WebP image or a transforms.json"]
    assert fake.requests == []


def test_images_with_transforms_json_make_one_multiview_job(kit, fake, tmp_path):
    views = tmp_path / "transforms.json"
    views.write_text('{"camera_angle_x": 0.7, "frames": []}')
    images = [disc_png(tmp_path / f"r_{i}.png") for i in range(3)]
    kit.set("output_folder", str(tmp_path / "out"))
    ext = kit.start()
    ext.show_window()
    kit.ui.find("lift3d.add_images").call_clicked_fn()
    importer = kit.file_importer.get_file_importer()
    assert importer.shown is not None and importer.shown["file_extension_types"]
    assert importer.shown["allow_multi_files_selection"], "the picker must allow several photos"
    asyncio.run(importer.select_items_async(tmp_path.as_posix(), [p.name for p in images] + [views.name]))
    importer.click_apply()
    assert ext.window.images == images and ext.window.views == views
    assert ext.jobs.jobs == [], "picking files must not start a reconstruction"
    kit.ui.find("lift3d.reconstruct").call_clicked_fn()
    (job,) = ext.jobs.jobs
    assert job.request.images == images and job.request.views == views and job.request.name == "r_0"


def test_viewport_drop_adds_one_undoable_reference_with_its_camera(kit, fake, tmp_path):
    stage_path = tmp_path / "scene.usda"
    new_stage(stage_path)
    kit.usd.get_context().open_stage(str(stage_path))
    photo = disc_png(tmp_path / "photo.png")
    ext = kit.start()
    assert kit.viewport_drop.simulate_drop([str(photo)])
    kit.pump_until(lambda: _finished(ext))
    assert [name for name, _ in kit.commands.executed] == ["Lift3dAddReconstruction"]
    stage = kit.usd.get_context().get_stage()
    prim = stage.GetPrimAtPath("/World/Reconstructions/photo")
    assert prim.IsValid() and prim.HasAuthoredReferences()
    refs = stage.GetRootLayer().GetPrimAtPath(prim.GetPath()).referenceList.prependedItems
    assert [r.assetPath for r in refs] == ["./photo/photo.usda"]
    assert prim.GetTypeName() == "Xform"
    assert UsdGeom.Camera(stage.GetPrimAtPath("/World/Reconstructions/photo/SourceCamera"))
    assert "lift3d: photo added at /World/Reconstructions/photo (input-view IoU 0.875)" in kit.notes()
    kit.undo.undo()
    assert not stage.GetPrimAtPath("/World/Reconstructions/photo").IsValid()
    assert not stage.GetPrimAtPath("/World/Reconstructions").IsValid(), "undo leaves the scope it created"
    assert stage.GetPrimAtPath("/World").IsValid()
    kit.undo.redo()
    assert stage.GetPrimAtPath("/World/Reconstructions/photo").IsValid()


def test_second_reconstruction_of_the_same_photo_gets_a_new_name(kit, fake, tmp_path):
    stage_path = tmp_path / "scene.usda"
    new_stage(stage_path)
    kit.usd.get_context().open_stage(str(stage_path))
    photo = disc_png(tmp_path / "photo.png")
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(photo)])
    kit.pump_until(lambda: _finished(ext))
    kit.viewport_drop.simulate_drop([str(photo)])
    kit.pump_until(lambda: _finished(ext))
    assert [job.request.name for job in ext.jobs.jobs] == ["photo", "photo_2"]
    children = kit.usd.get_context().get_stage().GetPrimAtPath("/World/Reconstructions").GetChildren()
    assert [c.GetName() for c in children] == ["photo", "photo_2"]


def test_command_on_an_anonymous_stage_creates_world_and_references_absolutely(kit, tmp_path):
    kit.usd.get_context().new_stage()
    asset = tmp_path / "thing" / "thing.usda"
    asset.parent.mkdir()
    layer = Sdf.Layer.CreateNew(str(asset))
    Sdf.CreatePrimInLayer(layer, "/thing").specifier = Sdf.SpecifierDef
    layer.defaultPrim = "thing"
    layer.Save()
    kit.start()
    ok, path = kit.commands.execute("Lift3dAddReconstruction", asset_path=str(asset), prim_name="my thing")
    assert ok and path == "/World/Reconstructions/my_thing"
    stage = kit.usd.get_context().get_stage()
    refs = stage.GetRootLayer().GetPrimAtPath(path).referenceList.prependedItems
    assert [r.assetPath for r in refs] == [asset.resolve().as_posix()]
    assert stage.GetDefaultPrim().GetPath() == Sdf.Path("/World")
    kit.undo.undo()
    assert not stage.GetPrimAtPath("/World").IsValid() and not stage.HasDefaultPrim()


def test_shared_stage_writer_layer_receives_the_reference(kit, tmp_path):
    from lift3d.usd.shared_stage import SharedStage, init_shared_stage

    root = tmp_path / "shared.usda"
    init_shared_stage(root)
    assets = []
    for name in ("bob_car", "alice_car"):
        asset = tmp_path / name / f"{name}.usda"
        asset.parent.mkdir()
        stage = Usd.Stage.CreateNew(str(asset))
        stage.SetDefaultPrim(UsdGeom.Xform.Define(stage, f"/{name}").GetPrim())
        stage.Save()
        assets.append(asset)
    SharedStage(root, writer="bob").add(assets[0])
    SharedStage(root, writer="alice@ws-3").add(assets[0], name="earlier")  # alice joins the shared stage
    kit.usd.get_context().open_stage(str(root))
    kit.set("writer", "alice@ws-3")
    ext = kit.start()
    ok, path = kit.commands.execute("Lift3dAddReconstruction", asset_path=str(assets[1]), prim_name="car",
                                    writer=ext._options.writer, source="/photos/car.png")
    assert ok and path.startswith("/World/Reconstructions/alice_ws_3__car_")
    stage = kit.usd.get_context().get_stage()
    alice = next(layer for layer in stage.GetLayerStack() if layer.realPath.endswith("alice_ws_3.usda"))
    assert alice.GetPrimAtPath(path) is not None
    assert stage.GetRootLayer().GetPrimAtPath(path) is None, "the root of a shared stage must stay untouched"
    assert [r.assetPath for r in alice.GetPrimAtPath(path).referenceList.prependedItems] == ["../alice_car/alice_car.usda"]
    alice.Save()  # what File > Save does in Kit
    entries = {e.prim_path: e for e in SharedStage(root, create=False).list()}
    assert entries[path].writer == "alice_ws_3" and entries[path].source == "/photos/car.png"
    assert len(entries) == 3
    kit.undo.undo()
    assert alice.GetPrimAtPath(path) is None


# -- progress, cancel and errors --------------------------------------------------------------------


def test_cancel_button_stops_a_running_job_and_adds_nothing(kit, fake, tmp_path):
    fake.gate = threading.Semaphore(0)
    fake.steps = 100
    kit.set("output_folder", str(tmp_path / "out"))
    photo = disc_png(tmp_path / "photo.png")
    ext = kit.start()
    ext.show_window()
    kit.os_drop.simulate_drop(WINDOW, [str(photo)])
    fake.gate.release()
    kit.pump_until(lambda: ext.jobs.jobs[0].fraction > 0)
    assert kit.ui.find("lift3d.stage").text == "photo: shape"
    assert kit.ui.find("lift3d.progress").model.as_float == pytest.approx(0.01)
    kit.ui.find("lift3d.cancel").call_clicked_fn()
    fake.gate.release()
    kit.pump_until(lambda: _finished(ext))
    job = ext.jobs.jobs[0]
    assert job.state.value == "cancelled"
    assert job.fraction <= 0.02 + 1e-9, "the job went on for more than one step after cancel"
    assert kit.commands.executed == []
    assert not (tmp_path / "out" / "photo").exists()
    assert kit.notes()[-1] == "lift3d: photo cancelled"
    assert kit.ui.find("lift3d.stage").text == "idle"


def test_error_surfaces_as_a_notification_with_the_cli_text(kit, monkeypatch, tmp_path):
    monkeypatch.setattr("lift3d.api.reconstruct",
                        FakeReconstruct(error=InputError("photo.png: no object could be separated")))
    kit.set("output_folder", str(tmp_path / "out"))
    photo = disc_png(tmp_path / "photo.png")
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(photo)])
    kit.pump_until(lambda: _finished(ext))
    assert kit.notes() == ["lift3d: error: photo.png: no object could be separated"]
    note = kit.notifications.posted[-1]
    assert note.status == kit.notifications.NotificationStatus.WARNING


def test_bad_setting_is_reported_and_queues_nothing(kit, fake, tmp_path):
    kit.set("format", "obj")
    photo = disc_png(tmp_path / "photo.png")
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(photo)])
    kit.app.get_app().get_update_event_stream().pump()
    assert ext.jobs.jobs == []
    assert kit.notes()[0].startswith("lift3d: error: Kit setting /exts/lift3d.reconstruct/format:")


def test_settings_reach_the_job(kit, fake, tmp_path):
    kit.set("working_resolution", 100)
    kit.set("format", "usdc")
    kit.set("preset", "best")
    kit.set("category", "generic")
    kit.set("output_folder", str(tmp_path / "out"))
    photo = disc_png(tmp_path / "photo.png")
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(photo)])
    kit.pump_until(lambda: _finished(ext))
    request, settings = fake.requests[0]
    assert request.preset == "best" and request.category == "generic"
    assert settings.output.format == "usdc"
    assert settings.presets["best"].levels == [64, 100] and settings.presets["best"].steps == [150, 120]
    assert settings.presets["fast"].levels == [64, 128], "other presets are left alone"


def test_cap_levels(kit):
    kit.start()
    from lift3d.kit.options import cap_levels
    from lift3d.settings import load_settings

    balanced = load_settings().preset("balanced")
    assert cap_levels(balanced, 256) == balanced
    assert cap_levels(balanced, 1024) == balanced
    assert (cap_levels(balanced, 128).levels, cap_levels(balanced, 128).steps) == ([64, 128], [80, 60])
    assert (cap_levels(balanced, 32).levels, cap_levels(balanced, 32).steps) == ([32], [80])


# -- with the real reconstructor ------------------------------------------------------------------


@needs_pipeline
@pytest.mark.slow
def test_viewport_drop_reconstructs_for_real_and_undo_removes_it(kit, tmp_path):
    stage_path = tmp_path / "scene.usda"
    new_stage(stage_path)
    kit.usd.get_context().open_stage(str(stage_path))
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_SETTINGS)
    kit.set("preset", "fast")
    kit.set("working_resolution", 32)
    kit.set("config_file", str(config))
    photo = disc_png(tmp_path / "disc.png")
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(photo)])
    kit.pump_until(lambda: _finished(ext), timeout=300)
    job = ext.jobs.jobs[0]
    assert job.state.value == "done", (job.error, kit.notes())
    assert (tmp_path / "disc" / "disc.usda").is_file()
    assert [name for name, _ in kit.commands.executed] == ["Lift3dAddReconstruction"]
    stage = kit.usd.get_context().get_stage()
    prim = stage.GetPrimAtPath("/World/Reconstructions/disc")
    assert prim.IsValid()
    assert any(p.IsA(UsdGeom.Mesh) for p in Usd.PrimRange(prim))
    assert any(p.IsA(UsdGeom.Camera) for p in Usd.PrimRange(prim)), "the source camera did not come along"
    assert 0.0 <= job.result.metrics["input_view_iou"] <= 1.0
    kit.undo.undo()
    assert not stage.GetPrimAtPath("/World/Reconstructions/disc").IsValid()


@needs_pipeline
@pytest.mark.slow
def test_real_cancel_stops_within_one_step_and_leaves_no_asset(kit, monkeypatch, tmp_path):
    import lift3d.api

    real = lift3d.api.reconstruct
    after_cancel: list[str] = []
    started = threading.Event()

    def watched(request, progress=None, cancel=None, settings=None):
        def report(stage, fraction):
            if cancel.cancelled:
                after_cancel.append(stage)
            started.set()
            progress(stage, fraction)

        return real(request, progress=report, cancel=cancel, settings=settings)

    monkeypatch.setattr("lift3d.api.reconstruct", watched)
    kit.set("preset", "fast")
    kit.set("output_folder", str(tmp_path / "out"))
    photo = disc_png(tmp_path / "disc.png")
    ext = kit.start()
    ext.show_window()
    kit.os_drop.simulate_drop(WINDOW, [str(photo)])
    kit.pump_until(lambda: started.is_set() or _finished(ext), timeout=300)
    kit.ui.find("lift3d.cancel").call_clicked_fn()
    kit.pump_until(lambda: _finished(ext), timeout=300)
    assert ext.jobs.jobs[0].state.value == "cancelled"
    assert len(after_cancel) <= 1, f"progress went on after cancel: {after_cancel}"
    assert not (tmp_path / "out" / "disc").exists()
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True
    assert kit.commands.executed == []


@needs_pipeline
def test_real_error_for_a_corrupt_image_is_a_notification(kit, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a PNG file")
    kit.set("output_folder", str(tmp_path / "out"))
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(broken)])
    kit.pump_until(lambda: _finished(ext), timeout=120)
    assert ext.jobs.jobs[0].state.value == "failed"
    (text,) = kit.notes()
    assert text.startswith("lift3d: error: ") and "broken.png" in text


def test_broken_settings_do_not_break_startup_or_the_panel(kit, tmp_path):
    kit.set("working_resolution", "high")
    kit.set("config_file", str(tmp_path / "missing.toml"))
    ext = kit.start()
    assert ext._options.working_resolution == 256
    assert any("working_resolution" in msg for _, msg in kit.module("carb").messages)
    ext.show_window()
    assert kit.ui.find("lift3d.preset").model.items == ["fast", "balanced", "best"]
    assert kit.notes()[0].startswith("lift3d: error: ") and "missing.toml" in kit.notes()[0]


# -- what real Kit does differently from the old stand-ins -------------------------------------------


def _views(tmp_path: Path, names: list[str]) -> Path:
    views = tmp_path / "transforms.json"
    views.write_text('{"camera_angle_x": 0.7, "frames": ['
                     + ", ".join(f'{{"file_path": "{n}", "transform_matrix": '
                                 '[[1,0,0,0],[0,1,0,0],[0,0,1,4],[0,0,0,1]]}' for n in names) + "]}")
    return views


def test_viewport_drop_of_photos_and_cameras_arriving_per_url_is_one_job(kit, fake, tmp_path):
    fake.gate = threading.Semaphore(0)
    kit.set("output_folder", str(tmp_path / "out"))
    images = [disc_png(tmp_path / f"r_{i}.png") for i in range(2)]
    views = _views(tmp_path, ["r_0", "r_1"])
    ext = kit.start()
    taken = kit.viewport_drop.simulate_drop([str(images[0]), str(images[1]), str(views)])
    assert len(taken) == 1
    assert ext.jobs.jobs == [], "jobs are made on the next update, once the whole drop is in"
    kit.app.get_app().get_update_event_stream().pump()
    (job,) = ext.jobs.jobs
    assert job.request.images == images and job.request.views == views
    ext.jobs.cancel_all()
    for _ in range(fake.steps):
        fake.gate.release()


def test_viewport_drop_of_two_photos_without_cameras_is_two_jobs(kit, fake, tmp_path):
    kit.set("output_folder", str(tmp_path / "out"))
    a, b = disc_png(tmp_path / "a.png"), disc_png(tmp_path / "b.png")
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(a), str(b)])
    kit.pump_until(lambda: _finished(ext))
    assert [job.request.images for job in ext.jobs.jobs] == [[a], [b]]


def test_picker_without_multi_selection_would_keep_one_file(kit, tmp_path):
    importer = kit.file_importer.get_file_importer()
    importer.show_window(title="t", import_handler=lambda *a, **k: None)
    assert asyncio.run(importer.select_items_async(tmp_path.as_posix(), ["a.png", "b.png"])) == \
        [f"{tmp_path.as_posix()}/b.png"]


def test_a_command_that_fails_is_reported_and_leaves_the_stage_alone(kit, fake, tmp_path):
    stage_path = tmp_path / "scene.usda"
    new_stage(stage_path)
    kit.usd.get_context().open_stage(str(stage_path))
    stage = kit.usd.get_context().get_stage()
    stage.GetRootLayer().SetPermissionToEdit(False)  # e.g. a locked or read-only layer
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(disc_png(tmp_path / "photo.png"))])
    kit.pump_until(lambda: _finished(ext))
    assert ext.jobs.jobs[0].state.value == "done"
    assert kit.notes()[-1] == f"lift3d: error: could not add {tmp_path / 'photo' / 'photo.usda'} to the stage"
    assert not stage.GetPrimAtPath("/World/Reconstructions").IsValid()
    assert kit.undo.get_undo_stack() == []
    assert any(level == "error" and "Lift3dAddReconstruction" in msg for level, msg in kit.module("carb").messages)


def test_a_job_finishing_after_file_new_is_not_added_to_the_new_stage(kit, fake, tmp_path):
    fake.gate = threading.Semaphore(0)
    stage_path = tmp_path / "scene.usda"
    new_stage(stage_path)
    context = kit.usd.get_context()
    context.open_stage(str(stage_path))
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(disc_png(tmp_path / "photo.png"))])
    kit.app.get_app().get_update_event_stream().pump()
    context.new_stage()  # File > New while the job runs
    for _ in range(fake.steps):
        fake.gate.release()
    kit.pump_until(lambda: _finished(ext))
    assert kit.commands.executed == []
    assert not context.get_stage().GetPrimAtPath("/World/Reconstructions").IsValid()
    assert (tmp_path / "photo" / "photo.usda").is_file()
    assert "no longer open" in kit.notes()[-1] and str(tmp_path / "photo" / "photo.usda") in kit.notes()[-1]


class _Layer:
    def __init__(self, identifier: str, real_path: str = "") -> None:
        self.identifier, self.realPath, self.anonymous = identifier, real_path, False


class _Stage:
    def __init__(self, layer: _Layer) -> None:
        self._layer = layer

    def GetRootLayer(self) -> _Layer:  # noqa: N802  (pxr's spelling)
        return self._layer


@pytest.mark.parametrize("with_omni_client", [True, False])
def test_nucleus_stages_send_assets_to_the_output_folder(kit, monkeypatch, tmp_path, with_omni_client):
    if not with_omni_client:
        monkeypatch.setitem(sys.modules, "omni.client", None)  # import omni.client -> ImportError
    kit.start()
    from lift3d.kit.stage import output_dir_for

    out = tmp_path / "out"
    remote = _Stage(_Layer("omniverse://server/projects/scene.usd", "/cache/client/projects/scene.usd"))
    assert output_dir_for(remote, out) == out.resolve()
    assert output_dir_for(_Stage(_Layer("https://example.com/scene.usd")), out) == out.resolve()
    local = _Stage(_Layer(str(tmp_path / "proj" / "scene.usd"), str(tmp_path / "proj" / "scene.usd")))
    assert output_dir_for(local, out) == (tmp_path / "proj").resolve()
    file_url = _Stage(_Layer((tmp_path / "proj" / "scene.usd").as_uri()))
    assert output_dir_for(file_url, out) == (tmp_path / "proj").resolve()


def test_an_unknown_usd_context_is_reported_not_crashed_on(kit, fake, tmp_path):
    ext = kit.start()
    assert kit.usd.get_context("no such viewport") is None
    kit.viewport_drop.simulate_drop([str(disc_png(tmp_path / "photo.png"))], usd_context_name="no such viewport")
    kit.app.get_app().get_update_event_stream().pump()
    assert ext.jobs.jobs == []
    assert kit.notes() == ["lift3d: error: there is no USD context named 'no such viewport'"]
    ok, result = kit.commands.execute("Lift3dAddReconstruction", asset_path=str(tmp_path / "x.usda"),
                                      usd_context_name="no such viewport")
    assert (ok, result) == (False, None)


def test_menu_tick_is_refreshed_when_the_panel_opens_and_closes(kit):
    ext = kit.start()
    assert kit.menu.refreshed == []
    ext.show_window()
    assert kit.menu.refreshed == ["Window"]
    ext.window.visible = False  # closed with its X
    assert kit.menu.refreshed == ["Window", "Window"]
    assert not kit.menu.menus["Window"][0].ticked_fn()


def test_shutdown_does_not_wait_for_a_running_job(kit, fake, tmp_path):
    fake.gate = threading.Semaphore(0)
    kit.set("output_folder", str(tmp_path / "out"))
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(disc_png(tmp_path / "photo.png"))])
    kit.app.get_app().get_update_event_stream().pump()
    assert fake.started.wait(WAIT)
    start = time.monotonic()
    kit.stop()
    took = time.monotonic() - start
    fake.gate.release()  # let the worker reach its cancel check and end
    assert took < 2.0, f"on_shutdown blocked for {took:.1f} s on a running job"
    assert all(value is None for value in vars(ext).values())
    assert not (tmp_path / "out" / "photo").exists()


def test_an_old_python_gets_one_clear_error(kit, monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    with pytest.raises(ImportError, match=r"needs Kit 107 or newer \(Python 3\.11\+\); this Kit runs Python 3\.10"):
        importlib.import_module("lift3d.kit")


# -- preview thumbnails ------------------------------------------------------------------------------


def _open_stage(kit, tmp_path: Path) -> Usd.Stage:
    new_stage(tmp_path / "scene.usda")
    kit.usd.get_context().open_stage(str(tmp_path / "scene.usda"))
    return kit.usd.get_context().get_stage()


def test_a_finished_job_shows_its_contact_sheet_drawn_off_the_ui_thread(kit, fake, tmp_path):
    _open_stage(kit, tmp_path)
    photo = disc_png(tmp_path / "photo.png")
    ext = kit.start()
    ext.show_window()
    kit.os_drop.simulate_drop(WINDOW, [str(photo)])
    kit.pump_until(lambda: _finished(ext))
    asset = tmp_path / "photo" / "photo.usda"
    ((path, used_photo, tile, thread),) = fake.preview.calls
    assert (path, used_photo) == (asset, photo), "the sheet is of the asset, with the dropped photo"
    assert tile == kit.module("lift3d.preview").THUMBNAIL_TILE
    assert thread.startswith("lift3d-job") and thread != threading.current_thread().name
    (result,) = ext.window.results
    assert result.prim_path == "/World/Reconstructions/photo" and result.asset_path == str(asset)
    thumb = ext.window.thumbnail(str(asset))
    assert isinstance(thumb.provider, kit.ui.ByteImageProvider)
    assert (thumb.width, thumb.height) == (thumb.provider.width, thumb.provider.height) == fake.preview.size
    pixels = thumb.provider.data
    assert pixels.shape == (70, 120, 4) and pixels.dtype == np.uint8
    assert (pixels[..., :3] == (10, 200, 30)).all() and (pixels[..., 3] == 255).all()
    widget = kit.ui.find("lift3d.thumbnail.photo")
    assert widget is not None and widget.provider is thumb.provider
    assert widget in kit.ui.find("lift3d.results").children[0].children
    assert widget.kwargs["width"] == 384 and widget.kwargs["height"] == round(384 * 70 / 120)
    assert not any("preview" in note for note in kit.notes())


@pytest.mark.parametrize("error", [InputError("asset photo has no geometry to preview"),
                                   RuntimeError("the renderer crashed")])
def test_a_failed_preview_keeps_the_result_and_shows_no_thumbnail(kit, fake, tmp_path, error):
    fake.preview.error = error
    stage = _open_stage(kit, tmp_path)
    ext = kit.start()
    ext.show_window()
    kit.os_drop.simulate_drop(WINDOW, [str(disc_png(tmp_path / "photo.png"))])
    kit.pump_until(lambda: _finished(ext))
    job = ext.jobs.jobs[0]
    assert job.state.value == "done" and job.follow_up_error is None
    assert stage.GetPrimAtPath("/World/Reconstructions/photo").IsValid()
    assert [r.prim_path for r in ext.window.results] == ["/World/Reconstructions/photo"]
    assert ext.window.thumbnail(str(tmp_path / "photo" / "photo.usda")) is None
    assert kit.ui.find("lift3d.thumbnail.photo") is None
    assert kit.notes()[-1] == f"lift3d: no preview of photo: {error if isinstance(error, InputError) else 'RuntimeError: the renderer crashed'}"
    assert kit.notifications.posted[-1].status == kit.notifications.NotificationStatus.WARNING
    assert "lift3d: photo added at /World/Reconstructions/photo (input-view IoU 0.875)" in kit.notes()


def test_a_failing_follow_up_is_one_warning_and_the_job_stays_done(kit, fake, tmp_path, monkeypatch):
    stage = _open_stage(kit, tmp_path)
    ext = kit.start()
    ext.show_window()

    def broken(request, result):
        raise RuntimeError("no thumbnails today")

    monkeypatch.setattr(kit.module("lift3d.kit.extension"), "render_thumbnails", broken)
    kit.os_drop.simulate_drop(WINDOW, [str(disc_png(tmp_path / "photo.png"))])
    kit.pump_until(lambda: _finished(ext))
    job = ext.jobs.jobs[0]
    assert job.state.value == "done" and job.follow_up_error == "RuntimeError: no thumbnails today"
    assert stage.GetPrimAtPath("/World/Reconstructions/photo").IsValid()
    assert [r.name for r in ext.window.results] == ["photo"]
    assert kit.notes()[-1] == "lift3d: no preview of photo: RuntimeError: no thumbnails today"


def test_an_asset_whose_layer_is_already_open_is_not_read_off_the_main_loop(kit, fake, monkeypatch, tmp_path):
    """Reading an asset reloads layers this process holds; on the worker that would recompose an open stage."""
    held = []
    runner = fake

    def holding(request, progress=None, cancel=None, settings=None):
        result = FakeReconstruct.__call__(runner, request, progress, cancel, settings)
        held.append(Sdf.Layer.FindOrOpen(str(result.asset_path)))  # as a stage referencing it would
        return result

    monkeypatch.setattr("lift3d.api.reconstruct", holding)
    _open_stage(kit, tmp_path)
    ext = kit.start()
    ext.show_window()
    kit.os_drop.simulate_drop(WINDOW, [str(disc_png(tmp_path / "photo.png"))])
    kit.pump_until(lambda: _finished(ext))
    assert held and fake.preview.calls == []
    assert ext.window.thumbnail(ext.window.results[0].asset_path) is None
    assert kit.notes()[-1].startswith("lift3d: no preview of photo: ") and "already open" in kit.notes()[-1]


def test_no_panel_no_preview(kit, fake, tmp_path):
    _open_stage(kit, tmp_path)
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(disc_png(tmp_path / "photo.png"))])
    kit.pump_until(lambda: _finished(ext))
    assert kit.usd.get_context().get_stage().GetPrimAtPath("/World/Reconstructions/photo").IsValid()
    assert fake.preview.calls == [], "nothing to show a thumbnail in: none is drawn"


def test_a_result_that_was_not_added_gets_no_thumbnail(kit, fake, tmp_path):
    kit.set("output_folder", str(tmp_path / "out"))
    ext = kit.start()
    ext.show_window()
    kit.os_drop.simulate_drop(WINDOW, [str(disc_png(tmp_path / "photo.png"))])  # no stage is open
    kit.pump_until(lambda: _finished(ext))
    assert ext.window.results == [] and ext.window.thumbnail(str(tmp_path / "out" / "photo" / "photo.usda")) is None
    assert "no stage is open" in kit.notes()[-1]


# -- several objects in one photo ----------------------------------------------------------------------


def test_every_object_of_a_photo_is_added_and_listed(kit, fake, tmp_path):
    fake.objects = 2
    stage = _open_stage(kit, tmp_path)
    ext = kit.start()
    ext.show_window()
    kit.os_drop.simulate_drop(WINDOW, [str(disc_png(tmp_path / "cars.png"))])
    kit.pump_until(lambda: _finished(ext))
    assert fake.requests[0][0].objects == "all", "the default is every object"
    children = stage.GetPrimAtPath("/World/Reconstructions").GetChildren()
    assert [c.GetName() for c in children] == ["cars", "cars_2"]
    assert [name for name, _ in kit.commands.executed] == ["Lift3dAddReconstruction"] * 2
    assert [r.prim_path for r in ext.window.results] == ["/World/Reconstructions/cars", "/World/Reconstructions/cars_2"]
    assert [c[0] for c in fake.preview.calls] == [tmp_path / "cars" / "cars.usda", tmp_path / "cars_2" / "cars_2.usda"]
    assert all(ext.window.thumbnail(r.asset_path) is not None for r in ext.window.results)
    assert kit.ui.find("lift3d.thumbnail.cars") and kit.ui.find("lift3d.thumbnail.cars_2")
    kit.undo.undo()  # each object is its own undoable command
    assert [c.GetName() for c in stage.GetPrimAtPath("/World/Reconstructions").GetChildren()] == ["cars"]


def test_objects_setting_largest_adds_one(kit, fake, tmp_path):
    fake.objects = 2
    kit.set("objects", "largest")
    stage = _open_stage(kit, tmp_path)
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(disc_png(tmp_path / "cars.png"))])
    kit.pump_until(lambda: _finished(ext))
    assert fake.requests[0][0].objects == "largest"
    assert [c.GetName() for c in stage.GetPrimAtPath("/World/Reconstructions").GetChildren()] == ["cars"]


def test_a_bad_objects_setting_is_reported_and_queues_nothing(kit, fake, tmp_path):
    kit.set("objects", "some")
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(disc_png(tmp_path / "photo.png"))])
    kit.app.get_app().get_update_event_stream().pump()
    assert ext.jobs.jobs == []
    assert kit.notes() == ["lift3d: error: Kit setting /exts/lift3d.reconstruct/objects: unknown objects 'some'; "
                           "choose all, largest or a number of objects (1 or more)"]


def test_several_objects_written_while_no_stage_is_open_are_all_named(kit, fake, tmp_path):
    fake.objects = 2
    kit.set("output_folder", str(tmp_path / "out"))
    ext = kit.start()
    kit.viewport_drop.simulate_drop([str(disc_png(tmp_path / "cars.png"))])
    kit.pump_until(lambda: _finished(ext))
    out = tmp_path / "out"
    assert kit.notes()[-1] == (f"lift3d: cars written to {out / 'cars' / 'cars.usda'}, cars_2 written to "
                               f"{out / 'cars_2' / 'cars_2.usda'} (no stage is open to add them to)")


@needs_pipeline
@pytest.mark.parametrize("objects, prims", [("all", ["cars", "cars_2"]), ("largest", ["cars"])])
def test_a_real_photo_of_two_cars_gives_a_prim_and_a_thumbnail_per_object(kit, tmp_path, monkeypatch, objects, prims):
    pytest.importorskip("warp", reason="the preview renders with the Warp kernels")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_SETTINGS)
    monkeypatch.setenv("LIFT3D_CONFIG", str(config))  # the tiny preset for the job and for the preview
    kit.set("preset", "fast")
    kit.set("config_file", str(config))
    kit.set("objects", objects)
    stage = _open_stage(kit, tmp_path)
    photo = two_cars(tmp_path / "cars.png")
    ext = kit.start()
    ext.show_window()
    kit.os_drop.simulate_drop(WINDOW, [str(photo)])
    kit.pump_until(lambda: _finished(ext), timeout=300)
    job = ext.jobs.jobs[0]
    assert job.state.value == "done", (job.error, kit.notes())
    assert [c.GetName() for c in stage.GetPrimAtPath("/World/Reconstructions").GetChildren()] == prims
    for name in prims:
        prim = stage.GetPrimAtPath(f"/World/Reconstructions/{name}")
        assert any(p.IsA(UsdGeom.Mesh) for p in Usd.PrimRange(prim))
    assert [r.name for r in ext.window.results] == prims
    preview = kit.module("lift3d.preview")
    tile = preview.THUMBNAIL_TILE
    for result in ext.window.results:
        thumb = ext.window.thumbnail(result.asset_path)
        assert thumb is not None, kit.notes()
        assert (thumb.width, thumb.height) == (4 * tile + 5 * 4, preview.HEADER_H + 2 * (tile + preview.CAPTION_H) + 3 * 4)
        assert thumb.provider.data.shape == (thumb.height, thumb.width, 4)
        assert thumb.provider.data[..., :3].std() > 10, "the sheet shows something"
