"""Batch reconstruction: every image in a folder, in parallel, into one shared stage.

``lift3d batch FOLDER --stage STAGE.usda [--workers N] [--engine local|ray] [--objects all|largest|N]``

* **What is reconstructed.** Files under ``FOLDER`` (recursively) whose
  extension is ``.png``, ``.jpg``, ``.jpeg`` or ``.webp`` (any case), one
  reconstruction per image. Hidden files and folders (``.name``) and the output
  folder itself are not searched. Other files are *ignored*: they are listed in
  the summary (``ignored``) but are neither failures nor manifest entries. A
  file with an image extension that cannot be decoded, or shows no separable
  object, is a *failure* with the reconstructor's reason; one image's failure
  never stops the batch.
* **Several objects.** A photo showing several separate objects gives one
  asset per object, as ``lift3d reconstruct --objects`` does (``objects``:
  ``all``, the default, ``largest`` or the N largest; see
  :mod:`lift3d.pipeline.objects`).
* **Where results go.** Each image's largest object becomes the asset folder
  ``OUT/<stem>_<digest>/`` (``OUT`` defaults to ``<stage folder>/assets``),
  where ``digest`` is the first 10 hex digits of the SHA-256 of the settings
  fingerprint (lift3d version, category, the resolved preset and output
  settings, the objects choice) and the image bytes, so the name is
  deterministic and unique; its other objects become ``<stem>_<digest>_2``,
  ``_3``, ... Workers write only their asset folders (atomically); the driver
  alone adds finished assets to its writer layer of the shared stage, as
  results arrive, each under its own prim (``<stem>``, ``<stem>_2``, ...).
* **Resuming.** ``<stage folder>/batch_manifest.jsonl`` gets one JSON line per
  image and run: ``time, image, digest, status (ok|failed|skipped), reason,
  asset, prim, assets, prims, seconds, retry, writer`` (``asset`` and ``prim``:
  the largest object's; ``assets`` and ``prims``: every object's, largest
  first); each line is one ``O_APPEND`` write followed by ``fsync``. An image
  is ``ok`` once all its objects are written and added, so its line comes
  last. An image whose digest has an ``ok`` line and whose assets all still
  exist is skipped, so re-running an interrupted batch only does the rest. An
  asset folder that exists without a manifest line (the run was killed between
  the two) is complete, because asset folders are swapped in atomically: it is
  adopted and skipped too, when the objects its provenance says were
  reconstructed with it are all there (otherwise the image is done again).
  An image that failed because of its input (corrupt, no separable object:
  same bytes and settings fail the same way) is not retried: it is reported as
  failed again, with the earlier reason and no work; crashes and internal
  errors are retried. Identical images with the same stem are done once. A
  failure's line carries ``retry`` (whether a re-run tries it again) and no
  ``assets``/``prims``; a line for an image run again after such a failure
  carries ``"retried": true``. ``ok`` and ``skipped`` lines carry no ``retry``.
* **Engines.** See :mod:`lift3d.batch_engines`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .errors import InputError
from .naming import sanitize_name
from .usd.shared_stage import AddItem, SharedStage, utc_now

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
MANIFEST_NAME = "batch_manifest.jsonl"
_NAME_DIGEST_LEN = 10
_MAX_STEM = 64 - 1 - _NAME_DIGEST_LEN - 3
"""Longest image stem in an asset name: room for ``_<digest>`` and an object suffix up to ``_99``."""
_FAILED_BEFORE = "failed before, not retried: "


@dataclass(frozen=True)
class ImageTask:
    """One image to reconstruct (plain data: it travels to worker processes and Ray nodes).

    Attributes:
        image: absolute path of the image file.
        digest: SHA-256 hex of the settings fingerprint and the image bytes.
        name: asset (folder) name, ``<sanitised stem>_<digest[:10]>``.
        out_dir: absolute folder receiving the asset folder.
        category, preset: reconstruction settings.
        objects: which objects of the photo become assets (``all``, ``largest`` or a count).
        version: the driver's lift3d version (a worker running another version refuses the task).
    """

    image: str
    digest: str
    name: str
    out_dir: str
    category: str
    preset: str
    objects: str | int = "all"
    version: str = __version__


@dataclass
class TaskOutcome:
    """What one worker reported: the asset layers on success (one per object, largest first), else the reason.

    ``retry`` is False when the failure is the input's fault (same bytes and
    settings fail the same way), True for crashes and internal errors.
    """

    assets: list[str]
    reason: str
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    retry: bool = True

    @property
    def asset(self) -> str | None:
        """The largest object's asset layer, ``None`` when the task failed."""
        return self.assets[0] if self.assets else None


