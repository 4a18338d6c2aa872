"""End-to-end benchmark: one photo to an asset, as a user runs it (cold CLI process) and as an application does
(warm API call), per preset, with a per-stage breakdown.

Run with ``./repo.sh bench e2e`` or directly with the project's Python::

    python tools/bench_e2e.py                         # all presets, 3 repeats, written to docs/PERFORMANCE.md
    python tools/bench_e2e.py --presets fast --repeats 1 --no-write
    python tools/bench_e2e.py --init learned search   # once per camera initialisation (passes --init)

Measured, each ``--repeats`` times (minimum and median reported):

* ``lift3d --help`` and ``lift3d info ASSET`` in a fresh process;
* ``lift3d reconstruct PHOTO --preset P --json`` in a fresh process (wall time), broken down into the run's
  own stage timings (``--json``'s ``timings``) and the rest: interpreter start, imports and kernel loading;
* ``lift3d.api.reconstruct`` in one long-lived process after a first, untimed call (the warm API).

``--init`` is passed to ``lift3d reconstruct`` only when init modes are named on the command line. Run
``lift3d warmup`` (``./repo.sh`` does after installing) first, or the first cold run includes compiling.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report_blocks
from report_blocks import cpu_info

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "exts" / "lift3d.reconstruct" / "data" / "samples" / "sedan_photo.png"
DOC = ROOT / "exts" / "lift3d.reconstruct" / "docs" / "PERFORMANCE.md"
BEGIN, END = "<!-- bench-e2e:begin -->", "<!-- bench-e2e:end -->"
PRESETS = ("fast", "balanced", "best")

WARM_API = """
import json, sys, time
from lift3d.api import ReconstructRequest, reconstruct
image, preset, out, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
extra = json.loads(sys.argv[5])
def once(i):
    request = ReconstructRequest(images=[image], preset=preset, out_dir=out, name=f"warm_{i}", **extra)
    clock = time.perf_counter()
    result = reconstruct(request)
    return time.perf_counter() - clock, result.timings
