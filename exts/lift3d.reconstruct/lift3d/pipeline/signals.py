"""Quality signals of a finished run, and the warnings a user should read.

A high input-view IoU alone proves little: it is measured against the mask the
run itself used, which for a photo without alpha or ``--mask`` is the
automatic foreground, so a run that latched onto the wrong object can still
fit "its" silhouette well. The signals below say how much each part of the
result can be trusted:

* ``masks``: per photo, where the mask came from (``alpha``, ``given`` or
  ``automatic``), for an automatic mask its confidence
  (:func:`lift3d.io.foreground.mask_confidence`), how many separate objects it
  holds, and which image borders the object touches (a truncated object).
* ``input_fit``: the input-view mask IoU (of the mask above).
* ``predictor``: for a single car photo initialised by the learned predictor,
  its body-type probability, the agreement of its yaw distribution
  (``yaw_agreement``: the share of the main yaw peak) and of its top-k
  hypotheses (``hypothesis_agreement``: the share whose predicted yaw lies
  within :data:`AGREEMENT_DEG` of the chosen one).
* ``camera``: the estimated pitch against the range it was searched in, and
  the horizontal field of view, which a single photo cannot determine (it is
  assumed or taken from the predictor).
* ``texture``: ``coverage``, the fraction of the texture atlas that the
  photo(s) saw directly or through the mirror plane; the rest is filled in
  from neighbouring texels, so it shows plausible colour, not the object.

:func:`quality_signals` turns the doubtful ones into short warning sentences.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

AGREEMENT_DEG = 30.0
"""Hypotheses whose yaw is within this of the chosen one agree with it."""
PITCH_EDGE_DEG = 2.0
"""A pitch within this of a limit of its search range sits at the edge of the range."""
MIN_MASK_CONFIDENCE = 0.5
MIN_INPUT_IOU = 0.85
MIN_BODY_PROBABILITY = 0.5
MIN_AGREEMENT = 0.6
MIN_COVERAGE = 0.15
BORDER_PX = 1
"""An object with mask pixels this close to an image edge touches it."""


def touched_borders(mask: np.ndarray) -> list[str]:
    """The image edges (``left``, ``right``, ``top``, ``bottom``) that the mask touches."""
    m = np.asarray(mask, dtype=bool)
    b = BORDER_PX
    sides = {"left": m[:, :b].any(), "right": m[:, -b:].any(), "top": m[:b, :].any(), "bottom": m[-b:, :].any()}
    return [k for k, v in sides.items() if v]


def _yaw_gap(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _pitch_range(camera: dict) -> tuple[float, float] | None:
    """The pitch range the chosen initialisation searched in, or ``None`` (given cameras, generic objects)."""
    from .camera_search import PITCH_RANGE_DEG as SEARCH_RANGE
    from .learned_init import PITCH_RANGE_DEG as LEARNED_RANGE

    chosen = camera.get("chosen")
    if chosen == "learned":
        return LEARNED_RANGE
    if chosen == "search":
        return SEARCH_RANGE
    return None


def _predictor(camera: dict) -> dict[str, Any] | None:
    probs = camera.get("body_probabilities")
    if not probs:
        return None
    hyps = camera.get("hypotheses") or []
    record: dict[str, Any] = {"body_type": camera.get("body_type"),
                              "body_probability": round(float(max(probs.values())), 4),
                              "yaw_agreement": camera.get("yaw_agreement")}
    yaws = [h["yaw_deg"] for h in hyps if "yaw_deg" in h]
    if yaws:
        agree = sum(_yaw_gap(y, yaws[0]) <= AGREEMENT_DEG for y in yaws) / len(yaws)
        record["hypotheses"] = len(yaws)
        record["hypothesis_agreement"] = round(agree, 4)
    if "losses" in camera:
        record["losses"] = camera["losses"]
    return record


def quality_signals(masks: list[np.ndarray], mask_info: list[dict], camera: dict, metrics: dict,
                    image_names: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The run's quality signals (see the module docstring) and its warnings, one short sentence each.

    Args:
        masks: the (H, W) bool mask of each photo, as fitted.
        mask_info: per photo, :func:`lift3d.io.images.object_mask_info`'s record (or the object's).
        camera: the initialisation stage's provenance record (:attr:`.initialise.Initial.info`).
        metrics: ``input_view_iou`` and ``texture_coverage``.
        image_names: the photos' file names, for the sentences.
    """
    warnings: list[str] = []
    records = []
    for mask, info, name in zip(masks, mask_info, image_names):
        record = {k: v for k, v in info.items()}
        record["touches_border"] = touched_borders(mask)
        records.append(record)
        conf = info.get("confidence")
        if info.get("source") == "automatic" and conf is not None and conf < MIN_MASK_CONFIDENCE:
            warnings.append(f"the automatic mask of {name} is uncertain (confidence {conf:.2f}); "
                            "check the preview or give --mask")
        found, made = int(info.get("objects", 1)), int(info.get("reconstructed", 1))
        if found > made:
            warnings.append(f"{found} objects found in {name}; only the {'largest' if made == 1 else f'{made} largest'}"
                            f" {'was' if made == 1 else 'were'} reconstructed (--objects all for every one)")
        if record["touches_border"]:
            warnings.append(f"the object touches the {' and '.join(record['touches_border'])} edge of {name}, "
                            "so part of it may be cut off")
    iou = float(metrics.get("input_view_iou", float("nan")))
    signals: dict[str, Any] = {"masks": records,
                               "input_fit": {"input_view_iou": round(iou, 4),
                                             "against": "the mask the run used (see masks)"}}
    if math.isfinite(iou) and iou < MIN_INPUT_IOU:
        warnings.append(f"the asset matches the photo's silhouette poorly (input-view IoU {iou:.2f})")

    predictor = _predictor(camera)
    if predictor is not None:
        signals["predictor"] = predictor
        doubts = []
        if predictor["body_probability"] < MIN_BODY_PROBABILITY:
            doubts.append(f"body type {predictor['body_type']} at p={predictor['body_probability']:.2f}")
        for key in ("yaw_agreement", "hypothesis_agreement"):
            value = predictor.get(key)
            if value is not None and value < MIN_AGREEMENT:
                doubts.append(f"{key.replace('_', ' ')} {value:.2f}")
        if doubts:
            warnings.append("the vehicle predictor is unsure (" + ", ".join(doubts) + "); the car may be "
                            "turned or shaped wrongly")

    cam: dict[str, Any] = {}
    if "pitch_deg" in camera:
        pitch = float(camera["pitch_deg"])
        cam["pitch_deg"] = round(pitch, 2)
        limits = _pitch_range(camera)
        if limits is not None:
            cam["pitch_range_deg"] = list(limits)
            at_edge = pitch <= limits[0] + PITCH_EDGE_DEG or pitch >= limits[1] - PITCH_EDGE_DEG
            cam["pitch_at_limit"] = bool(at_edge)
            if at_edge:
                warnings.append(f"the camera pitch ({pitch:.0f} deg) is at the edge of its range "
                                f"({limits[0]:.0f} to {limits[1]:.0f} deg); the view may be outside what "
                                "lift3d handles")
    if "fov_x_deg" in camera:
        cam["fov_x_deg"] = camera["fov_x_deg"]
        # recorded by the initialisation that chose the camera; older records: the learned one predicted it
        cam["fov_source"] = camera.get("fov_source") or ("predicted" if camera.get("chosen") == "learned" else "assumed")
    if camera.get("given"):
        cam["given"] = True
    signals["camera"] = cam
    for text in camera.get("warnings", []):
        warnings.append(text)

    coverage = float(metrics.get("texture_coverage", float("nan")))
    signals["texture"] = {"coverage": round(coverage, 4),
                          "meaning": "fraction of the texture seen in the photos (directly or mirrored); "
                                     "the rest is filled in from its surroundings"}
    if math.isfinite(coverage) and coverage < MIN_COVERAGE:
        warnings.append(f"only {coverage:.0%} of the texture was seen in the photo; the rest is filled in")
    return signals, warnings
