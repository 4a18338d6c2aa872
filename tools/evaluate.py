#!/usr/bin/env python3
"""Evaluation harness: reconstruct the evaluation renders and score the results.

Data: ``../shared/eval`` relative to the project root (``--data`` overrides):
``renders/<asset>/`` (Mitsuba renders, ``transforms.json``, ``gt.json``) and
``assets/<asset>/`` (``normalized.obj``, ``parts.json``). See
``renders/README.md`` there for the conventions this harness relies on.

Cases per asset (``--modes``):

* ``single``: one photo, camera unknown, run twice (``photo_fl`` and
  ``photo_fr``); the 19 other frames are held out.
* ``multi``: four calibrated views (``photo_fl``, ``photo_fr``, ``r15_az090``,
  ``r15_az270``, cameras from ``transforms.json``); the other 16 are held out.

Every case is run by several methods (:data:`SINGLE_METHODS` for one photo: the
grid search, the predictor alone and the predictor with the fit;
:data:`MULTI_METHODS` for calibrated views) and two baselines: the **undeformed
template** (the same request with ``fit_shape=False``, placed by the search or the
visual hull) and the ground truth's **bounding box** under the true cameras.

Alignment (single view). Without cameras the asset is in the category's
canonical frame and its ``SourceCamera`` ``C_est`` (camera-to-world) is the
pose estimated for the input photo. The ground truth's input camera ``C_in``
saw the same image, so ``T = C_est @ S @ inv(C_in)`` maps ground-truth world
coordinates to asset coordinates, and a held-out camera ``C_h`` is carried
along to ``T @ C_h`` (keeping its own intrinsics). ``S = diag(s, s, s, 1)``
scales about the input camera's centre, which leaves the input image unchanged:
one view cannot tell a small near object from a large far one, so ``s`` (the
``depth_scale``: depth of the reconstruction's bounding-box centre in ``C_est``
over the ground truth's in ``C_in``) makes them agree. This is exact when the
estimated pose is exact; pose errors show up in every held-out metric, as they
should. The size error is reported, not hidden: ``scale_ratio`` is the
reconstruction's bounding-box diagonal over the ground truth's in metres, and
the ``_canonical`` 3D metrics compare without any alignment but a translation.
With cameras (multi view) the asset is already in the ground truth's world
frame and ``T`` is the identity.

Metrics (:mod:`lift3d.metrics`): mask IoU at the input views (rendered with the
asset's own ``SourceCamera``s) and at the held-out views; volumetric IoU
(64^3), Chamfer-L1 and F-score at 1 % and 2 % of the ground truth's bounding
box diagonal; per-part IoU (body, wheel, window, headlight, taillight) of
part-label renders at the held-out views; masked PSNR of the unlit albedo
render against the held-out photos inside their alpha mask; wall time.

Usage::

    # full run: rewrites docs/QUALITY.md and docs/quality_results.json of the extension
    python tools/evaluate.py --preset fast,balanced --modes single,multi --generic
    # a quick look at one asset, written elsewhere
    python tools/evaluate.py --assets usdkit_sedan --modes single --out sedan.json --quality sedan.md
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "eval"
DEFAULT_QUALITY = ROOT / "exts" / "lift3d.reconstruct" / "docs" / "QUALITY.md"
DEFAULT_RESULTS = ROOT / "exts" / "lift3d.reconstruct" / "docs" / "quality_results.json"

VEHICLES = ("kenney_motorcycle", "kenney_truck_purple", "kenney_truck_red", "khronos_cesium_milk_truck",
            "khronos_toycar", "usdkit_ambulance", "usdkit_formula", "usdkit_sedan")
GENERIC = ("spot", "khronos_duck", "khronos_avocado", "usdwg_teapot_fancy")
SINGLE_INPUTS = ("photo_fl", "photo_fr")
MULTI_INPUTS = ("photo_fl", "photo_fr", "r15_az090", "r15_az270")
PART_CLASSES = ("body", "wheel", "window", "headlight", "taillight")

_CLASS_OF = {"body": "body", "fork": "body", "window_trim": "body", "window": "window", "light_front": "headlight",
             "headlight": "headlight", "light_rear": "taillight", "taillight": "taillight", "wheel": "wheel"}


def part_class(name: str) -> int:
    """Index into :data:`PART_CLASSES` of a ground-truth part name or a reconstruction's part label; -1 if none.

    ``wheel_fl``/``wheel_front``/... are wheels; ``light_front``/``headlight*`` headlights,
    ``light_rear``/``taillight*`` taillights; ``fork`` and ``window_trim`` count as body.
    """
    key = name.lower()
    if key.startswith("wheel"):
        key = "wheel"
    elif key.startswith("headlight"):
        key = "headlight"
    elif key.startswith("taillight"):
        key = "taillight"
    cls = _CLASS_OF.get(key)
    return PART_CLASSES.index(cls) if cls else -1


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 positions and (F, 3) int64 0-based triangles of an OBJ (``v`` and ``f`` lines only)."""
    verts: list[list[float]] = []
    faces: list[list[int]] = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            idx = [int(tok.split("/")[0]) for tok in line.split()[1:]]
            idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
            faces.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
    return np.asarray(verts, dtype=np.float64).reshape(-1, 3), np.asarray(faces, dtype=np.int64).reshape(-1, 3)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine ``matrix`` to (N, 3) points."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]


