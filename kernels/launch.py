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
shared arrays) pass those arrays as ``private`` outputs: the first chunk
accumulates into the array itself, every other chunk into its own zeroed copy,
and a reduction kernel adds the copies in, split over the same threads.

Defaults: the kernels never read the application's settings. A launch takes
its device and thread count as arguments; left out, they come from
:func:`configure`, which the application calls once from its own settings
(``runtime.device``, ``runtime.threads``). Without that call the device is
"auto" (CUDA when present, else the CPU) and the threads are every core this
process may run on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import warp as wp

from . import init_warp

wp.set_module_options({"enable_backward": False})

DEVICE_CHOICES = ("cpu", "cuda", "auto")
"""Device preferences :func:`configure` and :func:`default_device` accept."""

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
_loaded: set[tuple[int, str]] = set()

_device_preference = "auto"
_threads_setting = 0
_threads: int | None = None  # the resolved default thread count, computed once


def configure(threads: int | None = None, device: str | None = None) -> None:
    """Set the default thread count and device of every launch that does not pass its own.

    Args:
        threads: CPU threads for launches; 0 = every core this process may run on; None keeps the current value.
        device: "cpu", "cuda" or "auto"; None keeps the current value.
    """
    global _device_preference, _threads_setting, _threads
    if device is not None:
        if device not in DEVICE_CHOICES:
            raise ValueError(f"unknown device {device!r}; choose cpu, cuda or auto")
        _device_preference = device
    if threads is not None:
        threads = int(threads)
        if threads < 0:
            raise ValueError(f"threads must be 0 (every core) or positive, got {threads}")
        _threads_setting = threads
        _threads = None


def configuration() -> tuple[str, int]:
    """The current defaults as ``(device preference, threads setting)`` (0 threads = every core)."""
    return _device_preference, _threads_setting


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_device(preference: str | None = None) -> wp.Device:
    """The Warp device for ``preference`` ("cpu", "cuda", "auto"; None = the default set by :func:`configure`).

    "auto" picks CUDA when a CUDA device is present, else the CPU; "cuda"
    without a CUDA device raises ``lift3d.errors.InputError``.
    """
    if preference is None:
        preference = _device_preference
    if preference not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {preference!r}; choose cpu, cuda or auto")
    init_warp()
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


def thread_count(threads: int | None = None) -> int:
    """CPU threads for a launch: ``threads`` when given and positive, else the default set by :func:`configure`.

    The default is resolved once (0 = :func:`available_cores`), not per launch.
    """
    global _threads
    if threads is not None and int(threads) > 0:
        return int(threads)
    if _threads is None:
        _threads = _threads_setting if _threads_setting > 0 else available_cores()
    return _threads


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
    threads = thread_count(threads)
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


@wp.kernel
def _add_private_copies(start: int, copies: wp.array2d(dtype=wp.float32), target: wp.array(dtype=wp.float32)):
    """``target[i] += sum_k copies[k, i]``, summed in float64 in chunk order (deterministic)."""
    i = start + wp.tid()
    acc = wp.float64(target[i])
    for k in range(copies.shape[0]):
        acc += wp.float64(copies[k, i])
    target[i] = wp.float32(acc)


def _flat_float32(array: wp.array) -> wp.array:
    """A contiguous float32 array (or vector/matrix array) seen as one flat float32 array (same memory)."""
    scalars = array.size * (array.dtype._length_ if hasattr(array.dtype, "_length_") else 1)
    return wp.array(ptr=array.ptr, dtype=wp.float32, shape=(scalars,), device=array.device)


def _reducible(array: wp.array) -> bool:
    """Whether the reduction kernel can add into ``array``: contiguous, float32 or float32 vectors/matrices."""
    scalar = getattr(array.dtype, "_wp_scalar_type_", array.dtype)
    return scalar is wp.float32 and array.is_contiguous


def parallel_launch(kernel: wp.Kernel, dim: int | Sequence[int], inputs: Sequence, device: wp.Device | str,
                    threads: int | None = None, private: Sequence[int] = (), min_chunk: int = 1) -> None:
    """Launch ``kernel(start, *inputs)`` over ``dim``, split along the first dimension on the CPU.

    Args:
        kernel: a Warp kernel whose first argument is ``start: int``.
        dim: launch dimensions; the first one is split into contiguous chunks.
        inputs: the kernel's remaining arguments.
        device: Warp device (or its name); on CUDA the kernel is launched once with ``start = 0``.
        threads: CPU worker count (default :func:`thread_count`).
        private: positions in ``inputs`` of contiguous float32 (or float32 vector) arrays the kernel
            accumulates into (``+=`` / ``wp.atomic_add``); on the CPU with several chunks the first
            chunk accumulates into the array itself and each other chunk into its own zeroed copy,
            which a reduction kernel then adds in chunk order (deterministic for a given chunk count).
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
    threads = thread_count(threads)
    pieces = chunk_bounds(dims[0], min(threads, max(1, dims[0] // max(1, min_chunk))))
    if len(pieces) == 1:
        wp.launch(kernel, dim=dims, inputs=[0, *inputs], device=device)
        return
    args_per_chunk = [list(inputs) for _ in pieces]
    partials: dict[int, tuple[bool, wp.array, wp.array]] = {}
    for pos in private:
        target = inputs[pos]
        if _reducible(target):  # chunk 0 adds into the target itself; a kernel adds the other chunks' copies
            flat = _flat_float32(target)
            copies = wp.zeros((len(pieces) - 1, flat.shape[0]), dtype=wp.float32, device=device)
            partials[pos] = (True, flat, copies)
            for k in range(1, len(pieces)):
                row = copies[k - 1]
                args_per_chunk[k][pos] = wp.array(ptr=row.ptr, dtype=target.dtype, shape=target.shape, device=device)
        else:  # any other array: every chunk gets a copy, summed in numpy (float64) afterwards
            stack = wp.zeros((len(pieces), *target.shape), dtype=target.dtype, device=device)
            partials[pos] = (False, target, stack)
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
    for in_kernel, target, copies in partials.values():
        if in_kernel:
            parallel_launch(_add_private_copies, target.shape[0], [copies, target], device, threads, min_chunk=16384)
        else:
            parts = copies.numpy()
            total = target.numpy() + parts.sum(axis=0, dtype=np.float64).astype(parts.dtype)
            wp.copy(target, wp.array(total, dtype=target.dtype, device=device))


def pixel_span(device: wp.Device, width: int) -> int:
    """Pixels of one image row handled by one kernel thread: the whole row on the CPU, one on CUDA.

    Per-pixel kernels launch over ``(rows, ceil(width / span))`` and loop over
    their span; on the CPU this avoids a per-pixel dispatch, on CUDA it keeps one
    thread per pixel.
    """
    return 1 if device.is_cuda else max(1, int(width))
