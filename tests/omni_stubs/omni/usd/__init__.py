"""Stand-in for ``omni.usd`` (tests only): USD contexts holding real ``pxr`` stages."""

from __future__ import annotations

from pxr import Usd


class UsdContext:
    def __init__(self, name: str) -> None:
        self._name = name
        self._stage: Usd.Stage | None = None

    def get_name(self) -> str:
        return self._name

    def get_stage(self) -> Usd.Stage | None:
        return self._stage

    def open_stage(self, url: str) -> bool:
        self._stage = Usd.Stage.Open(url)
        return self._stage is not None

    def new_stage(self) -> bool:
        self._stage = Usd.Stage.CreateInMemory()
        return True

    def close_stage(self) -> bool:
        self._stage = None
        return True


_contexts: dict[str, UsdContext] = {}


def get_context(name: str = "") -> UsdContext:
    if name not in _contexts:
        _contexts[name] = UsdContext(name)
    return _contexts[name]
