#!/usr/bin/env python3
"""Leave-one-out evaluation of training on your own vehicles (``lift3d train --assets``).

For each fold one dev vehicle of ``../shared/eval`` is left out:

1. the other dev vehicles (their ``normalized.obj`` moved to the render world by
   ``gt.json``'s ``normalized_to_world``, exactly as :func:`evaluate.load_ground_truth`
   reads them) are written as OBJ files into the fold's asset folder, and registered
   to the car template as ``lift3d train --assets`` does (registrations are cached,
   so each vehicle is registered once over all folds);
2. a fold model is fine-tuned from the default model for ``--steps`` steps on
   procedural renders plus renders of those registered vehicles, into a temporary
   folder (fold models are never written to ``config/models``);
3. the left-out vehicle's single-photo cases (``photo_fl``, ``photo_fr``) are
   reconstructed with ``predictor+fit`` through :func:`evaluate.run_case`, with a
   settings file pointing the predictor at the fold model, and scored as
   ``tools/evaluate.py`` scores them.

The table in ``docs/LOO.md`` gives, per fold, the left-out vehicle's held-out-view
IoU, volumetric IoU, F@2% and held-out wheel IoU (mean of its two photos), next to
the default model's figures for the same vehicle, method and preset from
``docs/quality_results.json`` (the last ``./repo.sh eval``), when given.

Usage::

    python tools/loo.py                      # all 8 folds, 300 steps each (about an hour on 2 CPU cores)
    python tools/loo.py --folds 3 --steps 500
    python tools/loo.py --folds 1 --steps 5 --samples 64 --out /tmp/LOO.md   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate  # noqa: E402  (the evaluation harness beside this file)

ROOT = evaluate.ROOT
DEFAULT_REPORT = ROOT / "exts" / "lift3d.reconstruct" / "docs" / "LOO.md"
METHOD = "predictor+fit"
METRICS = (("heldout_iou", "held-out IoU"), ("volume_iou", "3D IoU"), ("fscore@2%", "F@2%"),
           ("part_iou_wheel", "wheel IoU"))
"""The columns of the table: a metric key of :func:`evaluate.score` and its title."""


@dataclass(frozen=True)
class Fold:
    """One fold: the vehicle left out and the dev vehicles trained on."""

    index: int
    held_out: str
    train: tuple[str, ...]


def plan_folds(vehicles: list[str] | tuple[str, ...], folds: int = 0) -> list[Fold]:
    """The first ``folds`` folds (all when 0) over ``vehicles``: each leaves one out and trains on the rest."""
    vehicles = list(dict.fromkeys(vehicles))
    if len(vehicles) < 2:
        raise ValueError("leave-one-out needs at least two vehicles")
    count = len(vehicles) if folds <= 0 else min(folds, len(vehicles))
    return [Fold(i, v, tuple(x for x in vehicles if x != v)) for i, v in enumerate(vehicles[:count])]


def write_obj(path: Path, points: np.ndarray, faces: np.ndarray) -> Path:
    """A plain OBJ (``v`` and ``f`` lines, fixed precision, so the same mesh gives the same bytes)."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(points, np.float64)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, np.int64)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def fold_asset_folder(fold: Fold, meshes: dict[str, Path], folder: Path) -> Path:
    """``folder`` holding the fold's training vehicles (copies of their OBJ files), not the left-out one."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in fold.train:
        shutil.copyfile(meshes[name], folder / meshes[name].name)
    return folder


def settings_file(path: Path, model: Path) -> Path:
    """A settings file pointing the predictor at ``model``."""
    path.write_text(f"[predictor]\nmodel = {json.dumps(str(Path(model).resolve()))}\n")
    return path


def mean_figures(records: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each table metric over the records that have it (NaN when none)."""
    out = {}
    for key, _ in METRICS:
        values = [evaluate._value(r, key) for r in records]
        values = [v for v in values if math.isfinite(v)]
        out[key] = float(np.mean(values)) if values else math.nan
    return out


def default_figures(results: list[dict[str, Any]], asset: str, preset: str) -> dict[str, float] | None:
    """The default model's mean figures for ``asset``'s single-photo ``predictor+fit`` runs, or None."""
    records = [r for r in results if r.get("asset") == asset and r.get("method") == METHOD
               and str(r.get("mode", "")).startswith("single") and r.get("preset", preset) == preset]
    return mean_figures(records) if records else None


