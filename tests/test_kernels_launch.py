"""The kernel launcher: defaults set by the application, a cached thread count, private accumulators reduced in a
kernel, Warp initialised quietly and a kernel cache per Warp version."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import warp as wp

import lift3d.kernels as kernels_pkg
from lift3d.kernels import launch

KERNELS_DIR = Path(kernels_pkg.__file__).resolve().parent


@pytest.fixture
def restore_configuration():
    saved = launch.configuration()
    yield
    launch.configure(device=saved[0], threads=saved[1])


def test_no_kernel_module_imports_the_settings():
    for path in sorted(KERNELS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            assert not any(n.startswith("lift3d.settings") or n.startswith("lift3d.api") for n in names), path.name


def test_configure_sets_the_defaults(restore_configuration):
    launch.configure(threads=3, device="cpu")
    assert launch.configuration() == ("cpu", 3)
    assert launch.thread_count() == 3
    assert launch.thread_count(5) == 5  # an explicit count wins
    assert launch.default_device().is_cpu
    launch.configure(threads=0)
    assert launch.thread_count() == launch.available_cores()
    launch.configure(device="auto")
    assert launch.default_device().is_cuda == (wp.get_cuda_device_count() > 0)
    with pytest.raises(ValueError):
        launch.configure(device="tpu")
    with pytest.raises(ValueError):
        launch.configure(threads=-1)
    assert launch.configuration() == ("auto", 0)


def test_thread_count_is_resolved_once(restore_configuration, monkeypatch):
    calls = []

    def cores(pid):
        calls.append(pid)
        return {0, 1, 2}

    monkeypatch.setattr(launch.os, "sched_getaffinity", cores, raising=False)
    launch.configure(threads=0)  # forget the cached count
    assert [launch.thread_count() for _ in range(100)] == [3] * 100
    assert len(calls) == 1
    bins = wp.zeros(4, dtype=wp.float32, device="cpu")
    from kernel_fixtures import scatter_count

    vals = wp.array(np.arange(1000, dtype=np.float32), device="cpu")
    for _ in range(5):
        launch.parallel_launch(scatter_count, 1000, [vals, bins, wp.zeros(1000, dtype=wp.float32, device="cpu")],
                               "cpu", private=(1,))
    assert len(calls) == 1


@wp.kernel
def _scatter_vec(start: int, idx: wp.array(dtype=int), out: wp.array(dtype=wp.vec3)):
    i = start + wp.tid()
    wp.atomic_add(out, idx[i], wp.vec3(1.0, 2.0, float(i % 3)))


@wp.kernel
def _scatter_strided(start: int, idx: wp.array(dtype=int), out: wp.array2d(dtype=wp.float32)):
    i = start + wp.tid()
    wp.atomic_add(out, idx[i], 1, 1.0)


def test_private_vector_accumulators_reduce_in_a_kernel():
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 50, 20_000).astype(np.int32)
    expected = np.zeros((50, 3), np.float64)
    np.add.at(expected, idx, np.stack([np.ones(len(idx)), 2 * np.ones(len(idx)), np.arange(len(idx)) % 3], 1))
    results = []
    for threads in (1, 2, 3, 3):
        out = wp.full(50, wp.vec3(0.5, 0.5, 0.5), dtype=wp.vec3, device="cpu")
        launch.parallel_launch(_scatter_vec, len(idx), [wp.array(idx, device="cpu"), out], "cpu", threads,
                               private=(1,))
        got = out.numpy()
        np.testing.assert_allclose(got, expected + 0.5, rtol=1e-6)
        results.append(got)
    np.testing.assert_array_equal(results[2], results[3])  # deterministic for one chunk count


def test_non_contiguous_private_arrays_still_reduce():
    idx = np.arange(10_000, dtype=np.int32) % 7
    base = wp.zeros((7, 4), dtype=wp.float32, device="cpu")
    column_view = base[:, 1:3]  # not contiguous: summed through the numpy path
    assert not column_view.is_contiguous
    launch.parallel_launch(_scatter_strided, len(idx), [wp.array(idx, device="cpu"), column_view], "cpu", 3,
                           private=(1,))
    got = base.numpy()
    np.testing.assert_array_equal(got[:, 2], np.bincount(idx, minlength=7))
    assert not got[:, [0, 1, 3]].any()


def test_cache_folder_is_per_warp_version(tmp_path):
    wp.init()
    assert os.path.basename(os.path.normpath(wp.config.kernel_cache_dir)) == wp.config.version
    old = kernels_pkg.versioned_cache_dir("1.9.0", None, str(tmp_path))
    assert old == os.path.join(os.path.realpath(tmp_path), "1.9.0")
    assert kernels_pkg.versioned_cache_dir("1.19.0", None, str(tmp_path)) is None  # Warp adds it itself
    assert kernels_pkg.versioned_cache_dir("1.9.0", "/host/cache", str(tmp_path)) is None  # the host's choice
    assert kernels_pkg.versioned_cache_dir("1.9.0", None, None) is None  # Warp's default is per version


@pytest.mark.skipif(kernels_pkg.cuda_driver_present(), reason="the warning only appears without a CUDA driver")
def test_no_cuda_driver_warning_without_a_driver():
    env = {k: v for k, v in os.environ.items() if k != "LIFT3D_WARP_VERBOSE"}
    code = "import lift3d.kernels.launch as l; l.default_device('auto'); print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "CUDA" not in proc.stderr and proc.stdout.strip() == "ok"
