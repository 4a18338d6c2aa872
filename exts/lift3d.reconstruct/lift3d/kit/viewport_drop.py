"""Photographs dropped onto the viewport: a ``DragDropDelegate`` of omni.kit.viewport.window.

Constructing the delegate registers it with the viewport and ``destroy()``
unregisters it. It accepts a drop only when every item is a local image (or one
``transforms.json`` with images), so USD files, materials and other drops are
left to Kit's own delegates.
"""

from __future__ import annotations

from collections.abc import Callable

from omni.kit.viewport.window.dragdrop import DragDropDelegate

from .drop import accepts, split_payload


class ImageDropDelegate(DragDropDelegate):
    """Calls ``on_drop(urls, usd_context_name)`` for a drop of photographs onto a viewport."""

    def __init__(self, on_drop: Callable[[list[str], str], None]) -> None:
        super().__init__()
        self._on_drop = on_drop

    @property
    def add_outline(self) -> bool:
        return False

    def accepted(self, drop_data: dict) -> bool:
        return accepts(split_payload(drop_data.get("mime_data")))

    def update_drop_position(self, drop_data: dict) -> bool:
        return True

    def dropped(self, drop_data: dict) -> None:
        self._on_drop(split_payload(drop_data.get("mime_data")), drop_data.get("usd_context_name") or "")

    def cancel(self, drop_data: dict) -> None:
        pass
