"""Drag and drop onto the panel: Content Browser items (omni.ui drop callbacks) and OS files.

Kit hands a drag's payload over as text: one URL per line, either a local path
(``C:/photos/car.png``, ``/home/me/car.png``), a ``file:`` URL, or a remote URL
(``omniverse://...``, ``https://...``). lift3d reconstructs local files only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from ..errors import InputError
from ..jobs import is_image_path, is_views_path

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def split_payload(mime_data: str | None) -> list[str]:
    """The URLs of a drag payload (one per line; blank lines dropped)."""
    return [line.strip() for line in (mime_data or "").splitlines() if line.strip()]


def local_path(url: str) -> Path:
    """The local file behind ``url``.

    Raises:
        InputError: ``url`` is remote (``omniverse://``, ``https://``, ...).
    """
    if _WINDOWS_DRIVE.match(url) or not _SCHEME.match(url):
        return Path(url)
    parsed = urlparse(url)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(url2pathname(unquote(parsed.path)))
    raise InputError(f"{url} is not a local file; copy it to this machine first")


def accepts_one(url: str) -> bool:
    """Whether one dropped item can be part of a lift3d drop: a local image or a transforms.json.

    Kit's viewport hands a multi-file drop over one URL at a time, so each URL is
    judged alone; whether the collected URLs make valid jobs is decided afterwards.
    """
    try:
        path = local_path(url)
    except InputError:
        return False
    return is_image_path(path) or is_views_path(path)


def accepts(urls: list[str]) -> bool:
    """Whether a drop of ``urls`` is for lift3d: local images, optionally with one transforms.json."""
    try:
        paths = [local_path(url) for url in urls]
    except InputError:
        return False
    return (any(is_image_path(p) for p in paths)
            and all(is_image_path(p) or is_views_path(p) for p in paths)
            and sum(is_views_path(p) for p in paths) <= 1)


class PanelDropTarget:
    """Makes ``widget`` accept Content Browser drags and the window titled ``window_title`` OS drops.

    ``on_paths(urls)`` receives the dropped items (local paths or URLs) on the main
    loop; it decides what becomes a job and reports what does not.
    """

    def __init__(self, window_title: str, widget, on_paths: Callable[[list[str]], None]) -> None:
        self._on_paths: Callable[[list[str]], None] | None = on_paths
        self._widget = widget
        widget.set_accept_drop_fn(self._accept)
        widget.set_drop_fn(self._drop)
        try:
            from omni.kit.window.drop_support import ExternalDragDrop
        except ImportError:  # optional dependency: no OS drops without it
            self._external = None
        else:
            # Kit's signature is ExternalDragDrop(window_name, drag_drop_fn); the callback gets (edd, payload).
            self._external = ExternalDragDrop(window_title, self._external_drop)

    def _accept(self, url: str) -> bool:
        return accepts(split_payload(url))

    def _drop(self, event) -> None:
        if self._on_paths is not None:
            self._on_paths(split_payload(event.mime_data))

    def _external_drop(self, edd, payload: list[str]) -> None:
        if self._on_paths is not None:
            self._on_paths(list(edd.expand_payload(payload)))

    def destroy(self) -> None:
        """Stop receiving drops."""
        if self._external is not None:
            self._external.destroy()
            self._external = None
        self._widget = None
        self._on_paths = None
