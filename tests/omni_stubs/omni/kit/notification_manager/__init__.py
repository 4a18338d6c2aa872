"""Stand-in for ``omni.kit.notification_manager`` (tests only): notifications are recorded.

Signature of ``post_notification``: typings/omni/kit/notification_manager/extension.pyi
(public Isaac Sim 5 / Kit 107 typings); its ``status`` defaults to 1, which is INFO.
"""

from __future__ import annotations

import enum

TEST_HELPERS = ("posted",)


class NotificationStatus(enum.IntEnum):
    INFO = 1
    WARNING = 2


class Notification:
    def __init__(self, text: str, status: NotificationStatus, hide_after_timeout: bool, duration: float) -> None:
        self.text, self.status = text, NotificationStatus(status)
        self.hide_after_timeout, self.duration = hide_after_timeout, duration


posted: list[Notification] = []


def post_notification(text, hide_after_timeout=True, duration=3, status=1, button_infos=None):
    note = Notification(text, status, hide_after_timeout, duration)
    posted.append(note)
    return note
