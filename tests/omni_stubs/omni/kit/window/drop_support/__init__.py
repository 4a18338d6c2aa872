"""Stand-in for ``omni.kit.window.drop_support`` (tests only): OS drops onto a named window."""

from __future__ import annotations

import os
from collections.abc import Callable

instances: list["ExternalDragDrop"] = []

TEST_HELPERS = ("instances", "simulate_drop")


class ExternalDragDrop:
    # Real signatures: typings/omni/kit/window/drop_support/drop_support.pyi in the public
    # Isaac Sim 5 (Kit 107) typings; the same two positional parameters in every Kit release.
    def __init__(self, window_name: str, drag_drop_fn: Callable) -> None:
        self.window_name, self._drag_drop_fn = window_name, drag_drop_fn
        instances.append(self)

    def destroy(self) -> None:
        if self in instances:
            instances.remove(self)
        self._drag_drop_fn = None

    def expand_payload(self, payload: list[str]) -> list[str]:
        out: list[str] = []
        for path in payload:
            if os.path.isdir(path):
                for root, _, files in os.walk(path):
                    out.extend(os.path.join(root, f).replace("\\", "/") for f in sorted(files))
            else:
                out.append(path)
        return out


def simulate_drop(window_name: str, paths: list[str]) -> int:
    """Test helper: drop ``paths`` from the OS file manager onto ``window_name``; returns handlers called."""
    targets = [edd for edd in instances if edd.window_name == window_name]
    for edd in targets:
        edd._drag_drop_fn(edd, list(paths))
    return len(targets)
