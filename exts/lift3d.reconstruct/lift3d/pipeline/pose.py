"""Camera poses around an object in its canonical frame, and the mirrored (symmetry) camera.

Pose parametrisation (radians, metres), shared by the camera search and the
shape fit: the camera's rotation is ``R = Ry(yaw) @ Rx(-pitch) @ Rz(roll)``
(``yaw`` about +Y, 0 = camera on +Z looking at the object's front, positive
towards +X, the object's left; ``pitch`` = elevation above the horizon;
``roll`` about the optical axis), and its centre is
``eye = target + R @ (tx, ty, distance)``: the object point ``target`` sits at
camera coordinates ``(-tx, -ty, -distance)``. With ``tx = ty = roll = 0`` this
is exactly :func:`lift3d.camera.orbit_camera`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..camera import Camera


@dataclass
class Pose:
    """An orbit pose (see the module docstring): angles in radians, lengths in metres."""

    yaw: float
    pitch: float
    roll: float
    distance: float
    tx: float = 0.0
    ty: float = 0.0

    def rotation(self) -> np.ndarray:
        """(3, 3) float64 camera-to-world rotation."""
        return rotation_np(self.yaw, self.pitch, self.roll)

    def cam_to_world(self, target: np.ndarray) -> np.ndarray:
        """(4, 4) float64 camera-to-world matrix for an object point ``target`` (3,)."""
        r = self.rotation()
        m = np.eye(4)
        m[:3, :3] = r
        m[:3, 3] = np.asarray(target, dtype=np.float64) + r @ np.array([self.tx, self.ty, self.distance])
        return m


def rotation_np(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) float64 ``Ry(yaw) @ Rx(-pitch) @ Rz(roll)``."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(-pitch), math.sin(-pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


def rotation_torch(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(3, 3) differentiable ``Ry(yaw) @ Rx(-pitch) @ Rz(roll)`` from scalar tensors."""
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(-pitch), torch.sin(-pitch)
    cr, sr = torch.cos(roll), torch.sin(roll)
    ry = torch.stack([torch.stack([cy, zero, sy]), torch.stack([zero, one, zero]), torch.stack([-sy, zero, cy])])
    rx = torch.stack([torch.stack([one, zero, zero]), torch.stack([zero, cp, -sp]), torch.stack([zero, sp, cp])])
    rz = torch.stack([torch.stack([cr, -sr, zero]), torch.stack([sr, cr, zero]), torch.stack([zero, zero, one])])
    return ry @ rx @ rz


def pose_from_cam_to_world(m: np.ndarray, target: np.ndarray) -> Pose:
    """Invert :meth:`Pose.cam_to_world`: the pose of a camera ``m`` (4, 4) about ``target`` (3,)."""
    r = np.asarray(m, dtype=np.float64)[:3, :3]
    # R = Ry(yaw) Rx(-pitch) Rz(roll): third column = (sin yaw cos p, sin p, cos yaw cos p).
    pitch = math.asin(max(-1.0, min(1.0, r[1, 2])))
    yaw = math.atan2(r[0, 2], r[2, 2])
    roll = math.atan2(r[1, 0], r[1, 1])
    local = r.T @ (np.asarray(m)[:3, 3] - np.asarray(target, dtype=np.float64))
    return Pose(yaw, pitch, roll, float(local[2]), float(local[0]), float(local[1]))


def identity_camera(camera: Camera) -> Camera:
    """``camera``'s intrinsics with an identity pose (points are then given in camera coordinates)."""
    return Camera(camera.fx, camera.fy, camera.cx, camera.cy, camera.width, camera.height, np.eye(4), camera.name)


def mirrored_camera(camera: Camera) -> Camera:
    """The camera reflected across the ``X = 0`` symmetry plane, seeing the horizontally flipped image.

    With the reflection ``P = diag(-1, 1, 1)``, the mirrored pose is ``P @ M @ Q``
    (``M`` = cam_to_world, ``Q = diag(-1, 1, 1, 1)`` flips the camera's x axis so
    the frame stays right-handed) and the principal point becomes
    ``(width - cx, cy)``. A world point ``X`` then lands at ``u' = width - u``,
    where ``u`` is the column of ``P X`` in the original camera: so for an
    object symmetric about ``X = 0`` this camera sees the original photo
    flipped left-right.
    """
    p = np.diag([-1.0, 1.0, 1.0, 1.0])
    m = p @ camera.cam_to_world @ p
    return Camera(camera.fx, camera.fy, camera.width - camera.cx, camera.cy, camera.width, camera.height, m,
                  f"{camera.name}_mirrored")
