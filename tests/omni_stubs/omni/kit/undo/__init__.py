"""Stand-in for ``omni.kit.undo`` (tests only): one undo stack of command instances."""

from __future__ import annotations

from typing import Any

_undo_stack: list[Any] = []
_redo_stack: list[Any] = []


def push(command: Any) -> None:
    _undo_stack.append(command)
    _redo_stack.clear()


def get_undo_stack() -> list[Any]:
    return list(_undo_stack)


def can_undo() -> bool:
    return bool(_undo_stack)


def undo() -> None:
    if _undo_stack:
        command = _undo_stack.pop()
        command.undo()
        _redo_stack.append(command)


def redo() -> None:
    if _redo_stack:
        command = _redo_stack.pop()
        command.do()
        _undo_stack.append(command)
