"""Stand-in for ``omni.kit.viewport.window.dragdrop`` (tests only)."""

from .delegate import DragDropDelegate, simulate_drop

__all__ = ["DragDropDelegate", "simulate_drop"]

TEST_HELPERS = ("simulate_drop",)
