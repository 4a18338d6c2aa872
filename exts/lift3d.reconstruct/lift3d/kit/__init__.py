"""lift3d's Omniverse Kit extension (``lift3d.reconstruct``): the only code that imports ``omni.*`` and ``carb``.

A thin adapter over the Kit-free core: a menu entry and a panel, drag and drop
onto the panel and the viewport, reconstructions run by :class:`lift3d.jobs.JobQueue`
off the UI thread, and each result added to the open stage with one undoable
command (:class:`~lift3d.kit.commands.Lift3dAddReconstructionCommand`).

Supported: Kit 107 and newer (Python 3.11; Kit 108 and 109 run Python 3.12). The
core reads its TOML configuration with the standard library's ``tomllib``, which
Python 3.10 (Kit 105 and 106) lacks, so an older Kit gets one clear error here
instead of a failed import deep inside the core.
"""

import sys

MIN_PYTHON = (3, 11)
"""Oldest Python the extension runs on: Kit 107's (the manifest's ``[package.target]`` says the same)."""

if tuple(sys.version_info[:2]) < MIN_PYTHON:
    raise ImportError(
        f"lift3d.reconstruct needs Kit 107 or newer (Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+); this Kit runs "
        f"Python {sys.version_info[0]}.{sys.version_info[1]}")

from .extension import Lift3dExtension  # noqa: E402  (after the version check)

__all__ = ["Lift3dExtension"]
