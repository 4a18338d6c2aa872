"""Training renders of procedural vehicles through the Warp visibility rasterizer.

One sample is a random vehicle (:mod:`lift3d.templates.vehicles`) under a random
camera, rendered straight into the square object crop the predictor reads (the
same crop :func:`lift3d.pipeline.crops.square_box` makes from a photo's mask):

* Camera: yaw over the full circle; elevation from -5 to 89 degrees (street
  level to drones and CCTV looking almost straight down; 70 % of the views
  below 35 degrees); horizontal field of view 20-70 degrees; a small roll;
  the object anywhere in the frame; the crop's margin and centre jittered.
* Appearance: a random paint colour, darker sills on some, glass, tyre and lamp
  materials per template part, a smooth multiplicative noise texture; Lambert
  shading with a random sun plus ambient light, and a view-dependent sheen on
  glass. Rendered at twice the size and averaged down (anti-aliasing).

Backgrounds, occluders and colour jitter are applied per batch in
:mod:`lift3d.learn.data`, so one cached render serves many training views.

Labels (all in the canonical frame, see :mod:`lift3d.pipeline.pose`): yaw and
pitch of the camera, its focal length in crop pixels over the crop size
(``focal``), the body type and the generator parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..camera import Camera
from ..pipeline.crops import CROP_MARGIN
from ..pipeline.pose import Pose
from ..templates import Template
from ..templates.vehicles import Vehicle, sample_vehicle, vehicle_points

PITCH_RANGE_DEG = (-5.0, 89.0)
LOW_PITCH_SHARE = 0.7
LOW_PITCH_MAX_DEG = 35.0
FOV_RANGE_DEG = (20.0, 70.0)
"""Camera elevation range, the share of views below :data:`LOW_PITCH_MAX_DEG`, and the horizontal field of view."""


@dataclass
class Render:
    """One training sample.

    Attributes:
        rgb: (S, S, 3) float32 linear-ish colour in [0, 1] of the vehicle on black.
        mask: (S, S) float32 coverage in [0, 1].
        vehicle: the procedural vehicle drawn.
        yaw, pitch: camera pose about the vehicle's box centre, radians.
        focal: focal length in crop pixels divided by the crop size (``fx * S / side / S``).
    """

    rgb: np.ndarray
    mask: np.ndarray
    vehicle: Vehicle
    yaw: float
    pitch: float
    focal: float


def sample_pitch(rng: np.random.Generator) -> float:
    """A camera elevation in radians (see the module docstring)."""
    if rng.random() < LOW_PITCH_SHARE:
        return math.radians(rng.uniform(PITCH_RANGE_DEG[0], LOW_PITCH_MAX_DEG))
    return math.radians(rng.uniform(LOW_PITCH_MAX_DEG, PITCH_RANGE_DEG[1]))


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float32)


def part_albedo(template: Template, rng: np.random.Generator) -> np.ndarray:
    """(P, 3) float32 random albedo per template part (paint, glass, tyre, lamp materials)."""
    if rng.random() < 0.3:  # greys, blacks and whites are the commonest car colours
        paint = np.full(3, rng.uniform(0.04, 0.9), dtype=np.float32) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    else:
        paint = _hsv_to_rgb(rng.random(), rng.uniform(0.3, 1.0), rng.uniform(0.15, 0.95))
    colours = {
        "body": paint,
        "window": np.array([0.05, 0.07, 0.09], np.float32) + rng.uniform(0.0, 0.15),
        "wheel": np.full(3, rng.uniform(0.02, 0.12), np.float32),
        "headlight": np.array([0.95, 0.95, 0.9], np.float32) * rng.uniform(0.7, 1.0),
        "taillight": np.array([0.8, 0.05, 0.05], np.float32) * rng.uniform(0.6, 1.0),
    }
    return np.stack([colours.get(label, paint) for label in template.part_labels]).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """(size, size) float32 smooth noise in about [-1, 1] (bilinearly upsampled random grid)."""
    import cv2

    grid = rng.uniform(-1.0, 1.0, (cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def random_camera(points: np.ndarray, rng: np.random.Generator, size: int,
                  yaw: float | None = None, pitch: float | None = None) -> tuple[Camera, Pose, np.ndarray]:
    """A random camera looking at ``points`` (V, 3), for a ``size``^2 crop around their projection.

    Returns the crop camera, the pose (about the box centre) and the box centre (3,).
    """
    target = 0.5 * (points.min(axis=0) + points.max(axis=0))
    extent = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    yaw = rng.uniform(0.0, 2.0 * math.pi) if yaw is None else yaw
    pitch = sample_pitch(rng) if pitch is None else pitch
    fov = math.radians(rng.uniform(*FOV_RANGE_DEG))
    full = 512
    fx = 0.5 * full / math.tan(0.5 * fov)
    # the object fills 25-90 % of the frame's width, anywhere in it
    fill = rng.uniform(0.25, 0.9)
    distance = max(extent * fx / (fill * full), 0.6 * extent)
    offset = rng.uniform(-0.25, 0.25, 2) * (1.0 - fill) * full * distance / fx
    pose = Pose(yaw, pitch, math.radians(rng.normal(0.0, 1.5)), distance, float(offset[0]), float(offset[1]))
    cam = Camera(fx, fx, 0.5 * full, 0.5 * full, full, full, pose.cam_to_world(target))
    uv, _ = cam.project(points)
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    margin = CROP_MARGIN * rng.uniform(0.8, 1.25)
    side = max(hi - lo) * (1.0 + 2.0 * margin)
    centre = 0.5 * (lo + hi) + rng.normal(0.0, 0.02, 2) * side
    x0, y0 = centre - 0.5 * side
    crop = cam.cropped(float(x0), float(y0), max(int(round(side)), 1), max(int(round(side)), 1))
    crop = crop.scaled(size, size)
    return crop, pose, target


def shade(template: Template, points: np.ndarray, camera: Camera, size: int, albedo: np.ndarray,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Render (size, size, 3) colour and (size, size) coverage of the mesh, 2x supersampled."""
    from ..kernels.raster import rasterize
    from ..preview import face_normals

    hi = 2 * size
    cam = camera.scaled(hi, hi)
    tri = rasterize(points.astype(np.float32), template.faces, cam, hi, hi, device="cpu").tri_id.numpy()
    covered = tri >= 0
    tris = points[template.faces]
    normals = face_normals(points, template.faces)
    elevation = rng.uniform(0.15, 1.4)
    azimuth = rng.uniform(0.0, 2.0 * math.pi)
    sun = np.array([math.cos(elevation) * math.sin(azimuth), math.sin(elevation),
                    math.cos(elevation) * math.cos(azimuth)])
    ambient = rng.uniform(0.25, 0.6)
    strength = rng.uniform(0.4, 0.9)
    eye = camera.position
    view = eye - tris.mean(axis=1)
    view /= np.maximum(np.linalg.norm(view, axis=1, keepdims=True), 1e-12)
    # faces are wound outwards; a face seen from behind (inside of a thin part) is lit like its front
    facing = np.sign(np.einsum("ij,ij->i", normals, view))[:, None]
    n = normals * np.where(facing == 0, 1.0, facing)
    lambert = np.clip(n @ sun, 0.0, None)
    light = ambient + strength * lambert
    colour = albedo[template.face_part] * light[:, None]
    glass = np.array([label == "window" for label in template.part_labels])[template.face_part]
    sky = rng.uniform(0.3, 0.8)
    sheen = sky * np.clip(n[:, 1], 0.0, 1.0) * (1.0 - np.abs(np.einsum("ij,ij->i", n, view))) ** 2
    colour[glass] += sheen[glass, None]
    lamp = np.array([label in ("headlight", "taillight") for label in template.part_labels])[template.face_part]
    colour[lamp] = albedo[template.face_part][lamp] * (0.7 + 0.3 * light[lamp, None])
    image = np.zeros((hi, hi, 3), np.float32)
    image[covered] = colour[tri[covered]]
    texture = 1.0 + rng.uniform(0.0, 0.15) * _smooth_noise(rng, hi, int(rng.integers(4, 12)))
    image *= texture[..., None]
    rgb = image.reshape(size, 2, size, 2, 3).mean(axis=(1, 3))
    cover = covered.astype(np.float32).reshape(size, 2, size, 2).mean(axis=(1, 3))
    return np.clip(rgb, 0.0, 1.0), cover


