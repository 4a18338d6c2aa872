"""Compile and load every Warp kernel module ahead of time, so no user run waits for a compiler.

Warp compiles a kernel module the first time it is loaded and keeps the binary
in its kernel cache (a folder per Warp version). :func:`warmup` loads every
module of :mod:`lift3d.kernels` on the CPU and, when the settings' device
resolves to CUDA, on the GPU too. Every preset runs the same kernel modules
(the presets differ in sizes and step counts, which are launch arguments, not
code), so one warmup covers all of them.

``./repo.sh`` runs ``lift3d warmup`` after installing; users can run it after
an upgrade. The Kit extension can call :func:`warmup_in_background` at startup:
it works on a daemon thread and never blocks the caller.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

KERNEL_MODULES = ("launch", "mesh_ops", "raster", "interpolate", "texture", "bake", "soft_silhouette")
"""The modules of :mod:`lift3d.kernels` that hold Warp kernels (``projection`` only has functions, compiled
into the modules that call them)."""


@dataclass
class ModuleLoad:
    """One kernel module loaded on one device."""

    module: str
    device: str
    hash: str
    compiled: bool
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)


def _cache_files() -> set[str]:
    import warp as wp

    root = wp.config.kernel_cache_dir
    found: set[str] = set()
    if root and os.path.isdir(root):
        for folder, _, files in os.walk(root):
            found.update(os.path.join(folder, f) for f in files)
    return found


def warmup_devices(device: str | None = None) -> list[str]:
    """Warp device names to warm: always the CPU, plus CUDA when ``device`` (default: the configured one)
    resolves to it."""
    from .kernels.launch import default_device

    chosen = default_device(device)
    return ["cpu"] + ([str(chosen)] if chosen.is_cuda else [])


def warmup(device: str | None = None, progress: Callable[[ModuleLoad], None] | None = None) -> list[ModuleLoad]:
    """Compile (when not cached) and load every kernel module on the CPU and on the configured CUDA device.

    Args:
        device: "cpu", "cuda" or "auto"; None = the default set by :func:`lift3d.kernels.launch.configure`.
        progress: called after each module with what was done.

    Returns:
        one :class:`ModuleLoad` per module and device; ``compiled`` tells whether Warp had to build it
        (new files appeared in the kernel cache) rather than load a cached binary.
    """
    import warp as wp

    from .kernels import init_warp

    init_warp()
    loads: list[ModuleLoad] = []
    for device_name in warmup_devices(device):
        for short in KERNEL_MODULES:
            module = importlib.import_module(f"lift3d.kernels.{short}")
            before = _cache_files()
            clock = time.perf_counter()
            wp.load_module(module, device=device_name)
            seconds = time.perf_counter() - clock
            compiled = bool(_cache_files() - before)
            warp_module = wp.get_module(module.__name__)
            hashes = [e.module_hash.hex() for e in warp_module.execs.values() if e.module_hash]
            load = ModuleLoad(short, device_name, hashes[-1][:16] if hashes else "", compiled, seconds)
            loads.append(load)
            if progress is not None:
                progress(load)
    return loads


def warmup_in_background(device: str | None = None,
                         done: Callable[[list[ModuleLoad] | None, BaseException | None], None] | None = None
                         ) -> threading.Thread:
    """Run :func:`warmup` on a daemon thread (for an application's startup); returns the started thread.

    ``done(loads, error)`` is called on that thread when it finishes: ``loads`` on success, ``error`` on
    failure (a failed warmup only means the first reconstruction compiles what it needs).
    """

    def work() -> None:
        try:
            loads = warmup(device)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller, never raised on a daemon thread
            if done is not None:
                done(None, exc)
            return
        if done is not None:
            done(loads, None)

    thread = threading.Thread(target=work, name="lift3d-warmup", daemon=True)
    thread.start()
    return thread
