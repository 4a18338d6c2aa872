"""lift3d.jobs: the Kit-free job queue and the drop-to-jobs planning (no Kit stand-ins needed)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lift3d.api import ReconstructRequest, ReconstructResult
from lift3d.errors import Cancelled, InputError
from lift3d.jobs import JobPlan, JobQueue, JobState, plan_jobs

WAIT = 30.0  # generous upper bound for thread hand-offs on a loaded machine (never reached normally)


class StepRunner:
    """A stand-in reconstruction: ``steps`` optimisation steps, each checking the cancel token.

    Each step waits on ``gate`` (when given) so a test can hold the job mid-run.
    """

    def __init__(self, steps: int = 5, gate: threading.Semaphore | None = None) -> None:
        self.steps = steps
        self.gate = gate
        self.done_steps: dict[str, int] = {}
        self.threads: set[int] = set()
        self.running = 0
        self.max_running = 0
        self.order: list[str] = []
        self.started = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, request: ReconstructRequest, progress=None, cancel=None, settings=None) -> ReconstructResult:
        name = request.name or "x"
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.threads.add(threading.get_ident())
            self.order.append(name)
        self.started.set()
        try:
            for step in range(self.steps):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                if self.gate is not None:
                    assert self.gate.acquire(timeout=WAIT)
                self.done_steps[name] = step + 1
                if progress is not None:
                    progress("shape", (step + 1) / self.steps)
            return ReconstructResult(name=name, asset_path=Path(f"{name}/{name}.usda"),
                                     metrics={"input_view_iou": 0.9})
        finally:
            with self._lock:
                self.running -= 1


def _request(name: str) -> ReconstructRequest:
    return ReconstructRequest(images=[Path(f"{name}.png")], name=name)


def _drain_until(q: JobQueue, job_id: int, events: list | None = None) -> None:
    q.wait(job_id, timeout=WAIT)
    got = q.drain()
    if events is not None:
        events.extend(got)


def test_jobs_run_one_at_a_time_in_order_off_the_calling_thread():
    runner = StepRunner(steps=3)
    seen: list[tuple[int, JobState, int]] = []
    q = JobQueue(runner=runner, on_event=lambda job, ev: seen.append((job.id, ev.state, threading.get_ident())))
    try:
        jobs = [q.submit(_request(n)) for n in ("a", "b", "c")]
        assert all(job.state is JobState.QUEUED for job in jobs)
        for job in jobs:
            q.wait(job.id, timeout=WAIT)
        q.drain()
    finally:
        q.shutdown()
    assert runner.max_running == 1, "two jobs ran at the same time"
    assert runner.order == ["a", "b", "c"]
    assert threading.get_ident() not in runner.threads, "the reconstruction ran on the calling (UI) thread"
    # Every event reached the listener on the draining (main) thread, and each job finished.
    assert {tid for _, _, tid in seen} == {threading.get_ident()}
    assert [job.state for job in jobs] == [JobState.DONE] * 3
    assert jobs[1].result is not None and jobs[1].result.name == "b"
    finals = [(job_id, state) for job_id, state, _ in seen if state is JobState.DONE]
    assert finals == [(jobs[0].id, JobState.DONE), (jobs[1].id, JobState.DONE), (jobs[2].id, JobState.DONE)]


def test_progress_is_forwarded_and_coalesced():
    gate = threading.Semaphore(0)
    runner = StepRunner(steps=4, gate=gate)
    q = JobQueue(runner=runner)
    try:
        job = q.submit(_request("p"))
        assert runner.started.wait(WAIT)
        for _ in range(4):
            gate.release()
        q.wait(job.id, timeout=WAIT)
        events = q.drain()
    finally:
        q.shutdown()
    states = [e.state for e in events]
    # "starting" and the four progress steps were coalesced into one RUNNING event before DONE.
    assert states == [JobState.RUNNING, JobState.DONE]
    assert events[0].stage == "shape" and events[0].fraction == pytest.approx(1.0)
    assert job.state is JobState.DONE and job.fraction == 1.0


def test_progress_is_visible_mid_run():
    gate = threading.Semaphore(0)
    runner = StepRunner(steps=4, gate=gate)
    q = JobQueue(runner=runner)
    try:
        job = q.submit(_request("m"))
        assert runner.started.wait(WAIT)
        gate.release()
        gate.release()
        deadline = threading.Event()
        for _ in range(3000):  # poll as a UI loop would, until two steps were reported
            q.drain()
            if job.fraction >= 0.5:
                break
            deadline.wait(0.01)
        assert job.state is JobState.RUNNING and job.stage == "shape" and job.fraction == pytest.approx(0.5)
        gate.release()
        gate.release()
        _drain_until(q, job.id)
    finally:
        q.shutdown()
    assert job.state is JobState.DONE


def test_cancel_stops_a_running_job_within_one_step():
    gate = threading.Semaphore(0)
    runner = StepRunner(steps=50, gate=gate)
    q = JobQueue(runner=runner)
    try:
        job = q.submit(_request("c"))
        assert runner.started.wait(WAIT)
        gate.release()
        gate.release()  # two steps may complete
        assert q.cancel(job.id)
        gate.release()  # lets a step that was already past its check finish
        _drain_until(q, job.id)
    finally:
        q.shutdown()
    assert job.state is JobState.CANCELLED
    assert runner.done_steps.get("c", 0) <= 3, "the job went on after it was cancelled"
    assert job.result is None
    assert not q.cancel(job.id), "a finished job cannot be cancelled again"


def test_cancelled_queued_job_never_starts():
    gate = threading.Semaphore(0)
    runner = StepRunner(steps=1, gate=gate)
    q = JobQueue(runner=runner)
    try:
        first = q.submit(_request("first"))
        second = q.submit(_request("second"))
        assert runner.started.wait(WAIT)
        assert q.cancel(second.id)
        gate.release()
        q.wait(first.id, timeout=WAIT)
        q.wait(second.id, timeout=WAIT)
        q.drain()
    finally:
        q.shutdown()
    assert first.state is JobState.DONE
    assert second.state is JobState.CANCELLED
    assert runner.order == ["first"]


def test_follow_up_runs_on_the_worker_before_done_and_its_value_comes_with_done():
    runner = StepRunner(steps=2)
    calls: list[tuple[str, int, int]] = []

    def follow_up(request, result):
        calls.append((result.name, threading.get_ident(), runner.running))
        return f"sheet of {result.name}"

    q = JobQueue(runner=runner, follow_up=follow_up)
    try:
        jobs = [q.submit(_request(n)) for n in ("a", "b")]
        events: list = []
        for job in jobs:
            _drain_until(q, job.id, events)
    finally:
        q.shutdown()
    assert [name for name, _, _ in calls] == ["a", "b"]
    assert {tid for _, tid, _ in calls} == runner.threads, "on the job worker"
    assert all(running == 0 for _, _, running in calls), "never beside a reconstruction"
    done = [e for e in events if e.state is JobState.DONE]
    assert [e.follow_up for e in done] == ["sheet of a", "sheet of b"]
    assert [job.follow_up for job in jobs] == ["sheet of a", "sheet of b"]
    assert any(e.state is JobState.RUNNING and e.stage == "preview" for e in events)


def test_a_failing_follow_up_leaves_the_job_done():
    def follow_up(request, result):
        raise ValueError("cannot draw")

    q = JobQueue(runner=StepRunner(steps=1), follow_up=follow_up)
    try:
        job = q.submit(_request("f"))
        _drain_until(q, job.id)
    finally:
        q.shutdown()
    assert job.state is JobState.DONE and job.result.name == "f" and job.error is None
    assert job.follow_up is None and job.follow_up_error == "ValueError: cannot draw"


def test_no_follow_up_for_a_failed_or_cancelled_job():
    calls = []

    def runner(request, progress=None, cancel=None, settings=None):
        raise InputError("bad photo")

    q = JobQueue(runner=runner, follow_up=lambda request, result: calls.append(result))
    try:
        job = q.submit(_request("x"))
        _drain_until(q, job.id)
    finally:
        q.shutdown()
    assert job.state is JobState.FAILED and calls == []


@pytest.mark.parametrize("exc, user_error, text", [
    (InputError("photo.png is not a readable image"), True, "photo.png is not a readable image"),
    (ZeroDivisionError("division by zero"), False, "ZeroDivisionError: division by zero"),
])
def test_errors_become_failed_events_with_one_line(exc, user_error, text):
    def runner(request, progress=None, cancel=None, settings=None):
        raise exc

    q = JobQueue(runner=runner)
    try:
        job = q.submit(_request("e"))
        events: list = []
        _drain_until(q, job.id, events)
    finally:
        q.shutdown()
    assert job.state is JobState.FAILED and job.error == text
    assert events[-1].user_error is user_error


def test_settings_reach_the_runner():
    seen = []

    def runner(request, progress=None, cancel=None, settings=None):
        seen.append(settings)
        return ReconstructResult(name="s", asset_path=Path("s/s.usda"))

    marker = object()
    q = JobQueue(runner=runner)
    try:
        job = q.submit(_request("s"), settings=marker)
        _drain_until(q, job.id)
    finally:
        q.shutdown()
    assert seen == [marker] and job.settings is marker and job.state is JobState.DONE


def test_runner_raising_cancelled_is_reported_as_cancelled():
    def runner(request, progress=None, cancel=None, settings=None):
        raise Cancelled("reconstruction cancelled")

    q = JobQueue(runner=runner)
    try:
        job = q.submit(_request("k"))
        _drain_until(q, job.id)
    finally:
        q.shutdown()
    assert job.state is JobState.CANCELLED


def test_shutdown_cancels_unfinished_jobs_and_refuses_new_ones():
    gate = threading.Semaphore(0)
    runner = StepRunner(steps=100, gate=gate)
    q = JobQueue(runner=runner)
    job = q.submit(_request("s"))
    assert runner.started.wait(WAIT)
    gate.release()
    releaser = threading.Timer(0.05, lambda: [gate.release() for _ in range(5)])
    releaser.start()
    q.shutdown(wait=True)
    releaser.join()
    q.drain()
    assert job.state is JobState.CANCELLED
    with pytest.raises(RuntimeError):
        q.submit(_request("late"))


# -- plan_jobs ---------------------------------------------------------------------------------


def _touch(folder: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        path = folder / name
        path.write_bytes(b"x")
        out.append(path)
    return out


def test_plan_images_alone_make_one_job_each(tmp_path):
    a, b = _touch(tmp_path, "a.png", "b.JPG")
    assert plan_jobs([a, b, a]) == [JobPlan(images=[a]), JobPlan(images=[b])]


def test_plan_images_with_transforms_make_one_multiview_job(tmp_path):
    a, b, views = _touch(tmp_path, "r_0.png", "r_1.webp", "transforms.json")
    assert plan_jobs([views, a, b]) == [JobPlan(images=[a, b], views=views)]


@pytest.mark.parametrize("names, message", [
    (["notes.txt"], "notes.txt is not a PNG, JPEG or WebP image"),
    (["a.png", "notes.txt"], "notes.txt is not"),
    (["transforms.json"], "needs the images"),
    ([], "no image was given"),
])
def test_plan_refuses_unusable_drops(tmp_path, names, message):
    paths = _touch(tmp_path, *names)
    with pytest.raises(InputError, match=message):
        plan_jobs(paths)


def test_plan_refuses_two_transforms_and_missing_files(tmp_path):
    (tmp_path / "x").mkdir()
    a, v1 = _touch(tmp_path, "a.png", "transforms.json")
    v2 = _touch(tmp_path / "x", "transforms.json")[0]
    with pytest.raises(InputError, match="several transforms.json"):
        plan_jobs([a, v1, v2])
    with pytest.raises(InputError, match="does not exist"):
        plan_jobs([tmp_path / "missing.png"])
