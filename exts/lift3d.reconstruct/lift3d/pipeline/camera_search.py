"""Camera search for a single photo without a camera.

The object is the category template in its canonical frame (front +Z, left
+X, +Y up, metres). We look for the camera pose (see :mod:`.pose`) and the
template's anisotropic scale that make the template's silhouette match the
photo's object mask:

1. Intrinsics guess: square pixels, principal point at the image centre and a
   horizontal field of view of 45 degrees on the original image (the middle of
   the 40-50 degree range of typical photos: a normal lens on a 35 mm frame).
   A wrong focal length is largely absorbed by the distance (the object is
   small in the field of view, so the projection is close to weak-perspective).
2. Grid: ``yaw_steps`` yaws over the full turn x ``pitch_steps`` pitches in
   [0, 45] degrees. For each, the distance and the lateral offsets are solved
   in closed form so the projected template's bounding box matches the mask's
   (size -> distance, centre -> offsets); the score is the hard-rasterized mask
   IoU at 64 x 64 pixels of a square crop around the object.
3. Refinement: the best ``hypotheses`` poses **and each one turned by 180
   degrees** (the front/back ambiguity of a silhouette) are refined by Adam
   through the soft silhouette (the silhouette loss) over yaw, pitch,
   distance, lateral offsets and the template's width and height scale
   (the length stays at the category's real-world length, which fixes the
   distance/size ambiguity of a single photo). The lowest loss wins (with small
   handicaps for rear views and rare body shapes); every refined alternative is
   reported with its loss. With shape modes (``bases``), the body's proportions
   are refined with the camera, and the winner is refined once more at a finer
   working resolution.
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
from ..templates import Template
from .crops import crop_camera, crop_mask, mask_box, soft_target, square_box
from .pose import Pose, identity_camera, rotation_torch
from .silhouette import hard_mask, mask_iou, silhouette_loss, soft_silhouette_torch
from ..templates.car import BodySearch

DEFAULT_FOV_X_DEG = 45.0
"""Horizontal field of view guessed for a photo without camera, degrees."""
PITCH_RANGE_DEG = (0.0, 45.0)
PITCH_PRIOR_DEG = 8.0
PITCH_PRIOR_WEIGHT = 0.2
"""Weak prior on the camera's elevation (degrees; weight per radian^2): photos of cars are mostly taken
from eye height a few metres away, i.e. a few degrees above the horizon."""
REAR_VIEW_PENALTY = 0.03
"""Relative loss handicap of hypotheses that see the car from behind (|yaw| > 90 degrees): photos of
cars show their front far more often than their back, so a near tie goes to the front view."""
SEARCH_SIZE = 64
"""Working resolution (pixels, square crop) of the grid search and the refinement."""
FINE_SIZE = 128
"""Working resolution of the winner's last refinement (see :func:`search_camera`)."""
MODE_PRIOR_WEIGHT = 0.002
MODE_LIMIT = 2.0
"""Shape-mode coefficients (units of :data:`lift3d.templates.car.SHAPE_MODES`): weight of the
pull towards the body shape's own proportions (per unit^2) and the largest departure allowed."""


@dataclass
class Hypothesis:
    """A refined camera hypothesis: pose, overall template scale (sx, sy, sz), final loss, shaped points (V, 3)."""

    pose: Pose
    scale: np.ndarray
    loss: float
    grid_iou: float
    points: np.ndarray | None = None
    shape: str = ""
    log_scale: np.ndarray = field(default_factory=lambda: np.zeros(2))
    coefficients: np.ndarray | None = None

    def summary(self) -> dict[str, float | str]:
        """Body shape, yaw/pitch in degrees and the loss (for reports and provenance)."""
        return {"shape": self.shape, "yaw_deg": round(math.degrees(self.pose.yaw) % 360.0, 2),
                "pitch_deg": round(math.degrees(self.pose.pitch), 2), "loss": round(self.loss, 5),
                "grid_iou": round(self.grid_iou, 4)}


@dataclass
class CameraEstimate:
    """Result of :func:`search_camera`.

    Attributes:
        camera: the estimated camera for the ORIGINAL image (its pixels and size).
        pose: the chosen pose about ``target``.
        target: (3,) object point the pose orbits (the chosen shape's box centre), metres.
        scale: (3,) overall scale of ``points`` relative to the template (z = length = 1).
        points: (V, 3) the chosen body shape with the width and height found with the camera (canonical frame).
        loss: final silhouette loss of the chosen hypothesis.
        shape: name of the chosen body shape.
        alternatives: every refined hypothesis (chosen first), as summaries.
    """

    camera: Camera
    pose: Pose
    target: np.ndarray
    scale: np.ndarray
    points: np.ndarray
    loss: float
    shape: str
    alternatives: list[dict[str, float | str]] = field(default_factory=list)


