"""Where batch reconstructions run: a local process pool, or Ray tasks on a cluster.

Both engines run the same picklable task function (``lift3d.batch.reconstruct_one``)
and yield its outcomes in completion order; the driver alone touches the stage.

* :class:`LocalEngine`: ``concurrent.futures.ProcessPoolExecutor`` with the
  ``spawn`` start method (torch and Warp hold threads and device state that do
  not survive ``fork``). Each worker limits its BLAS/OpenMP threads to its share
  of the CPU cores. If a worker process dies (segfault, OOM kill), the tasks
  that were running are retried one at a time and the others go on in a fresh
  pool, so only the task that kills a worker on its own fails. Worker stdout
  goes to stderr. Workers never outlive their driver: on Linux the kernel
  kills them when it dies (``prctl(PR_SET_PDEATHSIG)``), and everywhere a
  watcher thread ends them once the driver's end of the parent pipe closes
  (``multiprocessing.parent_process().sentinel``), so a ``kill -9`` of
  ``lift3d batch`` leaves no worker (and then no resource tracker) behind.
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
import signal
import sys
import threading
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


_started: Any = None
"""In a local worker process: the pool's queue of started task indices (set by :func:`_init_worker`)."""


def _init_worker(threads: int, preload: tuple[str, ...], started: Any) -> None:
    """Process-pool initializer: quiet stdout, capped threads, heavy modules loaded before the first task.

    Ctrl-C ends the worker at once instead of letting it start queued tasks.
    The worker's stdout (fd 1) is pointed at stderr, so library chatter never
    mixes with the driver's ``--json`` output. OpenMP/BLAS threads are capped
    (unless the user set them) before torch is imported. Modules in
    ``preload`` are imported now so a task's time is its own work; an import
    error is left for the task to report with its reason.
    """
    global _started
    _started = started
    exit_with_parent()
    signal.signal(signal.SIGINT, _exit_on_interrupt)
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


PARENT_DIED_STATUS = 125
"""Exit status of a worker that ended because its driver died."""


def exit_with_parent() -> None:
    """In a spawned worker: end this process as soon as the process that started it dies.

    Two mechanisms: Linux's parent-death signal (SIGKILL, delivered by the
    kernel even while the worker is deep in native code), and on every
    platform a daemon thread waiting on the parent's sentinel (the pipe that
    ``multiprocessing`` keeps open to the parent), which calls ``os._exit``.
    A no-op in a process that was not started by ``multiprocessing``.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_wait_for_parent, args=(parent.sentinel,), name="lift3d-parent-watch",
                     daemon=True).start()


def _wait_for_parent(sentinel: int) -> None:
    from multiprocessing.connection import wait as wait_ready

    wait_ready([sentinel])  # readable (EOF) once the parent has exited, however it died
    os._exit(PARENT_DIED_STATUS)


def _exit_on_interrupt(signum: int, frame: Any) -> None:
    """A worker stops at once on Ctrl-C (the driver, interrupted too, writes nothing more)."""
    os._exit(128 + signum)


def _tracked(fn: Callable[[T], R], index: int, task: T) -> R:
    """Run in a worker: announce that task ``index`` started, then run it."""
    _started.put(index)
    return fn(task)


class LocalEngine:
    """A pool of ``workers`` spawned processes on this machine.

    When a worker process dies, the pool breaks and every unfinished task
    fails with it. Workers announce each task they start, so the driver knows
    which tasks were running: tasks not yet started go to a fresh pool as
    usual, and the running ones are tried again one at a time, so only the
    task that kills its worker on its own is reported as crashed.
    """

    def __init__(self, workers: int, preload: tuple[str, ...] = ()) -> None:
        self.workers = workers
        self.threads = max(1, (os.cpu_count() or 1) // workers)
        self.preload = preload
        self._ctx = multiprocessing.get_context("spawn")
        self._pool: ProcessPoolExecutor | None = None
        self._queue: Any = None

    def _open_pool(self, workers: int) -> ProcessPoolExecutor:
        self._finish()
        self._queue = self._ctx.SimpleQueue()
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=self._ctx, initializer=_init_worker,
                                         initargs=(self.threads, self.preload, self._queue))
        return self._pool

    def _drain(self, started: set[int]) -> None:
        """Move start announcements from the queue into ``started`` (keeps the pipe from filling up)."""
        while not self._queue.empty():
            started.add(self._queue.get())

    def run(self, fn: Callable[[T], R], tasks: Sequence[T],
            on_crash: Callable[[T, str], R]) -> Iterator[tuple[T, R]]:
        """Yield ``(task, fn(task))`` as tasks finish; ``on_crash(task, reason)`` stands in for a task whose worker died."""
        crash_reason = "its worker process died while reconstructing it (crash or out of memory)"
        todo = list(range(len(tasks)))
        suspects: list[int] = []
        while todo:
            pool = self._open_pool(self.workers)
            pending: dict[Future, int] = {pool.submit(_tracked, fn, i, tasks[i]): i for i in todo}
            submitted, started, finished = set(todo), set(), set()
            broken = False
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                self._drain(started)
                for future in done:
                    i = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    finished.add(i)
                    yield tasks[i], result
            todo = []
            if broken:
                self._drain(started)
                running = sorted(started - finished)
                if len(running) == 1:
                    yield tasks[running[0]], on_crash(tasks[running[0]], crash_reason)
                else:
                    suspects += running
                todo = sorted(submitted - finished - set(running))
        alone: ProcessPoolExecutor | None = None
        for i in suspects:
            alone = alone or self._open_pool(1)
            try:
                result = alone.submit(_tracked, fn, i, tasks[i]).result()
            except BrokenProcessPool:
                result = on_crash(tasks[i], crash_reason)
                alone = None
            yield tasks[i], result
        self._finish()

    def _finish(self) -> None:
        """Shut the pool down once its work is done (or it broke)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def close(self) -> None:
        """Stop at once: cancel tasks not started and terminate workers still running one (after an interrupt)."""
        if self._pool is not None:
            processes = getattr(self._pool, "_processes", None) or {}
            for process in list(processes.values()):
                process.terminate()
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
