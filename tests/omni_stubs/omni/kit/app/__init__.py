"""Stand-in for ``omni.kit.app`` (tests only): the update event stream and the extension manager.

Names as in the public Isaac Sim 5 (Kit 107) typings of omni.kit.app (``get_app()``,
``IApp.get_update_event_stream()``, ``IApp.next_update_async()``,
``IApp.get_extension_manager()``, ``ExtensionManager.set_extension_enabled_immediate``
and ``is_extension_enabled``) and carb.events (``create_subscription_to_pop(fn, order,
name)``). Tests deliver update events with ``pump()``; ``next_update_async()`` delivers one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

TEST_HELPERS = ()


class Subscription:
    def __init__(self, stream: "IEventStream", fn: Callable, name: str) -> None:
        self._stream, self.fn, self.name = stream, fn, name

    def unsubscribe(self):
        if self in self._stream.subscriptions:
            self._stream.subscriptions.remove(self)
        self.fn = None


class Event:
    def __init__(self, dt: float) -> None:
        self.type = 0
        self.payload = {"dt": dt}


class IEventStream:
    def __init__(self) -> None:
        self.subscriptions: list[Subscription] = []

    def create_subscription_to_pop(self, fn: Callable, order: int = 0, name: str = None) -> Subscription:
        sub = Subscription(self, fn, name or "")
        self.subscriptions.append(sub)
        return sub

    def pump(self, frames: int = 1, dt: float = 1.0 / 60.0) -> None:
        """Test helper: deliver ``frames`` update events to every subscriber."""
        for _ in range(frames):
            for sub in list(self.subscriptions):
                if sub.fn is not None:
                    sub.fn(Event(dt))


class ExtensionManager:
    def __init__(self) -> None:
        self._handlers: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {}
        self._enabled: set[str] = set()

    def _register(self, name: str, enable: Callable[[], None], disable: Callable[[], None], enabled: bool) -> None:
        """Test harness only: how to enable/disable extension ``name`` and whether it is enabled now."""
        self._handlers[name] = (enable, disable)
        (self._enabled.add if enabled else self._enabled.discard)(name)

    def is_extension_enabled(self, extension_id: str) -> bool:
        return extension_id.split("-")[0] in self._enabled

    def set_extension_enabled_immediate(self, extension_id: str, enabled: bool) -> bool:
        name = extension_id.split("-")[0]
        if name not in self._handlers:
            return False
        if enabled != (name in self._enabled):
            self._handlers[name][0 if enabled else 1]()
            (self._enabled.add if enabled else self._enabled.discard)(name)
        return True


class IApp:
    def __init__(self) -> None:
        self._update = IEventStream()
        self._extensions = ExtensionManager()

    def get_update_event_stream(self) -> IEventStream:
        return self._update

    def get_extension_manager(self) -> ExtensionManager:
        return self._extensions

    async def next_update_async(self):
        self._update.pump()
        await asyncio.sleep(0)
        return 1.0 / 60.0


_app = IApp()


def get_app() -> IApp:
    return _app
