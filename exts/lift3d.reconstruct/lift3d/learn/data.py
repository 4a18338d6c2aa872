"""Training data for the predictor: cached procedural renders, labels, and per-batch augmentation.

:func:`build_dataset` renders ``count`` samples with :func:`lift3d.synth.render.render_sample`
(seeded: the same seed, count, size and generator version give the same data) and
caches them as a plain ``.npz`` (no pickled objects: it is read with
``allow_pickle=False``). :func:`augment` turns a batch of cached renders into
network inputs: a random background (smooth noise, gradients, a ground plane,
or none, as for a photo whose alpha is its mask), random occluders, colour
jitter and noise, so one render serves many views.

Labels per sample: ``yaw`` and ``pitch`` (radians), ``focal`` (focal length in
crop pixels over the crop size), ``body`` (index into
:data:`lift3d.templates.vehicles.BODY_TYPES`) and ``params``: the generator
parameters normalised to [0, 1] within the body type's ranges.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..templates import Template
from ..templates.vehicles import BODY_TYPES, COMMON, GENERATOR_VERSION, PARAM_NAMES
from .shapes import RegisteredShape, shapes_key

BODY_NAMES = tuple(BODY_TYPES)
ASSET_SHARE = 0.15
"""Default share of the training samples rendered from a user's registered assets (``--assets``)."""
ASSET_STREAM = 7
"""Third seed word of the generator that decides whether a sample shows an asset (and renders it)."""


@lru_cache(maxsize=1)
def param_ranges() -> np.ndarray:
    """(T, P, 2) float32 low/high of every generator parameter per body type (table units; read-only, built once)."""
    out = np.zeros((len(BODY_NAMES), len(PARAM_NAMES), 2), np.float32)
    for i, name in enumerate(BODY_NAMES):
        ranges = {**COMMON, **BODY_TYPES[name]}
        out[i] = [ranges[p] for p in PARAM_NAMES]
    out.flags.writeable = False
    return out


def normalise(body: int, params: dict[str, float]) -> np.ndarray:
    """(P,) parameters of a body type mapped to [0, 1] within its ranges (0.5 for a fixed parameter)."""
    r = param_ranges()[body]
    values = np.array([params[p] for p in PARAM_NAMES], np.float32)
    span = r[:, 1] - r[:, 0]
    return np.where(span > 0, (values - r[:, 0]) / np.where(span > 0, span, 1.0), 0.5).astype(np.float32)


def denormalise(body: int, unit: np.ndarray) -> dict[str, float]:
    """Inverse of :func:`normalise` (values outside [0, 1] are clipped to the type's ranges)."""
    r = param_ranges()[body]
    values = r[:, 0] + np.clip(unit, 0.0, 1.0) * (r[:, 1] - r[:, 0])
    return {p: float(v) for p, v in zip(PARAM_NAMES, values)}


def dataset_key(count: int, size: int, seed: int, shares: dict[str, float] | None,
                assets: list[str] | None = None, asset_share: float = 0.0) -> str:
    """Cache key: generator version, count, size, seed and body-type shares (and, only when there are
    asset shapes, their identities and share, so a procedural dataset keeps its key)."""
    fields = {"generator": GENERATOR_VERSION, "count": count, "size": size, "seed": seed, "shares": shares or {}}
    if assets:
        fields.update(assets=list(assets), asset_share=float(asset_share))
    record = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(record.encode()).hexdigest()[:16]


