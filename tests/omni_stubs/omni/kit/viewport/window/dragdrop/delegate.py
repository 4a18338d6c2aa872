"""Stand-in for the viewport's drag-and-drop delegate base (tests only).

As in Kit, constructing a delegate registers it and ``destroy()`` unregisters it;
the viewport offers a drop to the delegates in registration order and the first
whose ``accepted(drop_data)`` is true receives ``dropped(drop_data)``.
"""

from __future__ import annotations

from typing import Any


class DragDropDelegate:
    _registered: list["DragDropDelegate"] = []

    @classmethod
    def get_instances(cls):
        yield from list(DragDropDelegate._registered)

    def __init__(self) -> None:
        DragDropDelegate._registered.append(self)

    def destroy(self) -> None:
        if self in DragDropDelegate._registered:
            DragDropDelegate._registered.remove(self)

    @property
    def add_outline(self) -> bool:
        return False

    def accepted(self, drop_data: dict) -> bool:
        return False

    def update_drop_position(self, drop_data: dict) -> bool:
        return True

    def dropped(self, drop_data: dict) -> None:
        pass

    def cancel(self, drop_data: dict) -> None:
        pass


def simulate_drop(urls: list[str], usd_context_name: str = "") -> Any:
    """Test helper: drop ``urls`` (newline-joined, as Kit's mime data) onto the viewport.

    Returns the delegate that took the drop, or ``None`` when every delegate refused it.
    """
    drop_data = {"mime_data": "\n".join(urls), "usd_context_name": usd_context_name, "prim_path": "",
                 "world_space_pos": None, "viewport_api": None, "scene_view": None}
    for delegate in DragDropDelegate.get_instances():
        if delegate.accepted(drop_data):
            delegate.dropped(drop_data)
            return delegate
    return None
