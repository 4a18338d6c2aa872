"""Stand-in for ``omni.kit.undo`` (tests only): one undo stack of command instances.

Public functions as listed for omni.kit.undo in the public Isaac Sim 5 (Kit 107) typings
(``undo()``, ``redo()``, ``can_undo()``, ``can_redo()``, ``get_undo_stack()``);
``_push`` is how the commands stand-in records a command, not Kit API.
"""

from __future__ import annotations

from typing import Any

TEST_HELPERS = ()

_undo_stack: list[Any] = []
_redo_stack: list[Any] = []


def _push(command: Any) -> None:
    _undo_stack.append(command)
    _redo_stack.clear()


def get_undo_stack():
    return list(_undo_stack)


def can_undo():
    return bool(_undo_stack)


def can_redo():
    return bool(_redo_stack)


def undo():
    if _undo_stack:
        command = _undo_stack.pop()
        command.undo()
        _redo_stack.append(command)


def redo():
    if _redo_stack:
        command = _redo_stack.pop()
        command.do()
        _undo_stack.append(command)