@dataclass
class ImageRecord:
    """One image's outcome in a batch (a manifest line).

    Attributes:
        image: the image file (absolute path).
        digest: see :class:`ImageTask`.
        status: ``ok``, ``failed`` or ``skipped``.
        reason: why it failed or was skipped (``""`` when ok).
        asset: the (largest object's) asset layer, ``None`` when it failed.
        prim: its prim path in the shared stage, ``None`` when it failed.
        assets: every object's asset layer, largest first (empty when it failed; left out of its JSON).
        prims: their prim paths, in the same order (empty when it failed or was not added; left out
            of a failure's JSON).
        seconds: reconstruction wall time in the worker (0 when not run).
        retry: for a failure, whether a re-run tries the image again (False for bad input);
            meaningless for other statuses, so left out of their JSON.
        retried: this run tried the image again after an earlier failure that was worth retrying.
    """

    image: str
    digest: str
    status: str
    reason: str = ""
    asset: str | None = None
    prim: str | None = None
    seconds: float = 0.0
    retry: bool = True
    retried: bool = False
    assets: list[str] = field(default_factory=list)
    prims: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.status != "failed":
            del out["retry"]
        else:
            del out["assets"], out["prims"]
        if not self.retried:
            del out["retried"]
        return out


@dataclass
class BatchSummary:
    """The result of :func:`run_batch`: one record per image plus the ignored non-image files."""

    folder: str
    stage: str
    writer: str
    out_dir: str
    manifest: str
    engine: str
    workers: int
    records: list[ImageRecord]
    ignored: list[str]
    seconds: float

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)

    @property
    def ok(self) -> int:
        return self._count("ok")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def failed_before(self) -> int:
        """Failures settled by an earlier run (bad input), reported again without new work."""
        return sum(r.status == "failed" and r.reason.startswith(_FAILED_BEFORE) for r in self.records)

    @property
    def retried(self) -> int:
        """Images run again because an earlier run failed on them for a reason worth retrying."""
        return sum(r.retried for r in self.records)

    @property
    def assets(self) -> int:
        """Distinct assets the stage holds from this batch's images (several for a photo of several objects)."""
        return len({a for r in self.records if r.status != "failed" for a in r.assets})

    @property
    def images_per_minute(self) -> float:
        """Reconstructed (``ok``) images per minute of batch wall time, start-up included."""
        return 60.0 * self.ok / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` summary of ``lift3d batch``."""
        out = {k: v for k, v in asdict(self).items() if k != "records"}
        out.update(total=len(self.records), ok=self.ok, failed=self.failed, skipped=self.skipped,
                   failed_before=self.failed_before, retried=self.retried, assets=self.assets,
                   images_per_minute=round(self.images_per_minute, 3), records=[r.to_json() for r in self.records])
        return out

    def format(self) -> str:
        """A few human-readable lines: counts, rate, and every failure with its reason."""
        failed = f"{self.failed} failed"
        if self.failed_before:
            failed += f" ({self.failed_before} of them in an earlier run, not retried)"
        retried = f", {self.retried} retried" if self.retried else ""
        lines = [f"{_plural(len(self.records), 'image')}: {self.ok} ok, {failed}, {self.skipped} skipped{retried}; "
                 f"{_plural(self.assets, 'asset')} in the stage; "
                 f"{_plural(len(self.ignored), 'other file')} ignored; {self.seconds:.1f} s "
                 f"({self.images_per_minute:.2f} images/min, {self.engine} engine, {_plural(self.workers, 'worker')})"]
        lines += [f"failed: {r.image}: {r.reason}" for r in self.records if r.status == "failed"]
        lines.append(f"stage: {self.stage} (writer {self.writer}); manifest: {self.manifest}")
        return "\n".join(lines)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def scan_folder(folder: Path, exclude: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Images and other files under ``folder``, recursively, each sorted.

    Returns ``(images, ignored)``: files with an image extension (case-insensitive)
    and every other file. Hidden entries and anything under ``exclude`` are left out.
    """
    images: list[Path] = []
    ignored: list[Path] = []
    exclude = exclude.resolve() if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (exclude is None or (here / d).resolve() != exclude))
        for fname in sorted(filenames):
            if fname.startswith("."):
                continue
            path = here / fname
            (images if path.suffix.lower() in IMAGE_EXTENSIONS else ignored).append(path)
    return sorted(images), sorted(ignored)


def settings_fingerprint(category: str, preset: str, objects: str | int = "all") -> str:
    """JSON of everything that changes a reconstruction besides the image: version, category, preset, output, objects."""
    from .settings import load_settings

    settings = load_settings()
    return json.dumps({"version": __version__, "category": category,
                       "category_settings": settings.category(category).model_dump(),
                       "preset": preset, "preset_settings": settings.preset(preset).model_dump(),
                       "output": settings.output.model_dump(exclude={"folder"}), "objects": objects}, sort_keys=True)


def image_digest(data: bytes, fingerprint: str) -> str:
    """SHA-256 hex of the settings ``fingerprint`` and the image bytes ``data``."""
    return hashlib.sha256(fingerprint.encode("utf-8") + b"\0" + data).hexdigest()


def reconstruct_one(task: ImageTask) -> TaskOutcome:
    """Reconstruct one image into ``task.out_dir/task.name`` (and ``task.name_2``, ... for its other objects).

    Runs in a worker process or a Ray task.

    Never raises for a bad image: the reason goes into the outcome. Nothing is
    added to any stage here; that is the driver's job.
    """
    from .api import ReconstructRequest, reconstruct
    from .errors import Lift3dError

    start = time.perf_counter()
    if task.version != __version__:
        return TaskOutcome([], f"this worker runs lift3d {__version__} but the driver runs {task.version}; "
                               "install the same version on every node", 0.0)
    try:
        result = reconstruct(ReconstructRequest(images=[Path(task.image)], category=task.category,
                                                preset=task.preset, name=task.name, out_dir=Path(task.out_dir),
                                                objects=task.objects))
    except InputError as exc:
        return TaskOutcome([], str(exc), time.perf_counter() - start, retry=False)
    except Lift3dError as exc:
        return TaskOutcome([], str(exc), time.perf_counter() - start)
    except Exception as exc:  # a bug for this image must not stop the batch; keep its type for the report
        return TaskOutcome([], f"internal error: {type(exc).__name__}: {exc}", time.perf_counter() - start)
    return TaskOutcome([str(Path(r.asset_path).absolute()) for r in result.all_results()], "",
                       time.perf_counter() - start, dict(result.metrics))


class Manifest:
    """The append-only JSON-lines log of batch outcomes (one line per image and run)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def settled(self) -> dict[str, dict[str, Any]]:
        """digest -> its latest line, for digests whose latest line is ``ok`` or a failure not worth retrying.

        Unreadable lines (e.g. a write cut short by a full disk) are ignored.
        """
        return {d: e for d, e in self._latest().items()
                if e.get("status") == "ok" or (e.get("status") == "failed" and not e.get("retry"))}

    def retryable(self) -> set[str]:
        """Digests whose latest line is a failure worth retrying (a crash or an internal error)."""
        return {d for d, e in self._latest().items() if e.get("status") == "failed" and e.get("retry")}

    def _latest(self) -> dict[str, dict[str, Any]]:
        """digest -> its latest ``ok`` or ``failed`` line (``skipped`` lines say nothing new)."""
        out: dict[str, dict[str, Any]] = {}
        try:
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if not isinstance(entry, dict) or not entry.get("digest") or entry.get("status") == "skipped":
                        continue
                    if entry.get("status") in ("ok", "failed"):
                        out[entry["digest"]] = entry
        except FileNotFoundError:
            pass
        return out

    def append(self, record: ImageRecord, writer: str) -> None:
        """Append ``record`` as one line with a single ``O_APPEND`` write, then ``fsync``.

        If the file does not end with a newline (a write cut short), the line
        starts with one, so the cut line cannot swallow this one.
        """
        entry = {"time": utc_now(), **record.to_json(), "writer": writer}
        data = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def _crashed(task: ImageTask, reason: str) -> TaskOutcome:
    return TaskOutcome([], reason, 0.0)


def object_assets(first: Path) -> list[Path]:
    """The asset layers a reconstruction wrote with ``first``, its largest object's: ``first``, then ``NAME_2``,
    ... up to the count of objects reconstructed that ``first``'s provenance records (just ``first`` for a
    photo of one object, or when the provenance cannot be read)."""
    from .usd.reader import from_custom_data
    from .usd.stage_refs import open_layer, recorded_lift3d

    try:
        provenance = from_custom_data(recorded_lift3d(open_layer(first, "", anonymous=True)))
    except InputError:
        provenance = {}
    masks = (provenance.get("signals") or {}).get("masks") if isinstance(provenance, dict) else None
    record = masks[0] if isinstance(masks, list) and masks and isinstance(masks[0], dict) else {}
    count = int(record.get("reconstructed", 1)) if record.get("object") == 1 else 1
    name = first.parent.name
    return [first] + [first.parent.parent / (other := sanitize_name(f"{name}_{k}")) / f"{other}{first.suffix}"
                      for k in range(2, count + 1)]


def _prim_wish(image: Path, name: str, asset: str | Path) -> str:
    """The prim name wish of one object's asset: the image's stem, plus the object suffix (``_2``) of its asset."""
    folder = Path(asset).parent.name
    return image.stem + (folder[len(name):] if folder.startswith(name) else "")


def _source_label(image: Path, stage_dir: Path) -> str:
    """The image path recorded in the stage: relative to the stage folder when inside it, else absolute."""
    try:
        return image.relative_to(stage_dir).as_posix()
    except ValueError:
        return str(image)


class _Progress:
    """A rich progress bar on stderr over the images to reconstruct (count, images/min, failures, ETA).

    Images settled before the run starts (skipped, or failed before) are counts
    outside the bar, so they do not distort the rate and the ETA. Nothing when ``quiet``.
    """

    def __init__(self, total: int, skipped: int, failed_before: int, quiet: bool) -> None:
        self._bar = None
        self._start = time.monotonic()
        if quiet:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self._bar = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[rate]} img/min"), TextColumn("{task.fields[failed]} failed"),
                             *self._settled_column(skipped, failed_before), TimeElapsedColumn(), TextColumn("ETA"),
                             TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self._task = self._bar.add_task("batch", total=total, rate="-", failed=0)
        self._bar.start()

    @staticmethod
    def _settled_column(skipped: int, failed_before: int) -> list[Any]:
        from rich.progress import TextColumn

        parts = ([f"{skipped} skipped"] if skipped else []) + ([f"{failed_before} failed before"] if failed_before else [])
        return [TextColumn(", ".join(parts))] if parts else []

    def advance(self, done: int, failed: int) -> None:
        """``done`` of the images to reconstruct have finished, ``failed`` of them failed."""
        if self._bar is None:
            return
        minutes = (time.monotonic() - self._start) / 60.0
        self._bar.update(self._task, completed=done, failed=failed,
                         rate=f"{done / minutes:.1f}" if minutes > 0 else "-")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _plan(images: list[Path], fingerprint: str, out_dir: Path, fmt: str, category: str, preset: str,
          objects: str | int, done: dict[str, dict[str, Any]]
          ) -> Iterator[tuple[Path, ImageTask | None, ImageRecord | None, list[Path]]]:
    """Per image: ``(image, task to run, record if not run, existing assets to (re)add to the stage)``."""
    names: dict[str, Path] = {}
    for image in images:
        try:
            data = image.read_bytes()
        except OSError as exc:
            yield image, None, ImageRecord(str(image), "", "failed", f"cannot read {image}: {exc.strerror or exc}"), []
            continue
        digest = image_digest(data, fingerprint)
        # The stem is cut so that the name, and the other objects' ``_N`` names, stay within sanitize_name's 64.
        name = f"{sanitize_name(image.name, fallback='image')[:_MAX_STEM]}_{digest[:_NAME_DIGEST_LEN]}"
        asset = out_dir / name / f"{name}.{fmt}"
        if name in names:
            yield image, None, ImageRecord(str(image), digest, "skipped", f"same image and settings as {names[name]}",
                                           str(asset)), []
            continue
        names[name] = image
        before = done.get(digest, {})
        if before.get("status") == "failed" and not asset.is_file():
            yield image, None, ImageRecord(str(image), digest, "failed", f"{_FAILED_BEFORE}{before['reason']}",
                                           retry=False), []
            continue
        if asset.is_file():
            if before.get("status") == "ok":
                recorded = before.get("assets") or [before.get("asset") or asset]
                assets = [out_dir / Path(a).parent.name / Path(a).name for a in recorded]
                reason = "already reconstructed with the same settings"
            else:
                assets = object_assets(asset)
                reason = "asset already present (an earlier run stopped before logging it)"
            if all(a.is_file() for a in assets):  # else some object is missing: the image is done again
                yield image, None, ImageRecord(str(image), digest, "skipped", reason, str(asset),
                                               assets=[str(a) for a in assets]), assets
                continue
        yield image, ImageTask(str(image), digest, name, str(out_dir), category, preset, objects), None, []


def run_batch(folder: Path | str, stage: Path | str, workers: int = 1, engine: str = "local",
              ray_address: str | None = None, category: str = "car", preset: str = "fast",
              out_dir: Path | str | None = None, writer: str | None = None, quiet: bool = False,
              objects: str | int = "all") -> BatchSummary:
    """Reconstruct every image under ``folder`` and add each asset to the shared stage ``stage``.

    Args:
        folder: folder searched recursively for PNG/JPEG/WebP files.
        stage: shared stage root layer (``.usda``); created if missing.
        workers: parallel worker processes (local) or CPUs of a local Ray instance.
        engine: ``local`` (process pool) or ``ray``.
        ray_address: Ray cluster to join (default ``$RAY_ADDRESS``, else a local instance).
        category, preset: reconstruction settings for every image.
        out_dir: folder for the asset folders (default ``<stage folder>/assets``).
        writer: this driver's writer layer name (default: settings, else ``user@host``).
        quiet: no progress bar.
        objects: which objects of a photo showing several become assets: ``all`` (each its own asset
            and prim), ``largest``, or a count N (the N largest); ``"2"`` counts as 2.

    Returns:
        The summary; ``summary.failed`` counts images that failed (the CLI exits 1 if any).
    """
    from .preflight import object_choice
    from .settings import load_settings

    start = time.monotonic()
    objects = object_choice(objects)
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"batch folder {folder} is not a folder")
    if workers < 1:
        raise InputError(f"workers must be at least 1, not {workers}")
    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine {engine!r}; choose local or ray")
    stage_dir = Path(stage).absolute().parent
    out = Path(out_dir).absolute() if out_dir is not None else stage_dir / "assets"
    images, ignored = scan_folder(folder, exclude=out)
    if not images:  # checked before the stage is touched, so a refused batch creates no stage and no lock
        raise InputError(f"no PNG, JPEG or WebP images found in {folder}")
    shared = SharedStage(stage, writer=writer)
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(stage_dir / MANIFEST_NAME)
    fingerprint = settings_fingerprint(category, preset, objects)
    fmt = load_settings().output.format

    records: dict[Path, ImageRecord] = {}
    tasks: list[ImageTask] = []
    existing: list[tuple[Path, Path]] = []  # (image, asset) of every object of the images already done
    retryable = manifest.retryable()
    for image, task, record, assets in _plan([p.absolute() for p in images], fingerprint, out, fmt, category,
                                             preset, objects, manifest.settled()):
        if task is not None:
            tasks.append(task)
        else:
            records[image] = record
            existing += [(image, asset) for asset in assets]
    if existing:  # make sure finished assets are in this writer's layer (a no-op when they already are)
        prims = shared.add_many([AddItem(asset, name=_prim_wish(image, Path(records[image].asset).parent.name, asset),
                                         source=_source_label(image, stage_dir))
                                 for image, asset in existing])
        for (image, _), prim in zip(existing, prims):
            records[image].prims.append(prim)
            records[image].prim = records[image].prims[0]
    for record in records.values():
        manifest.append(record, shared.writer)

    progress = _Progress(len(tasks), sum(r.status == "skipped" for r in records.values()),
                         sum(r.status == "failed" for r in records.values()), quiet)
    done = failed = 0
    runner = None
    try:
        if tasks:
            from .batch_engines import make_engine

            runner = make_engine(engine, workers, ray_address, quiet=quiet, preload=("lift3d.pipeline.run",))
            for task, outcome in runner.run(reconstruct_one, tasks, _crashed):
                image = Path(task.image)
                record = ImageRecord(task.image, task.digest, "failed", outcome.reason, seconds=outcome.seconds,
                                     retry=outcome.retry, retried=task.digest in retryable)
                if outcome.assets:
                    try:
                        source = _source_label(image, stage_dir)
                        prims = shared.add_many([AddItem(asset, name=_prim_wish(image, task.name, asset), source=source)
                                                 for asset in outcome.assets])
                        record.status, record.asset, record.prim = "ok", outcome.assets[0], prims[0]
                        record.assets, record.prims = list(outcome.assets), prims
                    except InputError as exc:
                        record.reason = f"reconstructed, but adding it to the stage failed: {exc}"
                manifest.append(record, shared.writer)
                records[image] = record
                done, failed = done + 1, failed + (record.status == "failed")
                progress.advance(done, failed)
    finally:
        if runner is not None:
            runner.close()
        progress.close()
    by_digest = {r.digest: r for r in records.values() if r.assets}
    for record in records.values():  # an image that repeats another lists that one's assets
        if record.status == "skipped" and not record.assets and record.digest in by_digest:
            record.asset, record.assets = by_digest[record.digest].asset, list(by_digest[record.digest].assets)
    return BatchSummary(folder=str(folder), stage=str(shared.root), writer=shared.writer, out_dir=str(out),
                        manifest=str(manifest.path), engine=engine, workers=workers,
                        records=[records[p.absolute()] for p in images], ignored=[str(p) for p in ignored],
                        seconds=time.monotonic() - start)
