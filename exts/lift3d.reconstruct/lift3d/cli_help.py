"""Readable help for the ``lift3d`` command line.

Typer prints raw type labels in its help (``{images}...``, ``<list[Path]>``,
``<bool>`` beside a flag). :class:`ReadableTyper` is a drop-in ``typer.Typer``
whose commands show conventional metavars instead: an argument's upper-case
name (``IMAGES...``), an option's value kind (``PATH``, ``TEXT``, ``INTEGER``,
``FLOAT``, or its explicit ``metavar``), and nothing after a flag.
Only the help changes; parsing is Typer's own.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_KINDS = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "bool": "BOOLEAN"}


def _kind(param: TyperArgument | TyperOption) -> str:
    """PATH, TEXT, INTEGER, FLOAT or BOOLEAN for a parameter's value type."""
    desc = param.type_descriptor
    if desc.is_path:
        return "PATH"
    if desc.is_choice:
        return "[" + "|".join(str(c) for c in desc.choices or ()) + "]"
    label = param.display_type(None).strip("<>")  # e.g. "int range", "list[Path]", "str"
    label = label.removeprefix("list[").removesuffix("]").removesuffix(" range")
    return "PATH" if label == "Path" else _KINDS.get(label, label.upper())


class _Argument(TyperArgument):
    def _name(self) -> str:
        return self.metavar if self.metavar is not None else self.name.upper()

    def _rich_display_name(self) -> str:
        return self._name() + ("..." if self.metavar is None and self.nargs != 1 else "")

    @property
    def display_name_raw(self) -> str:
        return self._name() if self.name else super().display_name_raw

    def _usage_display_name(self) -> str:
        name = self._rich_display_name()
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the upper-case name says it; no "<list[Path]>" beside it


class _Option(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        name = self.metavar if self.metavar is not None else _kind(self)
        return name + ("..." if self.nargs != 1 else "")


def _readable(params: list[Any]) -> list[Any]:
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif type(param) is TyperOption:
            param.__class__ = _Option
    return params


class ReadableCommand(TyperCommand):
    """A Typer command whose parameters render with readable metavars (see the module docstring)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))


class ReadableGroup(TyperGroup):
    """A Typer group (``lift3d``, ``lift3d stage``) with readable metavars for its own options."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))


class ReadableTyper(typer.Typer):
    """``typer.Typer`` whose groups and commands default to the readable classes above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("cls", ReadableGroup)
        super().__init__(*args, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", ReadableCommand)
        return super().command(*args, **kwargs)
