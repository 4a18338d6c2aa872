"""Atomic file and folder replacement.

Every file lift3d writes is first written to a temporary sibling in the same
directory (same filesystem) and then moved over the target with
``os.replace``, which POSIX and Windows both guarantee to be atomic: a reader
(or a crash, or ``kill -9``) sees either the old complete file or the new
complete one, never a partial one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import InputError


def ensure_writable_dir(directory: Path) -> None:
    """Create ``directory`` (and parents) if needed; InputError if that fails or it is not writable."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {directory}: {exc.strerror or exc}") from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"output folder {directory} is not writable")


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _new_temp(target: Path, suffix: str, directory: bool) -> Path:
    """Create a fresh hidden sibling of ``target`` (file or folder) with the usual umask-based mode.

    ``tempfile.mkstemp``/``mkdtemp`` would create it private (0600/0700), and
    that mode would survive the rename, hiding the asset from other users of a
    shared stage.
    """
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}{suffix}"
        try:
            if directory:
                os.mkdir(tmp, 0o777)
            else:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {target}")


@contextlib.contextmanager
def atomic_path(target: Path | str, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it over ``target``.

    The temporary file keeps ``target``'s suffix (or ``suffix``) so writers that
    pick a format from the extension (``Sdf.Layer.Export``, Pillow) still work.
    On any exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    ensure_writable_dir(target.parent)
    tmp = _new_temp(target, ".tmp" + (suffix if suffix is not None else target.suffix), directory=False)
    try:
        yield tmp
        with contextlib.suppress(OSError):  # keep the mode of the file being replaced
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes_atomic(target: Path | str, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: Path | str, text: str) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    write_bytes_atomic(target, text.encode("utf-8"))


def replace_dir_atomic(target: Path | str, fill: Callable[[Path], None],
                       then: Callable[[], None] | None = None) -> None:
    """Build a folder with ``fill(tmp_dir)`` and swap it in place of ``target``.

    The new folder is built in a hidden temporary sibling. If ``target`` does
    not exist it is created with one ``os.replace`` (atomic). If it exists, the
    old folder is first renamed aside and removed only after the new one is in
    place, so at every instant either the complete old or the complete new
    folder sits at ``target`` (apart from the instant between two renames,
    during which a crash leaves the old folder recoverable under
    ``.<name>.old-*``). A failure in ``fill`` leaves ``target`` untouched.

    ``then`` runs once the new folder is in place (e.g. to reference it from a
    stage); if it raises, the new folder is taken away again and the old one
    (if any) put back, so ``target`` ends as it was before the call.
    """
    target = Path(target)
    ensure_writable_dir(target.parent)
    tmp = _new_temp(target, ".tmp", directory=True)
    old: Path | None = None
    try:
        fill(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rmdir(old)
            os.replace(target, old)
        swapped = False
        try:
            os.replace(tmp, target)
            swapped = True
            if then is not None:
                then()
        except BaseException:
            if swapped:
                os.replace(target, tmp)  # the new folder goes back to the temporary name, removed below
            if old is not None:
                os.replace(old, target)
                old = None
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
