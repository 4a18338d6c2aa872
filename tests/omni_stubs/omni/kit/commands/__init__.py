"""Stand-in for ``omni.kit.commands`` (tests only).

Signatures: typings/omni/kit/commands/command.pyi (public Isaac Sim 5 / Kit 107 typings).
Behaviour as in Kit: ``execute(name, **kwargs)`` builds the registered class and calls
``do()``. When ``do()`` raises, Kit does not pass the exception on: it logs the error,
calls the command's ``undo()`` so a half-done change is rolled back, and returns
``(False, None)``. A command that succeeded and defines ``undo()`` goes on the undo
stack. ``executed`` records every call that reached ``do()``.
"""

from __future__ import annotations

import abc
import traceback
from typing import Any

import carb
import omni.kit.undo as _undo

TEST_HELPERS = ("executed",)


class Command(abc.ABC):
    """Base class of commands: ``do()`` and optionally ``undo()``."""

    @abc.abstractmethod
    def do(self):
        ...

    def modify_callback_info(self, cb_type: str, args: dict[str, Any]) -> dict[str, Any]:
        return args


_registry: dict[str, type] = {}
executed: list[tuple[str, dict[str, Any]]] = []


def _short(name: str) -> str:
    return name[: -len("Command")] if name.endswith("Command") else name


def register(command_class: type) -> None:
    _registry[_short(command_class.__name__)] = command_class


def unregister(command_class: type) -> None:
    _registry.pop(_short(command_class.__name__), None)


def get_commands():
    return dict(_registry)


def execute(name, **kwargs) -> tuple[bool, Any]:
    cls = _registry.get(_short(name.rsplit(".", 1)[-1]))
    if cls is None:
        carb.log_error(f"Can't execute command: \"{name}\", it wasn't registered or ever loaded.")
        return False, None
    try:
        command = cls(**kwargs)
    except Exception:
        carb.log_error(f"Failed to create command {name}:\n{traceback.format_exc()}")
        return False, None
    executed.append((_short(name), dict(kwargs)))
    try:
        result = command.do()
    except Exception:
        carb.log_error(f"Failed to execute command {name}:\n{traceback.format_exc()}")
        if callable(getattr(command, "undo", None)):
            try:
                command.undo()
            except Exception:
                carb.log_error(f"Failed to undo command {name}:\n{traceback.format_exc()}")
        return False, None
    if callable(getattr(command, "undo", None)):
        _undo._push(command)
    return True, result
