"""One reconstruction, end to end: photos in, a textured, part-labelled USD asset out.

Stages (each timed; ``progress(stage, fraction)`` reports the overall fraction):

1. ``load``: settings, preset, category and template; every input is validated
   *before* any heavy work, so bad input raises :class:`lift3d.errors.InputError`
   and writes nothing.
2. ``mask``: the object mask of every photo (alpha, ``--mask`` or automatic).
3. ``camera``: with ``transforms.json``, the given cameras and a visual-hull
   placement of the template (the asset is in that world frame); without, the
   camera search of :mod:`.camera_search` (the asset is in the category's
   canonical frame; generic objects get a fixed front view, see
   :func:`generic_camera`).
4. ``shape``: :func:`.shape_fit.fit_shape` (skipped with ``fit_shape=False`` or
   zero steps: the undeformed-template baseline).
5. ``texture``: :func:`.texture.bake_albedo` and the part materials.
6. ``write``: the asset folder (atomic) and, when asked, a reference in a stage.

A cancelled run raises :class:`lift3d.errors.Cancelled` between steps; the
asset is written in one atomic step at the very end, so nothing is left behind.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..requests import CancelToken, ProgressFn, ReconstructRequest, ReconstructResult
from ..asset import Asset
from ..camera import Camera
from ..errors import InputError
from ..naming import sanitize_name, unique_name
from ..settings import Settings, load_settings
from ..templates import Template, load_template
from .camera_search import DEFAULT_FOV_X_DEG, align_to_box, guess_intrinsics, search_camera
from .crops import mask_box
from .pose import Pose
from .shape_fit import CALIBRATED_PRIORS, PHOTO_PRIORS, FitView, ObjectTransform, fit_shape
from .silhouette import hard_mask, mask_iou
from ..templates.car import BODY_SEARCH, WINDOWLESS_SHAPES, car_shape_basis, car_shapes
from .texture import bake_albedo, parts_of
from .wheel_detect import wheels_from_photo
from .wheels import wheels_from_points

STAGES = (("load", 0.02), ("mask", 0.03), ("camera", 0.2), ("shape", 0.55), ("texture", 0.15), ("write", 0.05))
"""Stage names and their share of the overall progress."""
GENERIC_PITCH_DEG = 10.0
"""Elevation assumed for a single photo of a generic object (no template orientation to search)."""


class _Progress:
    """Maps per-stage fractions to the overall fraction and checks for cancellation."""

    def __init__(self, progress: ProgressFn | None, cancel: CancelToken | None) -> None:
        self.fn = progress
        self.cancel = cancel
        self.starts = {}
        acc = 0.0
        for name, share in STAGES:
            self.starts[name] = (acc, share)
            acc += share

    def check(self) -> None:
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()

    def stage(self, name: str) -> Callable[[float], None]:
        start, share = self.starts[name]

        def report(fraction: float) -> None:
            self.check()
            if self.fn is not None:
                self.fn(name, min(1.0, start + share * max(0.0, min(1.0, fraction))))

        report(0.0)
        return report


def _writable_folder(folder: Path, what: str) -> None:
    """Raise InputError unless ``folder`` exists as a writable folder or could be created (nothing is created)."""
    probe = folder.absolute()
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{what} {folder} cannot be created because {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{what} {folder} is not writable")


def _check_stage(stage: Path) -> None:
    """Raise InputError unless a reference can be added to ``stage`` (nothing is created or changed)."""
    if stage.is_dir():
        raise InputError(f"stage file {stage} is a folder")
    if stage.suffix not in (".usda", ".usdc", ".usd"):
        raise InputError(f"stage file {stage} must end in .usda, .usdc or .usd")
    _writable_folder(stage.parent, "stage folder")
    if stage.exists():
        from ..usd.compose import check_stage_layer

        check_stage_layer(stage)


def _asset_name(request: ReconstructRequest, out_dir: Path) -> str:
    """The asset (folder) name: ``request.name`` as given (an existing asset of that name is replaced),
    else the first image's name made unique among ``out_dir``'s entries (``car``, ``car_2``, ...), so a
    second run never overwrites an asset that a stage may already reference."""
    if request.name:
        return sanitize_name(request.name)
    taken = [p.name for p in out_dir.iterdir()] if out_dir.is_dir() else []
    return unique_name(sanitize_name(Path(request.images[0]).name), taken)


def _add_to_stage(stage: Path, asset_path: Path, source: Path) -> str:
    """Reference the asset in ``stage``; returns the prim path.

    In a lift3d shared stage (``lift3d stage init``) the reference goes into this
    writer's own layer, as ``lift3d stage add`` and ``lift3d batch`` do (DESIGN.md
    section 4, Shared stage); any other stage gets it in its root layer.
    """
    from ..usd.shared_stage import SharedStage, is_shared_stage

    if is_shared_stage(stage):
        return SharedStage(stage, create=False).add(asset_path, source=str(source))
    from ..usd.compose import add_reference

    return add_reference(stage, asset_path)


def _fit_camera_to_image(camera: Camera, image: Path, size: tuple[int, int]) -> Camera:
    """``camera`` rescaled to the decoded image ``size`` (width, height); InputError if the aspect differs."""
    if (camera.width, camera.height) == tuple(size):
        return camera
    if abs(camera.width / camera.height - size[0] / size[1]) > 0.01:
        raise InputError(f"the camera of {image} is {camera.width}x{camera.height} pixels but the image is "
                         f"{size[0]}x{size[1]}, a different aspect ratio")
    return camera.scaled(*size)


def _camera_dict(camera: Camera, image: Path) -> dict[str, Any]:
    return {"image": str(image), "fx": camera.fx, "fy": camera.fy, "cx": camera.cx, "cy": camera.cy,
            "width": camera.width, "height": camera.height, "cam_to_world": camera.cam_to_world.tolist()}


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
    pose: Pose = align_to_box(pts, target, base, 0.0, math.radians(GENERIC_PITCH_DEG), centre, size)
    return Camera(base.fx, base.fy, base.cx, base.cy, w, h, pose.cam_to_world(target), "estimated")


def run_reconstruction(request: ReconstructRequest, progress: ProgressFn | None = None,
                       cancel: CancelToken | None = None, settings: Settings | None = None) -> ReconstructResult:
    """Reconstruct ``request`` (see the module docstring); returns what was written and measured.

    torch runs single-threaded meanwhile: its tensors here are small (a few
    thousand vertices, one image), where intra-op threads cost far more in
    synchronisation than they save; the pixel work runs in the Warp kernels'
    own thread pool.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(request, progress, cancel, settings)
    finally:
        torch.set_num_threads(threads)


