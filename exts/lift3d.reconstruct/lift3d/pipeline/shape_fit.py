"""Shape fit: deform the template so its silhouettes match the object masks in every view.

Model (object frame = the template's canonical frame, metres)::

    x      = sym( (I + lambda L)^-1 u )         body: large-steps parametrisation (Nicolet et al. 2021)
    x[w]   = wheels(axle_z, radius, track, width)   tyres rebuilt from parameters (:mod:`.wheels`)
    X      = Ry(yaw) (scale * x) + translation  global similarity with anisotropic scale (asset frame)

``sym`` averages each vertex with the mirror image of its mirror partner
(``x_i <- (x_i + P x_m(i)) / 2``, ``P = diag(-1, 1, 1)``), so the mesh is exactly
left-right symmetric at every step: the independent half carries the
information and the other half follows with x negated. Because the fitted
mesh is exactly symmetric, the *mirrored virtual view* of a single photo
(:func:`lift3d.pipeline.pose.mirrored_camera` with the flipped mask) would
reproduce the input view's loss term exactly, so it is implied rather than
rendered; it is used where it adds information, in the texture bake.

Loss per view: :func:`.silhouette.silhouette_loss` between the soft
silhouette and :func:`.crops.soft_target` of the mask, on a square crop around
the object at each working resolution of ``levels`` (coarse to fine); plus a
Laplacian term on the displacement from the template (keeps the template's
details), a normal-consistency term (keeps the surface smooth), a wheel-arch
term (the body may not grow over the tyres) and a weak prior keeping the
global scale near its start. Optimiser: Adam.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..camera import Camera
from ..optim import Adam
from ..kernels.mesh_ops import MeshTopology
from ..kernels.torch_geometry import LargeStepsParam, laplacian, normal_consistency
from ..templates import Template
from .crops import crop_camera, soft_target, square_box
from .pose import rotation_torch
from .silhouette import silhouette_loss, soft_silhouette_torch
from .wheels import TorchWheels, WheelParams, wheels_from_points

SCALE_PRIOR_WEIGHT = 0.05
ARCH_WEIGHT = 1e3
ARCH_MARGIN = 0.02
"""Metres the body keeps inside the tyres' outer faces around the wheels (see ``arch_penalty``)."""


@dataclass(frozen=True)
class Priors:
    """Strength of the template prior in the shape fit.

    Attributes:
        large_steps_lambda: lambda of the large-steps parametrisation (higher: smoother updates).
        laplacian: weight of the Laplacian term on the displacement from the template.
        normal: weight of the normal-consistency term.
    """

    large_steps_lambda: float
    laplacian: float
    normal: float


PHOTO_PRIORS = Priors(large_steps_lambda=10.0, laplacian=0.2, normal=0.02)
"""A single photo: the template prior shapes everything the photo does not show."""
CALIBRATED_PRIORS = Priors(large_steps_lambda=5.0, laplacian=0.01, normal=0.005)
"""Several calibrated views: their silhouettes bound the surface from several sides, so the prior is
relaxed. On the evaluation renders (4 views, vehicles) this raised the held-out silhouette IoU from
0.917 to 0.924 and F@1% from 0.43 to 0.49 (docs/QUALITY.md); weaker still (lambda 3) fits the
silhouettes a little better but roughens the surface (F@1% 0.48)."""


@dataclass
class FitView:
    """One input view: its camera (original image, asset frame) and (H, W) bool object mask."""

    camera: Camera
    mask: np.ndarray
    weight: float = 1.0


