"""Stand-in for the viewport's drag-and-drop delegate base (tests only).

Signatures: typings/omni/kit/viewport/window/dragdrop/delegate.pyi (public Isaac Sim 5 /
Kit 107 typings). As in Kit, constructing a delegate registers it and ``destroy()``
unregisters it. Delivery follows Kit's viewport drop handler: the payload is split into
its lines, and for every URL every registered delegate is asked ``accepted(drop_data)``
and, when it says yes, receives ``dropped(drop_data)`` for that one URL. A drop of
three files is therefore three separate calls per delegate.
"""

from __future__ import annotations

TEST_HELPERS = ("simulate_drop",)


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


def simulate_drop(urls: list[str], usd_context_name: str = "") -> list[DragDropDelegate]:
    """Test helper: drop ``urls`` onto the viewport, one URL at a time as Kit's handler does.

    Returns the delegates that received at least one ``dropped`` call (empty when every
    delegate refused every URL).
    """
    took: list[DragDropDelegate] = []
    for url in "\n".join(urls).splitlines():
        if not url.strip():
            continue
        drop_data = {"mime_data": url.strip(), "usd_context_name": usd_context_name, "prim_path": "",
                     "world_space_pos": None, "viewport_api": None, "scene_view": None}
        for delegate in DragDropDelegate.get_instances():
            if delegate.accepted(drop_data):
                delegate.dropped(drop_data)
                if delegate not in took:
                    took.append(delegate)
    return took
