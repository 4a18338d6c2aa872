"""Turning arbitrary user strings (file names, asset names) into safe names.

A USD prim name must match ``[A-Za-z_][A-Za-z0-9_]*``; we use the same rule
for asset folder and file names, so a name can never escape its folder
(``../../etc/passwd.png`` becomes ``passwd``) and never needs quoting.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePath

_INVALID = re.compile(r"[^A-Za-z0-9_]+")
_MAX_LEN = 64


def sanitize_name(text: str, fallback: str = "asset") -> str:
    """Return a valid USD identifier derived from ``text``.

    Only the final path component is used and a trailing image extension is
    dropped; accents are folded to ASCII, every run of other characters
    becomes one ``_``, a leading digit gets a ``_`` prefix, and the result is
    at most 64 characters. An empty result becomes ``fallback``.
    """
    base = PurePath(text.replace("\\", "/")).name
    stem = re.sub(r"\.(png|jpe?g|webp|tiff?|bmp|gif|exr|usd[acz]?)$", "", base, flags=re.IGNORECASE)
    ascii_text = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    name = _INVALID.sub("_", ascii_text).strip("_")
    if not name:
        name = fallback
    if name[0].isdigit():
        name = "_" + name
    return name[:_MAX_LEN]


def unique_name(base: str, taken: Iterable[str]) -> str:
    """Return ``base`` or ``base_2``, ``base_3``, ... whichever is not in ``taken``."""
    used = set(taken)
    if base not in used:
        return base
    i = 2
    while f"{base}_{i}" in used:
        i += 1
    return f"{base}_{i}"


def free_name(text: str, folder: Path, also_taken: Iterable[str] = ()) -> str:
    """:func:`sanitize_name` of ``text``, made unique (:func:`unique_name`) among the entries of ``folder``
    (if it exists) and ``also_taken``: a new asset folder name that replaces nothing."""
    taken = set(also_taken)
    if folder.is_dir():
        taken.update(p.name for p in folder.iterdir())
    return unique_name(sanitize_name(text), taken)
