"""Quality metrics on analytic cases: cubes, squares, checkers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lift3d.camera import Camera, look_at, orbit_camera
from lift3d_eval.metrics import (bbox_diagonal, chamfer_l1, fscore, inside_mesh, mask_iou, masked_psnr, part_iou,
                            rasterize, render_labels, render_texture, sample_surface, surface_metrics,
                            triangle_areas, volume_iou)

_CUBE_FACES = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                        [2, 3, 7], [2, 7, 6], [1, 2, 6], [1, 6, 5], [0, 4, 7], [0, 7, 3]])


def cube(lo=(0.0, 0.0, 0.0), hi=(1.0, 1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box with outward-facing (counter-clockwise) triangles."""
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    pts = np.array([[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0],
                    [x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]], dtype=np.float64)
    return pts, _CUBE_FACES.copy()


def test_cube_is_outward_oriented():
    p, f = cube()
    tri = p[f]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.all(np.einsum("ij,ij->i", normals, tri.mean(axis=1) - 0.5) > 0)


def test_mask_iou():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:5], b[:, :5] = True, True
    assert mask_iou(a, b) == pytest.approx(25 / 75)
    assert mask_iou(a, a) == 1.0 and mask_iou(a, ~a) == 0.0
    assert mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
    assert mask_iou(a.astype(np.float32) * 0.9, a) == 1.0
    with pytest.raises(ValueError):
        mask_iou(a, np.zeros((5, 5), bool))


def test_sample_surface_is_area_weighted_and_seeded():
    # Two triangles of area 0.5 * 3 and 0.5 * 1 in the z = 0 plane.
    pts = np.array([[0, 0, 0], [3, 0, 0], [3, 1, 0], [4, 0, 0], [4, 1, 0]], float)
    faces = np.array([[0, 1, 2], [1, 3, 4]])
    assert triangle_areas(pts, faces) == pytest.approx([1.5, 0.5])
    s, idx = sample_surface(pts, faces, 20000, seed=3)
    assert np.mean(idx == 0) == pytest.approx(0.75, abs=0.015)
    assert np.allclose(s[:, 2], 0.0)
    inside0 = s[idx == 0]
    assert np.all(inside0[:, 1] <= inside0[:, 0] / 3 + 1e-9)  # under the hypotenuse of triangle 0
    s2, _ = sample_surface(pts, faces, 20000, seed=3)
    np.testing.assert_array_equal(s, s2)


def test_chamfer_and_fscore_analytic():
    a = np.array([[0.0, 0, 0], [1, 0, 0]])
    b = np.array([[0.0, 0.1, 0], [1, 0.3, 0], [5, 0, 0]])
    # a->b: 0.1, 0.3 (mean 0.2); b->a: 0.1, 0.3, 4 (mean 4.4/3).
    assert chamfer_l1(a, b) == pytest.approx(0.5 * (0.2 + 4.4 / 3))
    f, p, r = fscore(a, b, 0.2)
    assert (p, r) == (0.5, pytest.approx(1 / 3)) and f == pytest.approx(2 * 0.5 / 3 / (0.5 + 1 / 3))
    assert fscore(a, a + 10.0, 0.5) == (0.0, 0.0, 0.0)


def test_identical_scaled_and_disjoint_cubes():
    c = cube()
    same = surface_metrics(c, c, count=4000)
    assert same["chamfer_l1"] == 0.0 and same["fscore@1%"] == 1.0 and same["fscore@2%"] == 1.0
    assert volume_iou(c, c, 32) == 1.0

    big = cube((-0.05,) * 3, (1.05,) * 3)  # 1.1x about the centre: IoU = 1 / 1.331
    assert volume_iou(big, c, 64) == pytest.approx(1 / 1.331, abs=0.01)
    m = surface_metrics(big, c, count=4000)
    assert 0.03 < m["chamfer_l1"] < 0.07  # every point of one surface is ~0.05 from the other
    assert m["fscore@1%"] < 0.1 and m["chamfer_l1_rel"] == pytest.approx(m["chamfer_l1"] / math.sqrt(3))

    far = cube((3.0, 0, 0), (4.0, 1, 1))
    assert volume_iou(far, c, 32) == 0.0
    assert surface_metrics(far, c, count=2000)["fscore@2%"] == 0.0
    assert bbox_diagonal(c[0]) == pytest.approx(math.sqrt(3))


def test_inside_test_tolerates_holes_flips_and_overlaps():
    p, f = cube()
    lo, hi, shape = (-0.5,) * 3, (1.5,) * 3, (24, 24, 24)
    truth = inside_mesh(p, f, lo, hi, shape)
    assert truth.sum() == 12 ** 3  # the voxels of [0, 1]^3 exactly
    open_box = inside_mesh(p, f[2:], lo, hi, shape)  # the -Z side is missing
    assert mask_iou(open_box, truth) > 0.99
    flipped = f.copy()
    flipped[::2] = flipped[::2, ::-1]  # inconsistent orientation
    assert mask_iou(inside_mesh(p, flipped, lo, hi, shape), truth) == 1.0
    # Two overlapping boxes in one mesh (no boolean union) fill the union of their volumes.
    q, g = cube((0.5, 0, 0), (1.5, 1, 1))
    both = (np.vstack([p, q]), np.vstack([f, g + len(p)]))
    assert volume_iou(both, cube((0, 0, 0), (1.5, 1, 1)), 48) == pytest.approx(1.0, abs=1e-9)


