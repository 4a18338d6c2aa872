"""The vehicle predictor network, its outputs, and its model file (safetensors + JSON card).

GANverse3D-style inverse graphics (Zhang et al., ICLR 2021) in miniature: a
small CNN reads a square object crop (RGB + mask, ``input_size``^2 pixels) and
predicts

* the camera: yaw over the full circle as a distribution over
  :data:`YAW_BINS` bins (so front and back views are told apart by appearance,
  and the runners-up are the hypotheses to try), the elevation, and the focal
  length relative to the crop;
* the vehicle: its body type (a distribution over
  :data:`lift3d.learn.data.BODY_NAMES`) and, per body type, its generator
  parameters normalised to the type's ranges (the wheels' positions and radius
  are among them: wheelbase, axle offset, tyre radius, width and outset).

The model file is ``NAME.safetensors`` (tensors only: loading runs no code)
beside ``NAME.json`` (the model card: architecture, generator version, data,
seed, steps, training time, validation figures). :func:`load_model` checks the
card and every tensor's name and shape; any problem is one
:class:`lift3d.errors.ModelError`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..atomic import write_bytes_atomic, write_text_atomic
from ..errors import InputError
from ..templates.vehicles import GENERATOR_VERSION, PARAM_NAMES
from .data import BODY_NAMES

YAW_BINS = 72
"""Yaw classes (5 degrees each)."""
CARD_FORMAT = "lift3d-vehicle-predictor"
CARD_VERSION = 1


class ModelError(InputError):
    """A missing, corrupt, truncated or mismatched model file."""


@dataclass(frozen=True)
class Architecture:
    """Network shape (stored in the model card)."""

    input_size: int = 64
    widths: tuple[int, ...] = (32, 64, 128, 192)
    hidden: int = 256

    def as_dict(self) -> dict[str, Any]:
        return {"input_size": self.input_size, "widths": list(self.widths), "hidden": self.hidden}


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Predictor(nn.Module):
    """The CNN: (N, 4, S, S) input -> dict of head outputs (see :meth:`forward`)."""

    def __init__(self, arch: Architecture = Architecture()) -> None:
        super().__init__()
        self.arch = arch
        layers, cin = [], 4
        for w in arch.widths:
            layers.append(_block(cin, w))
            cin = w
        self.features = nn.Sequential(*layers)
        cells = arch.input_size // 2 ** len(arch.widths)
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(cin * cells * cells, arch.hidden), nn.ReLU(inplace=True))
        t, p = len(BODY_NAMES), len(PARAM_NAMES)
        self.yaw = nn.Linear(arch.hidden, YAW_BINS)
        self.camera = nn.Linear(arch.hidden, 2)  # pitch (radians), log focal
        self.body = nn.Linear(arch.hidden, t)
        self.params = nn.Linear(arch.hidden, t * p)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs: ``yaw`` (N, B) logits, ``pitch`` (N,), ``log_focal`` (N,), ``body`` (N, T) logits,
        ``params`` (N, T, P) normalised parameters per body type."""
        h = self.trunk(self.features(x))
        cam = self.camera(h)
        return {"yaw": self.yaw(h), "pitch": cam[:, 0], "log_focal": cam[:, 1], "body": self.body(h),
                "params": self.params(h).view(-1, len(BODY_NAMES), len(PARAM_NAMES))}


def yaw_target(yaw: torch.Tensor, sigma_bins: float = 1.0) -> torch.Tensor:
    """(N, B) soft yaw labels: a wrapped Gaussian of ``sigma_bins`` around each yaw (radians)."""
    centres = (torch.arange(YAW_BINS, dtype=torch.float32) + 0.5) * (2.0 * math.pi / YAW_BINS)
    d = torch.remainder(yaw[:, None] - centres[None] + math.pi, 2.0 * math.pi) - math.pi
    w = torch.exp(-0.5 * (d / (sigma_bins * 2.0 * math.pi / YAW_BINS)) ** 2)
    return w / w.sum(dim=1, keepdim=True)


