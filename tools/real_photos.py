#!/usr/bin/env python3
"""Reconstruct the real car photos of the evaluation set and draw what a user gets.

For every photo listed in ``photos/index.json`` of the evaluation data, two runs:
with the automatic foreground mask and with the photo's given mask. Each run
becomes one row of a contact sheet: the input photo, then three novel views of
the asset (front 3/4, side, rear 3/4, rendered by :func:`lift3d.preview.render_view`),
captioned with the run, its input-view IoU and the chosen body. A JSON summary
beside the sheet records every run's metrics, initialisation and warnings.

Usage::

    python tools/real_photos.py                      # docs/real_photos.png (+ real_photos.json)
    python tools/real_photos.py --preset fast --out /tmp/sheet.png
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "eval"
DEFAULT_OUT = ROOT / "exts" / "lift3d.reconstruct" / "docs" / "real_photos.png"
TILE = 192


def photo_tile(path: Path, mask_path: Path, tile: int) -> np.ndarray:
    """(tile, tile, 3) uint8: the photo cropped to a square around its given mask's box (with a margin)."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    mask = np.asarray(Image.open(mask_path).convert("L")) >= 128
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    cy, cx = 0.5 * (rows[0] + rows[-1]), 0.5 * (cols[0] + cols[-1])
    side = int(1.4 * max(rows[-1] - rows[0], cols[-1] - cols[0])) + 8
    x0, y0 = int(cx - side / 2), int(cy - side / 2)
    crop = Image.fromarray(rgb).crop((x0, y0, x0 + side, y0 + side))
    return np.asarray(crop.resize((tile, tile), Image.LANCZOS))


def asset_tiles(asset_path: Path, tile: int) -> list[np.ndarray]:
    """Three novel views of the asset on white: front 3/4, side, rear 3/4."""
    from lift3d.preview import orbit_cameras, render_view
    from lift3d.usd.reader import read_asset

    asset = read_asset(asset_path)
    out = []
    for _, camera in orbit_cameras(asset, tile)[:3]:
        rgb, mask = render_view(asset, camera, tile, tile)
        img = rgb * mask[..., None] + (1.0 - mask[..., None])
        out.append((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    return out


def caption(tile: np.ndarray, text: str) -> np.ndarray:
    img = Image.fromarray(tile)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, img.width, 14), fill=(255, 255, 255))
    draw.text((3, 1), text, fill=(0, 0, 0))
    return np.asarray(img)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="evaluation data folder")
    parser.add_argument("--preset", default="balanced", help="reconstruction preset")
    parser.add_argument("--init", default=None, help="learned, search or both (default: the setting)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="contact sheet PNG (a .json goes beside it)")
    args = parser.parse_args(argv)

    from lift3d.api import ReconstructRequest, reconstruct
    from lift3d.atomic import write_bytes_atomic, write_text_atomic
    from lift3d.usd.reader import read_asset

    folder = args.data / "photos"
    index = json.loads((folder / "index.json").read_text())["photos"]
    rows, runs = [], []
    with tempfile.TemporaryDirectory(prefix="lift3d-photos-") as tmp:
        for entry in index:
            image, mask = folder / entry["image"], folder / entry["mask"]
            for source in ("auto", "given"):
                record = {"image": entry["image"], "mask": source, "view": entry.get("view")}
                start = time.perf_counter()
                try:
                    result = reconstruct(ReconstructRequest(
                        images=[image], mask=mask if source == "given" else None, preset=args.preset,
                        init=args.init, out_dir=Path(tmp), name=f"{image.stem}_{source}"))
                    camera = read_asset(result.asset_path).provenance.get("camera", {})
                    record.update(seconds=round(time.perf_counter() - start, 1), metrics=result.metrics,
                                  chosen=camera.get("chosen"), body=camera.get("body_type") or camera.get("shape"),
                                  pitch_deg=camera.get("pitch_deg"), warnings=getattr(result, "warnings", []))
                    views = asset_tiles(result.asset_path, TILE)
                    text = (f"{image.stem[-12:]} {source} IoU {result.metrics.get('input_view_iou', 0):.2f} "
                            f"{record['body'] or ''}")
                except Exception as exc:  # a failed run is a row saying so, not a stop
                    record["error"] = f"{type(exc).__name__}: {exc}"
                    views = [np.full((TILE, TILE, 3), 235, np.uint8)] * 3
                    text = f"{image.stem[-12:]} {source}: failed"
                runs.append(record)
                print(json.dumps(record), flush=True)
                rows.append(np.concatenate([caption(photo_tile(image, mask, TILE), text)] + views, axis=1))
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    import io

    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    write_bytes_atomic(args.out, buffer.getvalue())
    write_text_atomic(args.out.with_suffix(".json"), json.dumps({"preset": args.preset, "runs": runs}, indent=1))
    print(f"{args.out}: {len(runs)} runs, {sum('error' in r for r in runs)} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
