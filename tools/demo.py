"""Demo: reconstruct the bundled sample photo into a USD stage and write a preview image.

    ./repo.sh demo                     # or: python tools/demo.py [--preset fast] [--out demo_out]

Writes ``demo_out/<name>/<name>.usda`` (the asset, with its albedo texture),
``demo_out/stage.usda`` (a stage referencing it under /World/Reconstructions)
and ``demo_out/preview.png``: the photo, the reconstruction seen through its
estimated source camera, and three other views (textured, simple diffuse
shading, rendered with the project's Warp rasterizer and texture sampler).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "exts" / "lift3d.reconstruct" / "data" / "samples" / "sedan_photo.png"
TILE = 256
LIGHT = np.array([0.4, 0.8, 0.45])


def _face_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = points[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def render_view(asset, camera) -> np.ndarray:
    """(TILE, TILE, 3) uint8: the asset's albedo through ``camera`` with two-sided diffuse shading, white background."""
    import torch
    import warp as wp

    from lift3d.kernels.raster import rasterize
    from lift3d.kernels.torch_render import render_textured

    wp.init()  # the torch glue hands tensors to Warp, which must be initialised

    cam = camera.scaled(TILE, round(TILE * camera.height / camera.width))
    width, height = cam.width, cam.height
    texture = asset.texture[..., :3].astype(np.float32) / 255.0
    image, mask = render_textured(torch.tensor(asset.points), asset.faces, torch.tensor(asset.uv),
                                  asset.uv_faces if asset.uv_faces is not None else asset.faces,
                                  torch.from_numpy(texture), cam, width, height, mode="clamp")
    tri = rasterize(asset.points, asset.faces, cam, width, height, device="cpu").tri_id.numpy()
    normals = _face_normals(asset.points.astype(np.float64), asset.faces)
    light = LIGHT / np.linalg.norm(LIGHT)
    shade = np.ones((height, width))
    hit = tri >= 0
    shade[hit] = 0.45 + 0.55 * np.abs(normals[tri[hit]] @ light)
    rgb = image.numpy() * shade[..., None]
    m = mask.numpy()[..., None]
    out = np.clip(rgb * m + (1.0 - m), 0.0, 1.0)
    tile = np.ones((TILE, TILE, 3))
    top = (TILE - height) // 2
    tile[top:top + height] = out[:TILE]
    return (tile * 255.0 + 0.5).astype(np.uint8)


def photo_tile(path: Path) -> np.ndarray:
    """The input photo composited over white, fitted into a TILE x TILE square."""
    im = Image.open(path).convert("RGBA")
    im.thumbnail((TILE, TILE))
    canvas = Image.new("RGBA", (TILE, TILE), (255, 255, 255, 255))
    canvas.alpha_composite(im, ((TILE - im.width) // 2, (TILE - im.height) // 2))
    return np.asarray(canvas.convert("RGB"))


def preview(asset, photo: Path, out: Path) -> None:
    """Write the preview strip: photo, source view, and three orbit views around the asset."""
    from lift3d.atomic import atomic_path
    from lift3d.camera import Camera, look_at

    source = asset.cameras[0]
    centre = 0.5 * (asset.points.min(axis=0) + asset.points.max(axis=0))
    offset = source.position - centre
    distance = float(np.linalg.norm(offset))
    yaw0 = math.atan2(offset[0], offset[2])
    tiles = [photo_tile(photo), render_view(asset, source)]
    for dyaw, pitch in ((90.0, 15.0), (180.0, 20.0), (-60.0, 45.0)):
        yaw = yaw0 + math.radians(dyaw)
        p = math.radians(pitch)
        eye = centre + distance * np.array([math.sin(yaw) * math.cos(p), math.sin(p), math.cos(yaw) * math.cos(p)])
        cam = Camera(source.fx, source.fx, source.width / 2, source.height / 2, source.width, source.height,
                     look_at(eye, centre))
        tiles.append(render_view(asset, cam))
    strip = np.concatenate(tiles, axis=1)
    with atomic_path(out) as tmp:
        Image.fromarray(strip).save(tmp, format="PNG")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=SAMPLE, help="photo to reconstruct (default: the sample)")
    parser.add_argument("--preset", default="balanced", help="fast, balanced or best")
    parser.add_argument("--category", default="car", help="car or generic")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    args = parser.parse_args(argv)

    from lift3d.api import ReconstructRequest
    from lift3d.errors import InputError
    from lift3d.progress import run_with_progress
    from lift3d.usd.reader import read_asset

    request = ReconstructRequest(images=[args.image], category=args.category, preset=args.preset,
                                 out_dir=args.out, stage=args.out / "stage.usda")
    try:
        result = run_with_progress(request)
    except InputError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    print(f"asset:          {result.asset_path}")
    print(f"stage:          {args.out / 'stage.usda'}  prim {result.prim_path}")
    print(f"input-view IoU: {result.metrics['input_view_iou']:.3f}")
    print("timings:        " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
          + f"  (total {sum(result.timings.values()):.1f} s)")
    preview(read_asset(result.asset_path), args.image, args.out / "preview.png")
    print(f"preview:        {args.out / 'preview.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
