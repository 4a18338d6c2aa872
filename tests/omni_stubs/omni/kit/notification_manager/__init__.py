"""Stand-in for ``omni.kit.notification_manager`` (tests only): notifications are recorded."""

from __future__ import annotations

import enum
from typing import Any


class NotificationStatus(enum.IntEnum):
    INFO = 0
    WARNING = 1


class Notification:
    def __init__(self, text: str, status: NotificationStatus, **kwargs: Any) -> None:
        self.text, self.status, self.options = text, status, kwargs


posted: list[Notification] = []


def post_notification(text: str, hide_after_timeout: bool = True, duration: float = 3,
                      status: NotificationStatus = NotificationStatus.INFO, **kwargs: Any) -> Notification:
    note = Notification(text, status, hide_after_timeout=hide_after_timeout, duration=duration, **kwargs)
    posted.append(note)
    return note
