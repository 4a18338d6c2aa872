"""Stand-in for ``omni.usd`` (tests only): USD contexts holding real ``pxr`` stages.

Names as in the public Isaac Sim 5 (Kit 107) typings of omni.usd (``_usd.pyi``):
``get_context(name='')`` and ``create_context(name='')``, and ``UsdContext`` with
``get_name``, ``get_stage``, ``get_stage_url``, ``open_stage``, ``new_stage`` and
``close_stage``. As in Kit, ``get_context`` returns ``None`` for a name no context was
created under; the default context (``""``) always exists.
"""

from __future__ import annotations

from pxr import Usd

TEST_HELPERS = ()


class UsdContext:
    def __init__(self, name: str) -> None:
        self._name = name
        self._stage: Usd.Stage | None = None

    def get_name(self) -> str:
        return self._name

    def get_stage(self) -> Usd.Stage | None:
        return self._stage

    def get_stage_url(self) -> str:
        return self._stage.GetRootLayer().identifier if self._stage is not None else ""

    def open_stage(self, url: str, on_finish_fn=None, load_set=None) -> bool:
        self._stage = Usd.Stage.Open(url)
        ok = self._stage is not None
        if on_finish_fn is not None:
            on_finish_fn(ok, "" if ok else f"could not open {url}")
        return ok

    def new_stage(self, on_finish_fn=None, load_set=None) -> bool:
        self._stage = Usd.Stage.CreateInMemory()
        if on_finish_fn is not None:
            on_finish_fn(True, "")
        return True

    def close_stage(self, on_finish_fn=None) -> bool:
        self._stage = None
        if on_finish_fn is not None:
            on_finish_fn(True, "")
        return True


_contexts: dict[str, UsdContext] = {"": UsdContext("")}


def create_context(name: str = "") -> UsdContext:
    if name not in _contexts:
        _contexts[name] = UsdContext(name)
    return _contexts[name]


def get_context(name: str = "") -> UsdContext | None:
    return _contexts.get(name)
