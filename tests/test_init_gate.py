"""tools/init_gate.py: one generated photo through both initialisations, recorded with losses and yaw errors."""

from __future__ import annotations

import json
import math

import init_gate


def test_a_generated_photo_is_recorded_with_both_initialisations(tmp_path):
    out = tmp_path / "gate.jsonl"
    assert init_gate.main(["--photos", "1", "--size", "128", "--preset", "fast", "--output", str(out)]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["learned_loss"] >= 0 and row["search_loss"] >= 0
    assert 0 <= row["learned_yaw_err"] <= 180 and 0 <= row["search_yaw_err"] <= 180
    assert row["chosen"] == ("learned" if row["learned_loss"] <= row["search_loss"] else "search")


def test_yaw_error_wraps_around():
    assert abs(init_gate.yaw_error_deg(0.1, 2 * math.pi - 0.1) - math.degrees(0.2)) < 1e-9
    assert abs(init_gate.yaw_error_deg(3.14159, 0.0) - 180) < 0.01