once(-1)  # imports, kernel loading, first-call caches
print("BENCH" + json.dumps([once(i) for i in range(repeats)]))
"""


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "lift3d.cli", *args]


def timed(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    clock = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    return time.perf_counter() - clock, proc


def summary(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "n": len(values)}


def stage_medians(runs: list[dict]) -> dict:
    stages = sorted({k for r in runs for k in r})
    return {k: statistics.median([r.get(k, 0.0) for r in runs]) for k in stages}


def bench_light(work: Path, repeats: int) -> dict:
    """``--help`` and ``info`` on an asset made by a first fast reconstruction."""
    out = {}
    times = []
    for _ in range(repeats):
        seconds, proc = timed(_cli(["--help"]), work)
        assert proc.returncode == 0, proc.stderr
        times.append(seconds)
    out["lift3d --help"] = summary(times)
    _, proc = timed(_cli(["reconstruct", str(SAMPLE), "--preset", "fast", "--json", "--out", str(work / "light"),
                          "--name", "asset"]), work)
    if proc.returncode == 0:
        asset = json.loads(proc.stdout.strip().splitlines()[-1])["asset"]
        times = []
        for _ in range(repeats):
            seconds, proc = timed(_cli(["info", asset]), work)
            assert proc.returncode == 0, proc.stderr
            times.append(seconds)
        out["lift3d info"] = summary(times)
    return out


def bench_cold(work: Path, preset: str, init: str | None, repeats: int, image: Path) -> dict:
    walls, stages, rests = [], [], []
    for i in range(repeats):
        args = ["reconstruct", str(image), "--preset", preset, "--json", "--out", str(work / "cold"),
                "--name", f"{preset}_{init or 'default'}_{i}"]
        if init is not None:
            args += ["--init", init]
        seconds, proc = timed(_cli(args), work)
        if proc.returncode != 0:
            raise SystemExit(f"bench_e2e: lift3d {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
        timings = json.loads(proc.stdout.strip().splitlines()[-1]).get("timings", {})
        walls.append(seconds)
        stages.append(timings)
        rests.append(seconds - sum(timings.values()))
    return {"wall": summary(walls), "stages": stage_medians(stages), "startup_imports_kernels": summary(rests)}


def bench_warm(work: Path, preset: str, init: str | None, repeats: int, image: Path) -> dict:
    extra = {"init": init} if init is not None else {}
    proc = subprocess.run([sys.executable, "-c", WARM_API, str(image), preset, str(work / "warm"), str(repeats),
                           json.dumps(extra)], capture_output=True, text=True, cwd=work)
    line = [x for x in proc.stdout.splitlines() if x.startswith("BENCH")]
    if proc.returncode != 0 or not line:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    runs = json.loads(line[-1][len("BENCH"):])
    return {"wall": summary([r[0] for r in runs]), "stages": stage_medians([r[1] for r in runs])}


def markdown(results: dict) -> str:
    cpu = results["cpu"]
    lines = [f"Generated by `tools/bench_e2e.py` on {results['when']}: {cpu['model']}, {cpu['logical_cpus']} "
             f"logical CPUs (vector extensions: {', '.join(cpu['vector_flags']) or 'none found'}), load average "
             f"{cpu['load_average']:.1f} at start; Python {platform.python_version()}. Seconds, minimum / median of "
             f"{results['repeats']}; stages are medians. \"start-up\" is the cold wall time minus the run's stages "
             "(interpreter, imports, kernel loading).", ""]
    lines += ["| command | min | median |", "|---|---:|---:|"]
    for name, s in results["light"].items():
        lines.append(f"| `{name}` | {s['min']:.2f} | {s['median']:.2f} |")
    lines += ["", "| preset | init | run | min | median | start-up | stages |", "|---|---|---|---:|---:|---:|---|"]
    for row in results["runs"]:
        for kind in ("cold", "warm"):
            r = row[kind]
            if "error" in r:
                lines.append(f"| {row['preset']} | {row['init'] or '-'} | {kind} | - | - | - | {r['error']} |")
                continue
            startup = f"{r['startup_imports_kernels']['median']:.2f}" if kind == "cold" else "-"
            stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stages"].items())
            lines.append(f"| {row['preset']} | {row['init'] or '-'} | {'cold CLI' if kind == 'cold' else 'warm API'} "
                         f"| {r['wall']['min']:.2f} | {r['wall']['median']:.2f} | {startup} | {stages} |")
    return "\n".join(lines) + "\n"


def write_block(table: str, path: Path) -> None:
    """Replace this benchmark's block of ``path`` (between its markers) with ``table``; keep the rest."""
    report_blocks.write_block(path, table, BEGIN, END, heading="## End to end")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--init", nargs="+", default=None, metavar="MODE",
                        help="camera initialisations to compare (learned, search, both); passed as --init")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image", type=Path, default=SAMPLE)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    parser.add_argument("--output", type=Path, default=DOC, help="Markdown file whose e2e block is replaced")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    repeats = max(1, args.repeats)
    results = {"when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "cpu": cpu_info(), "repeats": repeats, "runs": []}
    print(f"lift3d end-to-end benchmark, {results['when']}; {results['cpu']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="lift3d-bench-") as tmp:
        work = Path(tmp)
        results["light"] = bench_light(work, repeats)
        for preset in args.presets:
            for init in (args.init or [None]):
                row = {"preset": preset, "init": init,
                       "cold": bench_cold(work, preset, init, repeats, args.image.resolve()),
                       "warm": bench_warm(work, preset, init, repeats, args.image.resolve())}
                print(json.dumps(row), flush=True)
                results["runs"].append(row)
    table = markdown(results)
    print("\n" + table)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    if not args.no_write:
        write_block(table, args.output)
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