def alignment(est_input_c2w: np.ndarray, gt_input_c2w: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``T = C_est @ diag(s, s, s, 1) @ inv(C_in)``: 4x4 similarity from GT world to asset coordinates.

    Scaling by ``s`` about the input camera's centre leaves the input image unchanged
    (the depth-scale ambiguity of one view); see the module docstring.
    """
    scaling = np.diag([scale, scale, scale, 1.0])
    return (np.asarray(est_input_c2w, dtype=np.float64) @ scaling
            @ np.linalg.inv(np.asarray(gt_input_c2w, dtype=np.float64)))


def depth_scale(est_camera, rec_points: np.ndarray, gt_camera, gt_points: np.ndarray) -> float:
    """Depth of the reconstruction's bbox centre in its estimated camera over the GT's in the true camera."""
    def depth(camera, points: np.ndarray) -> float:
        centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
        return float(camera.project(centre[None])[1][0])
    return depth(est_camera, rec_points) / depth(gt_camera, gt_points)


def moved_camera(camera, matrix: np.ndarray):
    """The camera carried along by the similarity ``matrix``: same intrinsics, size and name.

    Position ``matrix @ centre``, orientation ``R @ R_cam`` with ``R`` the rotation of ``matrix``
    (its linear part divided by its scale), so the camera sees the transformed scene as before.
    """
    from lift3d.camera import Camera

    m = np.asarray(matrix, dtype=np.float64)
    scale = float(np.cbrt(np.linalg.det(m[:3, :3])))
    pose = np.eye(4)
    pose[:3, :3] = (m[:3, :3] / scale) @ camera.cam_to_world[:3, :3]
    pose[:3, 3] = m[:3, :3] @ camera.cam_to_world[:3, 3] + m[:3, 3]
    return Camera(camera.fx, camera.fy, camera.cx, camera.cy, camera.width, camera.height, pose, camera.name)


@dataclass
class GroundTruth:
    """One evaluation asset in its render world frame (metres).

    Attributes:
        asset: asset id; category: ``car`` or ``generic``; folder: its renders folder.
        points, faces: (V, 3) float64 and (F, 3) int64 GT mesh (excluded parts removed).
        face_class: (F,) int64 index into :data:`PART_CLASSES` per face, -1 if unscored.
        cameras: frame name (file stem) -> Camera; images: frame name -> image path.
    """

    asset: str
    category: str
    folder: Path
    points: np.ndarray
    faces: np.ndarray
    face_class: np.ndarray
    cameras: dict[str, Any]
    images: dict[str, Path]
    _photos: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _labels: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def photo(self, frame: str) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) float sRGB colour in [0, 1] and (H, W) bool alpha mask (``alpha >= 128``) of a frame."""
        if frame not in self._photos:
            rgba = np.asarray(Image.open(self.images[frame]).convert("RGBA"))
            self._photos[frame] = (rgba[..., :3] / 255.0, rgba[..., 3] >= 128)
        return self._photos[frame]

    def labels(self, frame: str) -> np.ndarray:
        """(H, W) part-class image of the GT mesh at a frame (-1 background or unscored)."""
        from lift3d_eval.metrics import render_labels

        if frame not in self._labels:
            self._labels[frame] = render_labels(self.points, self.faces, self.face_class, self.cameras[frame])
        return self._labels[frame]


def load_ground_truth(data: Path, asset: str, category: str) -> GroundTruth:
    """Read ``renders/<asset>`` and the asset's normalized mesh and parts, in the render world frame."""
    from lift3d.io.views import read_transforms

    folder = data / "renders" / asset
    gt = json.loads((folder / "gt.json").read_text())
    asset_dir = (folder / gt["asset_dir"]).resolve()
    points, faces = read_obj(asset_dir / gt["gt_mesh"])
    parts = json.loads((asset_dir / gt["parts"]).read_text())["canonical_parts"]
    face_class = np.full(len(faces), -1, dtype=np.int64)
    keep = np.ones(len(faces), dtype=bool)
    for name, part in parts.items():
        idx = np.asarray(part["faces"], dtype=np.int64)
        face_class[idx] = part_class(name)
        if name in gt.get("excluded_parts", []):
            keep[idx] = False
    used, faces = np.unique(faces[keep], return_inverse=True)  # drop the excluded parts' vertices too
    points = transform_points(np.asarray(gt["normalized_to_world"]), points[used])
    views = read_transforms(folder / "transforms.json")
    return GroundTruth(asset=asset, category=category, folder=folder, points=points, faces=faces.reshape(-1, 3),
                       face_class=face_class[keep], cameras={v.image_path.stem: v.camera for v in views},
                       images={v.image_path.stem: v.image_path for v in views})


@dataclass
class EvalMesh:
    """A reconstruction (or baseline) read back from its USD asset, in asset coordinates."""

    points: np.ndarray
    faces: np.ndarray
    face_class: np.ndarray
    uv: np.ndarray
    uv_faces: np.ndarray | None
    texture: np.ndarray | None
    cameras: list[Any]

    @classmethod
    def from_asset(cls, asset) -> "EvalMesh":
        face_class = np.full(len(asset.faces), -1, dtype=np.int64)
        for part in asset.parts:
            face_class[part.faces] = part_class(part.label)
        return cls(np.asarray(asset.points, np.float64), np.asarray(asset.faces, np.int64), face_class,
                   asset.uv, asset.uv_faces, asset.texture, list(asset.cameras))


def score(mesh: EvalMesh, gt: GroundTruth, inputs: list[str], transform: np.ndarray,
          parts: bool, canonical: np.ndarray | None = None) -> dict[str, float]:
    """All metrics of ``mesh`` against ``gt``; ``transform`` maps GT world to asset coordinates.

    ``inputs`` are the frames given to the reconstructor (their order matches
    ``mesh.cameras``); every other frame is held out. With ``canonical`` (another
    GT-to-asset map, see :func:`canonical_alignment`) the 3D metrics are computed
    a second time under that alignment, with the suffix ``_canonical``.
    """
    from lift3d_eval.metrics import bbox_diagonal, mask_iou, masked_psnr, part_iou, rasterize, render_labels, render_texture

    out: dict[str, float] = {}
    input_ious, in_pred, in_gt = [], [], []
    for frame, cam in zip(inputs, mesh.cameras):
        _, alpha = gt.photo(frame)
        h, w = alpha.shape
        if (cam.width, cam.height) != (w, h):
            cam = cam.scaled(w, h)
        raster = rasterize(mesh.points, mesh.faces, cam)
        input_ious.append(mask_iou(raster.mask, alpha))
        if parts:  # parts over the photo itself: independent of how held-out cameras are aligned
            in_pred.append(render_labels(mesh.points, mesh.faces, mesh.face_class, cam, raster=raster))
            in_gt.append(gt.labels(frame))
    out["input_iou"] = float(np.mean(input_ious)) if input_ious else math.nan
    if parts:
        per_class = part_iou(in_pred, in_gt, list(range(len(PART_CLASSES))))
        for i, name in enumerate(PART_CLASSES):
            out[f"input_part_iou_{name}"] = per_class.get(i, math.nan)

    heldout = [f for f in gt.cameras if f not in inputs]
    ious, psnrs, pred_labels, gt_labels = [], [], [], []
    for frame in heldout:
        cam = moved_camera(gt.cameras[frame], transform)
        rgb, alpha = gt.photo(frame)
        raster = rasterize(mesh.points, mesh.faces, cam)
        ious.append(mask_iou(raster.mask, alpha))
        if mesh.texture is not None:
            colour, _ = render_texture(mesh.points, mesh.faces, mesh.uv, mesh.uv_faces, mesh.texture, cam,
                                       raster=raster)
            psnrs.append(masked_psnr(colour, rgb, alpha))
        if parts:
            pred_labels.append(render_labels(mesh.points, mesh.faces, mesh.face_class, cam, raster=raster))
            gt_labels.append(gt.labels(frame))
    out["heldout_iou"] = float(np.mean(ious))
    out["psnr_masked"] = float(np.mean(psnrs)) if psnrs else math.nan
    if parts:
        per_class = part_iou(pred_labels, gt_labels, list(range(len(PART_CLASSES))))
        for i, name in enumerate(PART_CLASSES):
            out[f"part_iou_{name}"] = per_class.get(i, math.nan)

    out.update(shape_metrics(mesh, transform_points(transform, gt.points), gt.faces))
    # Size in metres: the render world and the canonical frame share their axes (+Y up, front +Z).
    out["scale_ratio"] = bbox_diagonal(mesh.points) / bbox_diagonal(gt.points)
    if canonical is not None:
        canon = shape_metrics(mesh, transform_points(canonical, gt.points), gt.faces)
        out.update({f"{key}_canonical": value for key, value in canon.items()})
    return out


def shape_metrics(mesh: EvalMesh, gt_points: np.ndarray, gt_faces: np.ndarray) -> dict[str, float]:
    """3D IoU (64^3), Chamfer-L1 and F-scores of ``mesh`` against a GT mesh already in asset coordinates."""
    from lift3d_eval.metrics import surface_metrics, volume_iou

    out = {"volume_iou": volume_iou((mesh.points, mesh.faces), (gt_points, gt_faces), 64)}
    out.update(surface_metrics((mesh.points, mesh.faces), (gt_points, gt_faces), count=20000))
    return out


def canonical_alignment(gt_points: np.ndarray) -> np.ndarray:
    """4x4 translation putting the GT in the canonical placement: ground (lowest point) at y = 0, centred in x, z.

    The render world frame already has the canonical axes (+Y up, front +Z, metres), so this
    compares shapes with the pose estimate taken out (rotation and scale errors are not).
    """
    lo, hi = gt_points.min(axis=0), gt_points.max(axis=0)
    m = np.eye(4)
    m[:3, 3] = [-0.5 * (lo[0] + hi[0]), -lo[1], -0.5 * (lo[2] + hi[2])]
    return m


METHODS = {"search": ("search", True), "predictor": ("predicted", False), "predictor+fit": ("learned", True),
           "both": ("both", True), "template": ("search", False)}
"""Single-photo methods: name -> (``ReconstructRequest.init``, fit the shape). ``template`` is the
undeformed template placed by the grid search; ``predictor`` the predictor's best guess, unrefined."""
SINGLE_METHODS = ("search", "predictor", "predictor+fit", "both", "template", "bbox")
MULTI_METHODS = ("lift3d", "template", "bbox")
BASELINES = ("template", "bbox")


def box_mesh(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The axis-aligned bounding box of ``points`` (V, 3) as a closed mesh: (8, 3) points, (12, 3) faces."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
                      [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]], dtype=np.int64)
    return corners, faces


