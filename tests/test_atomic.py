"""Atomic writes: a failure, an exception or a SIGKILL mid-write never leaves a half-written file or folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lift3d.atomic import (atomic_path, remove_stale_temp_dirs, replace_dir_atomic, write_bytes_atomic,
                           write_text_atomic)
from lift3d.errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_creates_and_replaces(tmp_path):
    target = tmp_path / "deep" / "er" / "a.txt"
    write_text_atomic(target, "first")
    assert target.read_text() == "first"
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert _hidden(target.parent) == []


def test_exception_inside_atomic_path_keeps_the_old_file(tmp_path):
    target = tmp_path / "layer.usda"
    target.write_text("old complete content")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".usda"  # writers that pick formats by suffix work
            tmp.write_text("new, half writ")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old complete content"
    assert _hidden(tmp_path) == []


def test_file_modes_follow_umask_and_existing_mode(tmp_path):
    fresh = tmp_path / "fresh.bin"
    write_bytes_atomic(fresh, b"x")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's private 0600
    fresh.chmod(0o640)
    write_bytes_atomic(fresh, b"y")
    assert fresh.stat().st_mode & 0o777 == 0o640


def test_replace_dir_atomic_swaps_whole_folders(tmp_path):
    target = tmp_path / "asset"

    def fill(version: str, files: list[str]):
        def _fill(tmp: Path) -> None:
            for name in files:
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_text(version)
        return _fill

    replace_dir_atomic(target, fill("v1", ["a.usda", "textures/albedo.png"]))
    assert target.stat().st_mode & 0o777 == 0o777 & ~_umask()  # not mkdtemp's private 0700
    replace_dir_atomic(target, fill("v2", ["a.usda"]))
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == ["a.usda"]
    assert (target / "a.usda").read_text() == "v2"
    assert _hidden(tmp_path) == []


def test_failure_mid_fill_keeps_the_previous_folder(tmp_path):
    target = tmp_path / "asset"
    replace_dir_atomic(target, lambda tmp: (tmp / "a.usda").write_text("v1"))

    def failing(tmp: Path) -> None:
        (tmp / "a.usda").write_text("v2 partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_dir_atomic(target, failing)
    assert [p.name for p in target.iterdir()] == ["a.usda"]
    assert (target / "a.usda").read_text() == "v1"
    assert _hidden(tmp_path) == []


def test_failure_after_the_swap_puts_the_previous_folder_back(tmp_path):
    """``then`` runs with the new folder in place; if it raises, the old folder (or nothing) is restored."""
    target = tmp_path / "asset"
    replace_dir_atomic(target, lambda tmp: (tmp / "a.usda").write_text("v1"))
    seen = []

    def failing_then() -> None:
        seen.append((target / "a.usda").read_text())
        raise OSError("stage is locked")

    with pytest.raises(OSError, match="stage is locked"):
        replace_dir_atomic(target, lambda tmp: (tmp / "a.usda").write_text("v2"), then=failing_then)
    assert seen == ["v2"]
    assert (target / "a.usda").read_text() == "v1" and _hidden(tmp_path) == []
    fresh = tmp_path / "fresh"
    with pytest.raises(OSError):
        replace_dir_atomic(fresh, lambda tmp: (tmp / "a.usda").write_text("v1"), then=failing_then)
    assert not fresh.exists() and _hidden(tmp_path) == []
    replace_dir_atomic(target, lambda tmp: (tmp / "a.usda").write_text("v3"), then=lambda: seen.append("ok"))
    assert (target / "a.usda").read_text() == "v3" and seen[-1] == "ok" and _hidden(tmp_path) == []


def test_unwritable_destination_is_input_error(tmp_path):
    blocker = tmp_path / "plain_file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot create output folder"):
        write_text_atomic(blocker / "out.txt", "y")
    with pytest.raises(InputError, match="cannot create output folder"):
        replace_dir_atomic(blocker / "asset", lambda tmp: None)
    assert blocker.read_text() == "x"


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
@pytest.mark.parametrize("mode", ["file", "folder"])
def test_sigkill_while_writing_leaves_the_old_content(tmp_path, mode):
    target = tmp_path / ("big.bin" if mode == "file" else "asset")
    old = b"old complete content\n" * 1000
    if mode == "file":
        target.write_bytes(old)
    else:
        target.mkdir()
        (target / "data.bin").write_bytes(old)
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from lift3d.atomic import atomic_path, replace_dir_atomic

        def write(path):
            with open(path, "wb") as fh:
                for i in range(100000):  # far more than we let it write
                    fh.write(b"n" * (1 << 16))
                    fh.flush()
                    if i == 4:
                        print("writing", flush=True)
                    time.sleep(0.001)

        target = Path({str(target)!r})
        if {mode!r} == "file":
            with atomic_path(target) as tmp:
                write(tmp)
        else:
            replace_dir_atomic(target, lambda tmp: write(tmp / "data.bin"))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"writing"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    kept = target.read_bytes() if mode == "file" else (target / "data.bin").read_bytes()
    assert kept == old
    if mode == "folder":
        assert [p.name for p in target.iterdir()] == ["data.bin"]
    # The killed writer's partial data sits only in a hidden temporary sibling.
    leftovers = _hidden(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{target.name}.")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_next_run_removes_a_killed_writers_temporary_folder(tmp_path):
    target = tmp_path / "asset"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from lift3d.atomic import replace_dir_atomic

        def fill(tmp):
            (tmp / "part.bin").write_bytes(b"x" * 1000)
            print("writing", flush=True)
            time.sleep(600)

        replace_dir_atomic(Path({str(target)!r}), fill)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"writing"
        (leftover,) = [tmp_path / n for n in _hidden(tmp_path)]
        old = leftover.stat().st_mtime - 3600
        os.utime(leftover, (old, old))  # as if a run before this one had left it
        assert remove_stale_temp_dirs(tmp_path) == [], "a live writer's folder is never taken"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    assert _hidden(tmp_path) == [leftover.name]
    replace_dir_atomic(target, lambda tmp: (tmp / "data.bin").write_bytes(b"new"))
    assert _hidden(tmp_path) == [], "the next run into the folder removed the killed writer's leftover"
    assert (target / "data.bin").read_bytes() == b"new"


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_stale_sweep_keeps_young_held_and_foreign_folders(tmp_path):
    def make(name: str, age: float) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "f").write_text("x")
        t = time.time() - age
        os.utime(d, (t, t))
        return d

    stale = make(".car.0123456789ab.tmp", 3600)
    young = make(".car.aaaaaaaaaaaa.tmp", 0)
    held = make(".bus.bbbbbbbbbbbb.tmp", 3600)
    others = [make(".car.old-xyz", 3600), make(".notes.tmp", 3600), make("car.0123456789ab.tmp", 3600)]
    import fcntl

    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a writer in another open file description holds it
    try:
        assert remove_stale_temp_dirs(tmp_path) == [stale]
    finally:
        os.close(fd)
    assert not stale.exists() and young.exists() and held.exists() and all(p.exists() for p in others)
    assert remove_stale_temp_dirs(tmp_path) == [held], "released: now it is a leftover"
