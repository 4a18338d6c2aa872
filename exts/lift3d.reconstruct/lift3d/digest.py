"""File identity: the content digest lift3d records for inputs, assets and stage references."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: Path | str) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
