"""Demo: reconstruct the bundled sample render and a real photo into one USD stage, with a preview image.

    ./repo.sh demo                     # or: python tools/demo.py [--preset fast] [--out demo_out]

Two inputs, so the demo shows the easy case and a real one side by side:

* ``sedan_photo.png``: a path-traced render of a low-poly sedan with an exact
  alpha mask, the easiest possible input (``--preset``, default balanced);
* ``intel_parking_oblique_f08.png``: a real video frame of a car in a parking
  lot, seen from above, small in the frame, with its approximate mask
  (CC BY 4.0, see ``data/samples/ATTRIBUTION.md``; ``--real-preset``, default fast).

Writes ``demo_out/<name>/<name>.usda`` per photo (the asset, with its albedo
texture), ``demo_out/stage.usda`` (a stage referencing both under
/World/Reconstructions) and ``demo_out/preview.png``: the contact sheets of
``lift3d preview`` for both, stacked (the photo, the reconstruction over it
through its estimated camera, the parts by label with a legend, and four orbit
views; see :mod:`lift3d.preview`). Each run's warnings are printed as the CLI
prints them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "exts" / "lift3d.reconstruct" / "data" / "samples"
SAMPLE = SAMPLES / "sedan_photo.png"
REAL = SAMPLES / "intel_parking_oblique_f08.png"
REAL_MASK = SAMPLES / "intel_parking_oblique_f08_mask.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=SAMPLE, help="photo to reconstruct (default: the sample render)")
    parser.add_argument("--preset", default="balanced", help="preset of --image: fast, balanced or best")
    parser.add_argument("--real-preset", default="fast", help="preset of the bundled real photo")
    parser.add_argument("--no-real", action="store_true", help="skip the bundled real photo")
    parser.add_argument("--category", default="car", help="car or generic")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    args = parser.parse_args(argv)

    from lift3d.api import ReconstructRequest
    from lift3d.atomic import atomic_path
    from lift3d.errors import InputError
    from lift3d.preview import preview_image, stack_sheets
    from lift3d.progress import run_with_progress

    stage = args.out / "stage.usda"
    runs = [(args.image, None, args.preset)]
    if not args.no_real:
        runs.append((REAL, REAL_MASK, args.real_preset))
    sheets = []
    for image, mask, preset in runs:
        request = ReconstructRequest(images=[image], mask=mask, category=args.category, preset=preset,
                                     out_dir=args.out, stage=stage, objects="largest")
        try:
            result = run_with_progress(request)
        except InputError as exc:
            print(f"demo: error: {exc}", file=sys.stderr)
            return 2
        print(f"photo:          {image.name}  ({preset} preset)")
        print(f"asset:          {result.asset_path}")
        print(f"stage:          {stage}  prim {result.prim_path}")
        print(f"input-view IoU: {result.metrics['input_view_iou']:.3f}")
        print("timings:        " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
              + f"  (total {sum(result.timings.values()):.1f} s)")
        for text in result.warnings:
            print(f"lift3d: warning: {text}", file=sys.stderr)
        sheets.append(preview_image(result.asset_path, photo=image))
    target = args.out / "preview.png"
    with atomic_path(target) as tmp:
        stack_sheets(sheets).save(tmp)
    print(f"preview:        {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