def bbox_case(gt: GroundTruth, mode: str, inputs: list[str], preset: str) -> dict[str, Any]:
    """The bounding-box baseline: the ground truth's own axis-aligned box, under the true cameras.

    It knows the exact pose and size and nothing of the shape, so a reconstruction below it on
    held-out IoU has a shape (or pose) worse than a box.
    """
    record: dict[str, Any] = {"asset": gt.asset, "category": gt.category, "mode": mode, "method": "bbox",
                              "inputs": inputs, "preset": preset}
    start = time.perf_counter()
    points, faces = box_mesh(gt.points)
    mesh = EvalMesh(points, faces, np.full(len(faces), -1, np.int64), np.zeros((0, 2)), None, None,
                    [gt.cameras[f] for f in inputs])
    record["metrics"] = score(mesh, gt, inputs, np.eye(4), parts=False)
    record["seconds"] = time.perf_counter() - start
    return record


def true_view(gt: GroundTruth, frame: str) -> dict[str, float]:
    """Yaw and pitch (degrees) of a frame's true camera about the ground truth's box centre, in the
    canonical convention of :mod:`lift3d.pipeline.pose` (the render world has the canonical axes)."""
    lo, hi = gt.points.min(axis=0), gt.points.max(axis=0)
    d = gt.cameras[frame].cam_to_world[:3, 3] - 0.5 * (lo + hi)
    return {"true_yaw_deg": math.degrees(math.atan2(d[0], d[2])) % 360.0,
            "true_pitch_deg": math.degrees(math.atan2(d[1], math.hypot(d[0], d[2])))}


