"""Stand-in for ``omni.kit.window.file_importer`` (tests only): remembers the last dialog shown."""

from __future__ import annotations

from typing import Any


class FileImporterExtension:
    def __init__(self) -> None:
        self.shown: dict[str, Any] | None = None

    def show_window(self, **kwargs: Any) -> None:
        self.shown = kwargs

    def hide_window(self) -> None:
        self.shown = None

    def click_apply(self, filename: str, dirname: str, selections: list[str]) -> None:
        """Test helper: the user picked ``selections`` and pressed the import button."""
        handler = self.shown["import_handler"]
        self.hide_window()
        handler(filename, dirname, selections=selections)


_importer = FileImporterExtension()


def get_file_importer() -> FileImporterExtension:
    return _importer
