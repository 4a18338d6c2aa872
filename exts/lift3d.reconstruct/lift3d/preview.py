"""Contact sheets: look at a reconstruction without a USD viewer.

``lift3d preview ASSET|STAGE``, ``reconstruct --preview``, the demo and the Kit
panel's thumbnail all draw the same sheet with the project's Warp rasterizer
and texture sampler (:mod:`lift3d.kernels`). One sheet per asset, two rows of
labelled tiles:

* top: the input photo; the asset through its own (estimated) camera laid
  over the photo, with its silhouette outlined; a parts view coloured by
  semantic label; the legend of those labels with their face counts;
* bottom: four orbit views (front three-quarter, side, rear three-quarter,
  above), textured, with two-sided diffuse shading on white.

The photo is found from the asset's provenance (``sources[].image``, a file
name, checked against its recorded SHA-256 when there is one) in the folders
where it usually sits: beside the asset folder or the output folder holding
it, beside the stage (where the stage records it), or the current folder; ``photo=`` overrides that. Without a photo its tile says so
and the overlay is drawn on white.

Entry points: :func:`contact_sheet` (an :class:`~lift3d.asset.Asset` to a
Pillow image), :func:`preview_image` (an asset or stage file to a Pillow
image: what a UI shows as a thumbnail), :func:`thumbnail_pixels` (the same at
thumbnail size as raw RGBA pixels, for the Kit panel), :func:`write_preview`
(to a PNG file, atomically). torch and Warp are imported on first use.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .asset import Asset
from .camera import Camera, orbit_camera
from .digest import file_digest
from .errors import InputError

TILE = 256
"""Tile edge in pixels."""
CAPTION_H = 20
HEADER_H = 24
LIGHT = np.array([0.4, 0.8, 0.45])
ORBITS = (("front 3/4", 35.0, 15.0), ("side", 90.0, 8.0), ("rear 3/4", 215.0, 15.0), ("above", 320.0, 55.0))
"""(caption, yaw in degrees about +Y from the front (+Z), pitch in degrees) of the orbit views."""
ORBIT_FOV_DEG = 35.0
OVERLAY_ALPHA = 0.6
OUTLINE = (255, 0, 200)
LABEL_COLOURS: dict[str, tuple[int, int, int]] = {
    "body": (70, 130, 220), "wheel": (40, 40, 40), "tire": (40, 40, 40), "rim": (150, 150, 160),
    "window": (120, 220, 230), "glass": (120, 220, 230), "headlight": (250, 210, 40),
    "taillight": (220, 40, 40), "lamp": (250, 210, 40), "mirror": (160, 100, 200), "object": (120, 180, 90),
}
_EXTRA_COLOURS = [(230, 130, 50), (140, 90, 60), (100, 200, 150), (200, 120, 180), (90, 90, 200), (180, 180, 60)]


# ----------------------------------------------------------------------------- colours and text


def label_colour(label: str) -> tuple[int, int, int]:
    """The parts view's colour of a semantic ``label`` (fixed for known labels, stable for others)."""
    if label in LABEL_COLOURS:
        return LABEL_COLOURS[label]
    return _EXTRA_COLOURS[int(hashlib.sha256(label.encode()).hexdigest(), 16) % len(_EXTRA_COLOURS)]


def _font(size: int = 13) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # a Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _srgb(linear: Sequence[float]) -> np.ndarray:
    """8-bit-range sRGB (floats in [0, 1]) of a linear RGB colour."""
    c = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


# ----------------------------------------------------------------------------- rendering


def face_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) unit normals of the (F, 3) ``faces`` over (V, 3) ``points`` (counter-clockwise = outwards)."""
    tri = points[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _face_colours(asset: Asset, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(F, 3) flat colour per face in [0, 1] and (F,) bool: whether the face takes the texture instead."""
    n = len(asset.faces)
    colour = np.full((n, 3), 0.6)
    textured = np.zeros(n, dtype=bool)
    for part in asset.parts:
        if mode == "parts":
            colour[part.faces] = np.asarray(label_colour(part.label)) / 255.0
            continue
        spec = asset.materials.get(part.material)
        if spec is None:
            continue
        colour[part.faces] = _srgb(spec.base_color)
        textured[part.faces] = spec.textured and asset.texture is not None
    return colour, textured