def build_dataset(template: Template, count: int, size: int, seed: int, cache_dir: Path | None = None,
                  shares: dict[str, float] | None = None,
                  progress: Callable[[int], None] | None = None,
                  assets: list[RegisteredShape] | None = None,
                  asset_share: float = ASSET_SHARE) -> dict[str, np.ndarray]:
    """Render (or load from the cache) ``count`` samples at ``size`` pixels.

    Returns arrays: ``rgb`` (N, S, S, 3) uint8, ``mask`` (N, S, S) uint8, ``yaw``,
    ``pitch``, ``focal`` (N,) float32, ``body`` (N,) int64 and ``params`` (N, P) float32 in [0, 1].
    Each sample has its own generator seeded from ``(seed, index)``, so a dataset is a
    prefix of any larger one with the same seed.

    With ``assets`` (registered user shapes, :mod:`lift3d.learn.assets`), about
    ``asset_share`` of the samples (drawn per index from their own generator) render one of
    them instead: its own registered points under a random camera and random materials,
    labelled with its fitted body type and parameters; ``asset`` (N,) int64 then gives the
    shape's index per sample (-1 for a procedural one). The procedural samples are the same
    as without assets, and without assets nothing changes (data and cache key).
    """
    from ..synth.render import render_sample, render_shape

    path = None
    names = shapes_key(assets) if assets else None
    if cache_dir is not None:
        path = Path(cache_dir) / f"synth_{dataset_key(count, size, seed, shares, names, asset_share)}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    return {k: data[k] for k in data.files}
            except (OSError, ValueError):
                path.unlink(missing_ok=True)  # a damaged cache is rebuilt
    out = {"rgb": np.zeros((count, size, size, 3), np.uint8), "mask": np.zeros((count, size, size), np.uint8),
           "yaw": np.zeros(count, np.float32), "pitch": np.zeros(count, np.float32),
           "focal": np.zeros(count, np.float32), "body": np.zeros(count, np.int64),
           "params": np.zeros((count, len(PARAM_NAMES)), np.float32)}
    if assets:
        out["asset"] = np.full(count, -1, np.int64)
    for i in range(count):
        pick = np.random.default_rng([seed, i, ASSET_STREAM]) if assets else None
        if pick is not None and pick.random() < asset_share:
            k = int(pick.integers(len(assets)))
            r = render_shape(template, assets[k].points, assets[k].vehicle, pick, size)
            out["asset"][i] = k
        else:
            rng = np.random.default_rng([seed, i])
            r = render_sample(template, rng, size, shares=shares)
        body = BODY_NAMES.index(r.vehicle.body_type)
        out["rgb"][i] = np.round(r.rgb * 255.0)
        out["mask"][i] = np.round(r.mask * 255.0)
        out["yaw"][i], out["pitch"][i], out["focal"][i], out["body"][i] = r.yaw, r.pitch, r.focal, body
        out["params"][i] = normalise(body, r.vehicle.params)
        if progress is not None:
            progress(i + 1)
    if path is not None:
        from ..atomic import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **out)
    return out


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(S, S, 3) float32 random background: smooth noise, a gradient, a ground plane with a horizon, or black."""
    import cv2

    kind = rng.integers(0, 4)
    base = rng.uniform(0.0, 1.0, 3).astype(np.float32)
    if kind == 0:
        return np.zeros((size, size, 3), np.float32)
    if kind == 1:
        cells = int(rng.integers(2, 16))
        grid = rng.uniform(0.0, 1.0, (cells, cells, 3)).astype(np.float32)
        return cv2.resize(grid, (size, size), interpolation=cv2.INTER_LINEAR)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    other = rng.uniform(0.0, 1.0, 3).astype(np.float32)
    if kind == 2:
        img = base * (1 - ramp) + other * ramp
        return np.broadcast_to(img, (size, size, 3)).copy()
    horizon = int(rng.integers(0, size))
    img = np.broadcast_to(base, (size, size, 3)).copy()
    ground = other * (0.6 + 0.4 * rng.uniform(0.0, 1.0, (size - horizon, size, 1)).astype(np.float32))
    img[horizon:] = ground
    return img


def augment(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 4, S, S) float32 network input from cached uint8 renders (N, S, S, 3) and masks (N, S, S).

    Channels: RGB over a random background, then the object mask. An occluder
    (a random box of background) hides part of the object in a fifth of the samples,
    and is cut from the mask too, as a photo's mask would be.
    """
    n, size = rgb.shape[0], rgb.shape[1]
    out = np.zeros((n, 4, size, size), np.float32)
    for i in range(n):
        m = mask[i].astype(np.float32) / 255.0
        fg = rgb[i].astype(np.float32) / 255.0
        gain = rng.uniform(0.7, 1.3, 3).astype(np.float32) * rng.uniform(0.7, 1.3)
        fg = np.clip(fg * gain + rng.uniform(-0.05, 0.05), 0.0, 1.0)
        bg = _background(rng, size)
        img = fg * m[..., None] + bg * (1.0 - m[..., None])
        if rng.random() < 0.2:
            h, w = rng.integers(size // 8, size // 3, 2)
            y, x = rng.integers(0, size - h), rng.integers(0, size - w)
            img[y:y + h, x:x + w] = bg[y:y + h, x:x + w]
            m = m.copy()
            m[y:y + h, x:x + w] = 0.0
        img = img + rng.normal(0.0, rng.uniform(0.0, 0.03), img.shape).astype(np.float32)
        out[i, :3] = np.clip(img, 0.0, 1.0).transpose(2, 0, 1)
        out[i, 3] = m
    return out


def network_input(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(1, 4, S, S) float32 input from a photo crop: (S, S, 3) rgb in [0, 1] and (S, S) coverage in [0, 1]."""
    x = np.concatenate([np.clip(rgb, 0.0, 1.0).transpose(2, 0, 1), np.clip(mask, 0.0, 1.0)[None]], axis=0)
    return x[None].astype(np.float32)
