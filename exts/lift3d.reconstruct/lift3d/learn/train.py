"""``lift3d train``: render procedural data, train the predictor, validate, write the model.

Training is seeded and resumable: the batch order is a function of the seed and the
step, and a checkpoint (``OUT.ckpt.safetensors``: weights, optimiser moments and the
step, tensors only) is written every ``checkpoint_every`` steps and when the run is
interrupted (Ctrl-C keeps the last checkpoint; the same command resumes from it).

Loss (labels from :mod:`lift3d.learn.data`): soft cross-entropy on the yaw bins,
cross-entropy on the body type, L1 on the pitch (radians), the log focal length and
the true body type's normalised generator parameters.

Validation (:func:`validate`) runs on a held-out procedural set (another seed) and
reports what the model card and ``docs/QUALITY.md`` quote: front/back accuracy
(yaw error under 90 degrees), median yaw error, body-type accuracy, and the mask IoU
of the predicted vehicle under the predicted camera, placed by its mask box, with
no refinement.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..templates import Template
from .shapes import RegisteredShape, shapes_key
from .data import ASSET_SHARE, augment, build_dataset
from .model import Architecture, Predictor, save_model, yaw_target


@dataclass
class TrainOptions:
    """What to train and how (also recorded in the model card)."""

    samples: int = 30000
    val_samples: int = 500
    steps: int = 8000
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    input_size: int = 64
    widths: tuple[int, ...] = Architecture.widths
    hidden: int = Architecture.hidden
    checkpoint_every: int = 500
    shares: dict[str, float] | None = None
    asset_share: float = ASSET_SHARE
    init_from: str | None = None
    """``asset_share``: the share of training samples rendered from registered user assets (only with
    ``assets``); ``init_from``: a model file whose weights the run starts from (fine-tuning; its
    architecture is used, and its input size must be ``input_size``)."""


VAL_SEED_OFFSET = 1_000_003
"""The validation set's seed is the training seed plus this (disjoint vehicles and views)."""


def _checkpoint_path(out: Path) -> Path:
    return out.with_name(out.stem + ".ckpt.safetensors")


def save_checkpoint(path: Path, model: Predictor, opt: torch.optim.Optimizer, step: int, key: str) -> None:
    """Weights, AdamW moments and the step, as tensors (atomic)."""
    from safetensors.torch import save

    from ..atomic import write_bytes_atomic

    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    for i, p in enumerate(g for group in opt.param_groups for g in group["params"]):
        state = opt.state.get(p, {})
        for name in ("exp_avg", "exp_avg_sq"):
            if name in state:
                tensors[f"opt.{i}.{name}"] = state[name].detach().clone().contiguous()
        if "step" in state:
            tensors[f"opt.{i}.step"] = torch.as_tensor(state["step"], dtype=torch.float32).reshape(1)
    write_bytes_atomic(path, save(tensors, metadata={"step": str(step), "key": key}))


def load_checkpoint(path: Path, model: Predictor, opt: torch.optim.Optimizer, key: str) -> int:
    """Restore a checkpoint written for the same options; returns its step (0 when none applies)."""
    from safetensors import safe_open

    if not path.is_file():
        return 0
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("key") != key:
                return 0
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception:  # a damaged checkpoint is ignored: training starts over
        return 0
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    params = [g for group in opt.param_groups for g in group["params"]]
    for i, p in enumerate(params):
        if f"opt.{i}.exp_avg" in tensors:
            opt.state[p] = {"exp_avg": tensors[f"opt.{i}.exp_avg"], "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"],
                            "step": tensors[f"opt.{i}.step"].reshape(())}
    return int(meta.get("step", 0))


