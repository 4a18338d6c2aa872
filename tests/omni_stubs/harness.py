"""The ``kit`` fixture: lift3d.kit under the stand-in omni/carb modules, for one test at a time.

Import it into a test module (``from omni_stubs.harness import kit``). It puts
this folder first on ``sys.path``, loads the manifest's ``[settings]`` into the
stand-in carb.settings (as Kit does when it enables an extension), and
afterwards shuts the extension down if a test left it running, removes the
folder from ``sys.path`` and forgets every ``omni``/``carb``/``lift3d.kit``
module, so no other test ever sees them.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

STUBS = Path(__file__).resolve().parent
ROOT = STUBS.parents[1]
MANIFEST = ROOT / "exts" / "lift3d.reconstruct" / "config" / "extension.toml"
EXT_ID = "lift3d.reconstruct-0.1.0"
_PREFIXES = ("omni", "carb", "lift3d.kit")


def _ours(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in _PREFIXES)


def _forget_modules() -> dict[str, ModuleType]:
    """Drop every ``omni``/``carb``/``lift3d.kit`` module; returns them (a real ``omni`` namespace may be installed)."""
    return {name: sys.modules.pop(name) for name in list(sys.modules) if _ours(name)}


def _restore_modules(saved: dict[str, ModuleType]) -> None:
    """After a test: forget the stand-ins and put back what was imported before it (not lift3d.kit)."""
    _forget_modules()
    sys.modules.update({name: mod for name, mod in saved.items() if not name.startswith("lift3d.kit")})


def flatten_settings(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"exts": {"lift3d.reconstruct": {"preset": "fast"}}}`` -> ``{"/exts/lift3d.reconstruct/preset": "fast"}``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}/{key}"
        if isinstance(value, dict):
            out.update(flatten_settings(value, path))
        else:
            out[path] = value
    return out


class KitHarness:
    """Access to the stand-ins and the extension under test."""

    def __init__(self) -> None:
        self.ui = importlib.import_module("omni.ui")
        self.app = importlib.import_module("omni.kit.app")
        self.commands = importlib.import_module("omni.kit.commands")
        self.undo = importlib.import_module("omni.kit.undo")
        self.actions = importlib.import_module("omni.kit.actions.core")
        self.menu = importlib.import_module("omni.kit.menu.utils")
        self.usd = importlib.import_module("omni.usd")
        self.notifications = importlib.import_module("omni.kit.notification_manager")
        self.os_drop = importlib.import_module("omni.kit.window.drop_support")
        self.viewport_drop = importlib.import_module("omni.kit.viewport.window.dragdrop")
        self.file_importer = importlib.import_module("omni.kit.window.file_importer")
        self.settings = importlib.import_module("carb.settings").get_settings()
        with open(MANIFEST, "rb") as fh:
            for path, value in flatten_settings(tomllib.load(fh).get("settings", {})).items():
                self.settings.set(path, value)
        self.ext: Any = None

    def module(self, name: str) -> ModuleType:
        return importlib.import_module(name)

    def set(self, key: str, value: Any) -> None:
        """Set the extension setting ``/exts/lift3d.reconstruct/<key>``."""
        self.settings.set(f"/exts/lift3d.reconstruct/{key}", value)

    def start(self) -> Any:
        """Import lift3d.kit, find its IExt subclass as Kit does, and call on_startup."""
        module = importlib.import_module("lift3d.kit")
        iext = importlib.import_module("omni.ext").IExt
        classes = [obj for obj in vars(module).values()
                   if isinstance(obj, type) and issubclass(obj, iext) and obj is not iext]
        assert len(classes) == 1, f"expected one IExt subclass in lift3d.kit, found {classes}"
        self.ext = classes[0]()
        self.ext.on_startup(EXT_ID)
        return self.ext

    def stop(self) -> None:
        if self.ext is not None:
            self.ext.on_shutdown()
            self.ext = None

    def pump_until(self, done: Callable[[], bool], timeout: float = 120.0) -> None:
        """Deliver update events (the main loop) until ``done()`` or ``timeout`` seconds."""
        end = time.monotonic() + timeout
        stream = self.app.get_app().get_update_event_stream()
        while not done():
            if time.monotonic() > end:
                raise AssertionError("the main loop never saw the expected state")
            stream.pump()
            time.sleep(0.005)

    def notes(self) -> list[str]:
        return [n.text for n in self.notifications.posted]


@pytest.fixture
def kit(monkeypatch) -> Iterator[KitHarness]:
    saved = _forget_modules()
    sys.path.insert(0, str(STUBS))
    harness = None
    try:
        harness = KitHarness()
        # The extension warms the kernels up on a background thread; here that thread only records
        # where it ran (the real warmup is tested in test_warmup.py).
        harness.warmups = []
        monkeypatch.setattr("lift3d.warmup.warmup",
                            lambda device=None, progress=None: harness.warmups.append(threading.current_thread().name)
                            or [])
        yield harness
    finally:
        try:
            if harness is not None:
                harness.stop()
        finally:
            sys.path.remove(str(STUBS))
            _restore_modules(saved)