def guess_intrinsics(width: int, height: int, fov_x_deg: float = DEFAULT_FOV_X_DEG) -> Camera:
    """The guessed camera of a ``width`` x ``height`` photo: square pixels, centred principal point."""
    return Camera.from_fov(math.radians(fov_x_deg), width, height, name="estimated")


def _bbox(uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    return 0.5 * (lo + hi), hi - lo


def align_to_box(points: np.ndarray, target: np.ndarray, base: Camera, yaw: float, pitch: float,
                 mask_centre: np.ndarray, mask_size: np.ndarray) -> Pose:
    """A pose at ``yaw``/``pitch`` whose projected ``points`` (V, 3) box matches the mask box (pixels)."""
    extent = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    d0 = 3.0 * extent
    pose = Pose(yaw, pitch, 0.0, d0)
    cam = Camera(base.fx, base.fy, base.cx, base.cy, base.width, base.height, pose.cam_to_world(target))
    _, size = _bbox(cam.project(points)[0])
    k = math.sqrt(max(size[0], 1e-6) * max(size[1], 1e-6) / (max(mask_size[0], 1.0) * max(mask_size[1], 1.0)))
    pose.distance = d0 * k
    cam.cam_to_world = pose.cam_to_world(target)
    centre, _ = _bbox(cam.project(points)[0])
    du, dv = mask_centre - centre
    pose.tx = -du * pose.distance / base.fx
    pose.ty = dv * pose.distance / base.fy
    return pose


def _grid(template_points: np.ndarray, faces: np.ndarray, target: np.ndarray, base: Camera, mask: np.ndarray,
          yaw_steps: int, pitch_steps: int, check: Callable[[], None]) -> list[tuple[float, Pose]]:
    """Score every grid pose: [(IoU at the working crop, pose)], best first."""
    box = square_box(mask)
    crop_target = crop_mask(mask, box, SEARCH_SIZE) >= 0.5
    m_centre, m_size = mask_box(mask)
    pitches = np.radians(np.linspace(*PITCH_RANGE_DEG, pitch_steps)) if pitch_steps > 1 else np.radians([15.0])
    scored = []
    for yaw in np.linspace(0.0, 2.0 * math.pi, yaw_steps, endpoint=False):
        check()
        for pitch in pitches:
            pose = align_to_box(template_points, target, base, float(yaw), float(pitch), m_centre, m_size)
            cam = Camera(base.fx, base.fy, base.cx, base.cy, base.width, base.height, pose.cam_to_world(target))
            rendered = hard_mask(template_points, faces, crop_camera(cam, box, SEARCH_SIZE), SEARCH_SIZE, SEARCH_SIZE)
            scored.append((mask_iou(rendered, crop_target), pose))
    scored.sort(key=lambda item: -item[0])
    return scored


def object_to_camera(points: torch.Tensor, pose_params: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """(V, 3) object points -> camera coordinates for the pose parameters (see :mod:`.pose`)."""
    rot = rotation_torch(pose_params["yaw"], pose_params["pitch"], pose_params["roll"])
    offset = torch.stack([pose_params["tx"], pose_params["ty"], torch.exp(pose_params["log_distance"])])
    return (points - target) @ rot - offset


def refine(template_points: np.ndarray, topology: MeshTopology, base: Camera, mask: np.ndarray, pose: Pose,
           steps: int, sigma: float, check: Callable[[], None], tick: Callable[[], None],
           basis: np.ndarray | None = None, size: int = SEARCH_SIZE, start: Hypothesis | None = None,
           scale_range: tuple[tuple[float, float], tuple[float, float]] = BodySearch.scale_range,
           pitch_range_deg: tuple[float, float] = PITCH_RANGE_DEG,
           pitch_prior_deg: float | None = PITCH_PRIOR_DEG) -> Hypothesis:
    """Refine ``pose`` and the template's width and height by Adam on the silhouette loss (working crop).

    x and y (about the symmetry plane and the ground) are scaled; the length stays
    fixed. Only these two global factors: a free profile along the length would
    also absorb the perspective foreshortening between the near and the far end
    of the car, which is the photo's best cue to the distance (hence the size).
    The log-scales are weakly pulled towards the template's proportions.

    With ``basis`` (K, V, 3) (e.g. :func:`lift3d.templates.car.car_shape_basis`),
    the body also moves along those K modes (roof, screens, hood, trunk, sills, wheelbase,
    wheel size): coefficients in units of the modes, clamped to +-:data:`MODE_LIMIT` and
    pulled towards 0 by :data:`MODE_PRIOR_WEIGHT`. None of them changes the length's scale,
    so the distance cue above is kept.

    ``size`` is the working resolution (pixels, square crop); ``start`` continues a
    hypothesis refined before (its scale and coefficients; ``pose`` is its pose).
    The width and height scales stay in ``scale_range`` (two (low, high) pairs), the pitch
    within 5 degrees of ``pitch_range_deg``; ``pitch_prior_deg`` is the elevation the weak
    pitch prior pulls towards (``None``: no pull, e.g. when a predictor supplied the pitch).
    """
    box = square_box(mask)
    cam = identity_camera(crop_camera(base, box, size))
    target_img = torch.from_numpy(soft_target(mask, box, size, sigma)).to(torch.float64)
    pts = torch.from_numpy(template_points.astype(np.float64))
    centre = 0.5 * (pts.min(dim=0).values + pts.max(dim=0).values)
    params = {k: torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for k, v in
              dict(yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll, log_distance=math.log(pose.distance),
                   tx=pose.tx, ty=pose.ty).items()}
    modes = torch.from_numpy(np.zeros((0, len(pts), 3)) if basis is None else basis.astype(np.float64))
    log_scale = torch.zeros(2, dtype=torch.float64)
    coeffs = torch.zeros(len(modes), dtype=torch.float64)
    if start is not None:
        log_scale = torch.from_numpy(np.asarray(start.log_scale, dtype=np.float64).copy())
        if start.coefficients is not None and len(start.coefficients) == len(modes):
            coeffs = torch.from_numpy(np.asarray(start.coefficients, dtype=np.float64).copy())
    log_scale.requires_grad_(True)
    coeffs.requires_grad_(True)
    d = pose.distance
    opt = Adam([
        {"params": [params["yaw"], params["pitch"]], "lr": 0.02},
        {"params": [params["log_distance"]], "lr": 0.01},
        {"params": [params["tx"], params["ty"]], "lr": 0.004 * d},
        {"params": [log_scale], "lr": 0.02},
        {"params": [coeffs], "lr": 0.05},
    ])

    def shaped() -> torch.Tensor:
        body = pts + torch.einsum("k,kvc->vc", coeffs, modes)
        return torch.cat([body[:, :2] * torch.exp(log_scale), body[:, 2:]], dim=1)

    def loss_fn() -> torch.Tensor:
        cam_pts = object_to_camera(shaped(), params, centre)
        pred = soft_silhouette_torch(cam_pts, topology, cam, size, size, sigma)
        prior = 0.02 * (log_scale ** 2).sum()
        if pitch_prior_deg is not None:
            prior = prior + PITCH_PRIOR_WEIGHT * (params["pitch"] - math.radians(pitch_prior_deg)) ** 2
        prior = prior + MODE_PRIOR_WEIGHT * (coeffs ** 2).sum()
        return silhouette_loss(pred.to(torch.float64), target_img) + prior

    for _ in range(steps):
        check()
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        with torch.no_grad():
            params["pitch"].clamp_(math.radians(pitch_range_deg[0] - 5.0), math.radians(pitch_range_deg[1] + 5.0))
            for axis, (low, high) in enumerate(scale_range):
                log_scale[axis].clamp_(math.log(low), math.log(high))
            coeffs.clamp_(-MODE_LIMIT, MODE_LIMIT)
        tick()
    with torch.no_grad():
        final = float(loss_fn())
        points = shaped().numpy()
    v = {k: float(p.detach()) for k, p in params.items()}
    refined = Pose(v["yaw"], v["pitch"], v["roll"], math.exp(v["log_distance"]), v["tx"], v["ty"])
    scale = np.ptp(points, axis=0) / np.maximum(np.ptp(template_points, axis=0), 1e-9)
    return Hypothesis(refined, scale, final, 0.0, points, log_scale=log_scale.detach().numpy().copy(),
                      coefficients=coeffs.detach().numpy().copy())


def search_camera(template: Template, mask: np.ndarray, yaw_steps: int, pitch_steps: int, hypotheses: int,
                  refine_steps: int, sigma: float = 1.0, fov_x_deg: float = DEFAULT_FOV_X_DEG,
                  shapes: dict[str, np.ndarray] | None = None, bases: dict[str, np.ndarray] | None = None,
                  fine_size: int | None = FINE_SIZE,
                  body_search: dict[str, BodySearch] | None = None,
                  progress: Callable[[float], None] | None = None,
                  check: Callable[[], None] | None = None) -> CameraEstimate:
    """Estimate the camera of a single photo from its (H, W) bool object ``mask`` (see the module docstring).

    Args:
        template: the category template (canonical frame).
        mask: (H, W) bool object mask of the ORIGINAL photo.
        yaw_steps, pitch_steps: grid size; hypotheses: how many grid winners to refine
            (each also turned by 180 degrees); refine_steps: Adam steps per hypothesis.
        sigma: soft-silhouette sharpness (pixels^2 at the working resolution).
        shapes: optional body shapes to search over, name -> (V, 3) points with the
            template's topology (e.g. :func:`lift3d.templates.car.car_shapes`);
            default: the template alone.
        bases: optional shape modes per body shape, name -> (K, V, 3), refined with the camera
            (see :func:`refine`).
        fine_size: the winner is refined once more at this working resolution (``None``: not),
            where the wheels, screens and sills span enough pixels to place them.
        body_search: per body shape, its scale ranges and ranking handicap (e.g.
            :data:`lift3d.templates.car.BODY_SEARCH`; default :class:`BodySearch`).
        progress: called with the fraction of this stage done, in [0, 1].
        check: called between steps; raises to cancel.
    """
    check = check or (lambda: None)
    report = progress or (lambda f: None)
    height, width = mask.shape
    base = guess_intrinsics(width, height, fov_x_deg)
    shapes = shapes or {template.name: template.points}
    shapes = {k: np.asarray(v, dtype=np.float64) for k, v in shapes.items()}
    targets = {k: 0.5 * (v.min(axis=0) + v.max(axis=0)) for k, v in shapes.items()}
    scored = []
    for name, points in shapes.items():
        scored += [(iou, pose, name) for iou, pose in
                   _grid(points, template.faces, targets[name], base, mask, yaw_steps, pitch_steps, check)]
    scored.sort(key=lambda item: -item[0])
    report(0.2)
    m_centre, m_size = mask_box(mask)
    box = square_box(mask)
    crop_target = crop_mask(mask, box, SEARCH_SIZE) >= 0.5
    starts: list[tuple[float, Pose, str]] = []
    for iou, pose, name in scored:
        if len(starts) >= 2 * hypotheses:
            break
        points, target = shapes[name], targets[name]
        flipped = align_to_box(points, target, base, pose.yaw + math.pi, pose.pitch, m_centre, m_size)
        for cand_iou, cand in ((iou, pose), (None, flipped)):
            if any(_angle_close(cand, other) for _, other, _ in starts):
                continue
            if cand_iou is None:
                cam = Camera(base.fx, base.fy, base.cx, base.cy, width, height, cand.cam_to_world(target))
                cand_iou = mask_iou(hard_mask(points, template.faces, crop_camera(cam, box, SEARCH_SIZE),
                                              SEARCH_SIZE, SEARCH_SIZE), crop_target)
            starts.append((cand_iou, cand, name))
    topology = MeshTopology(template.faces, len(template.points))
    tick = progress_ticker(report, 0.2, (len(starts) + (fine_size is not None)) * max(refine_steps, 1))

    settings = {name: (body_search or {}).get(name, BodySearch()) for name in shapes}
    results = []
    for iou, pose, name in starts:
        hyp = refine(shapes[name], topology, base, mask, pose, refine_steps, sigma, check, tick,
                     None if bases is None else bases.get(name), scale_range=settings[name].scale_range)
        hyp.grid_iou, hyp.shape = iou, name
        results.append(hyp)
    results.sort(key=lambda h: h.loss * (1.0 + REAR_VIEW_PENALTY * (math.cos(h.pose.yaw) < 0.0)
                                         + settings[h.shape].penalty))
    best = results[0]
    if fine_size is not None and refine_steps > 0:
        fine = refine(shapes[best.shape], topology, base, mask, best.pose, refine_steps, sigma, check, tick,
                      None if bases is None else bases.get(best.shape), fine_size, best,
                      scale_range=settings[best.shape].scale_range)
        fine.grid_iou, fine.shape = best.grid_iou, best.shape
        best = fine
    target = targets[best.shape]
    camera = Camera(base.fx, base.fy, base.cx, base.cy, width, height, best.pose.cam_to_world(target), "estimated")
    return CameraEstimate(camera, best.pose, target, best.scale, best.points, best.loss, best.shape,
                          [h.summary() for h in results])


def progress_ticker(report: Callable[[float], None], start: float, total: int) -> Callable[[], None]:
    """A callback that, called ``total`` times (one per refinement step), moves ``report`` from ``start`` to 1."""
    done = [0]

    def tick() -> None:
        done[0] += 1
        report(start + (1.0 - start) * done[0] / max(1, total))

    return tick


def _angle_close(a: Pose, b: Pose, tol_deg: float = 20.0) -> bool:
    dyaw = abs((a.yaw - b.yaw + math.pi) % (2.0 * math.pi) - math.pi)
    return math.degrees(dyaw) < tol_deg and abs(math.degrees(a.pitch - b.pitch)) < tol_deg
