"""Cameras from NeRF / Instant-NGP transforms.json: conventions, matching, errors, and the eval renders."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from lift3d.camera import orbit_camera
from lift3d.errors import InputError
from lift3d.io.views import cameras_for_images, read_transforms

RENDERS = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "renders"


def _write_png(path: Path, w: int = 64, h: int = 48) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)


def _pose(yaw: float = 0.3) -> list[list[float]]:
    return orbit_camera(yaw, 0.2, 5.0, 0.8, 64, 48).cam_to_world.tolist()


def _write_json(folder: Path, data: dict) -> Path:
    path = folder / "transforms.json"
    path.write_text(json.dumps(data))
    return path


def test_camera_angle_x_and_extensionless_paths(tmp_path):
    _write_png(tmp_path / "train" / "r_0.png")
    _write_png(tmp_path / "train" / "r_1.jpg")
    path = _write_json(tmp_path, {"camera_angle_x": 0.6, "frames": [
        {"file_path": "./train/r_0", "transform_matrix": _pose(0.1)},
        {"file_path": "./train/r_1", "transform_matrix": _pose(0.2)}]})
    views = read_transforms(path)
    assert [v.image_path.name for v in views] == ["r_0.png", "r_1.jpg"]
    cam = views[0].camera
    assert (cam.width, cam.height) == (64, 48)
    assert cam.fx == pytest.approx(32.0 / math.tan(0.3)) and cam.fy == pytest.approx(cam.fx)
    assert (cam.cx, cam.cy) == (32.0, 24.0)
    np.testing.assert_allclose(cam.cam_to_world, np.asarray(_pose(0.1)))


def test_per_frame_intrinsics_override_and_scaling(tmp_path):
    _write_png(tmp_path / "a.png", 64, 48)
    _write_png(tmp_path / "b.png", 64, 48)
    path = _write_json(tmp_path, {"fl_x": 100.0, "fl_y": 90.0, "cx": 60.0, "cy": 50.0, "w": 128, "h": 96,
                                  "frames": [{"file_path": "a.png", "transform_matrix": _pose()},
                                             {"file_path": "b.png", "transform_matrix": _pose(), "fl_x": 10.0,
                                              "camera_angle_y": 1.0}]})
    a, b = (v.camera for v in read_transforms(path))
    # The json describes 128x96 images; the files are 64x48, so everything halves.
    assert (a.fx, a.fy, a.cx, a.cy, a.width, a.height) == pytest.approx((50.0, 45.0, 30.0, 25.0, 64, 48))
    assert b.fx == pytest.approx(5.0) and b.fy == pytest.approx(45.0)  # fl_x wins; fl_y stays global


def test_camera_angle_y_and_matching(tmp_path):
    _write_png(tmp_path / "imgs" / "x.png")
    _write_png(tmp_path / "imgs" / "y.png")
    path = _write_json(tmp_path, {"camera_angle_x": 0.8, "camera_angle_y": 0.6, "frames": [
        {"file_path": "imgs/x.png", "transform_matrix": _pose(0.1)},
        {"file_path": "imgs/y", "transform_matrix": _pose(0.7)}]})
    cams = cameras_for_images(path, [tmp_path / "imgs" / "y.png", "x.png"])
    assert cams[0].name == "y" and cams[1].name == "x"
    np.testing.assert_allclose(cams[0].cam_to_world, np.asarray(_pose(0.7)))
    assert cams[1].fy == pytest.approx(24.0 / math.tan(0.3))
    with pytest.raises(InputError, match="has no frame"):
        cameras_for_images(path, [tmp_path / "z.png"])


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("frames"), "no 'frames'"),
    (lambda d: d.__setitem__("frames", []), "an empty 'frames' list"),
    (lambda d: d.__setitem__("frames", {"a": 1}), "'frames' must be a list"),
    (lambda d: d["frames"][0].pop("transform_matrix"), "no 'transform_matrix'"),
    (lambda d: d.pop("camera_angle_x"), "no focal length"),
    (lambda d: d.__setitem__("camera_angle_x", float("nan")), "not a finite number"),
    (lambda d: d["frames"][0]["transform_matrix"][0].__setitem__(3, float("inf")), "NaN or infinity"),
    (lambda d: d["frames"][0].__setitem__("transform_matrix", (2.0 * np.eye(4)).tolist()), "not a rigid"),
    (lambda d: d["frames"][0].__setitem__("transform_matrix", np.zeros((4, 4)).tolist()), "not a rigid"),
    (lambda d: d["frames"][0].__setitem__("transform_matrix", np.diag([1.0, 1.0, -1.0, 1.0]).tolist()),
     "not a rigid"),
    (lambda d: d["frames"][0].__setitem__("file_path", "missing.png"), "not an image file"),
    (lambda d: d["frames"][0].__setitem__("transform_matrix", [[1, 2], [3, 4]]), "4x4"),
    (lambda d: d.__setitem__("k1", 0.1), "lens distortion"),
    (lambda d: d.__setitem__("w", 64) or d.__setitem__("h", 64), "aspect ratio"),
])
def test_bad_camera_files(tmp_path, mutate, message):
    _write_png(tmp_path / "a.png")
    data = {"camera_angle_x": 0.7, "frames": [{"file_path": "a.png", "transform_matrix": _pose()}]}
    mutate(data)
    path = _write_json(tmp_path, data)
    with pytest.raises(InputError, match=message) as info:
        read_transforms(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_not_json_missing_and_folder(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text("{frames: oops")
    with pytest.raises(InputError, match="not valid JSON"):
        read_transforms(bad)
    with pytest.raises(InputError, match="does not exist"):
        read_transforms(tmp_path / "none.json")
    with pytest.raises(InputError, match="is a folder"):
        read_transforms(tmp_path)
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        read_transforms(bad)


def test_exif_rotated_photo_gets_a_camera_of_its_decoded_size(tmp_path):
    """Regression: the default w/h were the stored (unrotated) size, so load_image's rotated photo mismatched."""
    from lift3d.io.images import load_image

    exif = Image.Exif()
    exif[0x0112] = 6  # stored 48 wide x 64 high, shown 64 x 48
    Image.fromarray(np.zeros((64, 48, 3), np.uint8)).save(tmp_path / "phone.jpg", exif=exif)
    path = _write_json(tmp_path, {"camera_angle_x": 0.8, "frames": [
        {"file_path": "phone.jpg", "transform_matrix": _pose()}]})
    (camera,) = cameras_for_images(path, [tmp_path / "phone.jpg"])
    assert (camera.width, camera.height) == load_image(tmp_path / "phone.jpg").size == (64, 48)
    assert camera.fx == pytest.approx(32.0 / math.tan(0.4))


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    verts, faces = [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            faces.append([int(tok.split("/")[0]) - 1 for tok in line.split()[1:4]])
    return np.asarray(verts), np.asarray(faces)


@pytest.mark.skipif(not RENDERS.is_dir(), reason="evaluation renders not available")
@pytest.mark.parametrize("asset", ["usdkit_sedan", "khronos_duck"])
def test_eval_renders_project_onto_their_alpha(asset):
    folder = RENDERS / asset
    gt = json.loads((folder / "gt.json").read_text())
    points, faces = _read_obj((folder / gt["asset_dir"] / gt["gt_mesh"]).resolve())
    world = points @ np.asarray(gt["normalized_to_world"])[:3, :3].T + np.asarray(gt["normalized_to_world"])[:3, 3]
    views = read_transforms(folder / "transforms.json")
    assert len(views) == 20
    ious = []
    for view in views[::4]:
        uv, depth = view.camera.project(world)
        assert np.all(depth > 0)
        raster = np.zeros((view.camera.height, view.camera.width), np.uint8)
        for tri in np.round(uv[faces] * 16).astype(np.int32):  # one convex fill each: no even-odd holes
            cv2.fillConvexPoly(raster, tri, 1, shift=4)
        alpha = np.asarray(Image.open(view.image_path))[..., 3] >= 128
        ious.append((alpha & (raster > 0)).sum() / (alpha | (raster > 0)).sum())
    assert min(ious) > 0.97, ious
