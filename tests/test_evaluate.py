"""The evaluation harness's pure parts: alignment, scoring on synthetic data, tables, settings."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lift3d.camera import Camera, orbit_camera
from lift3d_eval.metrics import rasterize, render_labels

_SPEC = importlib.util.spec_from_file_location("evaluate", Path(__file__).resolve().parents[1] / "tools" / "evaluate.py")
evaluate = importlib.util.module_from_spec(_SPEC)
sys.modules["evaluate"] = evaluate  # dataclasses look their module up while the file executes
_SPEC.loader.exec_module(evaluate)


def _rigid(yaw: float, t: tuple[float, float, float]) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    m = np.eye(4)
    m[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    m[:3, 3] = t
    return m


def _box(lo, hi):
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    pts = np.array([[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0],
                    [x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]], float)
    faces = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                      [2, 3, 7], [2, 7, 6], [1, 2, 6], [1, 6, 5], [0, 4, 7], [0, 7, 3]])
    return pts, faces


def test_part_class_vocabulary():
    names = {n: evaluate.PART_CLASSES[evaluate.part_class(n)] for n in
             ["wheel_fl", "wheel_rear", "wheel", "light_front", "headlight_l", "light_rear", "taillight",
              "window", "window_trim", "body", "fork"]}
    assert names == {"wheel_fl": "wheel", "wheel_rear": "wheel", "wheel": "wheel", "light_front": "headlight",
                     "headlight_l": "headlight", "light_rear": "taillight", "taillight": "taillight",
                     "window": "window", "window_trim": "body", "body": "body", "fork": "body"}
    assert evaluate.part_class("support_cloth") == -1 and evaluate.part_class("object") == -1


def test_read_obj_triangulates_and_handles_negative_indices(tmp_path):
    obj = tmp_path / "m.obj"
    obj.write_text("# c\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1/1 2/2 3/3 4/4\nf -4 -2 -1\n")
    pts, faces = evaluate.read_obj(obj)
    assert pts.shape == (4, 3)
    np.testing.assert_array_equal(faces, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])


def test_alignment_maps_ground_truth_into_the_asset_frame():
    # The unknown frame the reconstructor chose: rotated, shifted and 1.5x too large (a single
    # view cannot tell), i.e. the camera was estimated 1.5x too far away.
    asset_from_world = _rigid(0.7, (0.3, -0.2, 1.5)) @ np.diag([1.5, 1.5, 1.5, 1.0])
    gt_in = orbit_camera(0.8, 0.2, 6.0, 0.8, 64, 64)
    est = evaluate.moved_camera(gt_in, asset_from_world)  # a perfect pose estimate, in asset coordinates
    np.testing.assert_allclose(est.cam_to_world[:3, :3] @ est.cam_to_world[:3, :3].T, np.eye(3), atol=1e-12)
    pts, faces = _box((-1, -0.5, -2), (1, 0.5, 2))
    rec = evaluate.transform_points(asset_from_world, pts)
    scale = evaluate.depth_scale(est, rec, gt_in, pts)
    assert scale == pytest.approx(1.5)
    t = evaluate.alignment(est.cam_to_world, gt_in.cam_to_world, scale)
    np.testing.assert_allclose(t, asset_from_world, atol=1e-12)
    # The input view is unchanged by the depth scaling: the GT projects where it did.
    np.testing.assert_allclose(est.project(rec)[0], gt_in.project(pts)[0], atol=1e-9)
    # A held-out camera carried by T sees the asset-frame mesh exactly as the GT camera sees the GT.
    cam = orbit_camera(-1.2, 0.5, 7.0, 0.8, 48, 48)
    moved = evaluate.moved_camera(cam, t)
    assert (moved.fx, moved.width) == (cam.fx, cam.width)
    np.testing.assert_array_equal(rasterize(rec, faces, moved).mask, rasterize(pts, faces, cam).mask)


def _synthetic_gt(tmp_path: Path) -> evaluate.GroundTruth:
    pts, faces = _box((-1.0, -0.6, -2.0), (1.0, 0.6, 2.0))
    face_class = np.array([evaluate.PART_CLASSES.index("body")] * 10 + [evaluate.PART_CLASSES.index("wheel")] * 2)
    cams, images = {}, {}
    for i, yaw in enumerate(np.linspace(0.0, 2 * np.pi, 6, endpoint=False)):
        name = f"view{i}"
        cam = orbit_camera(yaw + 0.3, 0.25, 8.0, 0.8, 48, 48, name=name)
        raster = rasterize(pts, faces, cam)
        rgba = np.zeros((48, 48, 4), np.uint8)
        rgba[raster.mask] = [200, 40, 40, 255]
        images[name] = tmp_path / f"{name}.png"
        Image.fromarray(rgba).save(images[name])
        cams[name] = cam
    return evaluate.GroundTruth("box", "car", tmp_path, pts, faces, face_class, cams, images)


def test_score_is_perfect_for_the_ground_truth_in_another_frame(tmp_path):
    gt = _synthetic_gt(tmp_path)
    asset_from_world = _rigid(math.pi / 2, (2.0, 0.1, -0.5))  # a quarter turn keeps bbox diagonals
    c_est = asset_from_world @ gt.cameras["view0"].cam_to_world
    est = Camera(gt.cameras["view0"].fx, gt.cameras["view0"].fy, 24.0, 24.0, 48, 48, c_est)
    texture = np.full((4, 4, 3), [200, 40, 40], np.uint8)
    mesh = evaluate.EvalMesh(evaluate.transform_points(asset_from_world, gt.points), gt.faces, gt.face_class,
                             np.full((8, 2), 0.5, np.float32), None, texture, [est])
    t = evaluate.alignment(est.cam_to_world, gt.cameras["view0"].cam_to_world)
    m = evaluate.score(mesh, gt, ["view0"], t, parts=True)
    assert m["input_iou"] == 1.0 and m["heldout_iou"] == 1.0
    assert m["volume_iou"] == pytest.approx(1.0) and m["chamfer_l1"] == pytest.approx(0.0, abs=1e-9)
    assert m["fscore@1%"] == 1.0 and m["scale_ratio"] == pytest.approx(1.0)
    assert m["part_iou_body"] == 1.0 and m["part_iou_wheel"] == 1.0 and math.isnan(m["part_iou_window"])
    assert m["input_part_iou_body"] == 1.0 and math.isnan(m["input_part_iou_window"])
    assert m["psnr_masked"] > 50

    # A reconstruction 20 % too large scores worse everywhere, and says so in scale_ratio.
    bigger = evaluate.EvalMesh(mesh.points * 1.2, gt.faces, gt.face_class, mesh.uv, None, texture, [est])
    worse = evaluate.score(bigger, gt, ["view0"], t, parts=True)
    assert worse["heldout_iou"] < 0.95 and worse["volume_iou"] < 0.9 and worse["fscore@1%"] < 0.5
    assert worse["scale_ratio"] == pytest.approx(1.2)
    gt_labels = gt.labels("view3")
    assert set(np.unique(gt_labels)) <= {-1, 0, 1}
    np.testing.assert_array_equal(gt_labels, render_labels(gt.points, gt.faces, gt.face_class, gt.cameras["view3"]))


def _record(asset, mode, method, preset="fast", **metrics):
    return {"asset": asset, "mode": mode, "method": method, "preset": preset,
            "seconds": metrics.pop("seconds", 10.0), "metrics": metrics}


def test_format_table_rows_per_method_and_means_over_shared_cases():
    records = [
        _record("a", "single-fl", "search", input_iou=0.9, heldout_iou=0.8),
        _record("a", "single-fl", "template", input_iou=0.7, heldout_iou=0.6),
        _record("b", "single-fl", "search", input_iou=0.5, heldout_iou=0.4),
        {"asset": "b", "mode": "single-fl", "method": "template", "error": "RuntimeError: boom"},
        {"asset": "c", "mode": "single-fl", "method": "search", "error": "InputError: bad"},
        {"asset": "c", "mode": "single-fl", "method": "template", "error": "InputError: bad"},
    ]
    table = evaluate.format_table(records)
    lines = table.strip().splitlines()
    assert lines[0].startswith("| asset | mode | method | input IoU | held-out IoU |")
    assert len(lines) == 2 + 6 + 2
    assert "| a | single-fl | search | 0.900 | 0.800 |" in table
    assert "| a | single-fl | template | 0.700 | 0.600 |" in table
    assert "| b | single-fl | template | failed |" in table
    # Means only over cases where every method has the value: asset a alone.
    assert "| **mean** | single-fl | search | 0.900 | 0.800 |" in table
    assert "| **mean** | single-fl | template | 0.700 | 0.600 |" in table
    assert "b / single-fl / template: RuntimeError: boom" in evaluate.failures(records)


def test_quality_report_and_json(tmp_path):
    records = [_record("a", "multi4", "lift3d", input_iou=0.9, chamfer_l1_rel=0.0123),
               _record("a", "multi4", "template", input_iou=float("nan"), chamfer_l1_rel=0.05),
               _record("a", "multi4", "lift3d", "best", input_iou=0.95, seconds=60.0),
               _record("a", "multi4", "template", "best", input_iou=0.8, seconds=5.0),
               _record("b", "multi4", "lift3d", "best", input_iou=0.85, seconds=40.0),
               {"asset": "b", "mode": "multi4", "method": "template", "preset": "best", "error": "E: x"}]
    out = tmp_path / "QUALITY.md"
    evaluate.write_quality(out, records, "note")
    text = out.read_text()
    assert text.startswith("# Reconstruction quality") and "| 1.23% |" in text and "| 5.00% |" in text
    assert text.index("## Summary") < text.index("preset `fast`") < text.index("preset `best`")
    summary = evaluate.format_summary(records)
    assert "| fast | multi4 | template | 1/1 | – |" in summary  # the template has no input IoU: no mean
    assert "| best | multi4 | lift3d | 2/2 | 0.900 |" in summary and "| 50 |" in summary
    assert "| best | multi4 | template | 1/2 | 0.800 |" in summary
    data = json.loads(json.dumps(evaluate.jsonable({"x": np.float64(np.nan), "y": np.arange(2)}),
                                 allow_nan=False))
    assert data == {"x": None, "y": [0, 1]}


def test_bounding_box_baseline_is_a_closed_box():
    points = np.array([[0.0, 0.0, 0.0], [2.0, 1.0, 4.0], [1.0, 0.5, 1.0]])
    corners, faces = evaluate.box_mesh(points)
    assert corners.min(axis=0).tolist() == [0.0, 0.0, 0.0] and corners.max(axis=0).tolist() == [2.0, 1.0, 4.0]
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert len(faces) == 12 and (counts == 2).all()  # every edge shared by two triangles: closed
    tri = corners[faces]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    assert volume == pytest.approx(8.0)  # outward winding


def test_quality_report_has_a_summary_per_category(tmp_path):
    records = [{**_record("car1", "multi4", m, input_iou=v), "category": "car"} for m, v in (("lift3d", 0.9),
                                                                                            ("template", 0.7))]
    records += [{**_record("duck", "multi4", m, input_iou=v), "category": "generic"} for m, v in (("lift3d", 0.5),
                                                                                                ("template", 0.3))]
    out = tmp_path / "QUALITY.md"
    evaluate.write_quality(out, records, "note")
    text = out.read_text()
    overall, vehicles, generic = (text.index(key) for key in ("| fast | multi4 | lift3d | 2/2 | 0.700 |",
                                                               "| fast | multi4 | lift3d | 1/1 | 0.900 |",
                                                               "| fast | multi4 | lift3d | 1/1 | 0.500 |"))
    assert overall < text.index("Vehicles only") < vehicles < text.index("Generic objects only") < generic
    evaluate.write_quality(out, records[:2], "note")  # one category: no per-category tables
    assert "Vehicles only" not in out.read_text()


def test_summary_without_baseline_runs_shows_lift3d_means():
    records = [_record("a", "multi4", "lift3d", input_iou=0.9), _record("b", "multi4", "lift3d", input_iou=0.7)]
    assert "| fast | multi4 | lift3d | 2/2 | 0.800 |" in evaluate.format_summary(records)


def test_cases():
    assert evaluate._cases(["single"]) == [("single-fl", ["photo_fl"], False), ("single-fr", ["photo_fr"], False)]
    assert evaluate._cases(["multi"]) == [("multi4", list(evaluate.MULTI_INPUTS), True)]


DATA = Path(__file__).resolve().parents[1].parent / "shared" / "eval"


@pytest.mark.skipif(not (DATA / "renders").is_dir(), reason="evaluation data not available")
def test_ground_truth_matches_its_renders():
    gt = evaluate.load_ground_truth(DATA, "khronos_toycar", "car")  # has an excluded part (the cloth)
    info = json.loads((DATA / "renders" / "khronos_toycar" / "gt.json").read_text())
    np.testing.assert_allclose([gt.points.min(axis=0), gt.points.max(axis=0)], info["world_bbox_rendered"],
                               atol=1e-3)
    assert len(gt.cameras) == 20 and gt.faces.max() == len(gt.points) - 1
    assert set(np.unique(gt.face_class)) == {0, 1, 2}  # body, wheel, window
    _, alpha = gt.photo("r35_az135")
    silhouette = gt.labels("r35_az135") >= 0
    assert (silhouette & alpha).sum() / (silhouette | alpha).sum() > 0.99


def test_canonical_alignment_scores_shape_without_pose(tmp_path):
    gt = _synthetic_gt(tmp_path)  # box centred at the origin, 1.2 m tall
    canon = evaluate.canonical_alignment(gt.points)
    placed = evaluate.transform_points(canon, gt.points)
    np.testing.assert_allclose(placed.min(axis=0), [-1.0, 0.0, -2.0])
    # A reconstruction with the right shape in the canonical placement but a wrong pose estimate.
    est = evaluate.moved_camera(gt.cameras["view0"], _rigid(0.3, (0.5, 0.0, 0.0)))
    mesh = evaluate.EvalMesh(placed, gt.faces, gt.face_class, np.zeros((8, 2)), None, None, [est])
    t = evaluate.alignment(est.cam_to_world, gt.cameras["view0"].cam_to_world)
    m = evaluate.score(mesh, gt, ["view0"], t, parts=False, canonical=canon)
    assert m["volume_iou_canonical"] == pytest.approx(1.0) and m["fscore@2%_canonical"] == 1.0
    assert m["volume_iou"] < 0.9 and math.isnan(m["psnr_masked"])
    assert "part_iou_body" not in m and "input_part_iou_body" not in m


def test_foreground_table(tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[20:44, 16:48] = [220, 60, 30, 255]
    for frame in evaluate.SINGLE_INPUTS:
        (tmp_path / "renders" / "thing").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgba).save(tmp_path / "renders" / "thing" / f"{frame}.png")
    scores = evaluate.foreground_scores(tmp_path, ["thing", "missing"])
    assert [s["asset"] for s in scores] == ["thing", "thing", "missing", "missing"]
    assert scores[0]["iou"] > 0.95 and "error" in scores[2]
    table = evaluate.format_foreground(scores)
    assert "| missing | failed | failed |" in table and "| **mean** (2 of 4 photos) |" in table


def test_photo_foreground_table(tmp_path):
    (tmp_path / "photos").mkdir()
    rgb = np.full((60, 80, 3), 90, np.uint8)
    rgb[20:40, 25:55] = [230, 200, 40]
    mask = np.zeros((60, 80), np.uint8)
    mask[20:40, 25:55] = 255
    Image.fromarray(rgb).save(tmp_path / "photos" / "car.png")
    Image.fromarray(mask).save(tmp_path / "photos" / "car_mask.png")
    Image.fromarray(mask).save(tmp_path / "photos" / "gone_mask.png")
    scores = evaluate.photo_foreground_scores(tmp_path)
    assert [s["photo"] for s in scores] == ["car.png", "gone.png"]
    assert scores[0]["iou"] > 0.95 and scores[0]["object_fraction"] == pytest.approx(600 / 4800)
    assert "does not exist" in scores[1]["error"]
    table = evaluate.format_photo_foreground(scores)
    assert "| car.png | 12.5% |" in table and "| gone.png | – | failed:" in table


def test_camera_table_reports_yaw_errors_and_front_back():
    def rec(asset, method, yaw, true_yaw, pitch=10.0, true_pitch=12.0, iou=0.9):
        r = _record(asset, "single-fl", method, input_iou=iou)
        r["init"] = {"yaw_deg": yaw, "true_yaw_deg": true_yaw, "pitch_deg": pitch, "true_pitch_deg": true_pitch,
                     "body_type": "van"}
        return r

    records = [rec("a", "predictor", 355.0, 5.0), rec("b", "predictor", 190.0, 10.0),
               rec("a", "search", 40.0, 5.0)]
    assert evaluate.yaw_error_deg(records[0]) == pytest.approx(10.0)
    assert evaluate.yaw_error_deg(records[1]) == pytest.approx(180.0)
    table = evaluate.format_camera_table(records)
    assert "| a | single-fl | predictor | van | 10.0 | yes | 2.0 | 0.900 |" in table
    assert "| b | single-fl | predictor | van | 180.0 | no |" in table
    assert "| **all** | | predictor | | median 95.0 | 50% |" in table


def test_rerender_rewrites_the_report_from_the_results_and_keeps_the_note(tmp_path, monkeypatch):
    records = [_record("a", "multi4", "lift3d", input_iou=0.9), _record("a", "multi4", "template", input_iou=0.7)]
    results, report = tmp_path / "r.json", tmp_path / "Q.md"
    results.write_text(json.dumps(records))
    evaluate.write_quality(report, records[:1], "produced by `the original command`")
    monkeypatch.setattr(evaluate, "foreground_scores", lambda data, assets: [])
    monkeypatch.setattr(evaluate, "photo_foreground_scores", lambda data: [])
    assert evaluate.main(["--rerender", "--out", str(results), "--quality", str(report)]) == 0
    text = report.read_text()
    assert "produced by `the original command`" in text and "| fast | multi4 | template | 1/1 | 0.700 |" in text
