"""Device choice and a CPU thread-pool launcher for Warp kernels.

A Warp launch on the CPU device is one serial loop on the calling thread, and
it releases the GIL while it runs; launches from separate Python threads over
disjoint index ranges therefore run concurrently. :func:`parallel_launch`
splits the first launch dimension into contiguous chunks and runs them on one
shared :class:`concurrent.futures.ThreadPoolExecutor`; on CUDA it issues a
single launch.

Kernel convention: a kernel launched through :func:`parallel_launch` takes
``start: int`` as its **first** argument and addresses its first dimension as
``start + wp.tid()`` (or ``start + i`` for ``i, j = wp.tid()``). The launcher
prepends ``start`` to ``inputs``.

Warp's atomics on the CPU device are plain read-modify-writes (not atomic),
so chunks must write disjoint outputs; kernels that scatter (atomic adds into
shared arrays) pass those arrays as ``private`` outputs, which the launcher
gives each chunk its own zeroed copy of and sums afterwards in a fixed order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import warp as wp

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
_loaded: set[tuple[int, str]] = set()


def default_device(preference: str | None = None) -> wp.Device:
    """The Warp device for ``preference`` ("cpu", "cuda", "auto"; None = lift3d settings ``runtime.device``).

    "auto" picks CUDA when a CUDA device is present, else the CPU; "cuda"
    without a CUDA device raises ``lift3d.errors.InputError``.
    """
    if preference is None:
        preference = _settings_runtime()[0]
    if preference not in ("cpu", "cuda", "auto"):
        raise ValueError(f"unknown device {preference!r}; choose cpu, cuda or auto")
    wp.init()
    if preference == "cpu":
        return wp.get_device("cpu")
    if wp.get_cuda_device_count() > 0:
        return wp.get_device("cuda")
    if preference == "cuda":
        from lift3d.errors import InputError

        raise InputError("the device 'cuda' was requested but no CUDA device is available.")
    return wp.get_device("cpu")


def resolve_device(device: wp.Device | str | None) -> wp.Device:
    """A Warp device from a device, a Warp device name ("cpu", "cuda:0") or None (the default device)."""
    if device is None:
        return default_device()
    if isinstance(device, str) and device in ("auto", "cuda"):
        return default_device(device)
    return wp.get_device(device)


def thread_count() -> int:
    """CPU threads for launches: lift3d settings ``runtime.threads``, or every core when that is 0."""
    threads = _settings_runtime()[1]
    return threads if threads > 0 else (os.cpu_count() or 1)


_runtime_cache: tuple[str, int] | None = None


def _settings_runtime() -> tuple[str, int]:
    global _runtime_cache
    if _runtime_cache is None:
        from lift3d.errors import ConfigError
        from lift3d.settings import load_settings

        try:
            runtime = load_settings().runtime
            _runtime_cache = (runtime.device, runtime.threads)
        except ConfigError:  # an invalid user file is reported by the CLI; kernels fall back to the defaults
            _runtime_cache = ("cpu", 0)
    return _runtime_cache


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < threads:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lift3d-kernels")
            _pool_size = threads
        return _pool


def ensure_loaded(kernel: wp.Kernel, device: wp.Device) -> None:
    """Compile and load ``kernel``'s module on ``device`` once, before any worker thread launches it."""
    key = (id(kernel.module), device.alias)
    if key not in _loaded:
        wp.load_module(kernel.module, device=device)
        _loaded.add(key)


