"""Quality signals and warnings of a run, and several objects in one photo (one asset each)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from lift3d.cli import main
from lift3d.errors import InputError
from lift3d.io.foreground import extract_foreground, extract_foreground_info, mask_confidence, split_objects
from lift3d.io.images import load_image, object_mask_info
from lift3d.pipeline.output import placement
from lift3d.pipeline.signals import quality_signals, touched_borders
from lift3d.preflight import check_request, object_choice
from lift3d.requests import ReconstructRequest, ReconstructResult

from synthetic_inputs import TINY_SETTINGS, car_blob


def _disc(h, w, cy, cx, r):
    v, u = np.mgrid[0:h, 0:w]
    return (v - cy) ** 2 + (u - cx) ** 2 <= r * r


# -- splitting a mask into objects ------------------------------------------------------------------------------------

def test_split_objects_keeps_objects_above_the_minimum_size_largest_first():
    mask = _disc(100, 200, 50, 50, 30) | _disc(100, 200, 50, 150, 20) | _disc(100, 200, 5, 100, 1)
    objects = split_objects(mask)
    assert len(objects) == 2  # the speck is not an object
    assert objects[0].sum() > objects[1].sum()
    assert objects[0][50, 50] and not objects[0][50, 150] and objects[1][50, 150]
    # a fragment under 15 % of the largest object belongs to no object of its own
    assert len(split_objects(_disc(100, 200, 50, 50, 30) | _disc(100, 200, 50, 150, 8))) == 1
    assert split_objects(np.zeros((10, 10), bool)) == []


def test_split_objects_fills_each_objects_holes():
    mask = _disc(80, 80, 40, 40, 30) & ~_disc(80, 80, 40, 40, 10)
    (only,) = split_objects(mask)
    assert only[40, 40]


def _two_objects_photo() -> np.ndarray:
    h, w = 120, 240
    v, u = np.mgrid[0:h, 0:w]
    rgb = np.stack([0.55 + 0.1 * u / w, 0.6 + 0.05 * v / h, 0.62 + 0 * u], axis=-1).astype(np.float32)
    rgb[_disc(h, w, 60, 60, 32)] = (0.8, 0.1, 0.1)
    rgb[_disc(h, w, 62, 175, 26)] = (0.1, 0.15, 0.7)
    return rgb


def test_automatic_foreground_counts_the_objects_and_keeps_one_or_all():
    rgb = _two_objects_photo()
    largest, info = extract_foreground_info(rgb, "two.png")
    assert info["objects"] == 2
    assert 0.0 <= info["confidence"] <= 1.0 and info["confidence"] > 0.5
    assert largest[60, 60] and not largest[62, 175]
    assert np.array_equal(largest, extract_foreground(rgb, "two.png"))  # the default mask is unchanged
    every, info_all = extract_foreground_info(rgb, "two.png", keep="all")
    assert every[60, 60] and every[62, 175] and info_all["objects"] == 2
    assert [o.sum() for o in split_objects(every)][0] == largest.sum()


def test_mask_confidence_is_the_weaker_of_separation_and_seed_agreement():
    assert mask_confidence(0.9, 1.0) == 1.0
    assert mask_confidence(0.3, 1.0) == 0.0
    assert mask_confidence(0.9, 0.4) == pytest.approx(0.4)


def test_object_mask_info_names_the_mask_source(tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[16:48, 16:48] = (200, 30, 30, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert object_mask_info(load_image(tmp_path / "a.png"))[1] == {"source": "alpha", "objects": 1}
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(tmp_path / "b.png")
    mask = np.zeros((64, 64), np.uint8)
    mask[10:20, 10:20] = mask[40:60, 40:60] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert object_mask_info(load_image(tmp_path / "b.png"), tmp_path / "m.png")[1] == {"source": "given",
                                                                                          "objects": 2}
    _, info = object_mask_info(load_image(tmp_path / "b.png"))
    assert info["source"] == "automatic" and "confidence" in info


# -- signals and warnings ---------------------------------------------------------------------------------------------

LEARNED = {"chosen": "learned", "pitch_deg": 20.0, "fov_x_deg": 40.0, "body_type": "sedan",
           "body_probabilities": {"sedan": 0.9, "suv": 0.1}, "yaw_agreement": 0.95,
           "hypotheses": [{"yaw_deg": 40.0}, {"yaw_deg": 50.0}, {"yaw_deg": 35.0}]}


def _signals(mask=None, info=None, camera=None, iou=0.95, coverage=0.4):
    mask = _disc(60, 80, 30, 40, 15) if mask is None else mask
    return quality_signals([mask], [info or {"source": "alpha", "objects": 1}], camera or LEARNED,
                           {"input_view_iou": iou, "texture_coverage": coverage}, ["p.png"])


def test_a_clean_run_has_no_warnings_and_reports_every_signal():
    signals, warnings = _signals()
    assert warnings == []
    assert signals["masks"][0]["source"] == "alpha" and signals["masks"][0]["touches_border"] == []
    assert signals["input_fit"]["input_view_iou"] == 0.95
    assert signals["predictor"]["body_probability"] == 0.9 and signals["predictor"]["hypothesis_agreement"] == 1.0
    assert signals["camera"]["pitch_range_deg"] == [-5.0, 89.0] and signals["camera"]["pitch_at_limit"] is False
    assert signals["camera"]["fov_source"] == "predicted"
    assert signals["texture"]["coverage"] == 0.4 and "meaning" in signals["texture"]
    json.dumps(signals)


def test_the_field_of_view_source_is_the_one_the_initialisation_recorded():
    assumed, _ = _signals(camera={**LEARNED, "fov_source": "assumed"})  # predictor.fov = "assumed", the default
    assert assumed["camera"]["fov_source"] == "assumed"


@pytest.mark.parametrize("kwargs, expected", [
    ({"info": {"source": "automatic", "objects": 1, "confidence": 0.2}}, "automatic mask of p.png is uncertain"),
    ({"info": {"source": "automatic", "objects": 3}}, "3 objects found in p.png; only the largest was"),
    ({"info": {"source": "given", "objects": 3, "object": 1, "reconstructed": 2}}, "only the 2 largest were"),
    ({"mask": _disc(60, 80, 30, 5, 15)}, "touches the left edge of p.png"),
    ({"iou": 0.6}, "silhouette poorly (input-view IoU 0.60)"),
    ({"camera": {**LEARNED, "body_probabilities": {"van": 0.3}, "body_type": "van"}}, "body type van at p=0.30"),
    ({"camera": {**LEARNED, "hypotheses": [{"yaw_deg": 40.0}, {"yaw_deg": 220.0}, {"yaw_deg": 200.0}]}},
     "hypothesis agreement 0.33"),
    ({"camera": {**LEARNED, "pitch_deg": 88.0}}, "pitch (88 deg) is at the edge of its range"),
    ({"camera": {"chosen": "search", "pitch_deg": 45.0, "fov_x_deg": 45.0}}, "range (0 to 45 deg)"),
    ({"coverage": 0.08}, "only 8% of the texture was seen"),
])
def test_each_doubtful_signal_gives_one_warning(kwargs, expected):
    _, warnings = _signals(**kwargs)
    assert len(warnings) == 1 and expected in warnings[0], warnings


def test_touched_borders():
    mask = np.zeros((10, 10), bool)
    mask[0, 3] = mask[5, 9] = True
    assert touched_borders(mask) == ["right", "top"]


def test_result_json_carries_warnings_signals_and_other_objects(tmp_path):
    second = ReconstructResult("car_2", tmp_path / "car_2.usda", warnings=["w2"])
    first = ReconstructResult("car", tmp_path / "car.usda", warnings=["w1"], signals={"texture": {}},
                              other_objects=[second])
    out = first.to_json()
    assert out["warnings"] == ["w1"] and out["signals"] == {"texture": {}}
    assert out["other_objects"][0]["asset"] == str(tmp_path / "car_2.usda")
    assert out["other_objects"][0]["warnings"] == ["w2"]
    assert "other_objects" not in second.to_json()
    json.dumps(out)


# -- choosing and placing objects -------------------------------------------------------------------------------------

def test_object_choice():
    assert object_choice("all") == "all" and object_choice("largest") == "largest"
    assert object_choice("3") == 3 and object_choice(2) == 2
    for bad in ("0", "many", 0, -1, True):
        with pytest.raises(InputError, match="unknown objects"):
            object_choice(bad)


def test_check_request_refuses_an_unknown_objects_value(tmp_path):
    car_blob(tmp_path / "c.png", 0)
    with pytest.raises(InputError, match="unknown objects"):
        check_request(ReconstructRequest(images=[tmp_path / "c.png"], out_dir=tmp_path, objects="some"))


def _turn(yaw, t):
    m = np.eye(4)
    c, s = math.cos(yaw), math.sin(yaw)
    m[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    m[:3, 3] = t
    return m


def test_placement_recovers_a_ground_plane_move_and_keeps_the_object_on_its_pixels():
    from lift3d.camera import Camera

    pose = _turn(0.3, (1.0, 1.5, 6.0))
    pose[:3, :3] = pose[:3, :3] @ np.array([[1, 0, 0], [0, math.cos(-0.2), -math.sin(-0.2)],
                                            [0, math.sin(-0.2), math.cos(-0.2)]])  # a pitched camera
    cam = Camera(300.0, 300.0, 160.0, 120.0, 320, 240, pose)
    points = np.random.default_rng(0).uniform([-0.9, 0.0, -2.2], [0.9, 1.5, 2.2], (200, 3))
    move = _turn(-0.7, (2.0, 0.0, -1.0))
    reference = Camera(300.0, 300.0, 160.0, 120.0, 320, 240, move @ pose)
    assert np.allclose(placement(cam, reference, points), move)
    # a reference with another focal length: the object's centre still lands on the same pixel
    wide = Camera(250.0, 250.0, 160.0, 120.0, 320, 240, move @ pose)
    placed = placement(cam, wide, points)
    centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
    moved = placed[:3, :3] @ centre + placed[:3, 3]
    assert np.allclose(wide.project(moved[None])[0], cam.project(centre[None])[0], atol=1e-6)
    assert np.allclose(placed[1], [0, 1, 0, 0])  # upright, on the ground


# -- end to end ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_cars(tmp_path_factory):
    """A transparent photo with two car blobs side by side (the left one larger) and the tiny settings."""
    folder = tmp_path_factory.mktemp("two")
    (folder / "tiny.toml").write_text(TINY_SETTINGS)
    left = np.asarray(Image.open(car_blob(folder / "l.png", 1, size=96)))
    right = np.asarray(Image.open(car_blob(folder / "r.png", 2, size=80)))
    photo = np.zeros((96, 200, 4), np.uint8)
    photo[:, 2:98] = left
    photo[8:88, 112:192] = right
    Image.fromarray(photo, "RGBA").save(folder / "two cars.png")
    return folder


@pytest.fixture
def tiny(two_cars, monkeypatch):
    monkeypatch.setenv("LIFT3D_CONFIG", str(two_cars / "tiny.toml"))


def test_every_object_becomes_its_own_asset_placed_as_in_the_photo(two_cars, tiny, tmp_path):
    from lift3d.api import reconstruct
    from lift3d.camera import Camera
    from lift3d.usd.reader import read_asset

    result = reconstruct(ReconstructRequest(images=[two_cars / "two cars.png"], preset="fast",
                                            out_dir=tmp_path / "out", stage=tmp_path / "stage.usda"))
    assert [r.name for r in result.all_results()] == ["two_cars", "two_cars_2"]
    assert [r.prim_path for r in result.all_results()] == ["/World/Reconstructions/two_cars",
                                                           "/World/Reconstructions/two_cars_2"]
    first, second = (read_asset(r.asset_path) for r in result.all_results())
    for asset, rank in ((first, 1), (second, 2)):
        record = asset.provenance["signals"]["masks"][0]
        assert (record["objects"], record["object"], record["reconstructed"]) == (2, rank, 2)
    assert "placement" in second.provenance and "placement" not in first.provenance
    # each object was fitted to its own mask only: its silhouette covers one car, not a bridge over both
    cam = Camera(**{k: result.cameras[0][k] for k in ("fx", "fy", "cx", "cy", "width", "height")},
                 cam_to_world=np.asarray(result.cameras[0]["cam_to_world"]))
    u_first, _ = cam.project(first.points.astype(np.float64))[0].T
    u_second, _ = cam.project(second.points.astype(np.float64))[0].T
    assert u_first.max() < 110 and u_second.min() > 100  # both through the largest object's camera
    assert not any("objects found" in w for r in result.all_results() for w in r.warnings)


def test_the_mask_found_before_the_run_is_reused_and_counted_in_its_timing(two_cars, tiny, tmp_path, monkeypatch):
    import time

    from lift3d.api import reconstruct
    from lift3d.io import images
    from lift3d.pipeline import objects

    calls = []
    real_find, real_mask_info = objects.find_objects, images.object_mask_info

    def slow_find(request):
        time.sleep(0.3)
        return real_find(request)

    monkeypatch.setattr(objects, "find_objects", slow_find)
    monkeypatch.setattr(images, "object_mask_info", lambda *a, **k: calls.append(1) or real_mask_info(*a, **k))
    result = reconstruct(ReconstructRequest(images=[two_cars / "l.png"], preset="fast", out_dir=tmp_path / "out"))
    assert len(calls) == 1, "one photo of one object: the mask is made once"
    assert result.timings["mask"] >= 0.3


def test_cli_largest_warns_about_the_other_objects_and_exits_0(two_cars, tiny, tmp_path, capfd):
    code = main(["reconstruct", str(two_cars / "two cars.png"), "--preset", "fast", "--out", str(tmp_path / "out"),
                 "--objects", "largest", "--json"])
    out, err = capfd.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert "other_objects" not in result and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["two_cars"]
    assert "2 objects found in two cars.png; only the largest was reconstructed" in " ".join(result["warnings"])
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and all(line.startswith("lift3d: warning: ") for line in lines)
    assert len(lines) == len(result["warnings"])
    mask = result["signals"]["masks"][0]
    assert (mask["source"], mask["objects"], mask["object"]) == ("alpha", 2, 1)  # fitted to the largest alone


def test_cli_refuses_a_bad_objects_value(two_cars, tmp_path, capfd):
    assert main(["reconstruct", str(two_cars / "two cars.png"), "--objects", "few", "--out", str(tmp_path)]) == 2
    assert "unknown objects 'few'" in capfd.readouterr().err
