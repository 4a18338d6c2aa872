"""``lift3d warmup`` leaves nothing to compile: a reconstruction in a fresh process loads only warmed modules."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "exts" / "lift3d.reconstruct" / "data" / "samples" / "sedan_photo.png"

# Every code path that launches kernels: the camera search, the shape fit, wheels, the texture bake and the
# photometric refinement (the `best` preset's extra step) of a single car photo, and a generic object.
PRESET = """
[presets.probe]
levels = [32]
steps = [3]
camera_yaw_steps = 4
camera_pitch_steps = 1
camera_hypotheses = 1
camera_refine_steps = 2
texture_size = 64
photometric_steps = 2
sigma = 1.0
"""

# Runs reconstructions in a fresh interpreter, then reports every kernel module hash loaded and whether any new
# file appeared in Warp's kernel cache (a compile).
WORKLOAD = """
import json, os, sys
from pathlib import Path
from lift3d.api import ReconstructRequest, reconstruct
import warp as wp
from lift3d.warmup import _cache_files

sample, config, out = sys.argv[1:4]
wp.init()
before = _cache_files()
for category in ("car", "generic"):
    reconstruct(ReconstructRequest(images=[sample], category=category, preset="probe", out_dir=out, config=config,
                                   name=category))
loaded = []
for name, module in sorted(sys.modules.items()):
    if name.startswith("lift3d.kernels."):
        for exec_ in wp.get_module(name).execs.values():
            loaded.append([name.rsplit(".", 1)[1], exec_.module_hash.hex()[:16]])
print("WORKLOAD" + json.dumps({"loaded": loaded, "new_files": sorted(_cache_files() - before)}))
"""


def test_after_warmup_a_reconstruction_compiles_nothing(tmp_path):
    config = tmp_path / "probe.toml"
    config.write_text(PRESET + '\n[runtime]\ndevice = "cpu"\n')
    warm = subprocess.run([sys.executable, "-m", "lift3d.cli", "warmup", "--json", "--config", str(config)],
                          capture_output=True, text=True, timeout=1200)
    assert warm.returncode == 0, warm.stderr
    warmed = {(d["module"], d["hash"]) for d in map(json.loads, warm.stdout.splitlines()) if d["device"] == "cpu"}
    assert {m for m, _ in warmed} >= {"raster", "soft_silhouette", "bake", "texture", "interpolate", "mesh_ops"}

    run = subprocess.run([sys.executable, "-c", WORKLOAD, str(SAMPLE), str(config), str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=1200)
    line = [x for x in run.stdout.splitlines() if x.startswith("WORKLOAD")]
    assert run.returncode == 0 and line, run.stderr[-3000:]
    report = json.loads(line[-1][len("WORKLOAD"):])
    loaded = {tuple(x) for x in report["loaded"]}
    assert loaded, "the workload launched no kernel"
    assert loaded <= warmed, f"modules loaded but not warmed: {sorted(loaded - warmed)}"
    assert report["new_files"] == [], "the reconstruction compiled a kernel module"


def test_warmup_in_background_reports_on_its_thread():
    from lift3d.warmup import KERNEL_MODULES, warmup_in_background

    done = threading.Event()
    seen = {}

    def finished(loads, error):
        seen.update(loads=loads, error=error, thread=threading.current_thread().name)
        done.set()

    thread = warmup_in_background("cpu", finished)
    assert thread.daemon
    assert done.wait(600)
    assert seen["error"] is None and seen["thread"] == "lift3d-warmup"
    assert [load.module for load in seen["loads"]] == list(KERNEL_MODULES)


def test_warmup_reports_a_failure_instead_of_raising(monkeypatch):
    import lift3d.warmup as warmup_module

    def broken(device=None, progress=None):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(warmup_module, "warmup", broken)
    done = threading.Event()
    seen = {}
    warmup_module.warmup_in_background(None, lambda loads, error: (seen.update(loads=loads, error=error),
                                                                    done.set()))
    assert done.wait(60)
    assert seen["loads"] is None and isinstance(seen["error"], RuntimeError)


@pytest.mark.parametrize("device", ["tpu"])
def test_warmup_command_refuses_an_unknown_device(device):
    from lift3d.cli import main

    assert main(["warmup", "--device", device]) == 2
