"""When may ``init = both`` skip the grid search? Learned and search initialisations on generated photos.

``both`` refines the vehicle predictor's hypotheses and also runs the grid search, then keeps the
lower silhouette loss. This tool renders procedurally generated vehicles (the training renderer,
new seeds, at photo size over a random background), runs both initialisations with a preset's
settings and records, per photo: each one's loss and yaw error, and which one ``both`` keeps. The
question it answers: below which learned loss does the search never give a better camera?

    python tools/init_gate.py --photos 40 --preset fast
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

def yaw_error_deg(a: float, b: float) -> float:
    return abs(math.degrees((a - b + math.pi) % (2.0 * math.pi) - math.pi))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--size", type=int, default=384, help="photo size (pixels, square)")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--seed", type=int, default=1000, help="render seed (training uses 0 and its own streams)")
    parser.add_argument("--output", type=Path, default=None, help="JSON lines of the per-photo records")
    args = parser.parse_args(argv)

    from lift3d.learn.data import _background
    from lift3d.pipeline.initialise import InitOptions, _search
    from lift3d.pipeline.learned_init import learned_camera
    from lift3d.settings import load_settings
    from lift3d.synth.render import render_sample
    from lift3d.templates import load_template

    settings = load_settings()
    options = InitOptions.from_settings(settings, settings.preset(args.preset), "both")
    template = load_template(settings.template_path("car"))
    rng = np.random.default_rng(args.seed)
    rows = []
    for i in range(args.photos):
        render = render_sample(template, rng, args.size)
        rgb = render.rgb * render.mask[..., None] + _background(rng, args.size) * (1.0 - render.mask[..., None])
        mask = render.mask >= 0.5
        clock = time.perf_counter()
        learned, _ = learned_camera(template, rgb, mask, options.model, options.hypotheses, options.refine_steps,
                                    options.sigma, 45.0)
        t_learned = time.perf_counter() - clock
        clock = time.perf_counter()
        search, _ = _search(template, mask, options, None, None)
        t_search = time.perf_counter() - clock
        row = {"photo": i, "body_type": render.vehicle.body_type, "learned_loss": learned.loss,
               "search_loss": search.loss, "learned_yaw_err": yaw_error_deg(learned.pose.yaw, render.yaw),
               "search_yaw_err": yaw_error_deg(search.pose.yaw, render.yaw),
               "chosen": "learned" if learned.loss <= search.loss else "search",
               "learned_s": t_learned, "search_s": t_search}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.output is not None:
        args.output.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
