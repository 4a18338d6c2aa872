"""Atomic file and folder replacement.

Every file lift3d writes is first written to a temporary sibling in the same
directory (same filesystem) and then moved over the target with
``os.replace``, which POSIX and Windows both guarantee to be atomic: a reader
(or a crash, or ``kill -9``) sees either the old complete file or the new
complete one, never a partial one.

A folder being built by :func:`replace_dir_atomic` sits in a hidden sibling
``.NAME.<hex>.tmp/`` whose writer holds an exclusive ``flock`` on it. A
``kill -9`` leaves such a folder behind with nobody holding it; the next
:func:`replace_dir_atomic` into the same parent folder removes the ones that
are older than the current run and whose lock it can take
(:func:`remove_stale_temp_dirs`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import InputError

try:
    import fcntl
except ImportError:  # Windows: no flock, so no stale-folder removal (nothing can tell a live writer's)
    fcntl = None  # type: ignore[assignment]

_TEMP_DIR = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")
_RUN_START = time.time()
STALE_MIN_AGE_S = 10.0
"""A temporary folder younger than this is never removed, whatever its lock says (its writer may not hold it yet)."""


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


def _hold(directory: Path) -> int | None:
    """Take an exclusive ``flock`` on the fresh ``directory``; the fd (close it to release), or None without flock."""
    if fcntl is None:
        return None
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def remove_stale_temp_dirs(folder: Path | str, older_than: float | None = None) -> list[Path]:
    """Remove the temporary folders (``.NAME.<hex>.tmp/``) in ``folder`` that killed writers left behind.

    A folder is removed only when its modification time is before ``older_than``
    (default: the start of this process, and at least :data:`STALE_MIN_AGE_S`
    ago) and its exclusive lock can be taken, i.e. no live writer holds it.
    Without ``flock`` (Windows) nothing is removed. Returns the removed folders.
    """
    if fcntl is None:
        return []
    cutoff = min(_RUN_START, time.time() - STALE_MIN_AGE_S) if older_than is None else older_than
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        try:
            if (not _TEMP_DIR.match(entry.name) or not entry.is_dir(follow_symlinks=False)
                    or entry.stat(follow_symlinks=False).st_mtime >= cutoff):
                continue
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live writer holds it
            os.close(fd)
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            if not os.path.exists(entry.path):
                removed.append(Path(entry.path))
        finally:
            os.close(fd)
    return removed


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
    remove_stale_temp_dirs(target.parent)
    tmp = _new_temp(target, ".tmp", directory=True)
    held = _hold(tmp)  # held until the end, so a concurrent run's sweep leaves this folder alone
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
        if held is not None:
            os.close(held)
