"""Differentiable wheels: the template's four tyres rebuilt from a few parameters.

Parameters (metres, canonical/object frame, see :class:`lift3d.templates.WheelRig`):
the front and rear axle positions along Z, one tyre radius, the track
(centre-to-centre distance across X) and the tyre width. The tyres stay round,
touch the ground plane ``y = 0`` and stay mirror images of each other, so the
silhouette fit can move and resize them without ever distorting them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..templates import WheelRig


@dataclass
class WheelParams:
    """Fitted wheel parameters (metres)."""

    axle_z: tuple[float, float]
    radius: float
    track: float
    width: float

    def as_dict(self) -> dict[str, float]:
        return {"front_axle_z": self.axle_z[0], "rear_axle_z": self.axle_z[1], "radius": self.radius,
                "track": self.track, "width": self.width}


class TorchWheels(torch.nn.Module):
    """Learnable wheel parameters for ``rig``; :meth:`forward` returns the (4K, 3) wheel vertices.

    Sizes are stored as logarithms (always positive) and relative to the
    ``start`` (e.g. :func:`wheels_from_points` of the body being fitted), so
    one learning rate suits every parameter.
    """

    def __init__(self, rig: WheelRig, start: WheelParams) -> None:
        super().__init__()
        self.rig = rig
        self.register_buffer("local", torch.from_numpy(rig.local.astype(np.float64)))
        self.base = {"axle_z": torch.tensor(start.axle_z, dtype=torch.float64), "radius": start.radius,
                     "track": start.track, "width": start.width}
        self.axle_shift = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
        self.log_radius = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.log_track = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.log_width = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

    def values(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(axle_z (2,), radius, track, width)`` as tensors (metres)."""
        radius = self.base["radius"] * torch.exp(self.log_radius)
        axle_z = self.base["axle_z"] + self.axle_shift * radius
        return (axle_z, radius, self.base["track"] * torch.exp(self.log_track),
                self.base["width"] * torch.exp(self.log_width))

    def forward(self) -> torch.Tensor:
        """(4, K, 3) wheel vertices in the order fl, rl, fr, rr (``rig.left`` then ``rig.right``)."""
        axle_z, radius, track, width = self.values()
        a, b, c = self.local[:, 0], self.local[:, 1], self.local[:, 2]
        left = torch.stack([torch.stack([track / 2 + a * width, radius + b * radius, z + c * radius], dim=1)
                            for z in axle_z])
        right = left * torch.tensor([-1.0, 1.0, 1.0], dtype=left.dtype)
        return torch.cat([left, right])

    def indices(self) -> np.ndarray:
        """(4K,) template vertex indices matching :meth:`forward` flattened."""
        return np.concatenate([self.rig.left.ravel(), self.rig.right.ravel()]).astype(np.int64)

    def params(self) -> WheelParams:
        """The current parameters as plain numbers."""
        with torch.no_grad():
            axle_z, radius, track, width = self.values()
        return WheelParams((float(axle_z[0]), float(axle_z[1])), float(radius), float(track), float(width))


def wheels_from_points(rig: WheelRig, points: np.ndarray) -> WheelParams:
    """Measure the wheel parameters of ``rig``'s tyres in ``points`` (V, 3), object frame (metres).

    Axle positions are the tyres' mean z (their rings are symmetric about the axle),
    the radius the geometric mean of the front tyre's half-extents in y and z (the
    tyre may have been scaled anisotropically), the track twice the left tyres'
    mean x, the width the left tyres' extent in x.
    """
    pts = np.asarray(points, dtype=np.float64)
    left = [pts[idx] for idx in rig.left]
    axle_z = (float(left[0][:, 2].mean()), float(left[1][:, 2].mean()))
    radius = 0.5 * math.sqrt(float(np.ptp(left[0][:, 1])) * float(np.ptp(left[0][:, 2])))
    track = float(np.mean([w[:, 0].mean() for w in left])) * 2.0
    width = float(np.mean([np.ptp(w[:, 0]) for w in left]))
    return WheelParams(axle_z, radius, track, width)
