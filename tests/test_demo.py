"""The demo reconstructs the sample render and the bundled real photo into one stage and one stacked preview;
the real photo is bundled with its licence and attribution."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

import demo
from lift3d.preview import preview_image
from lift3d.usd.reader import read_asset
from lift3d.usd.shared_stage import list_plain_stage

from synthetic_inputs import TINY_SETTINGS

SAMPLES = Path(demo.SAMPLES)


def test_the_real_photo_is_bundled_with_its_attribution():
    text = (SAMPLES / "ATTRIBUTION.md").read_text()
    for path in (demo.REAL, demo.REAL_MASK):
        assert path.is_file() and path.name in text
        assert hashlib.sha256(path.read_bytes()).hexdigest() in text
    assert "CC BY 4.0" in text and "intel-iot-devkit/sample-videos" in text and "Modified" in text
    photo, mask = Image.open(demo.REAL), Image.open(demo.REAL_MASK)
    assert photo.size == mask.size and 0.01 < (np.asarray(mask.convert("L")) > 127).mean() < 0.5


def test_demo_writes_both_reconstructions_and_one_stacked_preview(tmp_path, monkeypatch, capsys):
    (tmp_path / "tiny.toml").write_text(TINY_SETTINGS)
    monkeypatch.setenv("LIFT3D_CONFIG", str(tmp_path / "tiny.toml"))
    out = tmp_path / "demo_out"
    assert demo.main(["--preset", "fast", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sedan_photo.png" in printed and "intel_parking_oblique_f08.png" in printed
    names = [e.prim_path.rsplit("/", 1)[-1] for e in list_plain_stage(out / "stage.usda")]
    assert sorted(names) == ["intel_parking_oblique_f08", "sedan_photo"]
    real = read_asset(out / "intel_parking_oblique_f08" / "intel_parking_oblique_f08.usda")
    assert real.provenance["signals"]["masks"][0]["source"] == "given"  # its bundled mask, not a guess
    stacked = Image.open(out / "preview.png")
    sheet = preview_image(out / "sedan_photo" / "sedan_photo.usda", photo=demo.SAMPLE)
    assert stacked.height == 2 * sheet.height and stacked.width == sheet.width
