"""repo.sh's environment step: no reinstall when the extras are installed, one warmup per install or kernel change.

The virtual environment is a stand-in: its ``python`` only logs how it was called.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sha256sum") is None,
                                reason="needs bash and sha256sum")


@pytest.fixture
def fake_venv(tmp_path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/usr/bin/env bash\necho "$*" >> "{venv}/calls.log"\n')
    python.chmod(0o755)
    return venv


def _run(venv: Path, verb: str = "build", **env) -> list[str]:
    log = venv / "calls.log"
    log.unlink(missing_ok=True)
    proc = subprocess.run(["bash", str(ROOT / "repo.sh"), verb], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LIFT3D_VENV": str(venv), **env})
    assert proc.returncode == 0, proc.stderr
    return log.read_text().splitlines() if log.exists() else []


def _pip(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("-m pip install -e")]


def _warmups(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("-m lift3d.cli warmup")]


def test_installs_once_then_only_for_new_extras(fake_venv):
    first = _run(fake_venv, "build")  # extras "test"
    assert len(_pip(first)) == 1 and len(_warmups(first)) == 1
    again = _run(fake_venv, "build")
    assert _pip(again) == [] and _warmups(again) == []  # complete environment: nothing reinstalled or recompiled


def test_a_subset_of_installed_extras_needs_no_install(fake_venv):
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    (fake_venv / ".lift3d-installed").write_text(f"{digest}\ntest,ray\n")
    calls = _run(fake_venv, "build", LIFT3D_SKIP_WARMUP="1")  # asks for "test" only
    assert _pip(calls) == [] and _warmups(calls) == []
    (fake_venv / ".lift3d-installed").write_text("0000000000000000\ntest,ray\n")  # pyproject.toml changed
    assert len(_pip(_run(fake_venv, "build", LIFT3D_SKIP_WARMUP="1"))) == 1