def yaw_error_deg(record: dict[str, Any]) -> float:
    """Absolute yaw error (degrees, 0-180) of a single-photo run's chosen camera; NaN when unknown."""
    init = record.get("init") or {}
    if init.get("yaw_deg") is None or init.get("true_yaw_deg") is None:
        return math.nan
    return abs((init["yaw_deg"] - init["true_yaw_deg"] + 180.0) % 360.0 - 180.0)


def format_camera_table(records: list[dict[str, Any]]) -> str:
    """Markdown table of the single-photo camera estimates: per asset and method, the chosen body,
    yaw error, front/back and pitch error, then the means per method."""
    rows = ["| asset | mode | method | body | yaw error (deg) | front/back | pitch error (deg) | input IoU |",
            "|---|---|---|---|---:|:---:|---:|---:|"]
    per_method: dict[str, list[tuple[float, float, float]]] = {}
    for r in records:
        if "error" in r or not r.get("init") or r["method"] in BASELINES or r.get("category", "car") != "car":
            continue
        init = r["init"]
        err = yaw_error_deg(r)
        pitch = abs(init.get("pitch_deg", math.nan) - init.get("true_pitch_deg", math.nan))
        body = init.get("body_type") or init.get("shape") or ""
        rows.append(f"| {r['asset']} | {r['mode']} | {r['method']} | {body} | {_fmt(err, '{:.1f}')} | "
                    f"{'yes' if err < 90 else 'no'} | {_fmt(pitch, '{:.1f}')} | "
                    f"{_fmt(_value(r, 'input_iou'), '{:.3f}')} |")
        per_method.setdefault(r["method"], []).append((err, pitch, _value(r, "input_iou")))
    for method, values in per_method.items():
        errs = np.array(values, dtype=np.float64)
        rows.append(f"| **all** | | {method} | | median {_fmt(float(np.nanmedian(errs[:, 0])), '{:.1f}')} | "
                    f"{float(np.mean(errs[:, 0] < 90)):.0%} | median {_fmt(float(np.nanmedian(errs[:, 1])), '{:.1f}')}"
                    f" | {_fmt(float(np.nanmean(errs[:, 2])), '{:.3f}')} |")
    return "\n".join(rows) + "\n"


def model_card_section() -> str:
    """The default predictor's card: its training run and its validation on held-out procedural views."""
    from lift3d.learn.model import card_path, default_model_path

    path = card_path(default_model_path())
    if not path.is_file():
        return ""
    card = json.loads(path.read_text())
    v = card.get("validation", {})
    o = card.get("options", {})
    return ("\n## The vehicle predictor\n\n"
            f"Default model `{default_model_path().name}` (card `{path.name}`): trained by `lift3d train` on "
            f"{o.get('samples')} procedural renders (generator version {card.get('generator_version')}), "
            f"{card.get('steps')} steps of batch {o.get('batch')}, seed {card.get('seed')}, in "
            f"{card.get('training_seconds', 0) / 60:.0f} min of training on the CPU. Validation on "
            f"{v.get('views')} held-out procedural views (other seed; no refinement):\n\n"
            "| front/back correct | median yaw error | body-type accuracy | silhouette IoU (predicted vehicle, "
            "predicted camera) |\n|---:|---:|---:|---:|\n"
            f"| {v.get('front_back_accuracy', math.nan):.1%} | {v.get('median_yaw_error_deg', math.nan):.1f} deg | "
            f"{v.get('body_type_accuracy', math.nan):.1%} | {v.get('silhouette_iou', math.nan):.3f} |\n")


