"""Stand-in for ``omni.kit.app`` (tests only): an update event stream that tests pump."""

from __future__ import annotations

from collections.abc import Callable


class Subscription:
    def __init__(self, stream: "EventStream", fn: Callable, name: str) -> None:
        self._stream, self.fn, self.name = stream, fn, name

    def unsubscribe(self) -> None:
        if self in self._stream.subscriptions:
            self._stream.subscriptions.remove(self)


class Event:
    def __init__(self, dt: float) -> None:
        self.type = 0
        self.payload = {"dt": dt}


class EventStream:
    def __init__(self) -> None:
        self.subscriptions: list[Subscription] = []

    def create_subscription_to_pop(self, fn: Callable, order: int = 0, name: str = "") -> Subscription:
        sub = Subscription(self, fn, name)
        self.subscriptions.append(sub)
        return sub

    def pump(self, frames: int = 1, dt: float = 1.0 / 60.0) -> None:
        """Test helper: deliver ``frames`` update events to every subscriber."""
        for _ in range(frames):
            for sub in list(self.subscriptions):
                sub.fn(Event(dt))


class App:
    def __init__(self) -> None:
        self._update = EventStream()

    def get_update_event_stream(self) -> EventStream:
        return self._update


_app = App()


def get_app() -> App:
    return _app
