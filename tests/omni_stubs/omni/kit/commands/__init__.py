"""Stand-in for ``omni.kit.commands`` (tests only).

``execute(name, **kwargs)`` instantiates the registered class, calls ``do()`` and,
when the class defines ``undo()``, pushes the instance on ``omni.kit.undo``'s stack;
it returns ``(success, result)`` like Kit. ``executed`` records every call.
"""

from __future__ import annotations

from typing import Any

import omni.kit.undo as _undo


class Command:
    """Base class of commands: ``do()`` and optionally ``undo()``."""

    def do(self) -> Any:
        raise NotImplementedError


_registry: dict[str, type] = {}
executed: list[tuple[str, dict[str, Any]]] = []


def _short(name: str) -> str:
    return name[: -len("Command")] if name.endswith("Command") else name


def register(command_class: type) -> None:
    _registry[_short(command_class.__name__)] = command_class


def unregister(command_class: type) -> None:
    _registry.pop(_short(command_class.__name__), None)


def get_commands() -> dict[str, type]:
    return dict(_registry)


def execute(name: str, **kwargs: Any) -> tuple[bool, Any]:
    cls = _registry.get(_short(name.rsplit(".", 1)[-1]))
    if cls is None:
        return False, None
    executed.append((_short(name), dict(kwargs)))
    command = cls(**kwargs)
    result = command.do()
    if callable(getattr(command, "undo", None)):
        _undo.push(command)
    return True, result
