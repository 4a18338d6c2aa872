"""The ``lift3d`` command line (``docs/DESIGN.md``, section 4).

Exit status: 0 on success; 2 with one ``lift3d: error: ...`` line on stderr for
bad input and for bad usage (a missing argument, an unknown option); 1 when a batch finished with some
failures; 130 when interrupted. Heavy modules (torch, warp, pxr) are imported
inside the commands, so ``lift3d --help`` is instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli_help import ReadableTyper
from .errors import InputError

app = ReadableTyper(
    name="lift3d",
    help="Photographs to textured, part-segmented 3D assets in OpenUSD.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stage_app = ReadableTyper(help="Shared USD stage: one layer per writer, reconstructions under /World/Reconstructions.",
                        no_args_is_help=True)
app.add_typer(stage_app, name="stage")

CATEGORIES = ("car", "generic")
PRESETS = ("fast", "balanced", "best")


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise InputError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value


def _echo_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=None, default=str))


def _note_sanitised(name: str | None, what: str = "name") -> None:
    """One stderr line when ``--name`` is changed to a safe USD name (nothing when it is used as given)."""
    from .naming import sanitize_name

    if name is not None and sanitize_name(name) != name:
        typer.echo(f"lift3d: note: {what} {name[:80]!r}{'...' if len(name) > 80 else ''} is used as "
                   f"{sanitize_name(name)!r} (names keep to letters, digits and _, at most 64 characters)", err=True)


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"lift3d {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Photographs to textured, part-segmented 3D assets in OpenUSD."""


