"""Demo: reconstruct the bundled sample photo into a USD stage and write a preview image.

    ./repo.sh demo                     # or: python tools/demo.py [--preset fast] [--out demo_out]

Writes ``demo_out/<name>/<name>.usda`` (the asset, with its albedo texture),
``demo_out/stage.usda`` (a stage referencing it under /World/Reconstructions)
and ``demo_out/preview.png``: the contact sheet of ``lift3d preview`` (the
photo, the reconstruction over it through its estimated camera, the parts by
label with a legend, and four orbit views, rendered with the project's Warp
rasterizer and texture sampler; see :mod:`lift3d.preview`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "exts" / "lift3d.reconstruct" / "data" / "samples" / "sedan_photo.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=SAMPLE, help="photo to reconstruct (default: the sample)")
    parser.add_argument("--preset", default="balanced", help="fast, balanced or best")
    parser.add_argument("--category", default="car", help="car or generic")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    args = parser.parse_args(argv)

    from lift3d.api import ReconstructRequest
    from lift3d.errors import InputError
    from lift3d.preview import write_preview
    from lift3d.progress import run_with_progress

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
    write_preview(result.asset_path, args.out / "preview.png", photo=args.image)
    print(f"preview:        {args.out / 'preview.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
