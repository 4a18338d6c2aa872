"""Reconstruction jobs off the UI thread, for the Kit extension and any other UI (Kit-free).

A :class:`JobQueue` runs :func:`lift3d.api.reconstruct` on a single worker
thread, so two jobs queue rather than compete for the CPU/GPU and for the
output folder. The worker never calls back into the UI: it posts
:class:`JobEvent` objects to a thread-safe queue, and the UI calls
:meth:`JobQueue.drain` from its main loop (Kit: the app's update event), which
updates each :class:`Job` and hands the events to the listener there, on the
main thread. USD and widgets are therefore touched only on the main loop.

An optional *follow-up* (``JobQueue(follow_up=...)``) is more work on a
finished reconstruction, e.g. drawing its preview. The worker runs it after the
reconstruction and before posting ``DONE``, so it never competes with another
reconstruction and it reads the new asset before the UI adds it to a stage
(a stage holding the asset's layers must only change on the main loop). Its
value, or its error, travels with the ``DONE`` event; a failed follow-up never
changes the job's outcome.

Cancellation is cooperative: :meth:`JobQueue.cancel` sets the job's
:class:`~lift3d.api.CancelToken`; a queued job then never starts and a running
one stops at its next check (between optimisation steps) with
:class:`~lift3d.errors.Cancelled`, writing nothing.

:func:`plan_jobs` turns a set of dropped or picked files into job inputs: one
multi-view job when a ``transforms.json`` comes with the images, otherwise one
job per image.
"""

from __future__ import annotations

import enum
import itertools
import logging
import queue
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import CancelToken, ReconstructRequest, ReconstructResult
from .errors import Cancelled, InputError

_log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
"""File suffixes (lower case) accepted as input photographs."""

VIEWS_FILE_NAME = "transforms.json"
"""Name of the NeRF-style camera file that makes dropped images one multi-view job."""

Runner = Callable[..., ReconstructResult]
"""``runner(request, progress=..., cancel=..., settings=...) -> ReconstructResult``, like :func:`lift3d.api.reconstruct`."""

FollowUp = Callable[[ReconstructRequest, ReconstructResult], Any]
"""``follow_up(request, result) -> value``: more work on the worker for a finished reconstruction (e.g. its preview)."""

FOLLOW_UP_STAGE = "preview"
"""The stage name of the progress event posted while the follow-up runs."""


