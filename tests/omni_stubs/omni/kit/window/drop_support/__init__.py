"""Stand-in for ``omni.kit.window.drop_support`` (tests only): OS drops onto a named window."""

from __future__ import annotations

import os
from collections.abc import Callable

instances: list["ExternalDragDrop"] = []


class ExternalDragDrop:
    def __init__(self, window_name: str, drop_handler: Callable) -> None:
        self.window_name, self._handler = window_name, drop_handler
        instances.append(self)

    def destroy(self) -> None:
        if self in instances:
            instances.remove(self)

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
        edd._handler(edd, list(paths))
    return len(targets)
