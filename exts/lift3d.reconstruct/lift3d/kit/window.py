"""The "lift3d Reconstruct" panel (omni.ui).

Layout, top to bottom: the image list with thumbnails (picked with the file
importer or dropped), category and preset pickers, an optional
``transforms.json`` field for calibrated multi-view input, Reconstruct and
Cancel buttons, a progress bar with the current stage name, and the latest
results with their prim paths, input-view mask IoU and, once it is drawn, a
thumbnail of their contact sheet (:mod:`lift3d.preview`), shown from raw RGBA
pixels through ``omni.ui.ByteImageProvider``.

The panel holds no logic: it shows what it is told and forwards clicks and
drops to the callbacks it was built with. Every widget that tests or scripts
need has an ``identifier`` (``lift3d.<what>``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import omni.ui as ui

from .drop import PanelDropTarget

WINDOW_TITLE = "lift3d Reconstruct"
THUMBNAIL_PX = 48
MAX_RESULTS = 20
PREVIEW_WIDTH = 384
"""Width in the panel of a result's contact-sheet thumbnail (its height keeps the sheet's aspect)."""


@dataclass
class PanelResult:
    """One finished reconstruction as listed in the panel (``asset_path``: its layer, which its thumbnail is of)."""

    name: str
    prim_path: str
    input_view_iou: float | None
    asset_path: str = ""


@dataclass
class Thumbnail:
    """A result's contact sheet uploaded for the panel: the provider holding the pixels and their size."""

    provider: ui.ByteImageProvider
    width: int
    height: int


@dataclass
class PanelCallbacks:
    """What the panel's controls do.

    Attributes:
        reconstruct: Reconstruct button.
        cancel: Cancel button.
        pick_images: "Add images..." button (opens the file importer).
        dropped: items dropped onto the panel (Content Browser URLs or OS paths).
        visibility_changed: the panel was shown or hidden (closed with its X, too).
    """

    reconstruct: Callable[[], None]
    cancel: Callable[[], None]
    pick_images: Callable[[], None]
    dropped: Callable[[list[str]], None]
    visibility_changed: Callable[[bool], None] | None = None


