"""Stand-in for ``omni.kit.window.file_importer`` (tests only).

Signatures: typings/omni/kit/window/file_importer/__init__.pyi and extension.pyi (public
Isaac Sim 5 / Kit 107 typings). As in Kit, the dialog keeps one selected file unless it
was shown with ``allow_multi_files_selection=True``; ``select_items_async`` and
``click_apply`` are the helpers Kit's own tests use to pick files and press the button.
"""

from __future__ import annotations

import os
from collections.abc import Callable

TEST_HELPERS = ()


class FileImporterExtension:
    def __init__(self) -> None:
        self.shown: dict | None = None
        self._selected: list[str] = []

    def show_window(self, title: str = None, width: int = 1080, height: int = 450,
                    show_only_collections: list[str] = None, show_only_folders: bool = False,
                    file_postfix_options: list[str] = None, file_extension_types: list[tuple[str, str]] = None,
                    file_filter_handler: Callable[[str, str, str], bool] = None, import_button_label: str = "Import",
                    import_handler: Callable[[str, str, list[str]], None] = None, filename_url: str = None,
                    file_postfix: str = None, file_extension: str = None, hide_window_on_import: bool = True,
                    should_validate: bool = False, focus_filename_input: bool = True,
                    allow_multi_files_selection: bool = False) -> None:
        self.shown = dict(title=title, file_extension_types=file_extension_types,
                          import_button_label=import_button_label, import_handler=import_handler,
                          hide_window_on_import=hide_window_on_import,
                          allow_multi_files_selection=allow_multi_files_selection)
        self._selected = []

    def hide_window(self) -> None:
        self.shown = None
        self._selected = []

    async def select_items_async(self, url: str, filenames: list[str] = list()) -> list[str]:
        """Select ``filenames`` in folder ``url``; without multi-selection only the last one stays selected."""
        picked = [f"{url.rstrip('/')}/{name}" for name in filenames]
        if not (self.shown or {}).get("allow_multi_files_selection"):
            picked = picked[-1:]
        self._selected = picked
        return list(picked)

    def click_apply(self, filename_url: str = None, postfix: str = None, extension: str = None) -> None:
        """Press the import button: ``import_handler(filename, dirname, selections)``."""
        selections = list(self._selected) or ([filename_url] if filename_url else [])
        first = selections[0] if selections else ""
        dirname, filename = (os.path.dirname(first) + "/", os.path.basename(first)) if first else ("", "")
        handler = self.shown["import_handler"]
        if self.shown["hide_window_on_import"]:
            self.hide_window()
        handler(filename, dirname, selections=selections)


_importer = FileImporterExtension()


def get_file_importer() -> FileImporterExtension:
    return _importer
