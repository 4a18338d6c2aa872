"""The Ray engine: remote tasks on a local Ray instance, and the same batch as test_batch through Ray."""

from __future__ import annotations

import json

import pytest

import statistics

from test_batch import check_first_run, make_batch_folder, tiny_settings  # noqa: F401

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'lift3d[ray]')")

from lift3d.batch_engines import RayEngine  # noqa: E402
from lift3d.cli import main  # noqa: E402


@pytest.fixture
def no_ray_cluster(monkeypatch):
    """Make sure each test starts (and stops) its own local Ray instance."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


def test_ray_engine_runs_tasks_and_reports_failures(no_ray_cluster):
    engine = RayEngine(workers=2, quiet=True)
    try:
        assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2
        # A pure-Python library function, because Ray workers import task functions by module name.
        tasks = [(1.0, 3.0), (2.0,), (4.0, 5.0, 6.0)]
        assert dict(engine.run(statistics.fmean, tasks, lambda t, r: -1.0)) == {(1.0, 3.0): 2.0, (2.0,): 2.0,
                                                                               (4.0, 5.0, 6.0): 5.0}
        reasons: dict[tuple, str] = {}

        def on_crash(task: tuple, reason: str) -> float:
            reasons[task] = reason
            return -1.0

        # An exception escaping the task function is a Ray task error; the other tasks still finish.
        results = dict(engine.run(statistics.fmean, [(1.0,), (), (3.0,)], on_crash))
        assert results == {(1.0,): 1.0, (): -1.0, (3.0,): 3.0}
        assert list(reasons) == [()] and "Ray task failed" in reasons[()] and "StatisticsError" in reasons[()]
    finally:
        engine.close()
    assert not ray.is_initialized(), "an engine that started Ray must stop it"


def test_batch_with_ray_engine(tmp_path, tiny_settings, no_ray_cluster, capsys):
    stage = tmp_path / "team" / "shared.usda"
    folder = make_batch_folder(tmp_path / "team" / "images")
    args = ["batch", str(folder), "--stage", str(stage), "--engine", "ray", "--workers", "2", "--preset", "fast",
            "--writer", "tester", "--json"]
    assert main(args) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"] == "ray"
    check_first_run(summary, stage)
    assert main(args) == 1  # the re-run through Ray is all skipped / not retried
    again = json.loads(capsys.readouterr().out)
    assert (again["ok"], again["skipped"], again["failed"]) == (0, 2, 2)