def _square(z: float, half: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    pts = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]], float)
    return pts, np.array([[0, 1, 2], [0, 2, 3]])


def test_rasterize_square_depth_and_occlusion():
    cam = Camera(100.0, 100.0, 50.0, 50.0, 100, 100, look_at(np.array([0.0, 0.0, 5.0]), np.zeros(3)))
    p, f = _square(0.0, 0.5)
    r = rasterize(p, f, cam)
    # The square spans u in [40, 60] (100 px focal, 0.5 m at 5 m): 20 x 20 pixel centres.
    assert r.mask.sum() == 400 and r.mask[40:60, 40:60].all()
    assert np.allclose(r.depth[r.mask], 5.0) and np.isinf(r.depth[~r.mask]).all()
    # A second, nearer and smaller square hides the middle of the first.
    q, g = _square(1.0, 0.2)
    both_p, both_f = np.vstack([p, q]), np.vstack([f, g + 4])
    labels = render_labels(both_p, both_f, np.array([0, 0, 1, 1]), cam)
    assert labels[50, 50] == 1 and labels[42, 42] == 0 and labels[5, 5] == -1
    assert (labels == 1).sum() == pytest.approx(np.pi * 0 + (2 * 0.2 * 100 / 4) ** 2, abs=20)


def test_rasterize_barycentrics_are_perspective_correct():
    cam = orbit_camera(0.6, 0.3, 3.0, 1.0, 64, 64)
    pts = np.array([[-1.0, -0.5, -0.8], [1.2, -0.4, 0.9], [0.0, 0.9, 0.1]])
    r = rasterize(pts, np.array([[0, 1, 2]]), cam)
    ys, xs = np.nonzero(r.mask)
    assert len(ys) > 200
    world = r.bary[ys, xs] @ pts  # the interpolated 3D point must lie on the pixel's ray
    uv, depth = cam.project(world)
    np.testing.assert_allclose(uv, np.stack([xs + 0.5, ys + 0.5], axis=1), atol=1e-6)
    np.testing.assert_allclose(depth, r.depth[ys, xs], atol=1e-9)


def test_render_texture_orientation():
    cam = Camera(100.0, 100.0, 50.0, 50.0, 100, 100, look_at(np.array([0.0, 0.0, 5.0]), np.zeros(3)))
    p, f = _square(0.0, 3.0)  # spans pixels -10 .. 110: fills the view
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)  # st: (0, 0) = bottom-left
    tex = np.zeros((8, 8, 3), np.uint8)
    tex[:4, :4] = [255, 0, 0]      # top-left quadrant of the image: red
    tex[4:, 4:] = [0, 0, 255]      # bottom-right quadrant: blue
    img, mask = render_texture(p, f, uv, None, tex, cam)
    assert mask.all()
    np.testing.assert_allclose(img[20, 20], [1, 0, 0], atol=1e-6)   # top-left of the image
    np.testing.assert_allclose(img[80, 80], [0, 0, 1], atol=1e-6)   # bottom-right
    np.testing.assert_allclose(img[80, 20], [0, 0, 0], atol=1e-6)
    # Pixel row 50 samples texel row 3.54: a bilinear mix of red (row 3) and black (row 4).
    np.testing.assert_allclose(img[50, 20], [1 - ((60.5 / 120) * 8 - 0.5 - 3), 0, 0], atol=1e-6)
    small, m2 = render_texture(*_square(0.0, 0.1), uv, np.array([[0, 1, 2], [0, 2, 3]]), tex, cam,
                               background=(0.5, 0.5, 0.5))
    np.testing.assert_allclose(small[5, 5], [0.5, 0.5, 0.5])
    assert 10 < m2.sum() < 20


def test_part_iou_and_masked_psnr():
    gt = np.full((4, 4), -1)
    gt[:2, :2] = 0
    gt[2:, 2:] = 1
    pred = gt.copy()
    pred[0, 0] = -1
    scores = part_iou([pred, gt], [gt, gt], [0, 1, 2])
    assert scores[0] == pytest.approx((3 / 4 + 1) / 2) and scores[1] == 1.0 and 2 not in scores

    a = np.zeros((4, 4, 3))
    b = a.copy()
    b[0, 0] = 0.1
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    assert masked_psnr(b, a, mask) == pytest.approx(10 * math.log10(1 / (0.01 / 4)))
    b[3, 3] = 1.0  # outside the mask: ignored
    assert masked_psnr(b, a, mask) == pytest.approx(10 * math.log10(400))
    assert masked_psnr(a, a, mask) == math.inf
    with pytest.raises(ValueError):
        masked_psnr(a, a, np.zeros((4, 4), bool))