def format_loo_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: per fold, the left-out vehicle's figures and the default model's beside them, then means.

    Each row: ``fold``, ``asset``, ``figures`` (metric -> value), ``default`` (the same or None) and
    optionally ``cases`` (runs scored) and ``failed`` (runs that failed). The mean row averages the
    folds where both models have the value, so the two are compared on the same vehicles.
    """
    header = "| fold | left out | " + " | ".join(f"{title} | default" for _, title in METRICS) + " | runs |"
    rule = "|---:|---|" + "---:|---:|" * len(METRICS) + "---:|"
    out = [header, rule]
    fmt = lambda v: evaluate._fmt(v, "{:.3f}")  # noqa: E731
    for row in rows:
        default = row.get("default") or {}
        cells = []
        for key, _ in METRICS:
            cells += [fmt(row["figures"].get(key, math.nan)), fmt(default.get(key, math.nan))]
        runs = f"{row.get('cases', 0)}" + (f" ({row['failed']} failed)" if row.get("failed") else "")
        out.append(f"| {row['fold']} | {row['asset']} | " + " | ".join(cells) + f" | {runs} |")
    if rows:
        cells = []
        for key, _ in METRICS:
            pairs = [(r["figures"].get(key, math.nan), (r.get("default") or {}).get(key, math.nan)) for r in rows]
            ours = [a for a, _ in pairs if math.isfinite(a)]
            both = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
            mean_ours = float(np.mean([a for a, _ in both])) if both else (float(np.mean(ours)) if ours else math.nan)
            cells += [fmt(mean_ours), fmt(float(np.mean([b for _, b in both])) if both else math.nan)]
        out.append(f"| | **mean** ({len(rows)} folds) | " + " | ".join(cells) + " | |")
    return "\n".join(out) + "\n"


REPORT_INTRO = """# Leave-one-out: training on your own vehicles

