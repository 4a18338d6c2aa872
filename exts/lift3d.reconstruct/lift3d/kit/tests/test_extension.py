"""The running extension in Kit: startup and shutdown, the panel, the command with undo, a viewport drop,
a result's thumbnail from raw pixels.

Only public Kit API is used (extension manager, actions, commands, undo, omni.ui, the
viewport's drag-and-drop delegates), so the tests mean the same in a real Kit and under
the stand-ins. The viewport drop is delivered the way Kit's viewport handler does it:
one URL at a time to every delegate that accepts it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import omni.kit.app
import omni.kit.commands
import omni.kit.test
import omni.kit.undo
import omni.ui as ui
import omni.usd
from omni.kit.actions.core import get_action_registry
from pxr import Sdf, Usd, UsdGeom

from ..extension import COMMAND_NAME, SHOW_WINDOW_ACTION, get_instance
from ..window import WINDOW_TITLE, PanelResult

EXT_NAME = "lift3d.reconstruct"

__all__ = ["TestLift3dExtension"]


def _png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGBA", (32, 32), (230, 120, 40, 255)).save(path)
    return path


async def _updates(n: int = 2) -> None:
    for _ in range(n):
        await omni.kit.app.get_app().next_update_async()


def _drop_on_viewport(urls: list[str], usd_context_name: str = "") -> None:
    """What Kit's viewport drop handler does: each URL alone, to every delegate that accepts it."""
    from omni.kit.viewport.window.dragdrop import DragDropDelegate

    for url in urls:
        drop_data = {"mime_data": url, "usd_context_name": usd_context_name}
        for delegate in list(DragDropDelegate.get_instances()):
            if delegate.accepted(drop_data):
                delegate.dropped(drop_data)


class TestLift3dExtension(omni.kit.test.AsyncTestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = Path(self._tmp.name)

    def tearDown(self) -> None:
        ext = get_instance()
        if ext is not None and ext.jobs is not None:
            ext.jobs.cancel_all()
        self._tmp.cleanup()

    async def test_shutdown_releases_and_startup_registers_again(self):
        manager = omni.kit.app.get_app().get_extension_manager()
        self.assertTrue(manager.is_extension_enabled(EXT_NAME))
        ext = get_instance()
        self.assertIsNotNone(ext)
        manager.set_extension_enabled_immediate(EXT_NAME, False)
        try:
            self.assertIsNone(get_instance())
            self.assertIsNone(get_action_registry().get_action(EXT_NAME, SHOW_WINDOW_ACTION))
            leftovers = [name for name, value in vars(ext).items() if value is not None]
            self.assertEqual(leftovers, [], "attributes still holding objects after on_shutdown")
        finally:
            manager.set_extension_enabled_immediate(EXT_NAME, True)
        await _updates()
        self.assertIsNotNone(get_instance())
        self.assertIsNotNone(get_action_registry().get_action(EXT_NAME, SHOW_WINDOW_ACTION))

    async def test_show_window_action_opens_the_panel(self):
        get_action_registry().get_action(EXT_NAME, SHOW_WINDOW_ACTION).execute()
        await _updates()
        window = ui.Workspace.get_window(WINDOW_TITLE)
        self.assertIsNotNone(window)
        self.assertTrue(window.visible)
        self.assertIs(get_instance().window.visible, True)

    async def test_command_adds_a_reference_and_undo_removes_it(self):
        asset = self.tmp / "thing" / "thing.usda"
        asset.parent.mkdir()
        layer = Sdf.Layer.CreateNew(str(asset))
        Sdf.CreatePrimInLayer(layer, "/thing").specifier = Sdf.SpecifierDef
        layer.defaultPrim = "thing"
        layer.Save()
        omni.usd.get_context().new_stage()
        await _updates()
        ok, path = omni.kit.commands.execute(COMMAND_NAME, asset_path=str(asset), prim_name="thing")
        self.assertTrue(ok)
        stage = omni.usd.get_context().get_stage()
        self.assertTrue(stage.GetPrimAtPath(path).IsValid())
        self.assertTrue(stage.GetPrimAtPath(path).HasAuthoredReferences())
        omni.kit.undo.undo()
        self.assertFalse(stage.GetPrimAtPath(path).IsValid())

    async def test_viewport_drop_of_two_photos_and_cameras_is_one_job(self):
        scene = self.tmp / "scene.usda"  # a saved stage: the asset folder goes beside it, inside tmp
        stage = Usd.Stage.CreateNew(str(scene))
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        stage.Save()
        omni.usd.get_context().open_stage(str(scene))
        await _updates()
        photos = [_png(self.tmp / name) for name in ("r_0.png", "r_1.png")]
        views = self.tmp / "transforms.json"
        views.write_text(json.dumps({"camera_angle_x": 0.7, "frames": [
            {"file_path": "r_0", "transform_matrix": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 4], [0, 0, 0, 1]]},
            {"file_path": "r_1", "transform_matrix": [[0, 0, 1, 4], [0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]]}]}))
        ext = get_instance()
        before = len(ext.jobs.jobs)
        _drop_on_viewport([p.as_posix() for p in photos] + [views.as_posix()])
        await _updates()
        jobs = ext.jobs.jobs[before:]
        self.assertEqual(len(jobs), 1, "one drop must make one job")
        self.assertEqual([Path(p).name for p in jobs[0].request.images], ["r_0.png", "r_1.png"])
        self.assertEqual(Path(jobs[0].request.views).name, "transforms.json")
        self.assertEqual(Path(jobs[0].request.out_dir).resolve(), self.tmp.resolve())
        ext.jobs.cancel_all()

    async def test_result_thumbnail_shows_raw_pixels(self):
        import numpy as np

        window = get_instance().show_window()
        asset = (self.tmp / "thumb" / "thumb.usda").as_posix()
        pixels = np.zeros((30, 60, 4), np.uint8)
        pixels[..., 0] = pixels[..., 3] = 255
        self.assertFalse(window.set_thumbnail(asset, pixels), "no listed result has that asset yet")
        window.add_result(PanelResult("thumb", "/World/Reconstructions/thumb", 0.9, asset_path=asset))
        self.assertTrue(window.set_thumbnail(asset, pixels))
        await _updates()
        thumb = window.thumbnail(asset)
        self.assertIsInstance(thumb.provider, ui.ByteImageProvider)
        self.assertEqual((thumb.width, thumb.height), (60, 30))
