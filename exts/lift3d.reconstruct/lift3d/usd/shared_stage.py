"""A USD stage that several people or processes add reconstructions to at once.

Layout (see ``docs/COLLABORATION.md``)::

    stage.usda                 root layer: upAxis Y, metersPerUnit 1, defaultPrim /World,
                               customLayerData {lift3d: {sharedStage: true}}, and one
                               sublayer per writer; it defines /World/Reconstructions
    stage.usda.lock            lock file guarding the root's subLayers list
    writers/<writer>.usda      one writer's layer: its reconstructions only
    writers/<writer>.usda.lock lock file guarding that layer

Rules that make concurrent use safe without a server:

* The only edit ever made to the root is appending a writer's sublayer entry;
  it happens under an exclusive lock on ``<root>.lock``, after re-reading the
  root from disk, and is saved atomically (temp file + ``os.replace``), so
  writers that join at the same time never drop each other's entry.
* A writer edits only its own layer, under its own lock, re-reading it from
  disk first and saving it atomically; a ``kill -9`` in the middle of a save
  leaves the previous complete layer in place.
* Each reconstruction is a ``def Xform`` at
  ``/World/Reconstructions/<writer>__<asset>_<digest>`` that references the
  asset layer (path relative to the writer layer), made by
  :func:`lift3d.usd.stage_refs.add_reference` exactly as the Kit command makes
  it. The writer name is part of the prim name and cannot contain ``__``, so
  two writers never author the same prim; the digest (of the asset layer's
  bytes) keeps re-reconstructions of the same photo apart. ``customData``
  records ``lift3d:writer``, ``lift3d:source`` (the photo) and ``lift3d:time``
  (UTC, ISO 8601).
* A writer's layer is on disk before its entry appears in the root, so a
  reader never meets a sublayer that does not exist.

Edits work on the layer text through anonymous ``Sdf`` layers, never through
the process-wide layer registry, so a stage open in the same process (for
:meth:`SharedStage.watch`) is not modified behind USD's back; readers pick up
changes by reloading layers whose bytes changed (``Sdf.Layer.Reload(force=True)``,
because a plain reload trusts modification times).
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pxr import Sdf, Tf, Usd

from .. import __version__
from ..atomic import write_text_atomic
from ..digest import file_digest
from ..errors import InputError
from ..naming import sanitize_name
from . import stage_refs
from .stage_refs import LOCK_TIMEOUT_S, RECONSTRUCTIONS, WORLD, open_layer, utc_now

__all__ = ["LOCK_TIMEOUT_S", "RECONSTRUCTIONS", "WORLD", "WRITERS_FOLDER", "AddItem", "SharedStage", "StageEntry",
           "init_shared_stage", "is_shared_stage", "utc_now", "writer_name"]

WRITERS_FOLDER = "writers"


def writer_name(writer: str | None = None) -> str:
    """A writer's layer name: ``writer`` if given, else ``stage.writer`` from the settings, else ``user@host``.

    The result is a USD identifier without runs of underscores (``alice@ws-3.lan``
    becomes ``alice_ws_3_lan``), so ``__`` can separate it from the asset name in
    prim names.
    """
    if not writer:
        from ..settings import load_settings

        writer = load_settings().stage.writer
    if not writer:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "user"
        writer = f"{user}@{socket.gethostname()}"
    return re.sub(r"_+", "_", sanitize_name(writer, fallback="writer"))


def _read_layer(path: Path, what: str) -> Sdf.Layer:
    """A fresh, uncached, editable copy of the layer file ``path`` (not the shared registry's layer).

    Raises InputError naming ``what`` if the file is missing or not a USD layer.
    """
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    return open_layer(path, f"{what} {path} is not a valid USD layer", anonymous=True)


def _set_stage_metadata(layer: Sdf.Layer) -> None:
    layer.pseudoRoot.SetInfo("upAxis", "Y")
    layer.pseudoRoot.SetInfo("metersPerUnit", 1.0)
    layer.defaultPrim = WORLD.name


def _is_shared_root(layer: Sdf.Layer) -> bool:
    data = layer.customLayerData.get("lift3d")
    return isinstance(data, dict) and bool(data.get("sharedStage"))


def is_shared_stage(path: Path | str) -> bool:
    """Whether ``path`` is an existing lift3d shared stage root (reads only; InputError if it is not USD)."""
    path = Path(path)
    return path.is_file() and _is_shared_root(_read_layer(path.absolute(), "stage"))


def _root_text() -> str:
    layer = Sdf.Layer.CreateAnonymous(".usda")
    _set_stage_metadata(layer)
    layer.customLayerData = {"lift3d": {"sharedStage": True, "version": __version__,
                                        "writersFolder": WRITERS_FOLDER}}
    layer.documentation = ("lift3d shared stage: one sublayer per writer; reconstructions live under "
                           "/World/Reconstructions")
    stage_refs.ensure_scaffold(layer)
    return layer.ExportToString()


def _check_root_suffix(path: Path) -> None:
    if path.suffix.lower() != ".usda":
        raise InputError(f"a shared stage root must be a .usda file, not {path.name}")


def init_shared_stage(path: Path | str) -> str:
    """Create the shared stage root layer at ``path`` if it does not exist; return its path.

    An existing lift3d shared stage is left as it is; an existing file that is
    not one is an :class:`InputError` (it is never overwritten).
    """
    root = Path(path).absolute()
    _check_root_suffix(root)
    if root.exists() and not _is_shared_root(_read_layer(root, "stage")):  # refuse before taking (creating) the lock
        raise InputError(f"{root} exists and is not a lift3d shared stage; choose a new file")
    with stage_refs.locked(root):
        if root.exists():
            if not _is_shared_root(_read_layer(root, "stage")):
                raise InputError(f"{root} exists and is not a lift3d shared stage; choose a new file")
        else:
            write_text_atomic(root, _root_text())
    return str(root)


@dataclass
class StageEntry:
    """One reconstruction in the composed shared stage.

    Attributes:
        prim_path: ``/World/Reconstructions/<name>``.
        writer: the writer recorded in ``customData["lift3d"]["writer"]``.
        source: the source photo recorded when it was added (may be empty).
        time: when it was added, UTC ISO 8601.
        asset: absolute path of the referenced asset layer (``""`` if none).
        layer: file name of the layer that authored the prim, e.g. ``writers/alice.usda``.
    """

    prim_path: str
    writer: str
    source: str
    time: str
    asset: str
    layer: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the fields."""
        return asdict(self)


@dataclass
class AddItem:
    """One asset to add: its layer, an optional prim name (default: the asset's) and source photo."""

    asset: Path | str
    name: str | None = None
    source: str | None = None


class SharedStage:
    """A shared stage root and this process's writer layer in it.

    Args:
        path: the root layer (``.usda``).
        writer: this writer's name (default: settings ``stage.writer``, else ``user@host``).
        create: create the root if it does not exist; if False a missing root is an InputError.
    """

    def __init__(self, path: Path | str, writer: str | None = None, create: bool = True) -> None:
        self.root = Path(path).absolute()
        _check_root_suffix(self.root)
        if create:
            init_shared_stage(self.root)
        elif not self.root.exists():
            raise InputError(f"shared stage {self.root} does not exist; create it with `lift3d stage init`")
        elif not _is_shared_root(_read_layer(self.root, "stage")):
            raise InputError(f"{self.root} is not a lift3d shared stage")
        self.writer = writer_name(writer)
        self.writer_layer = self.root.parent / WRITERS_FOLDER / f"{self.writer}.usda"

    # ---------------------------------------------------------------- writing

    def _sublayer_entry(self) -> str:
        return f"./{WRITERS_FOLDER}/{self.writer_layer.name}"

    def _join(self) -> None:
        """Append this writer's sublayer to the root, once (root lock, re-read, atomic save)."""
        entry = self._sublayer_entry()
        with stage_refs.locked(self.root):
            layer = _read_layer(self.root, "stage")
            if not _is_shared_root(layer):
                raise InputError(f"{self.root} is not a lift3d shared stage")
            listed = {os.path.normpath(p) for p in layer.subLayerPaths}
            if os.path.normpath(entry) not in listed:
                layer.subLayerPaths.append(entry)
                write_text_atomic(self.root, layer.ExportToString())

    def add(self, asset_path: Path | str, name: str | None = None, source: str | None = None) -> str:
        """Reference ``asset_path`` under /World/Reconstructions in this writer's layer; return the prim path.

        Adding the same asset layer (same bytes) under the same name again is a
        no-op that returns the existing prim. ``source`` is the photo it came
        from (default: the asset's recorded source image, if any).
        """
        return self.add_many([AddItem(asset_path, name, source)])[0]

    def add_many(self, items: Iterable[AddItem]) -> list[str]:
        """Add several assets with one save of this writer's layer; return their prim paths in order."""
        prepared = []
        checked: dict[Path, stage_refs.AssetRef] = {}
        for item in items:
            path = Path(item.asset).absolute()
            if path not in checked:
                checked[path] = stage_refs.inspect_asset(path)
            prepared.append((checked[path], item))
        if not prepared:
            return []
        now = utc_now()
        with stage_refs.locked(self.writer_layer):
            if self.writer_layer.exists():
                layer = _read_layer(self.writer_layer, "writer layer")
            else:
                layer = Sdf.Layer.CreateAnonymous(".usda")
                _set_stage_metadata(layer)
                layer.customLayerData = {"lift3d": {"writer": self.writer, "version": __version__}}
            paths = []
            changed = False
            for asset, item in prepared:
                added = stage_refs.add_reference(layer, asset, self.writer_layer.parent, name=item.name,
                                                 writer=self.writer, source=item.source, time=now)
                paths.append(str(added.prim_path))
                changed = changed or not added.existed
            if changed:
                write_text_atomic(self.writer_layer, layer.ExportToString())
        self._join()
        return paths

    # ---------------------------------------------------------------- reading

    def _open(self) -> Usd.Stage:
        """Open the composed stage; root and writer layers already in memory are reloaded from disk."""
        root = _read_layer(self.root, "stage")
        paths = [str(self.root)] + [str((self.root.parent / p).resolve()) for p in root.subLayerPaths]
        stale = [layer for layer in map(Sdf.Layer.Find, paths) if layer is not None]
        stage = Usd.Stage.Open(str(self.root))
        if stage is None:
            raise InputError(f"shared stage {self.root} cannot be opened")
        for layer in stale:
            layer.Reload(force=True)
        return stage

    def list(self) -> list[StageEntry]:
        """Every reconstruction in the composed stage, sorted by prim path."""
        return sorted(_entries(self._open()).values(), key=lambda e: e.prim_path)

    def watch(self, interval: float = 1.0, duration: float | None = None) -> Iterator[str]:
        """Poll the stage's layers; yield one line per reconstruction that appeared, changed or vanished.

        Every ``interval`` seconds the root and each writer layer are hashed; a
        layer whose bytes changed is reloaded with ``Reload(force=True)`` (a
        root reload also brings in writers that joined since). The stage's
        ``Usd.Notice.ObjectsChanged`` notices name the prims to re-examine.
        The first line summarises the stage; stops after ``duration`` seconds
        (never when ``None``) or when the caller closes the generator.
        """
        stage = self._open()
        known = _entries(stage)
        dirty: set[Sdf.Path] = set()

        def on_change(notice: Usd.Notice.ObjectsChanged, sender: Usd.Stage) -> None:
            dirty.update(notice.GetResyncedPaths())
            dirty.update(p.GetPrimPath() for p in notice.GetChangedInfoOnlyPaths())

        listener = Tf.Notice.Register(Usd.Notice.ObjectsChanged, on_change, stage)
        hashes = _layer_hashes(stage)
        deadline = None if duration is None else time.monotonic() + duration
        try:
            yield (f"{utc_now()} watching {self.root} ({len(known)} reconstructions, "
                   f"{len(stage.GetRootLayer().subLayerPaths)} writers)")
            while deadline is None or time.monotonic() < deadline:
                wait = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
                time.sleep(wait)
                for layer in stage.GetLayerStack(includeSessionLayers=False):
                    digest = _hash_or_none(layer.realPath)
                    if digest is not None and digest != hashes.get(layer.identifier):
                        layer.Reload(force=True)
                hashes = _layer_hashes(stage)
                if not dirty:
                    continue
                paths, dirty_now = set(known), set(dirty)
                dirty.clear()
                current = _entries(stage)
                affected = {p for p in set(current) | paths
                            if any(Sdf.Path(p).HasPrefix(d) or d.HasPrefix(Sdf.Path(p)) for d in dirty_now)}
                for path in sorted(affected):
                    old, new = known.get(path), current.get(path)
                    if old is None and new is not None:
                        yield f"{utc_now()} appeared {path} writer={new.writer} source={new.source}"
                    elif old is not None and new is None:
                        yield f"{utc_now()} vanished {path} writer={old.writer}"
                    elif old != new:
                        yield f"{utc_now()} changed {path} writer={new.writer} source={new.source}"
                known = current
        finally:
            listener.Revoke()


def _hash_or_none(path: str) -> str | None:
    try:
        return file_digest(Path(path))
    except OSError:
        return None


def _layer_hashes(stage: Usd.Stage) -> dict[str, str | None]:
    return {layer.identifier: _hash_or_none(layer.realPath)
            for layer in stage.GetLayerStack(includeSessionLayers=False)}


def _entries(stage: Usd.Stage) -> dict[str, StageEntry]:
    """prim path -> entry for every child of /World/Reconstructions in the composed ``stage``."""
    parent = stage.GetPrimAtPath(RECONSTRUCTIONS)
    out: dict[str, StageEntry] = {}
    if not parent:
        return out
    root_dir = Path(stage.GetRootLayer().realPath).parent
    for prim in parent.GetChildren():
        data = prim.GetCustomDataByKey("lift3d") or {}
        asset, layer_name = "", ""
        for spec in prim.GetPrimStack():
            if spec.path != prim.GetPath():
                continue
            refs = spec.referenceList.GetAddedOrExplicitItems()
            if refs and not asset:
                asset = spec.layer.ComputeAbsolutePath(refs[0].assetPath) if refs[0].assetPath else ""
            if not layer_name and spec.layer.realPath:
                layer_name = os.path.relpath(spec.layer.realPath, root_dir).replace(os.sep, "/")
        path = str(prim.GetPath())
        out[path] = StageEntry(prim_path=path, writer=str(data.get("writer", "")), source=str(data.get("source", "")),
                               time=str(data.get("time", "")), asset=asset, layer=layer_name)
    return out


def list_plain_stage(path: Path | str) -> list[StageEntry]:
    """Every reconstruction under /World/Reconstructions of a stage that is not a shared one (read only).

    Such a stage (what ``reconstruct --stage`` and the demo write) holds its
    references in its one layer; ``writer`` is empty, and ``source`` is what the
    asset records when the prim records none.
    """
    path = Path(path).absolute()
    _read_layer(path, "stage")
    stage = Usd.Stage.Open(str(path))
    if stage is None:
        raise InputError(f"stage {path} cannot be opened")
    entries = sorted(_entries(stage).values(), key=lambda e: e.prim_path)
    for entry in entries:
        if not entry.source and entry.asset and Path(entry.asset).is_file():
            entry.source = stage_refs.recorded_source(Sdf.Layer.OpenAsAnonymous(entry.asset))
    return entries
