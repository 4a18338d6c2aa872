"""Stand-in for ``omni.kit.menu.utils`` (tests only): menus are lists of descriptions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omni.kit.actions.core import execute_action


class MenuItemDescription:
    def __init__(self, name: str = "", onclick_action: tuple[str, str] | None = None,
                 onclick_fn: Callable | None = None, ticked: bool = False, ticked_fn: Callable | None = None,
                 sub_menu: list | None = None, **kwargs: Any) -> None:
        self.name, self.onclick_action, self.onclick_fn = name, onclick_action, onclick_fn
        self.ticked, self.ticked_fn, self.sub_menu = ticked, ticked_fn, sub_menu
        self.extra = kwargs


menus: dict[str, list[MenuItemDescription]] = {}


def add_menu_items(menu_list: list[MenuItemDescription], name: str, *args: Any, **kwargs: Any) -> list:
    menus.setdefault(name, []).extend(menu_list)
    return menu_list


def remove_menu_items(menu_list: list[MenuItemDescription], name: str, *args: Any, **kwargs: Any) -> None:
    items = menus.get(name, [])
    for item in menu_list:
        if item in items:
            items.remove(item)
    if not items:
        menus.pop(name, None)


def click(menu: str, name: str) -> Any:
    """Test helper: what Kit does when the user clicks ``menu > name``."""
    item = next(i for i in menus.get(menu, []) if i.name == name)
    if item.onclick_action:
        return execute_action(*item.onclick_action)
    return item.onclick_fn()