How much does `lift3d train --assets DIR` help on a vehicle it has never seen? Each fold
leaves one dev vehicle of `../shared/eval` out, registers the others to the car template as
`--assets` does, fine-tunes the default predictor on procedural renders plus renders of those
vehicles, and reconstructs the left-out vehicle's two single-photo cases (`photo_fl`, `photo_fr`;
camera unknown) with `predictor+fit`, scored as in `QUALITY.md`. "default" is the default model
on the same vehicle, method and preset (from `quality_results.json`); each figure is the mean of
the vehicle's two photos. Produced by `tools/loo.py` (see its docstring).
"""


def write_report(path: Path, rows: list[dict[str, Any]], note: str) -> None:
    """``LOO.md``: the introduction, how it was produced, the table and the fold details."""
    from lift3d.atomic import write_text_atomic

    details = []
    for row in rows:
        regs = ", ".join(f"{a['name'].rsplit('.', 1)[0]} as {a['body_type']} ({a['residual_m']:.3f} m)"
                         for a in row.get("assets", []))
        details.append(f"* fold {row['fold']} ({row['asset']}): trained on {regs or 'no assets'}"
                       + (f"; failed runs: {'; '.join(row['errors'])}" if row.get("errors") else ""))
    text = (REPORT_INTRO + "\n" + note + "\n\n" + format_loo_table(rows) + "\nRegistered training vehicles "
            "per fold (fitted body type, RMS residual of the generator fit):\n\n" + "\n".join(details) + "\n")
    write_text_atomic(path, text)


def run_fold(fold: Fold, args: argparse.Namespace, template, meshes: dict[str, Path], work: Path,
             baseline: list[dict[str, Any]]) -> dict[str, Any]:
    """Register, fine-tune and evaluate one fold; returns its table row (with the raw records)."""
    from lift3d.learn.assets import register_folder
    from lift3d.learn.train import TrainOptions, train

    folder = work / f"fold_{fold.index}"
    assets = fold_asset_folder(fold, meshes, folder / "assets")
    shapes = register_folder(assets, template, args.cache / "synth" / "assets", args.register_preset,
                             progress=lambda done, total, name: print(f"  registered {name} ({done}/{total})",
                                                                      flush=True))
    options = TrainOptions(samples=args.samples, val_samples=args.val_samples, steps=args.steps, batch=args.batch,
                           lr=args.lr, seed=args.seed, input_size=args.input_size, asset_share=args.asset_share,
                           init_from=str(args.init_from) if args.init_from else None,
                           checkpoint_every=max(args.steps, 1))
    model = folder / "fold_model.safetensors"
    clock = time.perf_counter()
    card = train(template, model, options, args.cache / "synth", assets=shapes)
    train_seconds = time.perf_counter() - clock
    config = settings_file(folder / "settings.toml", model)
    gt = evaluate.load_ground_truth(args.data, fold.held_out, "car")
    records = []
    for mode, inputs, calibrated in evaluate._cases(["single"]):
        rec = evaluate.run_case(gt, mode, inputs, calibrated, args.preset, METHOD, folder / "out", config=config)
        records.append(rec)
        status = rec.get("error") or ", ".join(f"{k}={rec['metrics'].get(k, math.nan):.3f}" for k, _ in METRICS)
        print(f"  {fold.held_out} {mode}: {status}", flush=True)
    return {"fold": fold.index, "asset": fold.held_out, "train": list(fold.train),
            "figures": mean_figures([r for r in records if "error" not in r]),
            "default": default_figures(baseline, fold.held_out, args.preset),
            "cases": len(records), "failed": sum("error" in r for r in records),
            "errors": [r["error"] for r in records if "error" in r],
            "assets": card["data"].get("assets", []), "validation": card.get("validation", {}),
            "training_seconds": round(train_seconds, 1), "records": records}


def main(argv: list[str] | None = None) -> int:
    from lift3d.learn.model import default_model_path
    from lift3d.learn.train import TrainOptions

    defaults = TrainOptions()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=evaluate.DEFAULT_DATA, help="evaluation data (../shared/eval)")
    parser.add_argument("--vehicles", default="", help="comma-separated dev vehicles (default: evaluate.VEHICLES)")
    parser.add_argument("--folds", type=int, default=0, help="run only the first N folds (default: all)")
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps per fold")
    parser.add_argument("--samples", type=int, default=3000, help="training renders per fold")
    parser.add_argument("--val-samples", type=int, default=200, help="procedural validation renders")
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--lr", type=float, default=5e-4, help="peak learning rate of the fine-tuning")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--asset-share", type=float, default=defaults.asset_share,
                        help="share of the training renders showing the other dev vehicles")
    parser.add_argument("--init-from", default=str(default_model_path()),
                        help="model to fine-tune ('none': train from scratch)")
    parser.add_argument("--preset", default="balanced", help="reconstruction preset of the evaluated runs")
    parser.add_argument("--register-preset", default="fast", help="preset of the registration fits")
    parser.add_argument("--baseline", type=Path, default=evaluate.DEFAULT_RESULTS,
                        help="the default model's results (quality_results.json; missing: no comparison)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "lift3d",
                        help="cache folder (renders under synth/, registrations under synth/assets/)")
    parser.add_argument("--work", type=Path, default=None, help="keep the fold models here (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=DEFAULT_REPORT, help="Markdown report to write")
    parser.add_argument("--json", type=Path, default=None, help="also write every record as JSON here")
    args = parser.parse_args(argv)

    vehicles = [v.strip() for v in args.vehicles.split(",") if v.strip()] or list(evaluate.VEHICLES)
    try:
        folds = plan_folds(vehicles, args.folds)
    except ValueError as exc:
        parser.error(str(exc))
    if not (args.data / "renders").is_dir():
        parser.error(f"no renders folder under {args.data}")
    init = None if str(args.init_from).lower() in ("", "none") else Path(args.init_from)
    if init is not None:
        from lift3d.learn.model import load_model

        _, card = load_model(init)  # a missing or broken start model stops here, before any work
        args.input_size = int(card["architecture"]["input_size"])
    else:
        args.input_size = defaults.input_size
    args.init_from = init
    models_dir = (ROOT / "config" / "models").resolve()
    if args.work is not None and args.work.resolve().is_relative_to(models_dir):
        parser.error("fold models never go into config/models")
    args.cache = args.cache.expanduser()
    baseline = json.loads(args.baseline.read_text()) if args.baseline and args.baseline.is_file() else []

    from lift3d.settings import load_settings
    from lift3d.templates import load_template

    template = load_template(load_settings().template_path("car"))
    version = evaluate.source_version()  # before the report is written (it is tracked)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lift3d-loo-") as tmp:
        work = args.work or Path(tmp)
        meshes = {}
        for name in dict.fromkeys(v for fold in folds for v in fold.train):
            gt = evaluate.load_ground_truth(args.data, name, "car")
            meshes[name] = write_obj(work / "meshes" / f"{name}.obj", gt.points, gt.faces)
        for fold in folds:
            print(f"fold {fold.index}: leave out {fold.held_out}", flush=True)
            rows.append(run_fold(fold, args, template, meshes, work, baseline))
            if args.json:
                args.json.write_text(json.dumps(evaluate.jsonable(rows), indent=1, allow_nan=False))
    minutes = (time.perf_counter() - started) / 60.0
    command = " ".join(["python tools/loo.py", *(sys.argv[1:] if argv is None else argv)])
    note = (f"{len(folds)} folds; fine-tuned from `{init.name if init else 'scratch'}` for {args.steps} steps of "
            f"batch {args.batch} on {args.samples} renders ({args.asset_share:.0%} of them the other dev "
            f"vehicles), evaluated with the `{args.preset}` preset; produced by `{command}` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}{version}, "
            f"in {minutes:.0f} min, CPU only.")
    write_report(args.out, rows, note)
    print(format_loo_table(rows))
    return 0 if not any(r["failed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