def render_sample(template: Template, rng: np.random.Generator, size: int,
                  shares: dict[str, float] | None = None, vehicle: Vehicle | None = None) -> Render:
    """Draw a vehicle (or use ``vehicle``), a camera and materials; render the crop at ``size`` pixels."""
    vehicle = vehicle or sample_vehicle(rng, shares=shares)
    points = vehicle_points(vehicle, template)
    camera, pose, _ = random_camera(points, rng, size)
    rgb, mask = shade(template, points, camera, size, part_albedo(template, rng), rng)
    return Render(rgb, mask, vehicle, pose.yaw % (2.0 * math.pi), pose.pitch, camera.fx / size)


def render_shape(template: Template, points: np.ndarray, vehicle: Vehicle, rng: np.random.Generator,
                 size: int) -> Render:
    """Render given per-vertex ``points`` (a registered user asset on the template's topology) as
    :func:`render_sample` renders a procedural vehicle: a random camera and materials; ``vehicle``
    is the label (the generator parameters fitted to the shape)."""
    camera, pose, _ = random_camera(points, rng, size)
    rgb, mask = shade(template, points, camera, size, part_albedo(template, rng), rng)
    return Render(rgb, mask, vehicle, pose.yaw % (2.0 * math.pi), pose.pitch, camera.fx / size)