def losses(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-head losses of a batch (see the module docstring)."""
    yaw = -(yaw_target(batch["yaw"]) * F.log_softmax(out["yaw"], dim=1)).sum(dim=1).mean()
    body = F.cross_entropy(out["body"], batch["body"])
    pitch = (out["pitch"] - batch["pitch"]).abs().mean()
    focal = (out["log_focal"] - torch.log(batch["focal"])).abs().mean()
    chosen = out["params"][torch.arange(len(batch["body"])), batch["body"]]
    params = (chosen - batch["params"]).abs().mean()
    return {"yaw": yaw, "body": 0.5 * body, "pitch": 2.0 * pitch, "focal": focal, "params": 2.0 * params}


def _batch(data: dict[str, np.ndarray], idx: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    x = augment(data["rgb"][idx], data["mask"][idx], rng)
    return {"x": torch.from_numpy(x), "yaw": torch.from_numpy(data["yaw"][idx]),
            "pitch": torch.from_numpy(data["pitch"][idx]), "focal": torch.from_numpy(data["focal"][idx]),
            "body": torch.from_numpy(data["body"][idx]), "params": torch.from_numpy(data["params"][idx])}


def validate(model: Predictor, template: Template, data: dict[str, np.ndarray], seed: int) -> dict[str, float]:
    """Figures on a held-out set (see the module docstring)."""
    from ..camera import Camera
    from ..pipeline.silhouette import hard_mask, mask_iou
    from .predict import decode, place

    rng = np.random.default_rng(seed)
    model.eval()
    size = model.arch.input_size
    yaw_err, front_back, body_ok, ious = [], [], [], []
    with torch.no_grad():
        for start in range(0, len(data["yaw"]), 64):
            idx = np.arange(start, min(start + 64, len(data["yaw"])))
            x = augment(data["rgb"][idx], data["mask"][idx], rng)
            out = model(torch.from_numpy(x))
            for j, i in enumerate(idx):
                hyp = decode(out, j, 1, 1)[0]
                err = abs((hyp.yaw - float(data["yaw"][i]) + math.pi) % (2 * math.pi) - math.pi)
                yaw_err.append(math.degrees(err))
                front_back.append(err < math.pi / 2)
                body_ok.append(int(torch.argmax(out["body"][j])) == int(data["body"][i]))
                mask = x[j, 3] >= 0.5
                if not mask.any():
                    continue
                box = (0, 0, size)
                points, pose, target, base = place(hyp, template, mask, box)
                cam = Camera(base.fx, base.fy, base.cx, base.cy, size, size, pose.cam_to_world(target))
                ious.append(mask_iou(hard_mask(points, template.faces, cam, size, size), mask))
    model.train()
    return {"views": len(yaw_err), "front_back_accuracy": float(np.mean(front_back)),
            "median_yaw_error_deg": float(np.median(yaw_err)), "body_type_accuracy": float(np.mean(body_ok)),
            "silhouette_iou": float(np.mean(ious)) if ious else float("nan")}


def train(template: Template, out: Path, options: TrainOptions, cache_dir: Path | None = None,
          report: Callable[[str, int, int, dict[str, float]], None] | None = None,
          assets: list[RegisteredShape] | None = None) -> dict[str, Any]:
    """Train and write ``out`` (safetensors) with its card; returns the card.

    ``report(phase, done, total, figures)`` is called while rendering (``phase``
    "data"), training ("train", with the running loss) and validating ("validate").
    ``assets``: registered user shapes (:mod:`lift3d.learn.assets`) mixed into the
    training data (``options.asset_share`` of it); the validation set stays procedural,
    so its figures compare with a procedural-only model's. The card lists the assets
    with their fitted body type and registration residuals.
    """
    report = report or (lambda *a: None)
    out = Path(out)
    clock = time.perf_counter()
    torch.manual_seed(options.seed)
    start = None
    if options.init_from:  # checked before any data is rendered
        from .model import ModelError, load_model

        start, _ = load_model(options.init_from)
        if start.arch.input_size != options.input_size:
            raise ModelError(f"model {options.init_from} reads {start.arch.input_size} px inputs, not "
                             f"{options.input_size}; fine-tune it with the same input size")
    data = build_dataset(template, options.samples, options.input_size, options.seed, cache_dir, options.shares,
                         progress=lambda i: report("data", i, options.samples, {}), assets=assets or None,
                         asset_share=options.asset_share)
    val = build_dataset(template, options.val_samples, options.input_size, options.seed + VAL_SEED_OFFSET,
                        cache_dir, options.shares, progress=lambda i: report("validation data", i,
                                                                             options.val_samples, {}))
    data_time = time.perf_counter() - clock
    model = start if start is not None else Predictor(Architecture(options.input_size, tuple(options.widths),
                                                                   options.hidden))
    opt = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    key = f"{options.samples}:{options.steps}:{options.batch}:{options.seed}:{options.input_size}:{options.lr}"
    if (tuple(options.widths), options.hidden) != (Architecture.widths, Architecture.hidden):
        key += f":{list(options.widths)}:{options.hidden}"
    if assets or options.init_from:  # the key of a procedural run from scratch is unchanged
        extra = {"assets": shapes_key(assets) if assets else [], "share": options.asset_share,
                 "init": str(options.init_from or "")}
        key += ":" + hashlib.sha256(json.dumps(extra, sort_keys=True).encode()).hexdigest()[:16]
    ckpt = _checkpoint_path(out)
    step = load_checkpoint(ckpt, model, opt, key)
    model.train()
    running: dict[str, float] = {}
    train_clock = time.perf_counter()
    try:
        while step < options.steps:
            rng = np.random.default_rng([options.seed, step])
            idx = rng.integers(0, options.samples, options.batch)
            batch = _batch(data, idx, rng)
            lr = options.lr * 0.5 * (1.0 + math.cos(math.pi * step / options.steps))
            for group in opt.param_groups:
                group["lr"] = lr
            parts = losses(model(batch["x"]), batch)
            loss = sum(parts.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            for k, v in {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in parts.items()}}.items():
                running[k] = v if k not in running else 0.95 * running[k] + 0.05 * v
            report("train", step, options.steps, running)
            if step % options.checkpoint_every == 0 or step == options.steps:
                save_checkpoint(ckpt, model, opt, step, key)
    except KeyboardInterrupt:
        save_checkpoint(ckpt, model, opt, step, key)
        raise
    train_time = time.perf_counter() - train_clock
    report("validate", 0, 1, {})
    figures = validate(model, template, val, options.seed + VAL_SEED_OFFSET)
    report("validate", 1, 1, figures)
    source = "procedural vehicles (lift3d.templates.vehicles), rendered by lift3d.synth.render"
    data_card: dict[str, Any] = {"train_samples": options.samples, "val_samples": options.val_samples,
                                 "source": source}
    if assets:
        data_card["source"] = source + f", and {len(assets)} registered user assets (lift3d.learn.assets)"
        data_card["asset_samples"] = int((data["asset"] >= 0).sum()) if "asset" in data else 0
        data_card["assets"] = [shape.summary() for shape in assets]
    card = {"options": asdict(options), "data": data_card,
            "seed": options.seed, "steps": options.steps, "training_seconds": round(train_time, 1),
            "data_seconds": round(data_time, 1), "final_loss": {k: round(v, 5) for k, v in running.items()},
            "validation": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}}
    save_model(model, out, card)
    ckpt.unlink(missing_ok=True)
    return card


QUICK = TrainOptions(samples=256, val_samples=64, steps=60, batch=32, checkpoint_every=20)
"""``lift3d train --quick``: a tiny end-to-end run (minutes) that exercises every step."""


def run_training(out: Path, options: TrainOptions, cache_dir: Path | None, quiet: bool = False,
                 assets: Path | None = None, asset_preset: str = "fast") -> dict[str, Any]:
    """Train with a rich progress bar (loss and ETA) on stderr; returns the model card.

    ``assets``: a folder of the user's own vehicle files, registered first (cached under
    ``cache_dir/assets``) and mixed into the training data (see :mod:`lift3d.learn.assets`).
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..settings import load_settings
    from ..templates import load_template

    template = load_template(load_settings().template_path("car"))
    console = Console(stderr=True)
    columns = (TextColumn("{task.description:<16}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=console, disable=quiet or not console.is_terminal,
                  refresh_per_second=2) as bar:
        tasks: dict[str, int] = {}

        def report(phase: str, done: int, total: int, figures: dict[str, float]) -> None:
            if not console.is_terminal and not quiet and (done % 500 == 0 or done == total):
                # a log file gets one line per 500 steps or samples instead of a bar
                values = " ".join(f"{k} {v:.4g}" for k, v in figures.items() if isinstance(v, float))
                console.print(f"{phase} {done}/{total} {values}", highlight=False)
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total, info="")
            info = ""
            if phase == "train" and figures:
                info = "loss " + " ".join(f"{k} {v:.3f}" for k, v in figures.items())
            elif phase == "validate" and figures:
                info = " ".join(f"{k} {v:.3f}" for k, v in figures.items() if isinstance(v, float))
            bar.update(tasks[phase], completed=done, info=info)

        shapes = None
        if assets is not None:
            from .assets import find_assets, register_folder

            if console.is_terminal:  # the bar shows while the first asset registers
                report("assets", 0, len(find_assets(assets)), {})
            shapes = register_folder(assets, template, None if cache_dir is None else Path(cache_dir) / "assets",
                                     asset_preset, progress=lambda done, total, name: report("assets", done, total, {}))
        return train(template, out, options, cache_dir, report, assets=shapes)