class Lift3dWindow:
    """The panel; ``categories``/``presets`` fill the pickers, ``category``/``preset`` select the defaults."""

    def __init__(self, callbacks: PanelCallbacks, categories: list[str], presets: list[str],
                 category: str, preset: str) -> None:
        self._callbacks = callbacks
        self._categories, self._presets = list(categories), list(presets)
        self._images: list[Path] = []
        self._results: list[PanelResult] = []
        self._thumbnails: dict[str, Thumbnail] = {}
        self._window = ui.Window(WINDOW_TITLE, width=420, height=620, visible=True)
        if callbacks.visibility_changed is not None:
            self._window.set_visibility_changed_fn(callbacks.visibility_changed)
        with self._window.frame:
            with ui.VStack(spacing=6, height=0):
                with ui.HStack(height=24, spacing=4):
                    ui.Button("Add images...", clicked_fn=callbacks.pick_images, identifier="lift3d.add_images",
                              tooltip="Pick photographs (PNG, JPEG, WebP) with the file importer")
                    ui.Button("Clear", clicked_fn=self.clear_images, identifier="lift3d.clear_images", width=60)
                self._image_frame = ui.Frame(build_fn=self._build_images, identifier="lift3d.images", height=0)
                with ui.HStack(height=22):
                    ui.Label("Category", width=90)
                    self._category = ui.ComboBox(self._index(self._categories, category), *self._categories,
                                                 identifier="lift3d.category")
                with ui.HStack(height=22):
                    ui.Label("Preset", width=90)
                    self._preset = ui.ComboBox(self._index(self._presets, preset), *self._presets,
                                               identifier="lift3d.preset")
                with ui.HStack(height=22):
                    ui.Label("Cameras", width=90, tooltip="Optional transforms.json with the images' cameras")
                    self._views = ui.StringField(model=ui.SimpleStringModel(""), identifier="lift3d.views")
                with ui.HStack(height=28, spacing=4):
                    self._run_button = ui.Button("Reconstruct", clicked_fn=callbacks.reconstruct,
                                                 identifier="lift3d.reconstruct")
                    self._cancel_button = ui.Button("Cancel", clicked_fn=callbacks.cancel, enabled=False,
                                                    identifier="lift3d.cancel", width=80)
                self._stage_label = ui.Label("idle", identifier="lift3d.stage", height=18)
                self._progress = ui.ProgressBar(model=ui.SimpleFloatModel(0.0), identifier="lift3d.progress",
                                                height=18)
                ui.Label("Results", height=18)
                self._result_frame = ui.Frame(build_fn=self._build_results, identifier="lift3d.results", height=0)
        self._drop_target = PanelDropTarget(WINDOW_TITLE, self._window.frame, callbacks.dropped)

    @staticmethod
    def _index(items: list[str], value: str) -> int:
        return items.index(value) if value in items else 0

    # -- sections rebuilt on change ----------------------------------------------------------------

    def _build_images(self) -> None:
        with ui.VStack(spacing=2, height=0):
            if not self._images:
                ui.Label("Drop photos here (PNG, JPEG, WebP), with a transforms.json for calibrated views.",
                         word_wrap=True, height=36)
            for path in self._images:
                with ui.HStack(height=THUMBNAIL_PX, spacing=6):
                    ui.Image(str(path), width=THUMBNAIL_PX, height=THUMBNAIL_PX,
                             fill_policy=ui.FillPolicy.PRESERVE_ASPECT_FIT)
                    ui.Label(path.name, tooltip=str(path))

    def _build_results(self) -> None:
        with ui.VStack(spacing=2, height=0):
            if not self._results:
                ui.Label("No reconstructions yet.", height=18)
            for result in reversed(self._results):
                iou = "" if result.input_view_iou is None else f"  IoU {result.input_view_iou:.3f}"
                ui.Label(f"{result.name}: {result.prim_path}{iou}", height=18, tooltip=result.prim_path)
                thumb = self._thumbnails.get(result.asset_path) if result.asset_path else None
                if thumb is not None:
                    ui.ImageWithProvider(thumb.provider, width=PREVIEW_WIDTH,
                                         height=max(1, round(PREVIEW_WIDTH * thumb.height / thumb.width)),
                                         fill_policy=ui.IwpFillPolicy.IWP_PRESERVE_ASPECT_FIT,
                                         identifier=f"lift3d.thumbnail.{result.prim_path.rsplit('/', 1)[-1]}",
                                         tooltip=f"{result.name}: contact sheet")

    # -- what the controller reads and sets ---------------------------------------------------------

    @property
    def visible(self) -> bool:
        return self._window.visible

    @visible.setter
    def visible(self, value: bool) -> None:
        self._window.visible = value

    @property
    def images(self) -> list[Path]:
        return list(self._images)

    def set_images(self, images: list[Path]) -> None:
        """Show ``images`` in the list (thumbnails)."""
        self._images = [Path(p) for p in images]
        self._image_frame.rebuild()

    def clear_images(self) -> None:
        self.set_images([])
        self._views.model.set_value("")

    @property
    def views(self) -> Path | None:
        """The transforms.json field, or ``None`` when empty."""
        text = self._views.model.get_value_as_string().strip()
        return Path(text) if text else None

    def set_views(self, path: Path | None) -> None:
        self._views.model.set_value("" if path is None else str(path))

    @property
    def category(self) -> str:
        return self._categories[self._category.model.get_item_value_model().as_int]

    @property
    def preset(self) -> str:
        return self._presets[self._preset.model.get_item_value_model().as_int]

    def show_progress(self, stage: str, fraction: float, waiting: int) -> None:
        """A job is running: its stage name, overall fraction in [0, 1], and how many jobs wait."""
        self._stage_label.text = stage + (f"  ({waiting} queued)" if waiting else "")
        self._progress.model.set_value(float(fraction))
        self._cancel_button.enabled = True

    def show_idle(self, message: str = "idle") -> None:
        self._stage_label.text = message
        self._progress.model.set_value(0.0)
        self._cancel_button.enabled = False

    def add_result(self, result: PanelResult) -> None:
        self._results = (self._results + [result])[-MAX_RESULTS:]
        listed = {r.asset_path for r in self._results}
        self._thumbnails = {k: v for k, v in self._thumbnails.items() if k in listed}
        self._result_frame.rebuild()

    @property
    def results(self) -> list[PanelResult]:
        return list(self._results)

    def set_thumbnail(self, asset_path: str, pixels: np.ndarray) -> bool:
        """Show ``pixels`` ((H, W, 4) uint8 RGBA, top row first) as the thumbnail of the listed result of
        ``asset_path``; ``False`` (nothing shown) when no listed result has that asset. Main loop only."""
        if not any(r.asset_path == asset_path for r in self._results):
            return False
        height, width = pixels.shape[:2]
        provider = ui.ByteImageProvider()
        provider.set_data_array(np.ascontiguousarray(pixels, dtype=np.uint8), [width, height])
        self._thumbnails[asset_path] = Thumbnail(provider, width, height)
        self._result_frame.rebuild()
        return True

    def thumbnail(self, asset_path: str) -> Thumbnail | None:
        """The thumbnail shown for the result of ``asset_path``, if any."""
        return self._thumbnails.get(asset_path)

    def destroy(self) -> None:
        """Close the panel and stop receiving drops."""
        self._drop_target.destroy()
        self._window.destroy()
        self._window = None
        self._callbacks = None
        self._thumbnails = {}
