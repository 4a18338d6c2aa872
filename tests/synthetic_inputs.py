"""Helpers shared by the end-to-end tests (batch, CLI): a car-like RGBA photo, fast settings, the entry point."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TINY_SETTINGS = """
[output]
texture_size = 64

[presets.fast]
levels = [32]
steps = [4]
camera_yaw_steps = 4
camera_pitch_steps = 1
camera_hypotheses = 1
camera_refine_steps = 2
texture_size = 64
photometric_steps = 0
sigma = 1.0
"""


def car_blob(path: Path, seed: int, size: int = 96) -> Path:
    """Write a synthetic car-like RGBA image: a rounded body and two dark wheels on transparent background."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:size, 0:size]
    cx, cy = size / 2 + rng.uniform(-4, 4), size * 0.55
    body = ((u - cx) / (size * 0.42)) ** 2 + ((v - cy) / (size * 0.16)) ** 2 <= 1.0
    cabin = ((u - cx) / (size * 0.2)) ** 2 + ((v - (cy - size * 0.14)) / (size * 0.12)) ** 2 <= 1.0
    wheels = [((u - (cx + dx)) ** 2 + (v - (cy + size * 0.13)) ** 2) <= (size * 0.08) ** 2
              for dx in (-size * 0.25, size * 0.25)]
    rgba = np.zeros((size, size, 4), np.uint8)
    color = rng.integers(60, 230, 3)
    rgba[body | cabin, :3] = color
    rgba[cabin & ~body, :3] = (80, 110, 140)
    for w in wheels:
        rgba[w, :3] = 20
    rgba[..., 3] = np.where(body | cabin | wheels[0] | wheels[1], 255, 0)
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def lift3d_entry_point() -> str:
    """The installed ``lift3d`` command (beside this Python, else on PATH); skips the test if there is none."""
    exe = Path(sys.executable).with_name("lift3d")
    return str(exe) if exe.exists() else shutil.which("lift3d") or pytest.skip("lift3d entry point not installed")


def two_cars(path: Path) -> Path:
    """Write a 200 x 96 transparent photo of two separate car blobs side by side, the left one larger."""
    left = np.asarray(Image.open(car_blob(path.with_name(f"{path.stem}_left.png"), 1, size=96)))
    right = np.asarray(Image.open(car_blob(path.with_name(f"{path.stem}_right.png"), 2, size=80)))
    path.with_name(f"{path.stem}_left.png").unlink()
    path.with_name(f"{path.stem}_right.png").unlink()
    photo = np.zeros((96, 200, 4), np.uint8)
    photo[:, 2:98] = left
    photo[8:88, 112:192] = right
    Image.fromarray(photo, "RGBA").save(path)
    return path
