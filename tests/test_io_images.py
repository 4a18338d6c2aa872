"""Photo and mask loading, mask precedence, automatic foreground and object crops."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lift3d.camera import Camera, orbit_camera
from lift3d.errors import InputError
from lift3d.io import images as images_mod
from lift3d.io.foreground import extract_foreground
from lift3d.io.images import load_image, load_mask, object_mask
from lift3d.pipeline.crops import crop_camera, crop_image, crop_mask, square_box

RENDERS = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "renders"


def _gradient(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256], axis=2).astype(np.uint8)


def _save(im: Image.Image, path: Path, **kw) -> Path:
    im.save(path, **kw)
    return path


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_rgb_formats_and_digest(tmp_path, fmt):
    arr = _gradient()
    path = _save(Image.fromarray(arr), tmp_path / f"a.{fmt}", **({"quality": 100} if fmt != "png" else {}))
    img = load_image(path)
    assert img.rgb.shape == (48, 64, 3) and img.rgb.dtype == np.float32 and img.alpha is None
    assert img.size == (64, 48) and img.width == 64 and img.height == 48
    assert img.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    tol = 0.5 / 255 if fmt == "png" else 0.1
    assert np.abs(img.rgb - arr / 255.0).mean() < tol


def test_modes_rgba_l_la_palette_16bit(tmp_path):
    arr = _gradient()
    alpha = np.zeros((48, 64), np.uint8)
    alpha[10:30, 20:40] = 255
    img = load_image(_save(Image.fromarray(np.dstack([arr, alpha])), tmp_path / "rgba.png"))
    np.testing.assert_allclose(img.rgb, arr / 255.0, atol=1e-6)  # straight alpha: colour kept as stored
    np.testing.assert_allclose(img.alpha, alpha / 255.0)

    grey = load_image(_save(Image.fromarray(arr[..., 0]), tmp_path / "l.png"))
    np.testing.assert_allclose(grey.rgb[..., 1], arr[..., 0] / 255.0, atol=1e-6)

    la = load_image(_save(Image.fromarray(np.dstack([arr[..., 0], alpha])).convert("LA"), tmp_path / "la.png"))
    np.testing.assert_allclose(la.alpha, alpha / 255.0)

    pal = Image.fromarray(arr).quantize(16)
    pal.info["transparency"] = 0
    p = load_image(_save(pal, tmp_path / "p.png", transparency=0))
    assert p.alpha is not None and set(np.unique(p.alpha)) <= {0.0, 1.0} and p.alpha.min() == 0.0

    deep = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    sixteen = load_image(_save(Image.fromarray(deep), tmp_path / "i16.png"))
    np.testing.assert_allclose(sixteen.rgb[..., 0], deep / 65535.0, atol=1e-6)


def test_sixteen_bit_colour_png(tmp_path):
    import cv2

    rgba = (np.random.default_rng(1).random((8, 8, 4)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgba[..., [2, 1, 0, 3]])  # OpenCV writes BGRA
    img = load_image(tmp_path / "c16.png")
    np.testing.assert_allclose(img.rgb, rgba[..., :3] / 65535.0, atol=1.01 / 255)
    np.testing.assert_allclose(img.alpha, rgba[..., 3] / 65535.0, atol=1.01 / 255)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = 255  # white band at the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = _save(Image.fromarray(arr), tmp_path / "o.jpg", exif=exif, quality=95)
    img = load_image(path)
    assert img.size == (20, 40)
    assert img.rgb[:8, :, 0].mean() > 0.9 and img.rgb[-8:, :, 0].mean() < 0.1  # left band is now on top


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"", "empty file"),
    (b"this is not an image at all", "not a PNG, JPEG or WebP"),
    ("dir", "is a folder"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "x.png"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_and_corrupt(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.randint(0, 255, (64, 64, 3), np.uint8)).save(buf, "PNG")
    data = buf.getvalue()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_image(tmp_path / "t.png")
    broken = bytearray(data)
    broken[100:140] = b"\x00" * 40
    (tmp_path / "c.png").write_bytes(bytes(broken))
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_image(tmp_path / "c.png")


def test_pixel_cap(tmp_path, monkeypatch):
    path = _save(Image.fromarray(_gradient()), tmp_path / "big.png")
    monkeypatch.setattr(images_mod, "MAX_PIXELS", 1000)
    with pytest.raises(InputError, match="limit"):
        load_image(path)


def test_pillow_decompression_bomb_guard(tmp_path, monkeypatch):
    path = _save(Image.fromarray(_gradient()), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 3072 px: over the warning limit, > 2x: an error
    with pytest.raises(InputError, match="too large to decode safely"):
        load_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # between 1x and 2x: Pillow only warns
    with pytest.raises(InputError, match="too large to decode safely"):
        load_image(path)


def test_load_mask_threshold_resize_and_errors(tmp_path):
    m = np.zeros((24, 32), np.uint8)
    m[5:15, 8:20] = 200
    m[0, 0] = 127  # below 50 %
    mask = load_mask(_save(Image.fromarray(m), tmp_path / "m.png"), (32, 24))
    assert mask.dtype == bool and mask.sum() == 120 and not mask[0, 0]
    big = load_mask(_save(Image.fromarray(m).resize((64, 48), Image.NEAREST), tmp_path / "m2.png"), (32, 24))
    np.testing.assert_array_equal(big, m >= 128)
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[5:15, 8:20, 3] = 255  # black object on transparency: the alpha channel is the mask
    assert load_mask(_save(Image.fromarray(rgba), tmp_path / "a.png"), (32, 24)).sum() == 120
    deep = (m.astype(np.uint16) * 257)
    assert load_mask(_save(Image.fromarray(deep), tmp_path / "d.png"), (32, 24)).sum() == 120
    with pytest.raises(InputError, match="aspect ratio"):
        load_mask(tmp_path / "m.png", (32, 32))
    with pytest.raises(InputError, match="empty"):
        load_mask(_save(Image.fromarray(np.zeros((24, 32), np.uint8)), tmp_path / "e.png"), (32, 24))
    with pytest.raises(InputError, match="does not separate"):
        load_mask(_save(Image.fromarray(np.full((24, 32), 255, np.uint8)), tmp_path / "f.png"), (32, 24))


def _car_on_gradient(h: int = 160, w: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """A red car-like blob (body + cabin + dark wheels) on a smooth blue-grey gradient, and its true mask."""
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    rgb = np.stack([0.55 + 0.2 * y, 0.6 + 0.2 * y, 0.75 + 0.1 * x], axis=2)
    body = (np.abs(x - 0.5) < 0.3) & (np.abs(y - 0.55) < 0.1)
    cabin = (np.abs(x - 0.48) < 0.15) & (np.abs(y - 0.4) < 0.06)
    wheels = ((x - 0.3) ** 2 * (w / h) ** 2 + (y - 0.67) ** 2 < 0.07 ** 2) | \
             ((x - 0.7) ** 2 * (w / h) ** 2 + (y - 0.67) ** 2 < 0.07 ** 2)
    truth = body | cabin | wheels
    rgb[body | cabin] = [0.8, 0.1, 0.1]
    rgb[cabin] = [0.2, 0.25, 0.3]
    rgb[wheels] = [0.05, 0.05, 0.05]
    return rgb.astype(np.float32), truth


def test_foreground_on_synthetic_car():
    rgb, truth = _car_on_gradient()
    mask = extract_foreground(rgb, "car.png")
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.95


@pytest.mark.parametrize("kind", ["uniform", "noise", "fills_frame"])
def test_foreground_refuses_inseparable(kind):
    rng = np.random.default_rng(0)
    if kind == "uniform":
        rgb = np.full((96, 128, 3), 0.4, np.float32)
    elif kind == "noise":
        rgb = rng.random((96, 128, 3)).astype(np.float32)
    else:  # a red disc crossing all four borders: only the corners are background
        y, x = np.mgrid[0:96, 0:128]
        rgb = np.full((96, 128, 3), 0.6, np.float32)
        rgb[(x - 64) ** 2 + (y - 48) ** 2 < 72 ** 2] = [0.8, 0.1, 0.1]
    with pytest.raises(InputError, match=r"no separable object found in x\.png; supply --mask"):
        extract_foreground(rgb, "x.png")


@pytest.mark.skipif(not RENDERS.is_dir(), reason="evaluation renders not available")
@pytest.mark.parametrize("asset", ["usdkit_sedan", "spot"])
def test_foreground_matches_render_alpha(asset):
    img = load_image(RENDERS / asset / "photo_fl.png")
    mask = extract_foreground(img.rgb, asset)  # alpha stripped: the stored colour is black where transparent
    truth = img.alpha >= 0.5
    assert (mask & truth).sum() / (mask | truth).sum() >= 0.95


def test_object_mask_precedence(tmp_path):
    rgb, truth = _car_on_gradient(96, 128)
    u8 = (rgb * 255).astype(np.uint8)
    alpha = np.zeros((96, 128), np.uint8)
    alpha[20:40, 30:60] = 255
    with_alpha = load_image(_save(Image.fromarray(np.dstack([u8, alpha])), tmp_path / "a.png"))
    mfile = _save(Image.fromarray((truth * 255).astype(np.uint8)), tmp_path / "m.png")
    np.testing.assert_array_equal(object_mask(with_alpha, mfile), alpha > 0)  # alpha wins
    opaque = load_image(_save(Image.fromarray(np.dstack([u8, np.full_like(alpha, 255)])), tmp_path / "o.png"))
    np.testing.assert_array_equal(object_mask(opaque, mfile), truth)  # all-opaque alpha: the mask file
    stray = np.full_like(alpha, 255)
    stray[0, :5] = 0  # a few transparent pixels do not make the alpha channel a mask
    nearly = load_image(_save(Image.fromarray(np.dstack([u8, stray])), tmp_path / "s.png"))
    np.testing.assert_array_equal(object_mask(nearly, mfile), truth)
    auto = object_mask(load_image(_save(Image.fromarray(u8), tmp_path / "n.png")))
    assert (auto & truth).sum() / (auto | truth).sum() > 0.9
    clear = load_image(_save(Image.fromarray(np.dstack([u8, np.zeros_like(alpha)])), tmp_path / "c.png"))
    with pytest.raises(InputError, match="transparency"):
        object_mask(clear)


def test_object_crop_camera_consistency():
    cam = orbit_camera(0.4, 0.2, 6.0, 0.8, 200, 120)
    point = np.array([[0.3, 0.2, -0.1]])
    u, v = cam.project(point)[0][0]
    rgb = np.zeros((120, 200, 3), np.float32)
    mask = np.zeros((120, 200), bool)
    mask[30:70, 40:140] = True
    rgb[mask] = 1.0
    box = square_box(mask, margin=0.1)
    x0, y0, side = box
    assert side == 120 and (x0, y0) == (30, -10)
    crop_rgb, crop_cover = crop_image(rgb, box, 64), crop_mask(mask, box, 64)
    assert crop_rgb.shape == (64, 64, 3) and crop_cover.shape == (64, 64)
    # The crop's camera sees the point where the original pixel lands after crop + resize.
    uv2 = crop_camera(cam, box, 64).project(point)[0][0]
    np.testing.assert_allclose(uv2, [(u - x0) * 64 / side, (v - y0) * 64 / side], atol=1e-9)
    # Object centred, with the margin free on the long axis; outside-image rows are black.
    ys, xs = np.nonzero(crop_cover > 0.5)
    assert abs(xs.min() - (63 - xs.max())) <= 1 and xs.min() >= 4
    assert crop_rgb[:3].max() == 0.0
    guess = Camera.from_fov(0.9, 200, 120)
    manual = crop_camera(guess, box, 32)
    assert manual.width == 32 and manual.cx == pytest.approx((100 - x0) * 32 / side)
