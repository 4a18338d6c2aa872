"""Pinhole cameras: the one convention every part of lift3d shares.

Frames and units
----------------
* World: right-handed, +Y up, metres. Without given cameras the asset sits in
  its category's canonical frame: +Y up, front towards +Z, the object's own
  left towards +X, centred on the ground-plane footprint.
* Camera: OpenGL / NeRF / USD convention. The camera looks down its -Z axis,
  +Y is up and +X is right in the image. ``cam_to_world`` (4x4, float64) maps
  camera coordinates to world coordinates, exactly like
  ``frames[].transform_matrix`` of a NeRF ``transforms.json`` and like the
  local-to-world transform of a ``UsdGeom.Camera``.
* Image: pixel (column ``u``, row ``v``), origin at the top-left corner of the
  top-left pixel, ``u`` right, ``v`` down; pixel centres at ``(i + 0.5, j + 0.5)``.
* Projection of a camera-space point ``(x, y, z)`` with ``z < 0``::

      u = cx + fx * x / (-z)
      v = cy - fy * y / (-z)
      depth = -z                  (metres along the optical axis)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Camera:
    """A pinhole camera with intrinsics in pixels and a camera-to-world pose.

    Attributes:
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels (image frame above).
        width, height: image size in pixels.
        cam_to_world: (4, 4) float64 rigid transform, OpenGL camera axes.
        name: a label (for instance the image file it belongs to).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    cam_to_world: np.ndarray = field(default_factory=lambda: np.eye(4))
    name: str = "camera"

    def __post_init__(self) -> None:
        self.cam_to_world = np.asarray(self.cam_to_world, dtype=np.float64).reshape(4, 4)
        values = [self.fx, self.fy, self.cx, self.cy]
        if not all(math.isfinite(v) for v in values) or not np.all(np.isfinite(self.cam_to_world)):
            raise ValueError("camera parameters must be finite")
        if self.fx <= 0 or self.fy <= 0 or self.width <= 0 or self.height <= 0:
            raise ValueError("camera focal lengths and image size must be positive")

    @classmethod
    def from_fov(cls, fov_x: float, width: int, height: int,
                 cam_to_world: np.ndarray | None = None, name: str = "camera") -> "Camera":
        """Square-pixel camera with horizontal field of view ``fov_x`` (radians), centred principal point."""
        fx = 0.5 * width / math.tan(0.5 * fov_x)
        return cls(fx, fx, width / 2.0, height / 2.0, int(width), int(height),
                   np.eye(4) if cam_to_world is None else cam_to_world, name)

    @property
    def world_to_cam(self) -> np.ndarray:
        """(4, 4) float64 inverse of ``cam_to_world``."""
        return np.linalg.inv(self.cam_to_world)

    @property
    def position(self) -> np.ndarray:
        """(3,) camera centre in world coordinates (metres)."""
        return self.cam_to_world[:3, 3].copy()

    @property
    def intrinsics(self) -> np.ndarray:
        """(4,) float32 ``[fx, fy, cx, cy]`` in pixels, the layout the kernels take."""
        return np.array([self.fx, self.fy, self.cx, self.cy], dtype=np.float32)

    def scaled(self, width: int, height: int) -> "Camera":
        """The same camera for an image resampled to ``width`` x ``height`` pixels."""
        sx, sy = width / self.width, height / self.height
        return Camera(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(width), int(height),
                      self.cam_to_world.copy(), self.name)

    def cropped(self, x0: float, y0: float, width: int, height: int) -> "Camera":
        """The same camera for the sub-image whose top-left corner is pixel ``(x0, y0)``."""
        return Camera(self.fx, self.fy, self.cx - x0, self.cy - y0, int(width), int(height),
                      self.cam_to_world.copy(), self.name)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project (N, 3) world points; return (N, 2) pixel coordinates and (N,) depths (metres)."""
        pts = np.asarray(points, dtype=np.float64)
        w2c = self.world_to_cam
        pc = pts @ w2c[:3, :3].T + w2c[:3, 3]
        depth = -pc[:, 2]
        safe = np.where(np.abs(depth) > 1e-12, depth, 1e-12)
        uv = np.stack([self.cx + self.fx * pc[:, 0] / safe, self.cy - self.fy * pc[:, 1] / safe], axis=1)
        return uv, depth


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 1.0, 0.0])) -> np.ndarray:
    """(4, 4) cam_to_world of a camera at ``eye`` looking at ``target`` (OpenGL axes)."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:  # looking straight up or down: pick any right vector
        right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, true_up, -forward, eye
    return m


def orbit_camera(yaw: float, pitch: float, distance: float, fov_x: float, width: int, height: int,
                 target: np.ndarray = np.zeros(3), name: str = "camera") -> Camera:
    """Camera on a sphere around ``target``.

    ``yaw`` (radians) turns about +Y, 0 = in front of the object (on +Z), positive
    towards +X; ``pitch`` (radians) is elevation above the horizon; ``distance`` in metres.
    """
    direction = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    eye = np.asarray(target, dtype=np.float64) + distance * direction
    return Camera.from_fov(fov_x, width, height, look_at(eye, target), name)