def _run(request: ReconstructRequest, progress: ProgressFn | None, cancel: CancelToken | None,
         settings: Settings | None) -> ReconstructResult:
    from ..io.images import load_image, object_mask
    from ..io.views import cameras_for_images

    timings: dict[str, float] = {}
    steps = _Progress(progress, cancel)
    clock = time.perf_counter()

    # 1. load and validate -------------------------------------------------------------
    report = steps.stage("load")
    settings = settings or load_settings(request.config)
    preset = settings.preset(request.preset)
    category = settings.category(request.category)
    if not request.images:
        raise InputError("no input images were given")
    if request.mask is not None and len(request.images) > 1:
        raise InputError("a mask file can only be given with a single image")
    if len(request.images) > 1 and request.views is None:
        raise InputError("several images need their cameras: pass a transforms.json with --views")
    out_dir = Path(request.out_dir) if request.out_dir is not None else Path(settings.output.folder)
    _writable_folder(out_dir, "output folder")
    if request.stage is not None:
        _check_stage(Path(request.stage))
    images = [load_image(p) for p in request.images]
    cameras_given = cameras_for_images(request.views, request.images) if request.views is not None else None
    if cameras_given is not None:
        cameras_given = [_fit_camera_to_image(cam, img.path, img.size) for cam, img in zip(cameras_given, images)]
    template = load_template(settings.template_path(request.category))
    if template.symmetric != category.symmetric:  # the category's setting decides (config/categories.toml)
        template = dataclasses.replace(template, symmetric=category.symmetric)
    report(1.0)
    timings["load"] = time.perf_counter() - clock

    # 2. masks -----------------------------------------------------------------------
    clock = time.perf_counter()
    report = steps.stage("mask")
    masks = [object_mask(img, request.mask) for img in images]
    report(1.0)
    timings["mask"] = time.perf_counter() - clock

    # 3. cameras and placement -------------------------------------------------------------
    clock = time.perf_counter()
    report = steps.stage("camera")
    is_car = template.wheels is not None
    camera_info: dict[str, Any] = {}
    if cameras_given is None:
        if is_car:
            shapes = car_shapes(template)
            est = search_camera(template, masks[0], preset.camera_yaw_steps, preset.camera_pitch_steps,
                                preset.camera_hypotheses, preset.camera_refine_steps, preset.sigma,
                                shapes=shapes, bases={k: car_shape_basis(template, k) for k in shapes},
                                body_search=BODY_SEARCH, progress=report, check=steps.check)
            cameras, start = [est.camera], est.points.astype(np.float64)
            camera_info = {"shape": est.shape, "yaw_deg": math.degrees(est.pose.yaw) % 360.0,
                           "pitch_deg": math.degrees(est.pose.pitch),
                           "fov_x_deg": DEFAULT_FOV_X_DEG, "loss": est.loss, "alternatives": est.alternatives}
        else:
            cameras, start = [generic_camera(template, masks[0])], template.points.astype(np.float64)
            camera_info = {"yaw_deg": 0.0, "pitch_deg": GENERIC_PITCH_DEG, "fov_x_deg": DEFAULT_FOV_X_DEG}
        transform = ObjectTransform()
        symmetry_plane = (1.0, 0.0, 0.0, 0.0) if template.symmetric else None
    else:
        from .visual_hull import place_template

        cameras = cameras_given
        start, transform = place_template(template, cameras, masks, is_car, preset.sigma, steps.check)
        normal = np.array([math.cos(transform.yaw), 0.0, -math.sin(transform.yaw)])
        symmetry_plane = (*normal.tolist(), float(normal @ transform.translation)) if template.symmetric else None
        camera_info = {"given": True, "placement_yaw_deg": math.degrees(transform.yaw) % 360.0}
    for cam, img in zip(cameras, images):
        cam.name = img.path.name
    report(1.0)
    timings["camera"] = time.perf_counter() - clock

    # 4. shape ------------------------------------------------------------------------
    clock = time.perf_counter()
    report = steps.stage("shape")
    fit_info: dict[str, Any] = {}
    if request.fit_shape and sum(preset.steps) > 0:
        views = [FitView(cam, m) for cam, m in zip(cameras, masks)]
        calibrated = cameras_given is not None
        # the wheels start as the chosen body shape's (the fit's default); a single photo's also take the radius
        # of the tyres found in the photo (the camera is in the object frame here: identity transform)
        wheel_start = None
        if is_car and not calibrated:
            wheel_start, n_tyres = wheels_from_photo(images[0].rgb, masks[0], cameras[0],
                                                     wheels_from_points(template.wheels, start),
                                                     (float(start[:, 2].min()), float(start[:, 2].max())))
            fit_info["tyres_found"] = n_tyres
        fit = fit_shape(template, views, start, transform, preset.levels, preset.steps, preset.sigma,
                        fit_pose=calibrated, fit_scale=(True, True, calibrated),
                        wheel_start=wheel_start,
                        keep_length=not calibrated, fit_wheels=calibrated,
                        priors=CALIBRATED_PRIORS if calibrated else PHOTO_PRIORS,
                        progress=report, check=steps.check)
        points = fit.points.astype(np.float64)
        transform = fit.transform
        fit_info.update({"level_losses": fit.level_losses, "scale": fit.transform.scale.tolist()})
        if fit.wheels is not None:
            fit_info["wheels"] = fit.wheels.as_dict()
        if symmetry_plane is not None and calibrated:
            normal = np.array([math.cos(transform.yaw), 0.0, -math.sin(transform.yaw)])
            symmetry_plane = (*normal.tolist(), float(normal @ transform.translation))
    else:
        points = transform.apply(start)
    report(1.0)
    timings["shape"] = time.perf_counter() - clock

    # 5. texture ------------------------------------------------------------------------
    clock = time.perf_counter()
    report = steps.stage("texture")
    size = min(preset.texture_size, settings.output.texture_size)
    texture, coverage = bake_albedo(points, template, [(img.rgb, m, cam) for img, m, cam in
                                                       zip(images, masks, cameras)],
                                    size, symmetry_plane, preset.photometric_steps, steps.check, report)
    parts, materials = parts_of(template, glass=camera_info.get("shape") not in WINDOWLESS_SHAPES)
    timings["texture"] = time.perf_counter() - clock

    # 6. metrics and write ----------------------------------------------------------------------
    clock = time.perf_counter()
    report = steps.stage("write")
    ious = [mask_iou(hard_mask(points, template.faces, cam, cam.width, cam.height), m)
            for cam, m in zip(cameras, masks)]
    metrics: dict[str, Any] = {"input_view_iou": float(np.mean(ious)), "texture_coverage": coverage}
    if len(ious) > 1:
        metrics["input_view_ious"] = [float(v) for v in ious]
    steps.check()
    timings["write"] = 0.0
    provenance = {
        "lift3d_version": __version__,
        "sources": [{"image": img.path.name, "sha256": img.digest, "width": img.width, "height": img.height}
                    for img in images],
        "views": str(request.views.name) if request.views is not None else None,
        "category": request.category, "preset": request.preset, "preset_settings": preset.model_dump(),
        "fit_shape": bool(request.fit_shape), "template": template.name,
        "camera": camera_info, "fit": fit_info, "metrics": metrics, "timings": dict(timings),
    }
    name = _asset_name(request, out_dir)  # chosen just before writing: concurrent runs rarely race for it
    asset = Asset(name=name, points=points.astype(np.float32), faces=template.faces, uv=template.uv,
                  uv_faces=template.uv_faces, texture=texture, parts=parts, materials=materials,
                  cameras=cameras, provenance=provenance)
    from ..usd.writer import write_asset

    added: list[str] = []

    def add_to_stage(layer: Path) -> None:  # if this fails, the stage is unchanged and the asset folder restored
        added.append(_add_to_stage(Path(request.stage), layer, images[0].path))

    asset_path = write_asset(asset, out_dir, settings.output.format,
                             then=add_to_stage if request.stage is not None else None)
    prim_path = added[0] if added else None
    timings["write"] = time.perf_counter() - clock
    if progress is not None:  # no cancellation check: the asset is written, so the run has succeeded
        progress("write", 1.0)
    return ReconstructResult(name=name, asset_path=asset_path, prim_path=prim_path,
                             cameras=[_camera_dict(c, img.path) for c, img in zip(cameras, images)],
                             metrics={k: v for k, v in metrics.items() if isinstance(v, float)}, timings=timings)
