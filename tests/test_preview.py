"""`lift3d preview`: the contact sheet's layout, photo lookup, overlay, parts colours and legend; stages; errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lift3d.cli import main
from lift3d.preview import (CAPTION_H, HEADER_H, THUMBNAIL_TILE, TILE, contact_sheet, find_photo, label_colour,
                            preview_image, thumbnail_pixels, write_preview)
from lift3d.usd.compose import add_reference
from lift3d.usd.writer import write_asset

from asset_factory import make_car_asset

pytest.importorskip("warp", reason="the preview renders with the Warp kernels")

PHOTO_RGB = (200, 30, 30)


def _tile(sheet: Image.Image, row: int, col: int, tile: int = TILE) -> np.ndarray:
    """The picture (caption excluded) of tile (row, col) of a single-asset sheet."""
    x = 4 + col * (tile + 4)
    y = HEADER_H + 4 + row * (tile + CAPTION_H + 4) + CAPTION_H
    return np.asarray(sheet)[y:y + tile, x:x + tile]


@pytest.fixture
def asset_with_photo(tmp_path) -> tuple[Path, Path]:
    """An asset whose provenance names a photo that sits beside the asset folder."""
    asset = make_car_asset()
    cam = asset.cameras[0]
    photo = tmp_path / "shot.png"
    Image.new("RGB", (cam.width, cam.height), PHOTO_RGB).save(photo)
    asset.provenance = {"sources": [{"image": "shot.png", "sha256": hashlib.sha256(photo.read_bytes()).hexdigest()}],
                        "metrics": {"input_view_iou": 0.5}}
    return write_asset(asset, tmp_path / "assets"), photo


def test_sheet_layout_photo_overlay_parts_and_orbits(asset_with_photo):
    layer, photo = asset_with_photo
    from lift3d.usd.reader import read_asset

    asset = read_asset(layer)
    assert find_photo(asset, [photo.parent]) == photo
    sheet = contact_sheet(asset, photo)
    assert sheet.size == (4 * TILE + 5 * 4, HEADER_H + 2 * (TILE + CAPTION_H) + 3 * 4)
    # the photo tile shows the photo, and the overlay tile shows it around the asset
    photo_tile = _tile(sheet, 0, 0).reshape(-1, 3)
    assert (np.abs(photo_tile.astype(int) - PHOTO_RGB).sum(1) < 6).mean() > 0.3
    overlay = _tile(sheet, 0, 1).reshape(-1, 3).astype(int)
    red = (np.abs(overlay - PHOTO_RGB).sum(1) < 6).mean()
    outline = (np.abs(overlay - (255, 0, 200)).sum(1) < 6).sum()
    assert red > 0.1 and outline > 50, "the asset is drawn over the photo with its outline"
    assert red < (np.abs(photo_tile.astype(int) - PHOTO_RGB).sum(1) < 6).mean(), "the asset covers some of it"
    # the parts view uses the label colours; the legend lists every label
    parts = _tile(sheet, 0, 2).reshape(-1, 3).astype(int)
    for label in ("body", "wheel", "window"):
        assert (np.abs(parts - label_colour(label)).sum(1) < 90).any(), label
    legend = _tile(sheet, 0, 3).reshape(-1, 3).astype(int)
    for label in {p.label for p in asset.parts}:
        assert (np.abs(legend - label_colour(label)).sum(1) == 0).sum() > 20, f"legend swatch for {label}"
    # four orbit views, each showing the asset on white and each different
    orbits = [_tile(sheet, 1, c) for c in range(4)]
    for view in orbits:
        covered = (view.reshape(-1, 3) < 250).any(1).mean()
        assert 0.05 < covered < 0.9
    assert len({hashlib.sha256(v.tobytes()).hexdigest() for v in orbits}) == 4


def test_no_photo_gives_a_placeholder_and_the_overlay_on_white(tmp_path):
    layer = write_asset(make_car_asset(), tmp_path)
    sheet = preview_image(layer)
    photo_tile = _tile(sheet, 0, 0).reshape(-1, 3)
    assert (photo_tile == 236).all(1).mean() > 0.8, "a grey 'not found' tile"
    overlay = _tile(sheet, 0, 1).reshape(-1, 3)
    assert (overlay == 255).all(1).mean() > 0.5


def test_write_preview_defaults_and_cli(asset_with_photo, tmp_path, capsys):
    layer, _ = asset_with_photo
    written = write_preview(layer.parent)
    assert written == layer.parent / "preview.png" and Image.open(written).format == "PNG"
    out = tmp_path / "sheet.png"
    assert main(["preview", str(layer), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    with Image.open(out) as im:
        assert im.size == (4 * TILE + 20, HEADER_H + 2 * (TILE + CAPTION_H) + 12)
        found = _tile(im.convert("RGB"), 0, 0).reshape(-1, 3).astype(int)
    assert (np.abs(found - PHOTO_RGB).sum(1) < 6).mean() > 0.3, "the CLI found the photo from the provenance"


def test_thumbnail_pixels_are_the_small_sheet_as_opaque_rgba(asset_with_photo):
    layer, photo = asset_with_photo
    pixels = thumbnail_pixels(layer, photo=photo)
    tile = THUMBNAIL_TILE
    assert pixels.shape == (HEADER_H + 2 * (tile + CAPTION_H) + 12, 4 * tile + 20, 4) and pixels.dtype == np.uint8
    assert pixels.flags["C_CONTIGUOUS"] and (pixels[..., 3] == 255).all()
    assert np.array_equal(pixels[..., :3], np.asarray(preview_image(layer, photo, tile)))
    photo_tile = _tile(Image.fromarray(pixels[..., :3]), 0, 0, tile).reshape(-1, 3).astype(int)
    assert (np.abs(photo_tile - PHOTO_RGB).sum(1) < 6).mean() > 0.3, "the photo is on the thumbnail"


def test_stage_preview_stacks_one_sheet_per_reconstruction(tmp_path, capsys):
    stage = tmp_path / "stage.usda"
    for name in ("red", "blue"):
        add_reference(stage, write_asset(make_car_asset(name), tmp_path / "assets"))
    assert main(["preview", str(stage)]) == 0
    written = tmp_path / "stage.preview.png"
    assert capsys.readouterr().out.strip() == str(written)
    with Image.open(written) as im:
        assert im.height == 2 * (HEADER_H + 2 * (TILE + CAPTION_H) + 12)


def test_preview_errors_exit_2_and_write_nothing(tmp_path, capsys):
    layer = write_asset(make_car_asset(), tmp_path)
    assert main(["preview", str(tmp_path / "missing.usda")]) == 2
    assert main(["preview", str(layer), "--out", str(tmp_path / "sheet.jpg")]) == 2
    assert "must end in .png" in capsys.readouterr().err
    junk = tmp_path / "junk.png"
    junk.write_text("not an image")
    assert main(["preview", str(layer), "--photo", str(junk), "--out", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "sheet.jpg").exists()


def test_reconstruct_preview_writes_the_sheet_with_the_photo(tmp_path, capsys, monkeypatch):
    pytest.importorskip("lift3d.pipeline.run", reason="the reconstructor is not available")
    import json

    from synthetic_inputs import TINY_SETTINGS, car_blob

    (tmp_path / "tiny.toml").write_text(TINY_SETTINGS)
    monkeypatch.setenv("LIFT3D_CONFIG", str(tmp_path / "tiny.toml"))
    photo = car_blob(tmp_path / "car.png", 3)
    assert main(["reconstruct", str(photo), "--preset", "fast", "--out", str(tmp_path / "out"), "--preview",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    sheet = Path(result["preview"])
    assert sheet == Path(result["asset"]).parent / "preview.png" and sheet.is_file()
    with Image.open(sheet) as im:
        rgb = im.convert("RGB")
    photo_tile = _tile(rgb, 0, 0).reshape(-1, 3).astype(int)
    car_colour = np.asarray(Image.open(photo).convert("RGBA"))[48, 20, :3].astype(int)
    assert (np.abs(photo_tile - car_colour).sum(1) < 12).mean() > 0.02, "the input photo is on the sheet"
    # `lift3d preview` on the asset finds the same photo from its provenance
    assert main(["preview", result["asset"], "--out", str(tmp_path / "again.png")]) == 0
    with Image.open(tmp_path / "again.png") as again:
        assert np.array_equal(_tile(again.convert("RGB"), 0, 0), _tile(rgb, 0, 0))


def test_captions_are_cut_to_their_tile():
    from PIL import Image, ImageDraw, ImageFont

    from lift3d.preview import _fit_text

    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    font = ImageFont.load_default()
    assert _fit_text(draw, "side", font, 200) == "side"
    cut = _fit_text(draw, "asset over photo (its camera)", font, 60)
    assert cut.endswith("...") and cut.startswith("asset") and draw.textlength(cut, font=font) <= 60