@dataclass
class ObjectTransform:
    """Object frame -> asset frame: ``X = Ry(yaw) (scale * x) + translation`` (radians, -, metres)."""

    yaw: float = 0.0
    scale: np.ndarray = field(default_factory=lambda: np.ones(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) object points -> (N, 3) asset-frame points."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
        return (np.asarray(points, dtype=np.float64) * self.scale) @ rot.T + self.translation


@dataclass
class FitResult:
    """Result of :func:`fit_shape`.

    Attributes:
        points: (V, 3) float32 fitted vertices in the asset frame (metres).
        object_points: (V, 3) float32 fitted vertices in the object frame (symmetric for symmetric templates).
        transform: the fitted object-to-asset transform.
        wheels: fitted wheel parameters (object frame), or ``None``.
        level_losses: silhouette loss (sum over views) at the end of each level.
    """

    points: np.ndarray
    object_points: np.ndarray
    transform: ObjectTransform
    wheels: WheelParams | None
    level_losses: list[float]


class _ShapeModel(torch.nn.Module):
    """The parametrised mesh of the module docstring."""

    def __init__(self, template: Template, start: np.ndarray, transform: ObjectTransform, fit_pose: bool,
                 fit_scale: tuple[bool, bool, bool], keep_length: bool,
                 wheel_start: WheelParams | None, large_steps_lambda: float) -> None:
        super().__init__()
        self.keep_length = keep_length
        self.length = float(np.ptp(start[:, 2]))
        n = len(start)
        self.template = template
        self.x0 = torch.from_numpy(start.astype(np.float64))
        self.large_steps = LargeStepsParam(template.faces, n, lam=large_steps_lambda)
        self.u = torch.nn.Parameter(self.large_steps.to_params(self.x0))
        self.mirror = torch.from_numpy(template.mirror.astype(np.int64))
        self.symmetric = template.symmetric
        self.wheels = (TorchWheels(template.wheels, wheel_start or wheels_from_points(template.wheels, start))
                       if template.wheels is not None else None)
        self.wheel_idx = torch.from_numpy(self.wheels.indices()) if self.wheels is not None else None
        self.body_idx = torch.from_numpy(np.setdiff1d(np.arange(n), template.wheel_vertices))
        self.base_scale = torch.from_numpy(np.asarray(transform.scale, dtype=np.float64))
        self.scale_mask = torch.tensor([float(f) for f in fit_scale], dtype=torch.float64)
        self.log_scale = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        self.yaw = torch.nn.Parameter(torch.tensor(float(transform.yaw), dtype=torch.float64),
                                      requires_grad=fit_pose)
        self.translation = torch.nn.Parameter(torch.from_numpy(np.asarray(transform.translation, dtype=np.float64)),
                                              requires_grad=fit_pose)

    def object_points(self) -> torch.Tensor:
        x = self.large_steps.to_points(self.u)
        if self.symmetric:
            x = 0.5 * (x + x[self.mirror] * torch.tensor([-1.0, 1.0, 1.0], dtype=x.dtype))
        if self.wheels is not None:
            x = x.index_copy(0, self.wheel_idx, self.wheels().reshape(-1, 3))
        if self.keep_length:
            z = x[:, 2]
            lo, hi = z.min(), z.max()
            mid = 0.5 * (lo + hi)
            x = torch.cat([x[:, :2], ((z - mid) * (self.length / (hi - lo)) + mid)[:, None]], dim=1)
        return x

    def arch_penalty(self, x: torch.Tensor) -> torch.Tensor:
        """Wheel arches: sum of squared excursions (m^2) of body vertices beyond the tyres' outer faces.

        A body vertex that lies within a wheel's circle (in y, z) must stay inside
        ``|x| <= track / 2 + width / 2 - ARCH_MARGIN``, so the body never grows over
        the tyres when it is pulled towards a silhouette they belong to.
        """
        with torch.no_grad():  # the wheels are the reference here: only the body is pushed
            axle_z, radius, track, width = self.wheels.values()
        body = x[self.body_idx]
        limit = track / 2 + width / 2 - ARCH_MARGIN
        total = torch.zeros((), dtype=x.dtype)
        for z in axle_z:
            with torch.no_grad():
                near = (body[:, 1] - radius) ** 2 + (body[:, 2] - z) ** 2 < (1.05 * radius) ** 2
            total = total + (torch.relu(body[near, 0].abs() - limit) ** 2).sum()
        return total

    def scale(self) -> torch.Tensor:
        return self.base_scale * torch.exp(self.log_scale * self.scale_mask)

    def to_asset(self, x: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros((), dtype=x.dtype)
        rot = rotation_torch(self.yaw, zero, zero)
        return (x * self.scale()) @ rot.T + self.translation

    def transform(self) -> ObjectTransform:
        with torch.no_grad():
            return ObjectTransform(float(self.yaw), self.scale().numpy().copy(), self.translation.numpy().copy())


def fit_shape(template: Template, views: list[FitView], start: np.ndarray, transform: ObjectTransform,
              levels: list[int], steps: list[int], sigma: float, *, fit_pose: bool = False,
              fit_scale: tuple[bool, bool, bool] = (True, True, False),
              wheel_start: WheelParams | None = None,
              deform: bool = True, keep_length: bool = False, fit_wheels: bool = True,
              priors: Priors = PHOTO_PRIORS,
              progress: Callable[[float], None] | None = None,
              check: Callable[[], None] | None = None) -> FitResult:
    """Fit the template's shape to the views' masks (see the module docstring).

    Args:
        template: the category template (topology, mirror map, wheel rig).
        views: the input views, cameras in the asset frame.
        start: (V, 3) initial object-frame vertices (e.g. the template scaled by the camera search).
        transform: initial object-to-asset transform.
        levels, steps: working resolutions (pixels) and Adam steps per resolution.
        sigma: soft-silhouette sharpness (pixels^2 at each working resolution).
        fit_pose: also optimise the yaw and translation of ``transform`` (calibrated views).
        fit_scale: which axes of ``transform.scale`` are optimised.
        wheel_start: the initial wheels (object frame); default: ``start``'s own tyres, measured by
            :func:`.wheels.wheels_from_points`.
        deform: optimise the shape (vertices and wheels); ``False`` fits only the global transform.
        fit_wheels: optimise the wheel parameters (with ``deform``); ``False`` keeps the start's wheels.
        keep_length: keep the object's extent along Z (its length) at ``start``'s (a single photo
            cannot tell size from distance, so the category's real-world length is kept).
        priors: strength of the template prior (:data:`PHOTO_PRIORS` or :data:`CALIBRATED_PRIORS`).
        progress: called with the fraction of this stage done; check: called every step, raises to cancel.
    """
    check = check or (lambda: None)
    report = progress or (lambda f: None)
    model = _ShapeModel(template, np.asarray(start, dtype=np.float64), transform, fit_pose, fit_scale,
                        keep_length, wheel_start, priors.large_steps_lambda)
    extent = float(np.linalg.norm(np.ptp(start, axis=0)))
    topology = MeshTopology(template.faces, len(start))
    lap = laplacian(model.x0.to(torch.float32), topology, "uniform").to(torch.float64)
    lap_x0 = torch.sparse.mm(lap, model.x0)
    groups = [{"params": [model.log_scale], "lr": 0.01}]
    if deform:
        groups.append({"params": [model.u], "lr": 0.003 * extent})
    if deform and fit_wheels and model.wheels is not None:
        groups.append({"params": list(model.wheels.parameters()), "lr": 0.01})
    if fit_pose:
        groups.append({"params": [model.yaw], "lr": 0.005})
        groups.append({"params": [model.translation], "lr": 0.004 * extent})
    opt = Adam(groups)
    boxes = [square_box(v.mask) for v in views]
    total = max(1, sum(steps))
    done = 0
    level_losses: list[float] = []
    for size, n_steps in zip(levels, steps):
        cams = [crop_camera(v.camera, box, size) for v, box in zip(views, boxes)]
        targets = [torch.from_numpy(soft_target(v.mask, box, size, sigma)).to(torch.float64)
                   for v, box in zip(views, boxes)]
        last = float("nan")
        for _ in range(n_steps):
            check()
            opt.zero_grad()
            x = model.object_points()
            world = model.to_asset(x)
            sil = sum(v.weight * silhouette_loss(soft_silhouette_torch(world, topology, cam, size, size, sigma)
                                                 .to(torch.float64), tgt)
                      for v, cam, tgt in zip(views, cams, targets))
            disp = torch.sparse.mm(lap, x) - lap_x0
            reg = priors.laplacian * (disp ** 2).sum() / (len(x) * extent ** 2) * 1e3
            reg = reg + priors.normal * normal_consistency(x.to(torch.float32), topology).to(torch.float64)
            reg = reg + SCALE_PRIOR_WEIGHT * (model.log_scale ** 2).sum()
            if model.wheels is not None:
                reg = reg + ARCH_WEIGHT * model.arch_penalty(x) / extent ** 2
            loss = sil / max(1, len(views)) + reg
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.log_scale.clamp_(math.log(0.5), math.log(2.0))
            last = float(sil.detach())
            done += 1
            report(done / total)
        level_losses.append(last)
    with torch.no_grad():
        x = model.object_points()
        world = model.to_asset(x)
    return FitResult(world.numpy().astype(np.float32), x.numpy().astype(np.float32), model.transform(),
                     model.wheels.params() if model.wheels is not None else None, level_losses)


@dataclass(frozen=True)
class FitOptions:
    """The fit stage's options (from the preset): working resolutions, Adam steps per level, sharpness."""

    levels: tuple[int, ...]
    steps: tuple[int, ...]
    sigma: float

    @classmethod
    def from_preset(cls, preset) -> "FitOptions":
        return cls(tuple(preset.levels), tuple(preset.steps), preset.sigma)


def fit_stage(template: Template, rgb: np.ndarray | None, views: list[FitView], start: np.ndarray,
              transform: ObjectTransform, calibrated: bool, options: FitOptions,
              progress: Callable[[float], None] | None = None,
              check: Callable[[], None] | None = None) -> tuple[FitResult, dict]:
    """The run's fit stage: shape (and, with calibrated views, pose and wheels) from the silhouettes.

    A single car photo (``rgb`` given, not ``calibrated``) starts its wheels from the start
    shape's tyres with the radius of the tyres found in the photo
    (:func:`.wheel_detect.wheels_from_photo`) and keeps the start's length (size and distance
    are ambiguous in one photo). Returns the fit and its provenance record.
    """
    from .wheel_detect import wheels_from_photo

    info: dict = {}
    wheel_start = None
    if template.wheels is not None and not calibrated and rgb is not None:
        wheel_start, n_tyres = wheels_from_photo(rgb, views[0].mask, views[0].camera,
                                                 wheels_from_points(template.wheels, start),
                                                 (float(start[:, 2].min()), float(start[:, 2].max())))
        info["tyres_found"] = n_tyres
    fit = fit_shape(template, views, start, transform, list(options.levels), list(options.steps), options.sigma,
                    fit_pose=calibrated, fit_scale=(True, True, calibrated), wheel_start=wheel_start,
                    keep_length=not calibrated, fit_wheels=calibrated,
                    priors=CALIBRATED_PRIORS if calibrated else PHOTO_PRIORS, progress=progress, check=check)
    info.update({"level_losses": fit.level_losses, "scale": fit.transform.scale.tolist()})
    if fit.wheels is not None:
        info["wheels"] = fit.wheels.as_dict()
    return fit, info
