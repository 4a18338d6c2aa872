"""A registered user asset as training data: plain data only, so the dataset code needs nothing of the
registration (which runs the reconstruction pipeline, see :mod:`lift3d.learn.assets`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..templates.vehicles import Vehicle


@dataclass
class RegisteredShape:
    """One user asset on the car template's topology.

    Attributes:
        name: the file name; digest: the file's SHA-256.
        points: (V, 3) float64 registered points, canonical frame (metres).
        vehicle: the generator parameters fitted to ``points`` (its body type is the label).
        residual_m: RMS distance (metres) between ``points`` and the fitted vehicle's points.
        fit_iou: the multi-view fit's mean mask IoU over the registration views.
        reversed: the fit had put the template back to front (turned round afterwards).
    """

    name: str
    digest: str
    points: np.ndarray
    vehicle: Vehicle
    residual_m: float
    fit_iou: float
    reversed: bool = False

    def summary(self) -> dict:
        """A JSON-serialisable record for the model card."""
        return {"name": self.name, "sha256": self.digest, "body_type": self.vehicle.body_type,
                "residual_m": round(self.residual_m, 4), "fit_iou": round(self.fit_iou, 4),
                "reversed": self.reversed}


def shapes_key(shapes: list[RegisteredShape]) -> list[str]:
    """What identifies a list of registered shapes in a dataset's cache key."""
    return [f"{s.digest[:24]}:{s.vehicle.body_type}:{hashlib.sha256(s.points.tobytes()).hexdigest()[:12]}"
            for s in shapes]