def run_case(gt: GroundTruth, mode: str, inputs: list[str], calibrated: bool, preset: str, method: str,
             work: Path, config: Path | None = None) -> dict[str, Any]:
    """Reconstruct ``inputs`` of ``gt`` with one method and score it; failures are recorded, not raised.

    ``config``: a settings file for the reconstruction (for instance another predictor model).

    ``method``: one of :data:`SINGLE_METHODS` (one photo) or :data:`MULTI_METHODS` (calibrated views).
    """
    from lift3d.api import ReconstructRequest, reconstruct
    from lift3d.usd.reader import read_asset

    if method == "bbox":
        return bbox_case(gt, mode, inputs, preset)
    record: dict[str, Any] = {"asset": gt.asset, "category": gt.category, "mode": mode, "method": method,
                              "inputs": inputs, "preset": preset}
    try:
        views = gt.folder / "transforms.json" if calibrated else None
        init, fit = METHODS.get(method, (None, method != "template"))
        if calibrated or gt.category != "car":
            init = None
        request = ReconstructRequest(images=[gt.images[f] for f in inputs], views=views, category=gt.category,
                                     preset=preset, name=f"{gt.asset}_{mode}_{method.replace('+', '_')}",
                                     out_dir=work, fit_shape=fit, init=init, config=config)
        start = time.perf_counter()
        result = reconstruct(request)
        record["seconds"] = time.perf_counter() - start
        record["timings"] = result.timings
        record["reported"] = result.metrics  # the reconstructor's own numbers, as a cross-check
        asset = read_asset(result.asset_path)
        mesh = EvalMesh.from_asset(asset)
        if len(mesh.cameras) != len(inputs):
            raise RuntimeError(f"asset has {len(mesh.cameras)} source cameras for {len(inputs)} inputs")
        if calibrated:
            transform, canonical, scale = np.eye(4), None, 1.0
        else:
            est, truth = mesh.cameras[0], gt.cameras[inputs[0]]
            scale = depth_scale(est, mesh.points, truth, gt.points)
            transform = alignment(est.cam_to_world, truth.cam_to_world, scale)
            canonical = canonical_alignment(gt.points)
        record["metrics"] = score(mesh, gt, inputs, transform, parts=gt.category == "car", canonical=canonical)
        record["metrics"]["depth_scale"] = scale
        if not calibrated:
            camera = asset.provenance.get("camera", {})
            record["init"] = {k: camera.get(k) for k in ("chosen", "shape", "body_type", "yaw_deg", "pitch_deg")
                              if k in camera}
            record["init"].update(true_view(gt, inputs[0]))
    except Exception as exc:  # one failure must not stop the evaluation
        record["error"] = f"{type(exc).__name__}: {exc}".replace(str(gt.folder.parent.parent), "<data>")
        print(traceback.format_exc(limit=6), file=sys.stderr)
    return record


COLUMNS = (("input_iou", "input IoU", "{:.3f}"), ("heldout_iou", "held-out IoU", "{:.3f}"),
           ("volume_iou", "3D IoU", "{:.3f}"), ("chamfer_l1_rel", "Chamfer-L1 (of diag)", "{:.2%}"),
           ("fscore@1%", "F@1%", "{:.3f}"), ("fscore@2%", "F@2%", "{:.3f}"),
           ("volume_iou_canonical", "3D IoU canon.", "{:.3f}"), ("fscore@2%_canonical", "F@2% canon.", "{:.3f}"),
           ("input_part_iou_wheel", "wheel IoU in.", "{:.3f}"), ("part_iou_wheel", "wheel IoU", "{:.3f}"),
           ("part_iou_window", "window IoU", "{:.3f}"),
           ("psnr_masked", "masked PSNR (dB)", "{:.2f}"), ("scale_ratio", "scale", "{:.2f}"),
           ("seconds", "time (s)", "{:.0f}"))


def _value(record: dict[str, Any], key: str) -> float:
    """A record's metric (or ``seconds``); NaN when missing, failed, or ``None`` (NaN as read back from JSON)."""
    if "error" in record:
        return math.nan
    value = record.get("seconds") if key == "seconds" else record.get("metrics", {}).get(key)
    return math.nan if value is None else float(value)


def _fmt(value: float, fmt: str) -> str:
    return "–" if not math.isfinite(value) else fmt.format(value)


def _methods(records: list[dict[str, Any]]) -> list[str]:
    """Methods in the order of the records, baselines last."""
    names = list(dict.fromkeys(r["method"] for r in records))
    return [m for m in names if m not in BASELINES] + [m for m in BASELINES if m in names]


