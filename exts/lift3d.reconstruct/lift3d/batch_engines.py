"""Where batch reconstructions run: a local process pool, or Ray tasks on a cluster.

Both engines run the same picklable task function (``lift3d.batch.reconstruct_one``)
and yield its outcomes in completion order; the driver alone touches the stage.

* :class:`LocalEngine`: ``concurrent.futures.ProcessPoolExecutor`` with the
  ``spawn`` start method (torch and Warp hold threads and device state that do
  not survive ``fork``). Each worker limits its BLAS/OpenMP threads to its share
  of the CPU cores. If a worker process dies (segfault, OOM kill), the pool
  breaks: the unfinished tasks run again once in a fresh pool, and a task that
  breaks a pool twice is reported as failed. Worker stdout goes to stderr.
* :class:`RayEngine`: the task function as a Ray remote task (``num_cpus=1``);
  ``ray.init(address=...)`` joins an existing cluster (the flag or
  ``$RAY_ADDRESS``), otherwise starts a local one with ``num_cpus=workers``.
  ``LIFT3D_*`` environment variables are forwarded to the workers through the
  job's runtime environment.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from .errors import InputError

T = TypeVar("T")
R = TypeVar("R")

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class Engine(Protocol):
    """Runs ``fn`` over tasks in parallel and yields ``(task, result)`` pairs as they finish."""

    def run(self, fn: Callable[[T], R], tasks: Sequence[T],
            on_crash: Callable[[T, str], R]) -> Iterator[tuple[T, R]]: ...

    def close(self) -> None: ...


def _init_worker(threads: int, preload: tuple[str, ...]) -> None:
    """Process-pool initializer: quiet stdout, capped threads, heavy modules loaded before the first task.

    The worker's stdout (fd 1) is pointed at stderr, so library chatter never
    mixes with the driver's ``--json`` output. OpenMP/BLAS threads are capped
    (unless the user set them) before torch is imported. Modules in
    ``preload`` are imported now so a task's time is its own work; an import
    error is left for the task to report with its reason.
    """
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for var in _THREAD_VARS:
        os.environ.setdefault(var, str(threads))
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception:  # reported by the first task that needs it, with the image it failed on
            continue
    if "warp" in sys.modules:
        sys.modules["warp"].config.quiet = True


class LocalEngine:
    """A pool of ``workers`` spawned processes on this machine."""

    def __init__(self, workers: int, preload: tuple[str, ...] = ()) -> None:
        self.workers = workers
        self.threads = max(1, (os.cpu_count() or 1) // workers)
        self.preload = preload
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.threads, self.preload))

    def run(self, fn: Callable[[T], R], tasks: Sequence[T],
            on_crash: Callable[[T, str], R]) -> Iterator[tuple[T, R]]:
        """Yield ``(task, fn(task))`` as tasks finish; ``on_crash(task, reason)`` stands in for a task whose worker died."""
        crashes = [0] * len(tasks)
        todo = list(range(len(tasks)))
        while todo:
            self._pool = self._new_pool()
            pending: dict[Future, int] = {self._pool.submit(fn, tasks[i]): i for i in todo}
            todo = []
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        crashes[i] += 1
                        if crashes[i] >= 2:
                            yield tasks[i], on_crash(tasks[i], "its worker process died twice (crash or out of memory)")
                        else:
                            todo.append(i)
                        continue
                    yield tasks[i], result
            self._pool.shutdown(wait=True)
            self._pool = None

    def close(self) -> None:
        """Stop the pool, cancelling tasks that have not started."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class RayEngine:
    """Ray remote tasks on a cluster (``address``, ``$RAY_ADDRESS``) or a local Ray instance of ``workers`` CPUs."""

    def __init__(self, workers: int, address: str | None = None, quiet: bool = False) -> None:
        try:
            import ray
        except ImportError:
            raise InputError("the ray engine needs Ray; install it with: pip install 'lift3d[ray]'") from None
        self._ray = ray
        self._started = False
        if ray.is_initialized():
            return
        env = {k: v for k, v in os.environ.items() if k.startswith("LIFT3D_")}
        kwargs: dict[str, Any] = dict(logging_level=logging.ERROR, log_to_driver=not quiet,
                                      runtime_env={"env_vars": env} if env else None)
        address = address or os.environ.get("RAY_ADDRESS") or None
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, **kwargs)
        except ConnectionError as exc:
            raise InputError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
        self._started = True

    def run(self, fn: Callable[[T], R], tasks: Sequence[T],
            on_crash: Callable[[T, str], R]) -> Iterator[tuple[T, R]]:
        """Yield ``(task, fn(task))`` as Ray tasks finish; a task whose worker died yields ``on_crash``."""
        ray = self._ray
        remote = ray.remote(num_cpus=1, max_retries=1)(fn)
        pending = {remote.remote(task): task for task in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                task = pending.pop(ref)
                try:
                    yield task, ray.get(ref)
                except (ray.exceptions.RayError, OSError) as exc:
                    yield task, on_crash(task, f"its Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")

    def close(self) -> None:
        """Shut Ray down if this engine started it (a cluster joined by address keeps running)."""
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_engine(engine: str, workers: int, ray_address: str | None = None, quiet: bool = False,
                preload: tuple[str, ...] = ()) -> Engine:
    """The engine called ``engine`` (``local`` or ``ray``) with ``workers`` parallel workers.

    ``preload``: modules each local worker imports at start-up.
    """
    if engine == "local":
        return LocalEngine(workers, preload)
    if engine == "ray":
        return RayEngine(workers, ray_address, quiet=quiet)
    raise InputError(f"unknown engine {engine!r}; choose local or ray")
