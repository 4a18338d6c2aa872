"""The run's last stage: metrics, provenance, the asset folder, and its reference in a stage."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..asset import Asset
from ..camera import Camera
from ..naming import free_name, sanitize_name
from ..requests import ReconstructRequest, ReconstructResult
from .initialise import Initial
from .inputs import Inputs, ObjectMask
from .signals import quality_signals
from .silhouette import hard_mask, mask_iou


def asset_name(request: ReconstructRequest, out_dir: Path) -> str:
    """The asset (folder) name: ``request.name`` as given (an existing asset of that name is replaced),
    else the first image's name made unique among ``out_dir``'s entries (``car``, ``car_2``, ...), so a
    second run never overwrites an asset that a stage may already reference."""
    if request.name:
        return sanitize_name(request.name)
    return free_name(Path(request.images[0]).name, out_dir)


def placement(camera: Camera, reference: Camera, points: np.ndarray) -> np.ndarray:
    """(4, 4) transform that puts an object (``points``, seen by ``camera``, both in its own asset
    frame) into the frame of another object of the same photo, seen by ``reference``.

    The transform is a turn about +Y and a move in the ground plane, so every object stays upright
    on the ground (their pitch estimates differ a little): the turn is that of
    ``reference @ inv(camera)``, and the move puts the object's centre where the reference
    camera's ray through the centre's pixel meets the centre's height, so the object lands on its
    own pixels in the photo.
    """
    full = reference.cam_to_world @ np.linalg.inv(camera.cam_to_world)
    front = full[:3, :3] @ np.array([0.0, 0.0, 1.0])
    yaw = math.atan2(front[0], front[2])
    c, s = math.cos(yaw), math.sin(yaw)
    turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    pts = np.asarray(points, dtype=np.float64)
    centre = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
    pixel = camera.project(centre[None])[0][0]
    ray = reference.cam_to_world[:3, :3] @ np.array([(pixel[0] - reference.cx) / reference.fx,
                                                     -(pixel[1] - reference.cy) / reference.fy, -1.0])
    origin = reference.position
    target = full[:3, :3] @ centre + full[:3, 3]
    if abs(ray[1]) > 1e-9:
        along = (centre[1] - origin[1]) / ray[1]
        if along > 0.0 and math.isfinite(along):
            target = origin + along * ray
    out = np.eye(4)
    out[:3, :3] = turn
    move = target - turn @ centre
    out[0, 3], out[2, 3] = move[0], move[2]
    return out


def camera_record(camera: Camera, image: Path) -> dict[str, Any]:
    """A camera as the result's JSON record: intrinsics (pixels), size and camera-to-world."""
    return {"image": str(image), "fx": camera.fx, "fy": camera.fy, "cx": camera.cx, "cy": camera.cy,
            "width": camera.width, "height": camera.height, "cam_to_world": camera.cam_to_world.tolist()}


def write_result(inputs: Inputs, masks: list[np.ndarray], initial: Initial, points: np.ndarray,
                 texture: np.ndarray, coverage: float, parts: list, materials: dict, fit_info: dict,
                 timings: dict[str, float], check: Callable[[], None],
                 add_to_stage: Callable[[Path, Path, Path], str], mask_info: list[dict] | None = None,
                 given: ObjectMask | None = None) -> ReconstructResult:
    """Measure the input-view fit and the quality signals (:mod:`.signals`), assemble the provenance
    and write the asset (atomic).

    ``mask_info`` is where each photo's mask came from; ``given`` is the object when the photo
    holds several (with a ``reference`` camera, the asset is placed in the largest object's frame).

    ``add_to_stage(stage, asset_layer, source_image)`` adds the reference when the request
    names a stage; it runs while the new asset folder is in place, and if it fails the
    stage is unchanged and any asset folder the run replaced is restored.
    """
    from ..usd.writer import write_asset

    request, template, images, cameras = inputs.request, inputs.template, inputs.images, initial.cameras
    ious = [mask_iou(hard_mask(points, template.faces, cam, cam.width, cam.height), m)
            for cam, m in zip(cameras, masks)]
    metrics: dict[str, Any] = {"input_view_iou": float(np.mean(ious)), "texture_coverage": coverage}
    if len(ious) > 1:
        metrics["input_view_ious"] = [float(v) for v in ious]
    check()
    mask_info = mask_info if mask_info is not None else [{} for _ in masks]
    signals, warnings = quality_signals(masks, mask_info, initial.info, metrics, [img.path.name for img in images])
    placed = None
    if given is not None and given.reference is not None:
        placed = placement(cameras[0], given.reference, points)
        points = points @ placed[:3, :3].T + placed[:3, 3]
        cameras = [dataclasses.replace(c, cam_to_world=placed @ c.cam_to_world) for c in cameras]
    provenance = {
        "lift3d_version": __version__,
        "sources": [{"image": img.path.name, "sha256": img.digest, "width": img.width, "height": img.height}
                    for img in images],
        "views": str(request.views.name) if request.views is not None else None,
        "category": request.category, "preset": request.preset, "preset_settings": inputs.preset.model_dump(),
        "fit_shape": bool(request.fit_shape), "template": template.name,
        "camera": initial.info, "fit": fit_info, "metrics": metrics, "timings": dict(timings),
        "signals": signals, "warnings": warnings,
    }
    if placed is not None:
        provenance["placement"] = {"frame": "the largest object's, from the same photo",
                                   "transform": placed.tolist()}
    name = asset_name(request, inputs.out_dir)  # chosen just before writing: concurrent runs rarely race for it
    asset = Asset(name=name, points=points.astype(np.float32), faces=template.faces, uv=template.uv,
                  uv_faces=template.uv_faces, texture=texture, parts=parts, materials=materials,
                  cameras=cameras, provenance=provenance)
    added: list[str] = []

    def then(layer: Path) -> None:
        added.append(add_to_stage(Path(request.stage), layer, images[0].path))

    asset_path = write_asset(asset, inputs.out_dir, inputs.settings.output.format,
                             then=then if request.stage is not None else None)
    return ReconstructResult(name=name, asset_path=asset_path, prim_path=added[0] if added else None,
                             cameras=[camera_record(c, img.path) for c, img in zip(cameras, images)],
                             metrics={k: v for k, v in metrics.items() if isinstance(v, float)},
                             timings=dict(timings), warnings=warnings, signals=signals)
