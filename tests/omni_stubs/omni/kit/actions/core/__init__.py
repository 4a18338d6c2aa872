"""Stand-in for ``omni.kit.actions.core`` (tests only): an action registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Action:
    def __init__(self, extension_id: str, action_id: str, fn: Callable, display_name: str = "",
                 description: str = "", tag: str = "") -> None:
        self.extension_id, self.id, self._fn = extension_id, action_id, fn
        self.display_name, self.description, self.tag = display_name, description, tag

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)


class ActionRegistry:
    def __init__(self) -> None:
        self._actions: dict[tuple[str, str], Action] = {}

    def register_action(self, extension_id: str, action_id: str, fn: Callable, display_name: str = "",
                        description: str = "", tag: str = "") -> Action:
        action = Action(extension_id, action_id, fn, display_name, description, tag)
        self._actions[(extension_id, action_id)] = action
        return action

    def deregister_action(self, extension_id: str, action_id: str) -> None:
        self._actions.pop((extension_id, action_id), None)

    def deregister_all_actions_for_extension(self, extension_id: str) -> None:
        for key in [k for k in self._actions if k[0] == extension_id]:
            del self._actions[key]

    def get_action(self, extension_id: str, action_id: str) -> Action | None:
        return self._actions.get((extension_id, action_id))

    def get_all_actions(self) -> list[Action]:
        return list(self._actions.values())


_registry = ActionRegistry()


def get_action_registry() -> ActionRegistry:
    return _registry


def execute_action(extension_id: str, action_id: str, *args: Any, **kwargs: Any) -> Any:
    action = _registry.get_action(extension_id, action_id)
    if action is None:
        raise KeyError(f"no action {extension_id}::{action_id}")
    return action.execute(*args, **kwargs)