def render_view(asset: Asset, camera: Camera, width: int, height: int, mode: str = "textured"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Render ``asset`` through ``camera`` at ``width`` x ``height`` pixels with the Warp kernels.

    ``mode``: ``textured`` (albedo texture where the material is textured, base colour elsewhere)
    or ``parts`` (flat colour per semantic label). Both get two-sided diffuse shading.

    Returns:
        ``(rgb, mask)``: (H, W, 3) float in [0, 1] (background 0) and (H, W) float coverage.
    """
    import torch
    import warp as wp

    from .kernels.torch_render import Interpolate, SampleTexture, rasterize_torch  # importing initialises Warp

    cam = camera.scaled(width, height)
    points = torch.from_numpy(np.array(asset.points, dtype=np.float32))
    raster = rasterize_torch(points, asset.faces, cam, width, height)
    tri = wp.to_torch(raster.tri_id).cpu().numpy().copy()
    hit = tri >= 0
    colour, textured = _face_colours(asset, mode)
    rgb = np.zeros((height, width, 3))
    rgb[hit] = colour[tri[hit]]
    if mode == "textured" and textured.any():
        texture = torch.from_numpy(np.ascontiguousarray(asset.texture[..., :3], dtype=np.float32) / 255.0)
        uv_faces = asset.uv_faces if asset.uv_faces is not None else asset.faces
        st = Interpolate.apply(torch.from_numpy(np.array(asset.uv, dtype=np.float32)), points, raster,
                               np.asarray(uv_faces))  # on the raster above, not a second one
        image = SampleTexture.apply(texture, st, "clamp")
        use = hit & textured[np.maximum(tri, 0)]
        rgb[use] = image.numpy()[use]
    normals = face_normals(asset.points.astype(np.float64), asset.faces)
    light = LIGHT / np.linalg.norm(LIGHT)
    shade = np.zeros((height, width))
    shade[hit] = 0.45 + 0.55 * np.abs(normals[tri[hit]] @ light)
    return np.clip(rgb * shade[..., None], 0.0, 1.0), hit.astype(np.float64)


def _on_white(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None]
    return rgb * m + (1.0 - m)


def _to_u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _fit(width: int, height: int, box: int) -> tuple[int, int]:
    s = box / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def _centred(img: np.ndarray, box: int) -> np.ndarray:
    """``img`` (h, w, 3) uint8 centred on a white ``box`` x ``box`` tile."""
    tile = np.full((box, box, 3), 255, dtype=np.uint8)
    h, w = img.shape[:2]
    top, left = (box - h) // 2, (box - w) // 2
    tile[top:top + h, left:left + w] = img
    return tile


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels on the silhouette's border (inside pixels with an outside 4-neighbour)."""
    m = mask > 0.5
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def orbit_cameras(asset: Asset, box: int) -> list[tuple[str, Camera]]:
    """The four orbit cameras, framing the asset's bounding sphere."""
    lo, hi = asset.points.min(axis=0), asset.points.max(axis=0)
    centre = 0.5 * (lo + hi)
    radius = max(float(np.linalg.norm(hi - lo)) * 0.5, 1e-3)
    fov = math.radians(ORBIT_FOV_DEG)
    distance = radius / math.sin(0.5 * fov) * 0.92
    return [(name, orbit_camera(math.radians(yaw), math.radians(pitch), distance, fov, box, box, centre))
            for name, yaw, pitch in ORBITS]


# ----------------------------------------------------------------------------- the photo


def find_photo(asset: Asset, places: Sequence[Path] = ()) -> Path | None:
    """The asset's source photo, looked for by its recorded file name in ``places`` and the current folder.

    A candidate whose bytes do not match the recorded SHA-256 (when recorded) is passed over.
    """
    sources = asset.provenance.get("sources") if isinstance(asset.provenance, dict) else None
    if not isinstance(sources, list) or not sources or not isinstance(sources[0], dict):
        return None
    name, digest = str(sources[0].get("image") or ""), sources[0].get("sha256")
    if not name:
        return None
    candidates = [Path(name)] if Path(name).is_absolute() else [Path(p) / name for p in (*places, Path.cwd())]
    for candidate in candidates:
        try:
            if candidate.is_file() and (not digest or file_digest(candidate) == digest):
                return candidate
        except OSError:
            continue
    return None


def _load_photo(photo: Path | None) -> Image.Image | None:
    if photo is None:
        return None
    try:
        with Image.open(photo) as im:
            rgba = im.convert("RGBA")
    except (OSError, ValueError) as exc:
        raise InputError(f"photo {photo} cannot be read as an image ({exc})") from None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    white.alpha_composite(rgba)
    return white.convert("RGB")


# ----------------------------------------------------------------------------- the sheet


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: Any, width: float) -> str:
    """``text``, cut with an ellipsis where it would run past ``width`` pixels (small thumbnail tiles)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "..."


def _caption(tile: np.ndarray, text: str, font: Any) -> Image.Image:
    im = Image.new("RGB", (tile.shape[1], tile.shape[0] + CAPTION_H), (255, 255, 255))
    im.paste(Image.fromarray(tile), (0, CAPTION_H))
    draw = ImageDraw.Draw(im)
    draw.text((4, 3), _fit_text(draw, text, font, tile.shape[1] - 8), fill=(30, 30, 30), font=font)
    return im


def _message_tile(text: str, box: int, font: Any) -> np.ndarray:
    im = Image.new("RGB", (box, box), (236, 236, 236))
    ImageDraw.Draw(im).multiline_text((8, box // 2 - 16), text, fill=(90, 90, 90), font=font, spacing=4)
    return np.asarray(im)


def _legend_tile(asset: Asset, box: int, font: Any) -> np.ndarray:
    counts: dict[str, int] = {}
    for part in asset.parts:
        counts[part.label] = counts.get(part.label, 0) + len(part.faces)
    im = Image.new("RGB", (box, box), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    row = max(14, min(22, (box - 10) // max(1, len(counts))))
    for i, (label, faces) in enumerate(sorted(counts.items())):
        y = 6 + i * row
        if y + row > box:
            draw.text((8, y), f"... {len(counts) - i} more", fill=(60, 60, 60), font=font)
            break
        draw.rectangle((8, y + 1, 8 + row - 6, y + row - 5), fill=label_colour(label), outline=(0, 0, 0))
        x = 16 + row - 6
        draw.text((x, y), _fit_text(draw, f"{label}  ({faces} faces)", font, box - x - 4), fill=(20, 20, 20), font=font)
    return np.asarray(im)


def contact_sheet(asset: Asset, photo: Path | str | None = None, tile: int = TILE,
                  title: str | None = None) -> Image.Image:
    """The labelled contact sheet of ``asset`` (see the module docstring) as an RGB Pillow image.

    Args:
        asset: the asset (e.g. from :func:`lift3d.usd.reader.read_asset`).
        photo: its input photo; ``None`` draws a placeholder and the overlay on white.
        tile: tile edge in pixels.
        title: header text (default: the asset's name, triangle count and input-view IoU if recorded).
    """
    if len(asset.faces) == 0 or len(asset.points) == 0:
        raise InputError(f"asset {asset.name} has no geometry to preview")
    font = _font()
    picture = _load_photo(Path(photo)) if photo is not None else None
    tiles: list[Image.Image] = []

    # the photo, and the asset through its own camera over it
    source = asset.cameras[0] if asset.cameras else None
    aspect = (picture.width, picture.height) if picture is not None else (
        (source.width, source.height) if source is not None else (tile, tile))
    w, h = _fit(*aspect, tile)
    if picture is not None:
        base = np.asarray(picture.resize((w, h), Image.Resampling.LANCZOS), dtype=np.float64) / 255.0
        tiles.append(_caption(_centred(_to_u8(base), tile), f"photo: {Path(photo).name}"[:40], font))
    else:
        base = np.ones((h, w, 3))
        tiles.append(_caption(_message_tile("input photo\nnot found", tile, font), "photo", font))
    if source is not None:
        rgb, mask = render_view(asset, source, w, h)
        m = (OVERLAY_ALPHA * mask)[..., None]
        over = base * (1.0 - m) + rgb * m
        over[_outline(mask)] = np.asarray(OUTLINE) / 255.0
        tiles.append(_caption(_centred(_to_u8(over), tile), "asset over photo (its camera)", font))
    else:
        tiles.append(_caption(_message_tile("the asset records\nno source camera", tile, font), "overlay", font))

    # parts, coloured by label, and their legend
    orbits = orbit_cameras(asset, tile)
    rgb, mask = render_view(asset, orbits[0][1], tile, tile, mode="parts")
    tiles.append(_caption(_to_u8(_on_white(rgb, mask)), "parts by label", font))
    tiles.append(_caption(_legend_tile(asset, tile, font), "legend", font))

    # four orbit views
    for name, cam in orbits:
        rgb, mask = render_view(asset, cam, tile, tile)
        tiles.append(_caption(_to_u8(_on_white(rgb, mask)), name, font))

    cols, rows = 4, 2
    th = tile + CAPTION_H
    sheet = Image.new("RGB", (cols * tile + (cols + 1) * 4, HEADER_H + rows * th + (rows + 1) * 4), (200, 200, 200))
    for i, im in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet.paste(im, (4 + c * (tile + 4), HEADER_H + 4 + r * (th + 4)))
    if title is None:
        metrics = asset.provenance.get("metrics", {}) if isinstance(asset.provenance, dict) else {}
        iou = metrics.get("input_view_iou") if isinstance(metrics, dict) else None
        title = f"{asset.name}: {len(asset.faces)} triangles, {len(asset.parts)} parts" + (
            f", input-view IoU {iou:.3f}" if isinstance(iou, (int, float)) else "")
    ImageDraw.Draw(sheet).text((6, 5), title, fill=(0, 0, 0), font=_font(14))
    return sheet


def stack_sheets(sheets: list[Image.Image]) -> Image.Image:
    """Contact sheets one above the other on a grey background."""
    width = max(s.width for s in sheets)
    out = Image.new("RGB", (width, sum(s.height for s in sheets)), (200, 200, 200))
    y = 0
    for s in sheets:
        out.paste(s, (0, y))
        y += s.height
    return out


MAX_STAGE_SHEETS = 8
"""A stage's preview shows at most this many reconstructions (in prim order)."""


def preview_image(path: Path | str, photo: Path | str | None = None, tile: int = TILE) -> Image.Image:
    """The contact sheet of an asset (folder or layer), or of every reconstruction in a stage, stacked.

    This is the function a UI calls for a thumbnail; ``photo`` overrides the
    photo found from the asset's provenance (for a single asset only).

    Raises:
        InputError: not a readable asset or stage, or a stage whose assets cannot be found.
    """
    return _preview(path, photo, tile)[0]


def _preview(path: Path | str, photo: Path | str | None, tile: int) -> tuple[Image.Image, Path]:
    """(sheet, default output file): ``preview.png`` in an asset's folder, ``STEM.preview.png`` beside a stage."""
    from .usd.reader import read_asset, resolve_layer_path
    from .usd.shared_stage import list_plain_stage

    layer = resolve_layer_path(path)
    entries = list_plain_stage(layer)
    if not entries:
        asset = read_asset(path)
        places = [layer.parent.parent, layer.parent.parent.parent, layer.parent]
        found = Path(photo) if photo is not None else find_photo(asset, places)
        return contact_sheet(asset, found, tile), layer.parent / "preview.png"
    if photo is not None:
        raise InputError("--photo applies to one asset, not to a stage of several")
    sheets = []
    for entry in entries[:MAX_STAGE_SHEETS]:
        if not entry.asset or not Path(entry.asset).is_file():
            raise InputError(f"{layer}: the asset of {entry.prim_path} cannot be found")
        asset = read_asset(entry.asset)
        places = [layer.parent / Path(entry.source).parent] if entry.source else []
        places += [Path(entry.asset).parent.parent, layer.parent]
        sheets.append(contact_sheet(asset, find_photo(asset, places), tile,
                                    title=f"{entry.prim_path.rsplit('/', 1)[-1]}: {len(asset.faces)} triangles"))
    return stack_sheets(sheets), layer.with_name(f"{layer.stem}.preview.png")


THUMBNAIL_TILE = 128
"""Tile edge of :func:`thumbnail_pixels` (a sheet of 532 x 332 pixels)."""


def thumbnail_pixels(path: Path | str, photo: Path | str | None = None, tile: int = THUMBNAIL_TILE) -> np.ndarray:
    """:func:`preview_image` with small tiles, as an (H, W, 4) uint8 RGBA array, top row first (opaque).

    The raw pixels a UI uploads itself (Kit's ``omni.ui.ByteImageProvider``); safe to call off the UI thread.
    """
    return np.ascontiguousarray(np.asarray(preview_image(path, photo, tile).convert("RGBA"), dtype=np.uint8))


def write_preview(path: Path | str, out: Path | str | None = None, photo: Path | str | None = None,
                  tile: int = TILE) -> Path:
    """Write :func:`preview_image` of ``path`` to the PNG ``out`` (atomically); return the file written.

    ``out`` defaults to ``preview.png`` in the asset's folder, or ``STEM.preview.png`` beside a stage.
    """
    from .atomic import atomic_path

    if out is not None and Path(out).suffix.lower() != ".png":
        raise InputError(f"preview file {out} must end in .png")
    image, default = _preview(path, photo, tile)
    target = Path(out) if out is not None else default
    with atomic_path(target) as tmp:
        image.save(tmp, format="PNG")
    return target