def yaw_peaks(logits: np.ndarray, k: int, min_separation_deg: float = 30.0) -> list[tuple[float, float]]:
    """The ``k`` strongest yaw modes of one (B,) logit vector: [(yaw radians, probability mass)].

    Each mode's yaw is the circular mean of its bin and the two neighbours on each
    side; modes closer than ``min_separation_deg`` to a stronger one are skipped.
    """
    p = np.exp(logits - logits.max())
    p /= p.sum()
    centres = (np.arange(YAW_BINS) + 0.5) * (2.0 * math.pi / YAW_BINS)
    out: list[tuple[float, float]] = []
    for b in np.argsort(-p):
        if len(out) >= k:
            break
        idx = (b + np.arange(-2, 3)) % YAW_BINS
        yaw = math.atan2(float(p[idx] @ np.sin(centres[idx])), float(p[idx] @ np.cos(centres[idx]))) % (2 * math.pi)
        if any(abs((yaw - y + math.pi) % (2 * math.pi) - math.pi) < math.radians(min_separation_deg) for y, _ in out):
            continue
        out.append((yaw, float(p[idx].sum())))
    return out


def card_path(weights: Path) -> Path:
    """The model card beside a weights file (``NAME.safetensors`` -> ``NAME.json``)."""
    return Path(weights).with_suffix(".json")


def save_model(model: Predictor, path: Path, card: dict[str, Any]) -> Path:
    """Write ``path`` (safetensors, float32) and its card atomically; returns ``path``."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in model.state_dict().items()
               if v.dtype.is_floating_point}
    tensors.update({k: v.detach().clone() for k, v in model.state_dict().items() if not v.dtype.is_floating_point})
    full = {"format": CARD_FORMAT, "card_version": CARD_VERSION, "architecture": model.arch.as_dict(),
            "generator_version": GENERATOR_VERSION, "body_types": list(BODY_NAMES), "params": list(PARAM_NAMES),
            "yaw_bins": YAW_BINS, **card}
    write_bytes_atomic(path, save(tensors, metadata={"format": CARD_FORMAT}))
    write_text_atomic(card_path(path), json.dumps(full, indent=2) + "\n")
    return path


def load_model(path: Path | str) -> tuple[Predictor, dict[str, Any]]:
    """Load a predictor and its card; raises :class:`ModelError` with one clear line on any problem."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} not found")
    card_file = card_path(path)
    if not card_file.is_file():
        raise ModelError(f"model card {card_file} not found (it must sit beside {path.name})")
    try:
        card = json.loads(card_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model card {card_file} is not valid JSON: {exc}") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ModelError(f"{card_file} is not a lift3d vehicle-predictor card")
    expected = {"body_types": list(BODY_NAMES), "params": list(PARAM_NAMES), "yaw_bins": YAW_BINS,
                "generator_version": GENERATOR_VERSION}
    for key, value in expected.items():
        if card.get(key) != value:
            raise ModelError(f"model {path.name} was trained for a different {key.replace('_', ' ')} "
                             f"({card.get(key)!r}); retrain it with `lift3d train`")
    try:
        a = card["architecture"]
        arch = Architecture(int(a["input_size"]), tuple(int(w) for w in a["widths"]), int(a["hidden"]))
        model = Predictor(arch)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"model card {card_file} has a bad architecture: {exc}") from None
    try:
        tensors = load(path.read_bytes())
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"model file {path} is corrupt or truncated: {exc}") from None
    state = model.state_dict()
    missing = sorted(set(state) - set(tensors))
    extra = sorted(set(tensors) - set(state))
    if missing or extra:
        raise ModelError(f"model file {path} does not match its card: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, ref in state.items():
        if tuple(tensors[name].shape) != tuple(ref.shape):
            raise ModelError(f"model file {path}: tensor {name} has shape {tuple(tensors[name].shape)}, "
                             f"expected {tuple(ref.shape)}")
        if not torch.isfinite(tensors[name].to(torch.float64)).all():
            raise ModelError(f"model file {path}: tensor {name} holds non-finite values")
    model.load_state_dict({k: v.to(state[k].dtype) for k, v in tensors.items()})
    model.eval()
    return model, card


def default_model_path() -> Path:
    """The bundled default model (``config/models/vehicle_predictor.safetensors``)."""
    from ..settings import PredictorSettings

    return PredictorSettings().model_path()
