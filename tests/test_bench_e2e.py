"""tools/bench_e2e.py: the CPU line, --init passed only when asked, the table and its block in the Markdown file."""

from __future__ import annotations

import json
import subprocess

import bench_e2e


def test_cpu_info_names_model_and_vector_flags():
    info = bench_e2e.cpu_info()
    assert info["model"] and info["logical_cpus"] >= 1
    assert set(info["vector_flags"]) <= {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"}


def test_init_is_passed_only_when_asked(tmp_path, monkeypatch):
    commands = []

    def fake_timed(command, cwd):
        commands.append(command)
        out = json.dumps({"timings": {"load": 0.5, "camera": 1.0}})
        return 3.0, subprocess.CompletedProcess(command, 0, out + "\n", "")

    monkeypatch.setattr(bench_e2e, "timed", fake_timed)
    plain = bench_e2e.bench_cold(tmp_path, "fast", None, 2, tmp_path / "p.png")
    assert not any("--init" in c for c in commands)
    assert plain["wall"]["min"] == 3.0 and plain["startup_imports_kernels"]["median"] == 1.5
    commands.clear()
    bench_e2e.bench_cold(tmp_path, "best", "learned", 1, tmp_path / "p.png")
    assert commands[0][-2:] == ["--init", "learned"] and "best" in commands[0]


def test_table_replaces_only_its_own_block(tmp_path):
    results = {"when": "now", "repeats": 1, "cpu": {"model": "CPU", "logical_cpus": 2, "vector_flags": ["avx2"],
                                                   "load_average": 0.0},
               "light": {"lift3d --help": {"min": 0.3, "median": 0.3, "n": 1}},
               "runs": [{"preset": "fast", "init": None,
                         "cold": {"wall": {"min": 3.0, "median": 3.1, "n": 1}, "stages": {"camera": 1.0},
                                  "startup_imports_kernels": {"min": 1.0, "median": 1.0, "n": 1}},
                         "warm": {"error": "boom"}}]}
    table = bench_e2e.markdown(results)
    assert "| fast | - | cold CLI | 3.00 | 3.10 | 1.00 | camera 1.00 |" in table and "avx2" in table
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text("# Performance\n\n<!-- bench:begin -->\nkernels\n<!-- bench:end -->\n")
    bench_e2e.write_block(table, doc)
    bench_e2e.write_block(table, doc)
    text = doc.read_text()
    assert text.count(bench_e2e.BEGIN) == 1 and "kernels" in text and "cold CLI" in text
