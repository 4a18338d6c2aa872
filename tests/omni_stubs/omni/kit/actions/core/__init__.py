"""Stand-in for ``omni.kit.actions.core`` (tests only): an action registry.

Signatures: typings/omni/kit/actions/core/_kit_actions_core.pyi (public Isaac Sim 5 /
Kit 107 typings); ``execute_action`` at module level as in omni.kit.actions.core's
``actions.pyi``.
"""

from __future__ import annotations

from typing import Any

TEST_HELPERS = ()


class Action:
    def __init__(self, extension_id: str, action_id: str, python_object: Any, display_name: str = "",
                 description: str = "", icon_url: str = "", tag: str = "") -> None:
        self.extension_id, self.id, self._fn = extension_id, action_id, python_object
        self.display_name, self.description, self.icon_url, self.tag = display_name, description, icon_url, tag

    def execute(self, *args, **kwargs) -> Any:
        return None if self._fn is None else self._fn(*args, **kwargs)

    def invalidate(self) -> None:
        self._fn = None


class IActionRegistry:
    def __init__(self) -> None:
        self._actions: dict[tuple[str, str], Action] = {}

    def register_action(self, extension_id: str, action_id: str, python_object: Any, display_name: str = "",
                        description: str = "", icon_url: str = "", tag: str = "") -> Action:
        action = Action(extension_id, action_id, python_object, display_name, description, icon_url, tag)
        self._actions[(extension_id, action_id)] = action
        return action

    def deregister_action(self, extension_id: str, action_id: str, invalidate: bool = True) -> Action | None:
        action = self._actions.pop((extension_id, action_id), None)
        if action is not None and invalidate:
            action.invalidate()
        return action

    def deregister_all_actions_for_extension(self, extension_id: str, invalidate: bool = True) -> None:
        for key in [k for k in self._actions if k[0] == extension_id]:
            self.deregister_action(*key, invalidate=invalidate)

    def execute_action(self, extension_id: str, action_id: str, *args, **kwargs) -> Any:
        action = self.get_action(extension_id, action_id)
        return None if action is None else action.execute(*args, **kwargs)

    def get_action(self, extension_id: str, action_id: str) -> Action | None:
        return self._actions.get((extension_id, action_id))

    def get_all_actions(self) -> list[Action]:
        return list(self._actions.values())

    def get_all_actions_for_extension(self, extension_id: str) -> list[Action]:
        return [a for (ext, _), a in self._actions.items() if ext == extension_id]


_registry = IActionRegistry()


def get_action_registry() -> IActionRegistry:
    return _registry


def execute_action(extension_id: str, action_id: str, *args, **kwargs) -> Any:
    return _registry.execute_action(extension_id, action_id, *args, **kwargs)