class JobState(enum.Enum):
    """Life cycle of a job, as seen on the main loop."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass
class JobEvent:
    """One message from the worker to the main loop.

    Attributes:
        job_id: the job it is about.
        state: the job's new state (``RUNNING`` also for progress updates).
        stage: the pipeline stage name (``load``, ``camera``, ``shape``, ...) or ``""``.
        fraction: overall fraction done in [0, 1].
        result: the reconstruction's result, for ``DONE``.
        error: one-sentence message for ``FAILED`` (the text the CLI prints after
            ``lift3d: error:`` for bad input; ``TypeName: message`` for a bug).
        user_error: ``True`` when ``error`` is the user's fault (an :class:`InputError`).
        follow_up: for ``DONE``, what the queue's follow-up returned (``None`` without one).
        follow_up_error: for ``DONE``, why the follow-up failed (``TypeName: message``); the job is done all the same.
    """

    job_id: int
    state: JobState
    stage: str = ""
    fraction: float = 0.0
    result: ReconstructResult | None = None
    error: str | None = None
    user_error: bool = False
    follow_up: Any = None
    follow_up_error: str | None = None


@dataclass
class Job:
    """A reconstruction job; its fields are updated on the main loop by :meth:`JobQueue.drain`.

    Attributes:
        id: unique, increasing.
        request: what to reconstruct.
        token: cancels it.
        context: opaque data of the submitter (e.g. which USD context receives the asset).
        settings: a :class:`lift3d.settings.Settings` for this job, or ``None`` for the defaults.
        state, stage, fraction, result, error, follow_up, follow_up_error: the latest drained status.
    """

    id: int
    request: ReconstructRequest
    token: CancelToken = field(default_factory=CancelToken)
    context: dict = field(default_factory=dict)
    settings: Any = None
    state: JobState = JobState.QUEUED
    stage: str = ""
    fraction: float = 0.0
    result: ReconstructResult | None = None
    error: str | None = None
    follow_up: Any = None
    follow_up_error: str | None = None


def _default_runner(request: ReconstructRequest, progress=None, cancel=None, settings=None) -> ReconstructResult:
    # Looked up at call time so the heavy pipeline is imported on the worker, not at startup.
    from . import api

    return api.reconstruct(request, progress=progress, cancel=cancel, settings=settings)


class JobQueue:
    """Runs reconstruction jobs one at a time on a worker thread; events are drained on the main loop.

    Args:
        runner: the reconstruction function (default :func:`lift3d.api.reconstruct`).
        on_event: called on the main loop by :meth:`drain` with each ``(job, event)``.
        follow_up: run on the worker after each successful reconstruction (see the module docstring).
    """

    def __init__(self, runner: Runner | None = None,
                 on_event: Callable[[Job, JobEvent], None] | None = None,
                 follow_up: FollowUp | None = None) -> None:
        self._runner = runner or _default_runner
        self._on_event = on_event
        self._follow_up = follow_up
        self._events: queue.SimpleQueue[JobEvent] = queue.SimpleQueue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lift3d-job")
        self._jobs: dict[int, Job] = {}
        self._futures: dict[int, Future] = {}
        self._ids = itertools.count(1)
        self._closed = False

    # -- main loop side -------------------------------------------------------------------------

    def submit(self, request: ReconstructRequest, context: dict | None = None, settings: Any = None) -> Job:
        """Queue ``request`` (run with ``settings``, default: loaded from ``request.config``); returns its Job."""
        if self._closed:
            raise RuntimeError("the job queue is shut down")
        job = Job(id=next(self._ids), request=request, context=dict(context or {}), settings=settings)
        self._jobs[job.id] = job
        self._futures[job.id] = self._executor.submit(self._work, job.id, request, job.token, settings)
        return job

    def cancel(self, job_id: int) -> bool:
        """Ask job ``job_id`` to stop; ``False`` if it is unknown or already finished."""
        job = self._jobs.get(job_id)
        if job is None or job.state.finished:
            return False
        job.token.cancel()
        return True

    def cancel_all(self) -> int:
        """Cancel every unfinished job; returns how many were asked to stop."""
        return sum(self.cancel(job_id) for job_id in list(self._jobs))

    def drain(self, max_events: int | None = None) -> list[JobEvent]:
        """Apply pending worker events to their jobs and pass them to ``on_event`` (main loop only).

        Consecutive progress events of a job are coalesced into the latest one, so a
        slow UI frame never replays hundreds of steps.
        """
        pending: list[JobEvent] = []
        while max_events is None or len(pending) < max_events:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if (pending and event.state is JobState.RUNNING and pending[-1].state is JobState.RUNNING
                    and pending[-1].job_id == event.job_id):
                pending[-1] = event
            else:
                pending.append(event)
        for event in pending:
            job = self._jobs.get(event.job_id)
            if job is None:
                continue
            job.state, job.stage, job.fraction = event.state, event.stage or job.stage, event.fraction
            job.result, job.error = event.result or job.result, event.error
            if event.state is JobState.DONE:
                job.follow_up, job.follow_up_error = event.follow_up, event.follow_up_error
            if self._on_event is not None:
                self._on_event(job, event)
        return pending

    @property
    def jobs(self) -> list[Job]:
        """Every job submitted, oldest first."""
        return list(self._jobs.values())

    def active(self) -> list[Job]:
        """Jobs not yet finished (as of the last drain), oldest first."""
        return [job for job in self._jobs.values() if not job.state.finished]

    def wait(self, job_id: int, timeout: float | None = None) -> None:
        """Block until job ``job_id``'s worker call returned (tests and scripts; not on a UI thread)."""
        future = self._futures.get(job_id)
        if future is not None:
            future.exception(timeout=timeout)

    def shutdown(self, cancel: bool = True, wait: bool = True) -> None:
        """Stop accepting jobs; cancel unfinished ones (default) and wait for the worker."""
        self._closed = True
        if cancel:
            for job in self._jobs.values():
                job.token.cancel()
        self._executor.shutdown(wait=wait, cancel_futures=False)

    # -- worker side ----------------------------------------------------------------------------

    def _post(self, event: JobEvent) -> None:
        self._events.put(event)

    def _work(self, job_id: int, request: ReconstructRequest, token: CancelToken, settings: Any) -> None:
        if token.cancelled:
            self._post(JobEvent(job_id, JobState.CANCELLED, error="cancelled before it started"))
            return
        self._post(JobEvent(job_id, JobState.RUNNING, stage="starting"))

        def progress(stage: str, fraction: float) -> None:
            self._post(JobEvent(job_id, JobState.RUNNING, stage=stage, fraction=min(1.0, max(0.0, fraction))))

        try:
            result = self._runner(request, progress=progress, cancel=token, settings=settings)
        except Cancelled as exc:
            self._post(JobEvent(job_id, JobState.CANCELLED, error=str(exc)))
        except InputError as exc:
            self._post(JobEvent(job_id, JobState.FAILED, error=str(exc), user_error=True))
        except Exception as exc:  # a bug: keep the traceback in the log, show one line in the UI
            _log.exception("lift3d job %d failed", job_id)
            self._post(JobEvent(job_id, JobState.FAILED, error=f"{type(exc).__name__}: {exc}"))
        else:
            value, error = self._run_follow_up(job_id, request, result, token)
            self._post(JobEvent(job_id, JobState.DONE, stage="done", fraction=1.0, result=result,
                                follow_up=value, follow_up_error=error))

    def _run_follow_up(self, job_id: int, request: ReconstructRequest, result: ReconstructResult,
                       token: CancelToken) -> tuple[Any, str | None]:
        """``(value, error)`` of the follow-up for a finished reconstruction.

        Skipped (``(None, None)``) without one, or once the job was cancelled: a reconstruction
        that finished stays done, but a queue shutting down draws nothing more.
        """
        if self._follow_up is None or token.cancelled:
            return None, None
        self._post(JobEvent(job_id, JobState.RUNNING, stage=FOLLOW_UP_STAGE, fraction=1.0))
        try:
            return self._follow_up(request, result), None
        except Exception as exc:  # never fails the job: one line for the UI, the traceback in the log
            _log.exception("follow-up of lift3d job %d failed", job_id)
            return None, f"{type(exc).__name__}: {exc}"


