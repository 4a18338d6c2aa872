"""The run's initialisation stage: cameras and a starting shape for the fit.

* Calibrated views (``transforms.json``): the given cameras and a visual-hull
  placement of the template (the asset is in that world frame).
* One photo without camera, per category:
  - car: the learned predictor's hypotheses (:mod:`.learned_init`), the template
    grid search (:mod:`.camera_search`), or both, keeping the lower silhouette
    loss; ``both`` skips the search when the learned camera already fits the mask
    (loss at most :data:`SEARCH_SKIP_LOSS`) (``init``: ``learned``, ``search``,
    ``both``; ``predicted`` keeps the
    predictor's best guess unrefined, for evaluation). Without a usable model file,
    ``both`` falls back to the search with a warning in the provenance;
    ``learned`` is an error.
  - generic: a fixed front view at :data:`GENERIC_PITCH_DEG` (an icosphere has no
    orientation to search).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..camera import Camera
from ..settings import Preset, Settings
from ..templates import Template
from .camera_search import DEFAULT_FOV_X_DEG, CameraEstimate, align_to_box, guess_intrinsics
from .crops import mask_box
from .inputs import Inputs
from .shape_fit import ObjectTransform

SEARCH_SKIP_LOSS = 0.05
"""``init = both`` runs the grid search only when the learned camera's silhouette loss is above this.
Measured on 60 generated photos per preset (``python tools/init_gate.py --photos 60 --preset fast``
and ``balanced``, seed 1000, never the evaluation set): the learned loss was at most 0.05 on 83-85 %
of them, and on none of those did the search find a better yaw; where the search wins on loss it
is mostly a front/back flip of a near-symmetric silhouette (165-175 degrees off). Skipping it
there halves the camera stage (learned 0.4-0.65 s, search 0.8-1.8 s)."""
GENERIC_PITCH_DEG = 10.0
"""Elevation assumed for a single photo of a generic object (no template orientation to search)."""


@dataclass(frozen=True)
class InitOptions:
    """How a single photo is initialised (from the preset and the predictor settings)."""

    mode: str
    model: Path
    hypotheses: int
    yaw_steps: int
    pitch_steps: int
    search_hypotheses: int
    refine_steps: int
    sigma: float
    predicted_fov: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, preset: Preset, mode: str | None) -> "InitOptions":
        mode = mode or settings.predictor.init  # a request's init was checked by lift3d.preflight
        return cls(mode, settings.predictor.model_path(), settings.predictor.hypotheses, preset.camera_yaw_steps,
                   preset.camera_pitch_steps, preset.camera_hypotheses, preset.camera_refine_steps, preset.sigma,
                   settings.predictor.fov == "predicted")


@dataclass
class Initial:
    """Where the fit starts.

    Attributes:
        cameras: one per photo (asset frame).
        start: (V, 3) object-frame starting vertices.
        transform: object-to-asset transform.
        symmetry_plane: (nx, ny, nz, d) of the mirror plane in the asset frame, or ``None``.
        body: the chosen body shape or type ("" for non-vehicles).
        info: provenance record of this stage.
    """

    cameras: list[Camera]
    start: np.ndarray
    transform: ObjectTransform
    symmetry_plane: tuple[float, float, float, float] | None
    body: str = ""
    info: dict[str, Any] = field(default_factory=dict)


def generic_camera(template: Template, mask: np.ndarray) -> Camera:
    """Camera of a single photo of a generic object: front view at :data:`GENERIC_PITCH_DEG` elevation.

    The icosphere template has no orientation to search, so the object is put
    in front of the camera (yaw 0, i.e. the photo shows the object's front,
    +Z) with distance and offsets matching the mask's bounding box.
    Returns the camera for the original image.
    """
    h, w = mask.shape
    base = guess_intrinsics(w, h, DEFAULT_FOV_X_DEG)
    pts = template.points.astype(np.float64)
    target = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
    centre, size = mask_box(mask)
    pose = align_to_box(pts, target, base, 0.0, math.radians(GENERIC_PITCH_DEG), centre, size)
    return Camera(base.fx, base.fy, base.cx, base.cy, w, h, pose.cam_to_world(target), "estimated")


def _search(template: Template, mask: np.ndarray, options: InitOptions, progress, check) -> tuple[CameraEstimate, dict]:
    from ..templates.car import BODY_SEARCH, car_shape_basis, car_shapes
    from .camera_search import search_camera

    shapes = car_shapes(template)
    est = search_camera(template, mask, options.yaw_steps, options.pitch_steps, options.search_hypotheses,
                        options.refine_steps, options.sigma, shapes=shapes,
                        bases={k: car_shape_basis(template, k) for k in shapes}, body_search=BODY_SEARCH,
                        progress=progress, check=check)
    return est, {"fov_x_deg": DEFAULT_FOV_X_DEG, "fov_source": "assumed"}


def car_photo(inputs: Inputs, mask: np.ndarray, options: InitOptions, progress: Callable[[float], None],
              check: Callable[[], None]) -> Initial:
    """Camera and starting shape of one car photo without camera (see the module docstring)."""
    from ..learn.model import ModelError
    from .learned_init import learned_camera, predicted_only

    template, rgb = inputs.template, inputs.images[0].rgb
    candidates: list[tuple[str, CameraEstimate, dict]] = []
    warnings: list[str] = []
    if options.mode in ("learned", "both", "predicted"):
        try:
            fov = None if options.predicted_fov else DEFAULT_FOV_X_DEG
            if options.mode == "predicted":
                est, info = predicted_only(template, rgb, mask, options.model, fov)
            else:
                report = (lambda f: progress(0.5 * f)) if options.mode == "both" else progress
                est, info = learned_camera(template, rgb, mask, options.model, options.hypotheses,
                                           options.refine_steps, options.sigma, fov, progress=report, check=check)
            candidates.append(("learned", est, info))
        except ModelError as exc:
            if options.mode != "both":
                raise
            warnings.append(f"the vehicle predictor could not be used ({exc}); the grid search was used instead")
    skip_search = options.mode == "both" and bool(candidates) and candidates[0][1].loss <= SEARCH_SKIP_LOSS
    if options.mode in ("search", "both") and not skip_search:
        report = (lambda f: progress(0.5 + 0.5 * f)) if options.mode == "both" and candidates else progress
        est, info = _search(template, mask, options, report, check)
        candidates.append(("search", est, info))
    source, est, info = min(candidates, key=lambda c: c[1].loss if math.isfinite(c[1].loss) else -1.0)
    record = {"init": options.mode, "chosen": source, "shape": est.shape,
              "yaw_deg": math.degrees(est.pose.yaw) % 360.0, "pitch_deg": math.degrees(est.pose.pitch),
              "loss": est.loss, "alternatives": est.alternatives, **info}
    if len(candidates) > 1:
        record["losses"] = {name: c.loss for name, c, _ in candidates}
    if skip_search:
        record["search_skipped"] = f"learned loss {est.loss:.3f} <= {SEARCH_SKIP_LOSS}"
    if warnings:
        record["warnings"] = warnings
    plane = (1.0, 0.0, 0.0, 0.0) if template.symmetric else None
    return Initial([est.camera], est.points.astype(np.float64), ObjectTransform(), plane, est.shape, record)


def generic_photo(inputs: Inputs, mask: np.ndarray) -> Initial:
    """Camera and starting shape of one photo of a generic object."""
    template = inputs.template
    plane = (1.0, 0.0, 0.0, 0.0) if template.symmetric else None
    return Initial([generic_camera(template, mask)], template.points.astype(np.float64), ObjectTransform(), plane,
                   "", {"yaw_deg": 0.0, "pitch_deg": GENERIC_PITCH_DEG, "fov_x_deg": DEFAULT_FOV_X_DEG})


def calibrated(inputs: Inputs, masks: list[np.ndarray], sigma: float, check: Callable[[], None]) -> Initial:
    """The given cameras and the template placed in their world frame by the visual hull."""
    from .visual_hull import place_template

    template = inputs.template
    start, transform = place_template(template, inputs.cameras, masks, inputs.is_car, sigma, check)
    return Initial(list(inputs.cameras), start, transform, symmetry_plane(transform) if template.symmetric else None,
                   "", {"given": True, "placement_yaw_deg": math.degrees(transform.yaw) % 360.0})


def symmetry_plane(transform: ObjectTransform) -> tuple[float, float, float, float]:
    """The object's X = 0 mirror plane in the asset frame, as (nx, ny, nz, d)."""
    normal = np.array([math.cos(transform.yaw), 0.0, -math.sin(transform.yaw)])
    return (*normal.tolist(), float(normal @ transform.translation))


def initialise(inputs: Inputs, masks: list[np.ndarray], options: InitOptions, progress: Callable[[float], None],
               check: Callable[[], None]) -> Initial:
    """Cameras and a starting shape for the fit (see the module docstring)."""
    if inputs.cameras is not None:
        initial = calibrated(inputs, masks, options.sigma, check)
    elif inputs.is_car:
        initial = car_photo(inputs, masks[0], options, progress, check)
    else:
        initial = generic_photo(inputs, masks[0])
    for cam, img in zip(initial.cameras, inputs.images):
        cam.name = img.path.name
    return initial