def format_table(records: list[dict[str, Any]]) -> str:
    """Markdown table: one row per (asset, mode, method), then the mean per (mode, method).

    Means of a column are over the (asset, mode) cases where every method has the value, so the
    methods are compared on the same cases; failed runs show ``failed``.
    """
    header = "| asset | mode | method | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|---|---|---|" + "---:|" * len(COLUMNS)
    rows = [header, rule]
    methods = _methods(records)
    cases: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in records:
        cases.setdefault((r["asset"], r["mode"]), {})[r["method"]] = r
    for (asset, mode), by_method in cases.items():
        for method in methods:
            if method not in by_method:
                continue
            rec = by_method[method]
            cells = (["failed"] * len(COLUMNS) if "error" in rec
                     else [_fmt(_value(rec, k), fmt) for k, _, fmt in COLUMNS])
            rows.append(f"| {asset} | {mode} | {method} | " + " | ".join(cells) + " |")
    for mode in dict.fromkeys(m for _, m in cases):
        group = [by for (a, m), by in cases.items() if m == mode]
        present = [m for m in methods if any(m in by for by in group)]
        for method in present:
            cells = []
            for key, _, fmt in COLUMNS:
                # the cases this method ran on, where every method that ran on them has the value
                shared = [_value(by[method], key) for by in group if method in by
                          and all(math.isfinite(_value(rec, key)) for rec in by.values())]
                cells.append(_fmt(float(np.mean(shared)) if shared else math.nan, fmt))
            rows.append(f"| **mean** | {mode} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def failures(records: list[dict[str, Any]]) -> str:
    """Markdown list of the failed runs (empty string if none)."""
    lines = [f"* {r['asset']} / {r['mode']} / {r['method']}: {r['error']}" for r in records if "error" in r]
    return "\n".join(lines) + ("\n" if lines else "")


QUALITY_INTRO = """# Reconstruction quality

Measured by `tools/evaluate.py` on the evaluation renders in `../shared/eval/renders`
(Mitsuba 3 renders of licensed 3D assets with exact cameras; see their README). None of these
assets was used to train or tune the vehicle predictor (it is trained on procedural vehicles
only), so every vehicle here is unseen by it. One row per method:

* **search**: one photo, the template grid search (`--init search`), then the shape fit.
* **predictor**: one photo, the learned predictor's best hypothesis (camera, body type, generator
  parameters) placed by its mask box, with no refinement at all.
* **predictor+fit**: one photo, the predictor's top hypotheses refined by render-and-compare
  (`--init learned`), then the shape fit.
* **both**: one photo, the predictor's hypotheses and, unless the learned camera already fits
  the mask, the grid search, the lower silhouette loss kept (`--init both`), then the shape fit.
* **lift3d**: calibrated views (or a generic object), the reconstructor as shipped.
* **template** (baseline): the undeformed template placed by the grid search
  (`ReconstructRequest(fit_shape=False, init="search")`) or, with calibrated views, by the visual hull.
* **bbox** (baseline): the ground truth's own axis-aligned bounding box under the true cameras: exact
  pose and size, no shape. A method below it on held-out IoU has a shape worse than a box.

* **single-fl / single-fr**: one 256x256 photo-like 3/4 view (`photo_fl` or `photo_fr`), camera
  unknown; the 19 other views are held out. The ground truth is brought into the asset's frame
  through the input camera: `T = C_est @ S @ inv(C_in)` (estimated and true camera-to-world of
  the input view), so held-out cameras become `T @ C_heldout`. `S` scales about the input
  camera's centre by the ratio of the object depths, which leaves the input image unchanged (one
  view cannot tell a small near object from a large far one). Pose errors therefore count
  against every held-out metric, but the depth-scale ambiguity does not; *scale* reports the
  size error instead: the reconstruction's bounding-box diagonal over the ground truth's, in
  metres (1.00 = right size).
* **multi4**: four calibrated views (`photo_fl`, `photo_fr`, `r15_az090`, `r15_az270`, cameras
  from `transforms.json`); the 16 other views are held out; no alignment (same world frame).
* **input IoU / held-out IoU**: silhouette IoU at the input views (through the asset's own
  `SourceCamera`s) and at the held-out views, against the renders' alpha (`alpha >= 128`).
* **3D IoU**: volumetric IoU on a 64^3 grid over both meshes' joint bounding box, with a
  6-ray parity/winding vote that tolerates the ground truths' open, overlapping meshes.
* **Chamfer-L1**: mean of both directions' mean nearest-neighbour distances of 20 000 surface
  samples each, in % of the ground truth's bounding-box diagonal; **F@1% / F@2%**: F-score at
  1 % / 2 % of that diagonal.
* **canon.**: single view only: the same 3D metrics with the pose estimate taken out: the ground
  truth is placed the way the category's canonical frame places an object (lowest point on
  y = 0, centred in x and z; the render world already has the canonical axes), so they measure
  the shape, its scale and its heading in the canonical frame rather than the camera estimate.
* **wheel / window IoU**: per-part IoU of part-label renders at the held-out views (vehicles);
  **wheel IoU in.**: the same at the input views (reconstruction through its `SourceCamera`s,
  ground truth through the true cameras), i.e. how well the wheels sit on the photo.
* **masked PSNR**: the unlit albedo render against the held-out photos, inside their alpha mask
  (uncovered pixels count as grey); the photos are shaded, so even a perfect albedo loses a few dB.
* **time**: wall time of one reconstruction on the evaluation machine (CPU).

All renders and metrics are independent of the product's Warp kernels (numpy/scipy rasteriser
in `lift3d.metrics`); rendering the ground-truth mesh with it at the held-out cameras matches the
renders' alpha with IoU 0.999, so the silhouette metrics are exact to the pixel.

Reading the numbers:

* The motorcycle goes through the car category; from one photo the camera search picks its
  two-wheeler body (2.2 m long, the tyres of each axle side by side), from calibrated views the
  visual-hull placement starts from the sedan body. A motorcycle is mostly thin parts
  (handlebars, forks, exhausts), so its 3D IoU stays low whichever body is used.
* The teapot's ground truth is a thick-walled hollow vessel: its cavity is outside the solid, so
  its 3D IoU against any filled reconstruction stays low while its Chamfer and F-scores are fine.
* Single-view numbers are dominated by the camera estimate (compare the canonical 3D columns);
  small parts (wheels, lights) are scored at held-out views, where a few degrees of pose error
  already move them by several pixels.
* The renders here are made with a 45 degree field of view, exactly what the grid search and (by
  default, `predictor.fov = "assumed"`) the predictor's hypotheses assume; a photo with another
  lens costs both some accuracy. The predictor's own focal-length estimate was 1.2-2.6x too long
  on these renders, which is why it is not used by default.
* The grid search's body shapes and constants were tuned on these vehicles over several
  releases; the predictor has never seen them (it is trained on procedural vehicles only). The
  predictor's weak spots here are its body type (the domain gap from its Warp renders to these
  Mitsuba renders: it calls the ambulance and the Kenney trucks tractors, the motorcycle a
  tractor and the formula car a pickup) and an elevation about 5-25 degrees too high; the
  render-and-compare refinement corrects most of the camera, not the body type.
"""


def foreground_scores(data: Path, assets: list[str]) -> list[dict[str, Any]]:
    """Automatic foreground extraction on the input photos with their alpha stripped, scored against the alpha.

    The renders' colour is black where they are transparent, so stripping the
    alpha leaves the object on a black background. Returns one record per
    photo: ``asset``, ``frame``, ``iou`` (or ``error``) and ``seconds``.
    """
    from lift3d.io.foreground import extract_foreground
    from lift3d_eval.metrics import mask_iou

    out: list[dict[str, Any]] = []
    for asset in assets:
        for frame in SINGLE_INPUTS:
            path = data / "renders" / asset / f"{frame}.png"
            rec: dict[str, Any] = {"asset": asset, "frame": frame}
            try:
                rgba = np.asarray(Image.open(path).convert("RGBA"))
                start = time.perf_counter()
                mask = extract_foreground(rgba[..., :3] / 255.0, path.name)
                rec["seconds"] = time.perf_counter() - start
                rec["iou"] = mask_iou(mask, rgba[..., 3] >= 128)
            except Exception as exc:
                rec["error"] = f"{type(exc).__name__}: {exc}"
            out.append(rec)
    return out


def photo_foreground_scores(data: Path) -> list[dict[str, Any]]:
    """Automatic foreground extraction on the real photos in ``photos/``, scored against their (approximate) masks."""
    from lift3d.io.foreground import extract_foreground
    from lift3d.io.images import load_image, load_mask
    from lift3d_eval.metrics import mask_iou

    out: list[dict[str, Any]] = []
    for mask_path in sorted((data / "photos").glob("*_mask.png")):
        photo = mask_path.with_name(mask_path.name.replace("_mask.png", ".png"))
        rec: dict[str, Any] = {"photo": photo.name}
        try:
            image = load_image(photo)
            truth = load_mask(mask_path, image.size)
            rec["object_fraction"] = float(truth.mean())
            rec["iou"] = mask_iou(extract_foreground(image.rgb, photo.name), truth)
        except Exception as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"
        out.append(rec)
    return out


def format_photo_foreground(scores: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`photo_foreground_scores`."""
    rows = ["| photo | object share of the image | IoU vs approximate mask |", "|---|---:|---:|"]
    for rec in scores:
        share = f"{rec['object_fraction']:.1%}" if "object_fraction" in rec else "–"
        rows.append(f"| {rec['photo']} | {share} | {rec['iou']:.3f} |" if "iou" in rec
                    else f"| {rec['photo']} | {share} | failed: {rec['error']} |")
    return "\n".join(rows) + "\n"


def format_foreground(scores: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`foreground_scores` (IoU per asset and photo, and the mean)."""
    rows = ["| asset | " + " | ".join(f"{f} IoU" for f in SINGLE_INPUTS) + " |",
            "|---|" + "---:|" * len(SINGLE_INPUTS)]
    by_asset: dict[str, dict[str, Any]] = {}
    for rec in scores:
        by_asset.setdefault(rec["asset"], {})[rec["frame"]] = rec
    for asset, frames in by_asset.items():
        cells = [f"{frames[f]['iou']:.3f}" if "iou" in frames.get(f, {}) else "failed" for f in SINGLE_INPUTS]
        rows.append(f"| {asset} | " + " | ".join(cells) + " |")
    ious = [r["iou"] for r in scores if "iou" in r]
    if ious:
        rows.append(f"| **mean** ({len(ious)} of {len(scores)} photos) | {np.mean(ious):.3f} |"
                    + " |" * (len(SINGLE_INPUTS) - 1))
    return "\n".join(rows) + "\n"


FOREGROUND_INTRO = """## Automatic foreground extraction

`lift3d.io.foreground.extract_foreground` (GrabCut seeded from the border, see its docstring) on
the evaluation photos with their alpha channel stripped (the object on black), scored by mask IoU
against `alpha >= 128`. This is the mask a photo without transparency and without `--mask` gets.
"""

PHOTO_FOREGROUND_INTRO = """The same on the real photos in `../shared/eval/photos` (parking-lot video frames, CC BY 4.0),
against their approximate background-subtraction masks. Only the largest object is kept, so
frames with two cars score about half.
"""


SUMMARY_COLUMNS = ("input_iou", "heldout_iou", "volume_iou", "fscore@1%", "fscore@2%", "input_part_iou_wheel",
                   "part_iou_wheel", "seconds")


def format_summary(records: list[dict[str, Any]]) -> str:
    """Markdown table of the means per (preset, mode, method): the time/quality trade-off beside the baselines.

    Each mean is over that method's successful runs; ``runs`` counts them.
    """
    titles = {key: title for key, title, _ in COLUMNS}
    formats = {key: fmt for key, _, fmt in COLUMNS}
    rows = ["| preset | mode | method | runs | " + " | ".join(titles[k] for k in SUMMARY_COLUMNS) + " |",
            "|---|---|---|---:|" + "---:|" * len(SUMMARY_COLUMNS)]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((str(r.get("preset")), r["mode"]), []).append(r)
    for (preset, mode), group in groups.items():
        for method in _methods(group):
            runs = [r for r in group if r["method"] == method]
            cells = []
            for key in SUMMARY_COLUMNS:
                values = [v for v in (_value(r, key) for r in runs) if math.isfinite(v)]
                cells.append(_fmt(float(np.mean(values)) if values else math.nan, formats[key]))
            ok = sum("error" not in r for r in runs)
            rows.append(f"| {preset} | {mode} | {method} | {ok}/{len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def write_quality(path: Path, records: list[dict[str, Any]], note: str,
                  foreground: list[dict[str, Any]] | None = None,
                  photo_foreground: list[dict[str, Any]] | None = None) -> None:
    """Write the QUALITY.md report atomically: intro, summary, one results table per preset, foreground tables."""
    from lift3d.atomic import write_text_atomic

    presets = list(dict.fromkeys(str(r.get("preset")) for r in records))
    text = QUALITY_INTRO + f"\n## Summary\n\n{note}\n\nMeans over the assets per method (each over its successful runs):\n\n"
    text += format_summary(records)
    categories = {"car": "Vehicles only (the category the reconstructor's targets are set on)",
                  "generic": "Generic objects only"}
    present = [c for c in categories if any(r.get("category") == c for r in records)]
    if len(present) > 1:
        for category in present:
            text += f"\n{categories[category]}:\n\n"
            text += format_summary([r for r in records if r.get("category") == category])
    for preset in presets:
        subset = [r for r in records if str(r.get("preset")) == preset]
        text += f"\n## Results (preset `{preset}`)\n\n" + format_table(subset)
        failed = failures(subset)
        if failed:
            text += "\n### Failed runs\n\n" + failed
    single = [r for r in records if r.get("init")]
    text += model_card_section()
    if single:
        text += ("\nSingle-photo camera estimates on the evaluation renders (the predictor's lines are its "
                 "transfer from procedural Warp renders to Mitsuba renders of real assets):\n\n")
        text += format_camera_table(single)
    if foreground:
        text += "\n" + FOREGROUND_INTRO + "\n" + format_foreground(foreground)
    if photo_foreground:
        text += "\n" + PHOTO_FOREGROUND_INTRO + "\n" + format_photo_foreground(photo_foreground)
    write_text_atomic(path, text)


def source_version() -> str:
    """`` at commit abc1234`` (plus ``with local changes``) when run from a git checkout, else ``""``."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f" at commit {head}" + (" with local changes" if dirty else "")


def _cases(modes: list[str]) -> list[tuple[str, list[str], bool]]:
    cases: list[tuple[str, list[str], bool]] = []
    if "single" in modes:
        cases += [(f"single-{frame.split('_')[1]}", [frame], False) for frame in SINGLE_INPUTS]
    if "multi" in modes:
        cases.append(("multi4", list(MULTI_INPUTS), True))
    return cases


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python values and NaN/inf into ``None`` (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="evaluation data folder (../shared/eval)")
    parser.add_argument("--assets", default="", help="comma-separated asset ids (default: all vehicles)")
    parser.add_argument("--generic", action="store_true", help="also spot, duck, avocado, teapot (generic)")
    parser.add_argument("--preset", default="fast",
                        help="comma-separated reconstruction presets (fast, balanced, best)")
    parser.add_argument("--modes", default="single,multi", help="comma-separated: single, multi")
    parser.add_argument("--limit", type=int, default=0, help="evaluate at most this many assets")
    parser.add_argument("--no-baseline", action="store_true", help="skip the template and bounding-box baselines")
    parser.add_argument("--methods", default="", help="comma-separated single-photo methods to run besides the baselines "
                        f"(default: all of {', '.join(SINGLE_METHODS)})")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS, help="results JSON file")
    parser.add_argument("--quality", type=Path, default=DEFAULT_QUALITY, help="Markdown report to write")
    parser.add_argument("--rerender", action="store_true",
                        help="rewrite the report from the results JSON (--out) without reconstructing anything; "
                             "the report keeps the note saying which command produced the results")
    args = parser.parse_args(argv)

    from lift3d.atomic import write_text_atomic

    if args.rerender:
        records = json.loads(args.out.read_text())
        previous = args.quality.read_text() if args.quality.is_file() else ""
        marker = "## Summary\n\n"
        note = previous.split(marker, 1)[1].split("\n\n", 1)[0] if marker in previous else f"Results from {args.out}."
        assets = list(dict.fromkeys(r["asset"] for r in records))
        write_quality(args.quality, records, note, foreground_scores(args.data, assets),
                      photo_foreground_scores(args.data))
        return 0

    presets = [p.strip() for p in args.preset.split(",") if p.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("single", "multi") for m in modes):
        parser.error("--modes takes single, multi or both")
    if not (args.data / "renders").is_dir():
        parser.error(f"no renders folder under {args.data}")
    assets = [a.strip() for a in args.assets.split(",") if a.strip()] or list(VEHICLES)
    if args.generic:
        assets += [a for a in GENERIC if a not in assets]
    if args.limit > 0:
        assets = assets[:args.limit]

    version = source_version()  # before the results file below is written (it may be tracked)
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lift3d-eval-") as tmp:
        work = Path(tmp)
        for asset in assets:
            category = "generic" if asset in GENERIC else "car"
            try:
                gt = load_ground_truth(args.data, asset, category)
            except Exception as exc:
                records += [{"asset": asset, "category": category, "mode": "-", "method": "lift3d", "preset": p,
                             "error": f"cannot load ground truth: {type(exc).__name__}: {exc}"} for p in presets]
                continue
            for preset in presets:
                for mode, inputs, calibrated in _cases(modes):
                    methods = list(MULTI_METHODS if calibrated else
                                   (SINGLE_METHODS if category == "car" else ("search", "template", "bbox")))
                    if calibrated or category != "car":
                        methods[0] = "lift3d"
                    if args.methods:
                        methods = [m for m in methods if m in args.methods.split(",") or m in ("lift3d", *BASELINES)]
                    if args.no_baseline:
                        methods = [m for m in methods if m not in BASELINES]
                    for method in methods:
                        rec = run_case(gt, mode, inputs, calibrated, preset, method, work)
                        records.append(rec)
                        status = rec.get("error") or ", ".join(
                            f"{k}={v:.3f}" for k, v in rec["metrics"].items()
                            if k in ("input_iou", "heldout_iou", "volume_iou", "fscore@2%"))
                        print(f"{asset} {preset} {mode} {rec['method']}: {status}", flush=True)
                        write_text_atomic(args.out, json.dumps(jsonable(records), indent=1, allow_nan=False))
    note = (f"{len(assets)} assets, modes {', '.join(modes)}; produced by "
            f"`python tools/evaluate.py --preset {args.preset} --modes {','.join(modes)}"
            f"{' --generic' if args.generic else ''}{f' --methods {args.methods}' if args.methods else ''}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
            f"{version}, CPU only.")
    write_quality(args.quality, records, note, foreground_scores(args.data, assets),
                  photo_foreground_scores(args.data))
    print(format_summary(records))
    return 0 if not any("error" in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