@dataclass
class JobPlan:
    """Inputs of one job derived from dropped or picked files.

    Attributes:
        images: the photographs (at least one).
        views: the ``transforms.json`` giving their cameras, or ``None`` (single image).
    """

    images: list[Path]
    views: Path | None = None


def is_image_path(path: str | Path) -> bool:
    """Whether ``path`` has a photograph suffix (PNG/JPEG/WebP)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_views_path(path: str | Path) -> bool:
    """Whether ``path`` is a NeRF-style ``transforms.json`` (by name)."""
    return Path(path).name.lower() == VIEWS_FILE_NAME


def plan_jobs(paths: Iterable[str | Path]) -> list[JobPlan]:
    """Group files dropped or picked together into jobs.

    Images plus exactly one ``transforms.json`` become one multi-view job;
    images alone become one job each, in the given order (duplicates dropped).

    Raises:
        InputError: nothing usable (no image among ``paths``), a file of another
            type, a missing file, several ``transforms.json`` files, or a
            ``transforms.json`` without images.
    """
    images: list[Path] = []
    views: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if is_views_path(path):
            target = views
        elif is_image_path(path):
            target = images
        else:
            raise InputError(f"{path.name} is not a PNG, JPEG or WebP image or a transforms.json")
        if not path.is_file():
            raise InputError(f"{path} does not exist or is not a file")
        if path not in target:
            target.append(path)
    if len(views) > 1:
        raise InputError("several transforms.json files were given; give one per multi-view reconstruction")
    if not images:
        if views:
            raise InputError("a transforms.json needs the images it describes; give them together")
        raise InputError("no image was given; give PNG, JPEG or WebP photographs")
    if views:
        return [JobPlan(images=images, views=views[0])]
    return [JobPlan(images=[image]) for image in images]