@app.command()
def reconstruct(
    images: Annotated[list[Path], typer.Argument(help="Image file(s): PNG, JPEG or WebP.", show_default=False)],
    views: Annotated[Optional[Path], typer.Option(help="NeRF-style transforms.json with the images' cameras.")] = None,
    mask: Annotated[Optional[Path], typer.Option(help="Object mask for a single image (white = object).")] = None,
    category: Annotated[str, typer.Option(help="Object category: car or generic.")] = "car",
    preset: Annotated[str, typer.Option(help="Quality preset: fast, balanced or best.")] = "balanced",
    name: Annotated[Optional[str], typer.Option(help="Asset name (default: from the first image).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder for the asset folder.")] = None,
    stage: Annotated[Optional[Path], typer.Option(help="USD stage (.usda) to add the reconstruction to.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="User settings file (TOML).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object; no progress output.")] = False,
    init: Annotated[Optional[str], typer.Option(help="Single car photo: learned (predictor), search (grid "
                                                     "search) or both (default: the predictor.init setting).")]
    = None,
    preview: Annotated[bool, typer.Option("--preview", help="Also write the contact sheet (preview.png in the asset folder).")] = False,
    objects: Annotated[str, typer.Option(metavar="all|largest|N", help="Single photo with several objects: "
                                         "one asset each (all), only the largest, or the N largest.")] = "all",
) -> None:
    """Reconstruct a textured, part-labelled 3D asset from one or more photos."""
    from .api import ReconstructRequest
    from .preflight import object_choice
    from .progress import run_with_progress

    _note_sanitised(name)
    request = ReconstructRequest(images=images, views=views, mask=mask,
                                 category=_choice(category, CATEGORIES, "category"),
                                 preset=_choice(preset, PRESETS, "preset"),
                                 name=name, out_dir=out, stage=stage, config=config,
                                 init=None if init is None else _choice(init, ("learned", "search", "both"), "init"),
                                 objects=object_choice(objects))
    result = run_with_progress(request, quiet=as_json)
    sheets = []
    if preview:
        from .preview import write_preview

        sheets = [write_preview(r.asset_path, photo=images[0]) for r in result.all_results()]
    if as_json:
        out = result.to_json()
        if sheets:
            out["preview"] = str(sheets[0])
            for record, sheet in zip(out.get("other_objects", []), sheets[1:]):
                record["preview"] = str(sheet)
        _echo_json(out)
    else:
        for r in result.all_results():
            iou = r.metrics.get("input_view_iou")
            typer.echo(f"{r.asset_path}" + (f"  (input-view IoU {iou:.3f})" if iou is not None else "")
                       + (f"  -> {r.prim_path}" if r.prim_path else ""))
        for sheet in sheets:
            typer.echo(f"preview: {sheet}")
    several = len(result.all_results()) > 1
    for r in result.all_results():
        for text in r.warnings:
            typer.echo(f"lift3d: warning: {r.name + ': ' if several else ''}{text}", err=True)


@app.command()
def batch(
    folder: Annotated[Path, typer.Argument(help="Folder of images (searched recursively).", show_default=False)],
    stage: Annotated[Path, typer.Option(help="Shared stage root layer (.usda); created if missing.")],
    workers: Annotated[int, typer.Option(min=1, max=256, help="Parallel workers.")] = 1,
    engine: Annotated[str, typer.Option(help="local (process pool) or ray.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: $RAY_ADDRESS or a local cluster).")] = None,
    category: Annotated[str, typer.Option(help="Object category: car or generic.")] = "car",
    preset: Annotated[str, typer.Option(help="Quality preset: fast, balanced or best.")] = "fast",
    out: Annotated[Optional[Path], typer.Option(help="Folder for the asset folders (default: beside the stage).")] = None,
    writer: Annotated[Optional[str], typer.Option(help="Writer layer name (default: user@host).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    objects: Annotated[str, typer.Option(metavar="all|largest|N", help="Photos with several objects: "
                                         "one asset each (all), only the largest, or the N largest.")] = "all",
) -> None:
    """Reconstruct every image in FOLDER into its own asset (one per object) and add them all to a shared stage."""
    from .batch import run_batch

    _choice(engine, ("local", "ray"), "engine")
    summary = run_batch(folder, stage, workers=workers, engine=engine, ray_address=ray_address,
                        category=_choice(category, CATEGORIES, "category"),
                        preset=_choice(preset, PRESETS, "preset"), out_dir=out, writer=writer, quiet=as_json,
                        objects=objects)
    if as_json:
        _echo_json(summary.to_json())
    else:
        typer.echo(summary.format())
    raise typer.Exit(0 if summary.failed == 0 else 1)


@stage_app.command("init")
def stage_init(
    stage: Annotated[Path, typer.Argument(help="Root layer to create (.usda).", show_default=False)],
    from_stage: Annotated[Optional[Path], typer.Option(
        "--from", help="Plain stage whose reconstructions the new shared stage takes over (the file is left as it is).")] = None,
    writer: Annotated[Optional[str], typer.Option(help="Writer layer for --from (default: user@host).")] = None,
) -> None:
    """Create a shared stage root layer (Y up, metres, /World), optionally from a plain stage's reconstructions."""
    from .usd.shared_stage import AddItem, SharedStage, init_shared_stage, list_plain_stage

    if from_stage is None:
        typer.echo(init_shared_stage(stage))
        return
    entries = list_plain_stage(from_stage)
    missing = [e.prim_path for e in entries if not e.asset or not Path(e.asset).is_file()]
    if missing:
        raise InputError(f"{from_stage}: the asset of {missing[0]} cannot be found; nothing was converted")
    shared = SharedStage(stage, writer=writer)
    shared.add_many([AddItem(e.asset, name=e.prim_path.rsplit("/", 1)[-1], source=e.source) for e in entries])
    typer.echo(f"{shared.root}  ({len(entries)} reconstructions from {from_stage}, writer {shared.writer})")


@stage_app.command("add")
def stage_add(
    stage: Annotated[Path, typer.Argument(help="Shared stage root layer.", show_default=False)],
    asset: Annotated[Path, typer.Argument(help="Asset layer (NAME/NAME.usda).", show_default=False)],
    writer: Annotated[Optional[str], typer.Option(help="Writer layer name (default: user@host).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Prim name (default: from the asset).")] = None,
) -> None:
    """Reference an asset under /World/Reconstructions in this writer's layer."""
    from .usd.shared_stage import SharedStage

    typer.echo(SharedStage(stage, writer=writer).add(asset, name=name))


@stage_app.command("list")
def stage_list(
    stage: Annotated[Path, typer.Argument(help="Shared stage root layer.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List every reconstruction with its writer, source image and time (a plain stage's too)."""
    from .usd.shared_stage import SharedStage, is_shared_stage, list_plain_stage

    if stage.is_file() and not is_shared_stage(stage):
        entries = list_plain_stage(stage)
        typer.echo(f"lift3d: note: {stage} is a plain stage: its reconstructions are references in its one layer "
                   "(as `reconstruct --stage` writes it), with no writer or time; a shared stage keeps one sublayer "
                   f"per writer so several can add at once. Convert it with `lift3d stage init NEW.usda --from {stage}`",
                   err=True)
    else:
        entries = SharedStage(stage, create=False).list()
    for entry in entries:
        if as_json:
            _echo_json(entry.to_json())
        else:
            typer.echo(f"{entry.prim_path}\t{entry.writer}\t{entry.source}\t{entry.time}")


@stage_app.command("watch")
def stage_watch(
    stage: Annotated[Path, typer.Argument(help="Shared stage root layer.", show_default=False)],
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between checks.")] = 1.0,
    duration: Annotated[Optional[float], typer.Option(min=0.0, help="Stop after this many seconds.")] = None,
) -> None:
    """Reload changed layers and print what appeared, changed or vanished."""
    from .usd.shared_stage import SharedStage

    for event in SharedStage(stage, create=False).watch(interval=interval, duration=duration):
        typer.echo(event, nl=True)
        sys.stdout.flush()


@app.command()
def info(
    asset: Annotated[Path, typer.Argument(help="Asset layer (NAME/NAME.usda) or asset folder.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarise an asset: prims, parts, materials, cameras, triangle count."""
    from .usd.reader import format_summary, summarize_asset

    summary = summarize_asset(asset)
    if as_json:
        _echo_json(summary)
    else:
        typer.echo(format_summary(summary))


@app.command()
def preview(
    path: Annotated[Path, typer.Argument(help="Asset (NAME/NAME.usda or its folder) or stage (.usda).",
                                         metavar="ASSET|STAGE", show_default=False)],
    out: Annotated[Optional[Path], typer.Option(help="PNG to write (default: preview.png in the asset folder, "
                                                     "STAGE.preview.png beside a stage).")] = None,
    photo: Annotated[Optional[Path], typer.Option(help="The input photo (default: found from the asset's provenance).")] = None,
) -> None:
    """Draw a labelled contact sheet: photo, asset over the photo, parts by label with a legend, four orbit views."""
    from .preview import write_preview

    typer.echo(write_preview(path, out, photo=photo))


@app.command()
def export(
    asset: Annotated[Path, typer.Argument(help="Asset layer (NAME/NAME.usda) or asset folder.", show_default=False)],
    fmt: Annotated[str, typer.Option("--format", help="glb, gltf or obj.")] = "glb",
    out: Annotated[Optional[Path], typer.Option(help="File to write (default: NAME.FORMAT in the asset folder).")] = None,
) -> None:
    """Export an asset to glTF 2.0 (GLB or embedded .gltf) or OBJ: one named mesh per part, PBR materials, metres, +Y up."""
    from .export import FORMATS, export_asset

    for written in export_asset(asset, _choice(fmt, FORMATS, "export format"), out):
        typer.echo(written)


@app.command()
def warmup(
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda or auto (default: the runtime.device setting).")]
    = None,
    config: Annotated[Optional[Path], typer.Option(help="User settings file (TOML).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per module.")] = False,
) -> None:
    """Compile and load every Warp kernel module now, so no reconstruction waits for a compiler."""
    if device is not None:
        _choice(device, ("cpu", "cuda", "auto"), "device")
    from .settings import load_settings

    runtime = load_settings(config).runtime
    from .kernels.launch import configure
    from .warmup import warmup as warm

    configure(threads=runtime.threads, device=runtime.device)

    def report(load) -> None:
        if as_json:
            _echo_json(load.to_json())
        else:
            what = "compiled" if load.compiled else "cached"
            typer.echo(f"{load.module:<16} {load.device:<8} {what:<9} {load.seconds:6.2f} s")

    warm(device, progress=report)


@app.command()
def train(
    out: Annotated[Optional[Path], typer.Option(help="Model file to write (.safetensors; its card goes beside it as "
                                                     ".json). Default: the bundled default model.")] = None,
    samples: Annotated[int, typer.Option(min=16, help="Procedural training renders.")] = 30000,
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 8000,
    batch_size: Annotated[int, typer.Option("--batch", min=2, help="Batch size.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the data, the batches and the initial weights.")] = 0,
    cache: Annotated[Optional[Path], typer.Option(help="Folder caching the rendered data "
                                                       "(default: ~/.cache/lift3d/synth).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A tiny run (about a minute) that checks every step.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model card as JSON; no progress output.")]
    = False,
    assets: Annotated[Optional[Path], typer.Option(help="Folder of your own vehicles (.usd/.usda/.usdc/.obj/.glb; "
                                                        "metres, +Y up, front +Z) added to the training shapes.")]
    = None,
    init_from: Annotated[Optional[Path], typer.Option(help="Start from this model's weights (fine-tuning).")]
    = None,
) -> None:
    """Train the vehicle predictor on procedurally generated vehicles (resumable; Ctrl-C keeps a checkpoint)."""
    from dataclasses import replace

    if out is not None and out.suffix != ".safetensors":
        raise InputError(f"model file {out} must end in .safetensors")
    from .learn.model import default_model_path
    from .learn.train import QUICK, TrainOptions, run_training

    options = replace(QUICK, seed=seed) if quick else TrainOptions(samples=samples, steps=steps, batch=batch_size,
                                                                  seed=seed)
    if init_from is not None:
        options = replace(options, init_from=str(init_from))
    from .preflight import check_writable_folder

    target = out or default_model_path()
    cache_dir = cache or Path.home() / ".cache" / "lift3d" / "synth"
    check_writable_folder(target.parent, "model folder")  # before an hour of training, not after it
    check_writable_folder(cache_dir, "cache folder")
    card = run_training(target, options, cache_dir, quiet=as_json, assets=assets)
    if as_json:
        _echo_json({"model": str(target), **card})
    else:
        v = card["validation"]
        typer.echo(f"{target}  (front/back {v['front_back_accuracy']:.3f}, median yaw error "
                   f"{v['median_yaw_error_deg']:.1f} deg, body type {v['body_type_accuracy']:.3f}, "
                   f"silhouette IoU {v['silhouette_iou']:.3f})")


def _usage_error(exc: typer.TyperException) -> int:
    """Print a usage error (Click's, as vendored by Typer) as one ``lift3d: error:`` line; returns its status.

    A bare group (``lift3d``, ``lift3d stage``) still prints its help, as before.
    """
    ctx = getattr(exc, "ctx", None)
    message = exc.format_message()
    if type(exc).__name__ == "NoArgsIsHelpError":  # Typer has printed the help already (rich) or it is `message`
        if message:
            typer.echo(message, err=True)
    else:
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"lift3d: error: {' '.join(message.split())}{hint}", err=True)
    return int(getattr(exc, "exit_code", 2))


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    try:
        code = app(args=argv, prog_name="lift3d", standalone_mode=False)
    except InputError as exc:
        typer.echo(f"lift3d: error: {exc}", err=True)
        return 2
    except typer.TyperException as exc:
        return _usage_error(exc)
    except typer.Abort:
        typer.echo("lift3d: aborted", err=True)
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    if code == 130:  # Ctrl-C (Typer turns a KeyboardInterrupt in a command into exit status 130)
        typer.echo("lift3d: interrupted", err=True)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
