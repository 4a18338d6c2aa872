"""Stand-in for ``omni.kit.menu.utils`` (tests only): menus are lists of descriptions.

Signatures: typings/omni/kit/menu/utils/builder_utils.pyi (``MenuItemDescription``) and
utils.pyi (``add_menu_items``, ``remove_menu_items``, ``refresh_menu_items``) in the
public Isaac Sim 5 (Kit 107) typings.
"""

from __future__ import annotations

from collections.abc import Callable

from omni.kit.actions.core import execute_action

TEST_HELPERS = ("menus", "refreshed", "click")


class MenuItemDescription:
    def __init__(self, name: str = "", glyph: str = "", header: str | None = None, appear_after: list | str = "",
                 enabled: bool = True, ticked: bool = False, ticked_value: bool | None = None,
                 radio_group: str | None = "", sub_menu=None, hotkey: tuple[int, int] = None,
                 name_fn: Callable = None, show_fn: Callable = None, enable_fn: Callable = None,
                 ticked_fn: Callable = None, onclick_action: tuple = None, unclick_action: tuple = None,
                 onclick_fn: Callable = None, unclick_fn: Callable = None, onclick_right_fn: Callable = None,
                 original_svg_color: bool = False, original_menu_item=None, user=None,
                 hotkey_window: str | None = None) -> None:
        self.name, self.onclick_action, self.onclick_fn = name, onclick_action, onclick_fn
        self.ticked, self.ticked_fn, self.sub_menu = ticked, ticked_fn, sub_menu
        self.enabled, self.show_fn, self.enable_fn = enabled, show_fn, enable_fn


menus: dict[str, list[MenuItemDescription]] = {}
refreshed: list[str] = []


def add_menu_items(menu: list, name: str, menu_index: int = 0, can_rebuild_menus: bool = True, delegate=None):
    menus.setdefault(name, []).extend(menu)
    return menu


def remove_menu_items(menu: list, name: str, can_rebuild_menus: bool = True):
    items = menus.get(name, [])
    for item in menu:
        if item in items:
            items.remove(item)
    if not items:
        menus.pop(name, None)


def refresh_menu_items(name: str, immediately=None):
    refreshed.append(name)


def click(menu: str, name: str):
    """Test helper: what Kit does when the user clicks ``menu > name``."""
    item = next(i for i in menus.get(menu, []) if i.name == name)
    if item.onclick_action:
        return execute_action(*item.onclick_action)
    return item.onclick_fn()
