"""Running the predictor on a photo: crop, forward pass, top-k hypotheses, and their placement.

A :class:`Hypothesis` is one camera-and-vehicle guess: yaw, pitch, focal length
and a procedural vehicle. :func:`place` turns it into template points and an
orbit pose whose projected box matches the photo's mask box
(:func:`lift3d.pipeline.camera_search.align_to_box`), which is where the
analysis-by-synthesis refinement starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..camera import Camera
from ..pipeline.crops import crop_image, crop_mask, mask_box, square_box
from ..pipeline.pose import Pose
from ..templates import Template
from ..templates.vehicles import Vehicle, vehicle_points
from .data import BODY_NAMES, denormalise, network_input
from .model import Predictor, load_model, yaw_peaks


@dataclass
class Hypothesis:
    """One predicted camera and vehicle.

    Attributes:
        yaw, pitch: camera pose about the vehicle's box centre, radians.
        focal: focal length in crop pixels over the crop size.
        vehicle: the predicted procedural vehicle (no deformation).
        score: the hypothesis' probability (yaw mode mass x body-type probability).
        yaw_mass: the probability mass of its yaw mode alone.
    """

    yaw: float
    pitch: float
    focal: float
    vehicle: Vehicle
    score: float
    yaw_mass: float = 1.0

    def summary(self) -> dict:
        """JSON-serialisable record for provenance."""
        return {"body_type": self.vehicle.body_type, "yaw_deg": round(math.degrees(self.yaw) % 360.0, 2),
                "pitch_deg": round(math.degrees(self.pitch), 2), "focal": round(self.focal, 4),
                "score": round(self.score, 4),
                "params": {k: round(v, 4) for k, v in self.vehicle.params.items()}}


@dataclass
class Prediction:
    """All hypotheses for one photo (best first) and the crop they refer to."""

    hypotheses: list[Hypothesis]
    box: tuple[int, int, int]
    body_probs: dict[str, float] = field(default_factory=dict)
    agreement: float = 1.0


_MODELS: dict[str, tuple[Predictor, dict]] = {}


def cached_model(path: Path | str) -> tuple[Predictor, dict]:
    """:func:`lift3d.learn.model.load_model`, cached per resolved path and file time."""
    p = Path(path)
    key = f"{p.resolve()}:{p.stat().st_mtime_ns if p.is_file() else 0}"
    if key not in _MODELS:
        _MODELS[key] = load_model(p)
    return _MODELS[key]


def decode(outputs: dict[str, torch.Tensor], index: int, yaw_modes: int, bodies: int) -> list[Hypothesis]:
    """Hypotheses of sample ``index`` of a batch of outputs: ``yaw_modes`` x ``bodies``, best first."""
    yaw_logits = outputs["yaw"][index].detach().numpy().astype(np.float64)
    body_p = torch.softmax(outputs["body"][index], dim=0).detach().numpy()
    pitch = float(outputs["pitch"][index])
    focal = float(torch.exp(outputs["log_focal"][index]))
    params = outputs["params"][index].detach().numpy()
    out = []
    for yaw, mass in yaw_peaks(yaw_logits, yaw_modes):
        for b in np.argsort(-body_p)[:bodies]:
            vehicle = Vehicle(BODY_NAMES[b], denormalise(int(b), params[b]), np.zeros((2, 3)))
            out.append(Hypothesis(yaw, pitch, focal, vehicle, float(mass * body_p[b]), float(mass)))
    out.sort(key=lambda h: -h.score)
    return out


def predict(model: Predictor, rgb: np.ndarray, mask: np.ndarray, yaw_modes: int = 2, bodies: int = 2) -> Prediction:
    """Hypotheses for a photo: (H, W, 3) float rgb in [0, 1] and its (H, W) bool object mask."""
    size = model.arch.input_size
    box = square_box(mask)
    x = network_input(crop_image(rgb, box, size), crop_mask(mask, box, size))
    with torch.no_grad():
        outputs = model(torch.from_numpy(x))
    hyps = decode(outputs, 0, yaw_modes, bodies)
    body_p = torch.softmax(outputs["body"][0], dim=0).numpy()
    peaks = yaw_peaks(outputs["yaw"][0].numpy().astype(np.float64), 2)
    agreement = peaks[0][1] / max(sum(m for _, m in peaks), 1e-9)
    return Prediction(hyps, box, {BODY_NAMES[i]: float(p) for i, p in enumerate(body_p)}, float(agreement))


def base_camera(hyp: Hypothesis, box: tuple[int, int, int], width: int, height: int,
                fov_x_deg: float | None = None) -> Camera:
    """The photo's intrinsics: square pixels, centred principal point, and either the horizontal
    field of view ``fov_x_deg`` or (``None``) the hypothesis' focal length scaled from the crop
    (``focal * side``) to the photo."""
    if fov_x_deg is not None:
        from ..pipeline.camera_search import guess_intrinsics

        return guess_intrinsics(width, height, fov_x_deg)
    f = hyp.focal * box[2]
    return Camera(f, f, 0.5 * width, 0.5 * height, width, height, np.eye(4), "estimated")


def place(hyp: Hypothesis, template: Template, mask: np.ndarray, box: tuple[int, int, int],
          fov_x_deg: float | None = None) -> tuple[np.ndarray, Pose, np.ndarray, Camera]:
    """Template points (V, 3) of the hypothesis' vehicle, its pose matching ``mask``'s box, the pose's
    target (box centre) and the photo's base camera (intrinsics only; see :func:`base_camera`)."""
    from ..pipeline.camera_search import align_to_box

    points = vehicle_points(hyp.vehicle, template)
    target = 0.5 * (points.min(axis=0) + points.max(axis=0))
    height, width = mask.shape
    base = base_camera(hyp, box, width, height, fov_x_deg)
    centre, size = mask_box(mask)
    pose = align_to_box(points, target, base, hyp.yaw, hyp.pitch, centre, size)
    return points, pose, target, base
