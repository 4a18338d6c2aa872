"""Single-photo initialisation from the learned predictor (GANverse3D-style inverse graphics).

The predictor (:mod:`lift3d.learn`) reads the photo's object crop and proposes
its top-k camera-and-vehicle hypotheses. Each becomes a template shape through
the procedural generator (:func:`lift3d.templates.vehicles.vehicle_points`),
is placed by its mask box, and is refined by the same analysis-by-synthesis as
the grid search (:func:`.camera_search.refine`: camera, width and height, and
the generator's shape modes around the predicted vehicle, pulled towards it).
The lowest silhouette loss wins; its length is the predicted vehicle's, so a
photo from the front keeps a plausible depth instead of a slab.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..kernels.mesh_ops import MeshTopology
from ..templates import Template
from ..synth.render import PITCH_RANGE_DEG  # a refined hypothesis keeps to the elevations the predictor learned
from ..templates.vehicles import vehicle_shape_basis
from .camera_search import FINE_SIZE, CameraEstimate, progress_ticker, refine

SCALE_RANGE = ((0.8, 1.25), (0.8, 1.25))
"""Width and height scale factors the refinement may apply to a predicted vehicle."""
MIN_YAW_MASS = 0.2
"""A yaw mode below this probability mass is not refined. A silhouette cannot tell a vehicle's
front from its back, so a second mode 180 degrees away often refines to the same loss; the
predictor can (front/back right on 99.6 % of held-out procedural views), so its top mode is
kept unless it is genuinely unsure."""
SCORE_WEIGHT = 0.05
"""Ranking: loss x (1 + SCORE_WEIGHT x -log(hypothesis probability)); a near tie goes to the
hypothesis the predictor believes more."""


def learned_camera(template: Template, rgb: np.ndarray, mask: np.ndarray, model_path: Path | str,
                   hypotheses: int, refine_steps: int, sigma: float, fov_x_deg: float | None = None,
                   fine_size: int | None = FINE_SIZE,
                   progress: Callable[[float], None] | None = None,
                   check: Callable[[], None] | None = None) -> tuple[CameraEstimate, dict]:
    """Estimate the camera and the vehicle of one photo from the predictor's top ``hypotheses``.

    Args:
        template: the car template (its topology is the generator's).
        rgb: (H, W, 3) float photo in [0, 1]; mask: (H, W) bool object mask.
        model_path: the predictor's ``.safetensors`` file (its card beside it).
        hypotheses: how many hypotheses to refine (yaw modes x body types, best first).
        refine_steps: Adam steps per hypothesis; sigma: soft-silhouette sharpness.
        fov_x_deg: the photo's assumed horizontal field of view, or ``None`` to use the predicted
            focal length.
        fine_size: the winner is refined once more at this working resolution (``None``: not).

    Returns the estimate (as :func:`.camera_search.search_camera`'s, ``shape`` = body type) and a
    provenance record: the hypotheses, the chosen one, body-type probabilities and yaw agreement.
    """
    from ..camera import Camera
    from ..learn.predict import cached_model, place, predict

    check = check or (lambda: None)
    report = progress or (lambda f: None)
    model, card = cached_model(model_path)
    prediction = predict(model, rgb, mask, yaw_modes=2, bodies=max(1, (hypotheses + 1) // 2))
    hyps = [h for h in prediction.hypotheses if h.yaw_mass >= MIN_YAW_MASS][:hypotheses] or prediction.hypotheses[:1]
    report(0.1)
    topology = MeshTopology(template.faces, len(template.points))
    tick = progress_ticker(report, 0.1, (len(hyps) + (fine_size is not None)) * max(refine_steps, 1))

    results = []
    for hyp in hyps:
        points, pose, target, base = place(hyp, template, mask, prediction.box, fov_x_deg)
        basis = vehicle_shape_basis(hyp.vehicle, template)
        refined = refine(points, topology, base, mask, pose, refine_steps, sigma, check, tick, basis,
                         scale_range=SCALE_RANGE, pitch_range_deg=PITCH_RANGE_DEG, pitch_prior_deg=None)
        refined.shape = hyp.vehicle.body_type
        rank = refined.loss * (1.0 + SCORE_WEIGHT * -math.log(max(hyp.score, 1e-6)))
        results.append((rank, refined, hyp, points, target, base, basis))
    results.sort(key=lambda r: r[0])
    _, best, hyp, points, target, base, basis = results[0]
    if fine_size is not None and refine_steps > 0:
        fine = refine(points, topology, base, mask, best.pose, refine_steps, sigma, check, tick, basis, fine_size,
                      best, scale_range=SCALE_RANGE, pitch_range_deg=PITCH_RANGE_DEG, pitch_prior_deg=None)
        fine.shape = best.shape
        best = fine
    camera = Camera(base.fx, base.fy, base.cx, base.cy, base.width, base.height, best.pose.cam_to_world(target),
                    "estimated")
    estimate = CameraEstimate(camera, best.pose, target, best.scale, best.points, best.loss, best.shape,
                              [{**r[2].summary(), "loss": round(r[1].loss, 5)} for r in results])
    info = {"model": Path(model_path).name, "model_generator_version": card.get("generator_version"),
            "body_type": hyp.vehicle.body_type, "generator_params": hyp.summary()["params"],
            "hypotheses": estimate.alternatives, "body_probabilities":
                {k: round(v, 4) for k, v in sorted(prediction.body_probs.items(), key=lambda kv: -kv[1])[:4]},
            "yaw_agreement": round(prediction.agreement, 4),
            "fov_x_deg": round(math.degrees(2.0 * math.atan(0.5 * base.width / base.fx)), 2),
            "fov_source": "assumed" if fov_x_deg is not None else "predicted"}
    return estimate, info


def predicted_only(template: Template, rgb: np.ndarray, mask: np.ndarray, model_path: Path | str,
                   fov_x_deg: float | None = None) -> tuple[CameraEstimate, dict]:
    """The predictor's best hypothesis placed by its mask box, with no refinement (the evaluation's
    "predictor alone" line)."""
    from ..camera import Camera
    from ..learn.predict import cached_model, place, predict

    model, _ = cached_model(model_path)
    prediction = predict(model, rgb, mask, yaw_modes=1, bodies=1)
    hyp = prediction.hypotheses[0]
    points, pose, target, base = place(hyp, template, mask, prediction.box, fov_x_deg)
    camera = Camera(base.fx, base.fy, base.cx, base.cy, base.width, base.height, pose.cam_to_world(target),
                    "estimated")
    scale = np.ones(3)
    return (CameraEstimate(camera, pose, target, scale, points, float("nan"), hyp.vehicle.body_type,
                           [hyp.summary()]),
            {"body_type": hyp.vehicle.body_type, "generator_params": hyp.summary()["params"], "refined": False})
