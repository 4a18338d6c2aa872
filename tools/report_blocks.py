"""Shared by the benchmark and study tools: the machine they ran on, and their generated blocks in a Markdown file.

Light on purpose (no torch, no Warp): the end-to-end benchmark's driver imports it and must stay
quick, since it times fresh processes.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from lift3d.atomic import write_text_atomic

VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni")
"""CPU vector extensions that change the kernels' speed, reported beside every figure."""


def cpu_info() -> dict:
    """CPU model, logical CPUs, the vector extensions of :data:`VECTOR_FLAGS` it has, and the load average."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and ":" in line:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and ":" in line:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"model": model, "logical_cpus": os.cpu_count(), "vector_flags": [f for f in VECTOR_FLAGS if f in flags],
            "load_average": load}


def write_block(path: Path, table: str, begin: str, end: str, heading: str = "") -> None:
    """Replace the block of ``path`` between the ``begin`` and ``end`` markers with ``table`` (atomically).

    A file without the markers gets them appended, after ``heading`` (e.g. ``"## End to end"``);
    everything outside the markers is kept as written by hand.
    """
    text = path.read_text() if path.exists() else "# Performance\n"
    if begin not in text or end not in text:
        text = text.rstrip() + ("\n\n" + heading if heading else "") + f"\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    write_text_atomic(path, f"{head}{begin}\n{table}{end}{tail}")