def chunk_bounds(total: int, chunks: int) -> list[tuple[int, int]]:
    """Split ``range(total)`` into at most ``chunks`` contiguous non-empty ``(start, count)`` pieces."""
    chunks = max(1, min(chunks, total))
    edges = np.linspace(0, total, chunks + 1).round().astype(np.int64)
    return [(int(a), int(b - a)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def run_chunks(total: int, body: Callable[[int, int], None], threads: int | None = None,
               min_chunk: int = 1) -> None:
    """Call ``body(start, count)`` over contiguous chunks of ``range(total)`` on the shared thread pool.

    At most ``threads`` chunks (default :func:`thread_count`), each at least
    ``min_chunk`` long; the first chunk runs on the calling thread. Every chunk
    has finished when this returns; an exception from any chunk is re-raised.
    """
    if total <= 0:
        return
    threads = thread_count() if threads is None else max(1, int(threads))
    pieces = chunk_bounds(total, min(threads, max(1, total // max(1, min_chunk))))
    if len(pieces) == 1:
        body(*pieces[0])
        return
    pool = _executor(threads)
    futures = [pool.submit(body, start, count) for start, count in pieces[1:]]
    try:
        body(*pieces[0])
    finally:
        wait(futures)  # no chunk may still be writing when this returns or raises
    for future in futures:
        future.result()


def parallel_launch(kernel: wp.Kernel, dim: int | Sequence[int], inputs: Sequence, device: wp.Device | str,
                    threads: int | None = None, private: Sequence[int] = (), min_chunk: int = 1) -> None:
    """Launch ``kernel(start, *inputs)`` over ``dim``, split along the first dimension on the CPU.

    Args:
        kernel: a Warp kernel whose first argument is ``start: int``.
        dim: launch dimensions; the first one is split into contiguous chunks.
        inputs: the kernel's remaining arguments.
        device: Warp device (or its name); on CUDA the kernel is launched once with ``start = 0``.
        threads: CPU worker count (default :func:`thread_count`).
        private: positions in ``inputs`` of arrays the kernel accumulates into
            (``+=`` / ``wp.atomic_add``); on the CPU with several chunks each chunk
            accumulates into its own zeroed copy, added to the original array
            afterwards in chunk order (deterministic for a given chunk count).
        min_chunk: smallest chunk length worth a separate thread.
    """
    dims = (int(dim),) if np.isscalar(dim) else tuple(int(d) for d in dim)
    if any(d <= 0 for d in dims):
        return
    if not isinstance(device, wp.Device):
        device = wp.get_device(device)
    if device.is_cuda:
        wp.launch(kernel, dim=dims, inputs=[0, *inputs], device=device)
        return
    ensure_loaded(kernel, device)
    threads = thread_count() if threads is None else max(1, int(threads))
    pieces = chunk_bounds(dims[0], min(threads, max(1, dims[0] // max(1, min_chunk))))
    if len(pieces) == 1:
        wp.launch(kernel, dim=dims, inputs=[0, *inputs], device=device)
        return
    args_per_chunk = [list(inputs) for _ in pieces]
    partials = {}
    for pos in private:
        target = inputs[pos]
        stack = wp.zeros((len(pieces), *target.shape), dtype=target.dtype, device=device)
        partials[pos] = stack
        for k, args in enumerate(args_per_chunk):
            args[pos] = stack[k]

    def body(k: int) -> None:
        start, count = pieces[k]
        wp.launch(kernel, dim=(count, *dims[1:]), inputs=[start, *args_per_chunk[k]], device=device)

    pool = _executor(threads)
    futures = [pool.submit(body, k) for k in range(1, len(pieces))]
    try:
        body(0)
    finally:
        wait(futures)
    for future in futures:
        future.result()
    for pos, stack in partials.items():
        target = inputs[pos]
        parts = stack.numpy()
        total = target.numpy() + parts.sum(axis=0, dtype=np.float64).astype(parts.dtype)
        wp.copy(target, wp.array(total, dtype=target.dtype, device=device))


def pixel_span(device: wp.Device, width: int) -> int:
    """Pixels of one image row handled by one kernel thread: the whole row on the CPU, one on CUDA.

    Per-pixel kernels launch over ``(rows, ceil(width / span))`` and loop over
    their span; on the CPU this avoids a per-pixel dispatch, on CUDA it keeps one
    thread per pixel.
    """
    return 1 if device.is_cuda else max(1, int(width))
