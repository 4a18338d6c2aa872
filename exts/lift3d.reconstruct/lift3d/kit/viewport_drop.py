"""Photographs dropped onto the viewport: a ``DragDropDelegate`` of omni.kit.viewport.window.

Constructing the delegate registers it with the viewport and ``destroy()``
unregisters it. Kit's viewport drop handler splits a drop into its URLs and offers
them one at a time: ``accepted(drop_data)`` and then ``dropped(drop_data)`` are
called once per URL, with that URL alone in ``drop_data["mime_data"]``. So the
delegate only collects: it accepts a URL that is a local image or a
``transforms.json`` (USD files, materials and other drops stay with Kit's own
delegates) and hands each accepted URL to ``on_url``. The extension gathers the
URLs of one drop and turns them into jobs on the next update tick.
"""

from __future__ import annotations

from collections.abc import Callable

from omni.kit.viewport.window.dragdrop import DragDropDelegate

from .drop import accepts_one, split_payload


class ImageDropDelegate(DragDropDelegate):
    """Calls ``on_url(url, usd_context_name)`` for every photograph (or transforms.json) dropped on a viewport."""

    def __init__(self, on_url: Callable[[str, str], None]) -> None:
        super().__init__()
        self._on_url: Callable[[str, str], None] | None = on_url

    def destroy(self) -> None:
        super().destroy()
        self._on_url = None

    @property
    def add_outline(self) -> bool:
        return False

    def accepted(self, drop_data: dict) -> bool:
        urls = split_payload(drop_data.get("mime_data"))
        return bool(urls) and all(accepts_one(url) for url in urls)

    def update_drop_position(self, drop_data: dict) -> bool:
        return True

    def dropped(self, drop_data: dict) -> None:
        if self._on_url is None:
            return
        for url in split_payload(drop_data.get("mime_data")):
            self._on_url(url, drop_data.get("usd_context_name") or "")

    def cancel(self, drop_data: dict) -> None:
        pass
