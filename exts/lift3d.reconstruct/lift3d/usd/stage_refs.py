"""The one place that puts a reconstruction into a stage layer, and takes it out again.

Every way of adding an asset to a stage goes through here: a plain stage file
(:func:`lift3d.usd.compose.add_reference`, ``lift3d reconstruct --stage``), a
writer's layer of a shared stage (:class:`lift3d.usd.shared_stage.SharedStage`,
``lift3d stage add``, ``lift3d batch``) and the open stage in Kit (the
``Lift3dAddReconstruction`` command). So a reconstruction looks the same in a
stage whichever of them made it:

* Scaffold (:func:`ensure_scaffold`): ``/World`` is a ``def Xform`` of kind
  ``assembly`` and the layer's defaultPrim; ``/World/Reconstructions`` is a
  ``def Xform`` of kind ``group``, so the component assets below stay in the
  model hierarchy.
* Name (:func:`prim_name`): the wish (default: the asset's defaultPrim)
  sanitised to a USD identifier. In a plain stage ``_2``, ``_3``, ... keep it
  unique; in a shared writer layer it is ``<writer>__<name>_<digest>``, where
  the digest of the asset layer's bytes tells re-reconstructions apart and the
  writer part keeps two writers from ever authoring the same prim.
* Prim (:func:`add_reference`): a ``def Xform`` that prepends one reference to
  the asset (the path relative to the receiving layer, :func:`asset_path_for`)
  and records ``customData["lift3d"]`` = ``{source, time}`` plus ``writer`` in a
  shared stage.
* Lock (:func:`locked`): an exclusive lock file ``<file>.lock`` with one
  timeout, :data:`LOCK_TIMEOUT_S`, for every writer of a stage file.
* Removal (:func:`remove_reference`): the prim and whatever scaffold was made
  for it (Kit's undo).

The functions edit ``Sdf`` layers only; opening, re-reading and saving files is
left to the callers, which hold the lock while they do it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout
from pxr import Kind, Sdf, Tf

from ..atomic import atomic_path
from ..digest import file_digest
from ..errors import InputError
from ..naming import sanitize_name, unique_name

WORLD = Sdf.Path("/World")
RECONSTRUCTIONS = WORLD.AppendChild("Reconstructions")
SCAFFOLD: tuple[tuple[Sdf.Path, str, str], ...] = (
    (WORLD, "Xform", Kind.Tokens.assembly),
    (RECONSTRUCTIONS, "Xform", Kind.Tokens.group),
)
"""(path, prim type, kind) of the prims above every reconstruction."""
LOCK_TIMEOUT_S = 120.0
"""How long any writer waits for another writer's lock on a stage file before giving up."""
DIGEST_LEN = 8
"""Hex digits of the asset digest in shared-stage prim names."""
FALLBACK_NAME = "asset"


def utc_now() -> str:
    """The current time as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------- locking


def _remove_orphan_temps(target: Path) -> None:
    """Delete temporary files left beside ``target`` by a killed save (call with ``target``'s lock held)."""
    for tmp in target.parent.glob(f".{target.name}.*.tmp{target.suffix}"):
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def locked(target: Path | str) -> Iterator[None]:
    """Hold the exclusive lock ``<target>.lock`` (waiting at most :data:`LOCK_TIMEOUT_S`).

    Raises InputError when another writer holds it for longer. Temporary files
    that a killed writer left beside ``target`` are removed once the lock is held.
    """
    target = Path(target)
    lock = FileLock(str(target) + ".lock", timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise InputError(f"{target} is locked by another writer (waited {LOCK_TIMEOUT_S:g} s)") from None
    try:
        _remove_orphan_temps(target)
        yield
    finally:
        lock.release()


def open_layer(path: Path | str, error: str, anonymous: bool = False) -> Sdf.Layer:
    """Open the layer file ``path``, or raise ``InputError(error)`` if it is not a readable USD layer.

    ``anonymous``: a private, uncached, editable copy (``Sdf.Layer.OpenAsAnonymous``)
    instead of the shared registry's layer (``Sdf.Layer.FindOrOpen``).
    """
    try:
        layer = (Sdf.Layer.OpenAsAnonymous if anonymous else Sdf.Layer.FindOrOpen)(str(path))
    except Tf.ErrorException:
        layer = None
    if layer is None:
        raise InputError(error)
    return layer


def save_layer(layer: Sdf.Layer, path: Path | str) -> None:
    """Write ``layer`` to ``path`` atomically (a temporary sibling, then ``os.replace``), in ``path``'s format."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if not layer.Export(str(tmp)):
            raise OSError(f"could not write {path}")


# ---------------------------------------------------------------------------------------------- the asset


@dataclass(frozen=True)
class AssetRef:
    """What a stage needs to know about an asset layer before referencing it.

    Attributes:
        path: the asset layer, absolute.
        prim: the prim to reference: empty for the layer's defaultPrim, else its first root prim.
        name: the default prim name wish: the defaultPrim (else that root prim's name).
        digest: the first :data:`DIGEST_LEN` hex digits of the SHA-256 of the layer's bytes.
        source: the photo the asset records in its provenance ("" if none).
    """

    path: Path
    prim: Sdf.Path
    name: str
    digest: str
    source: str


def recorded_lift3d(layer: Sdf.Layer) -> dict:
    """The ``customData["lift3d"]`` dictionary of an asset layer's defaultPrim, or ``{}``."""
    prim = layer.GetPrimAtPath(Sdf.Path.absoluteRootPath.AppendChild(layer.defaultPrim)) if layer.defaultPrim else None
    value = prim.customData.get("lift3d") if prim else None
    return dict(value) if isinstance(value, dict) else {}


def recorded_source(layer: Sdf.Layer) -> str:
    """The source photo an asset layer records in its defaultPrim's ``customData["lift3d"]``, else ``""``."""
    lift3d = recorded_lift3d(layer)
    for holder in (lift3d, lift3d.get("provenance", {}) if isinstance(lift3d, dict) else {}):
        if not isinstance(holder, dict):
            continue
        for key in ("source", "images", "sources"):
            value = holder.get(key)
            if isinstance(value, str) and value[:1] == "[":  # lists of dicts are stored as JSON text
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, (list, tuple)) and value:
                first = value[0]
                if isinstance(first, dict):
                    return str(first.get("image") or first.get("path") or first.get("file") or "")
                return str(first)
    return ""


def inspect_asset(path: Path | str) -> AssetRef:
    """Check that ``path`` is a USD layer with a prim to reference; InputError (saying why) if not."""
    path = Path(path).absolute()
    if not path.is_file():
        raise InputError(f"asset {path} does not exist")
    layer = open_layer(path, f"asset {path} is not a valid USD layer", anonymous=True)
    if layer.defaultPrim:
        prim = Sdf.Path.emptyPath
        if not layer.GetPrimAtPath(Sdf.Path.absoluteRootPath.AppendChild(layer.defaultPrim)):
            raise InputError(f"asset {path} names a defaultPrim that it does not define")
        name = layer.defaultPrim
    else:
        roots = [p for p in layer.rootPrims if p.specifier == Sdf.SpecifierDef]
        if not roots:
            raise InputError(f"asset {path} has no root prim to reference")
        prim, name = roots[0].path, roots[0].name
    return AssetRef(path, prim, name, file_digest(path)[:DIGEST_LEN], recorded_source(layer))


def asset_path_for(asset: Path | str, anchor_dir: Path | str | None) -> str:
    """How a layer in ``anchor_dir`` spells the asset path: ``./x`` or ``../x`` (forward slashes).

    Absolute (forward slashes) when there is no anchor (an anonymous layer) or no
    relative path exists (another drive on Windows).
    """
    asset = Path(os.path.abspath(asset))
    if anchor_dir is None:
        return asset.as_posix()
    try:
        rel = os.path.relpath(asset, os.path.abspath(anchor_dir))
    except ValueError:
        return asset.as_posix()
    rel = Path(rel).as_posix()
    return rel if rel.startswith("../") else "./" + rel


def layer_dir(layer: Sdf.Layer) -> Path | None:
    """The folder a file-backed layer's relative asset paths are anchored at (``None`` if anonymous)."""
    if layer.anonymous or not layer.realPath:
        return None
    return Path(layer.realPath).resolve().parent


# ---------------------------------------------------------------------------------------------- editing


def ensure_scaffold(layer: Sdf.Layer, defined_elsewhere: Iterable[Sdf.Path] = ()) -> list[Sdf.Path]:
    """Give ``layer`` the ``/World/Reconstructions`` scaffold (see the module docstring); return what it created.

    A missing prim is defined with its type and kind, unless its path is in
    ``defined_elsewhere`` (another layer of the open stage already defines it):
    then an ``over`` is enough, and its type and kind are left to that layer. An
    existing ``over`` of a prim nobody else defines becomes a ``def``.
    """
    elsewhere = set(defined_elsewhere)
    created: list[Sdf.Path] = []
    for path, type_name, kind in SCAFFOLD:
        spec = layer.GetPrimAtPath(path)
        if spec is None:
            spec = Sdf.CreatePrimInLayer(layer, path)
            created.append(path)
            if path in elsewhere:
                spec.specifier = Sdf.SpecifierOver
                continue
            spec.specifier = Sdf.SpecifierDef
            spec.typeName = type_name
            spec.kind = kind
        elif spec.specifier != Sdf.SpecifierDef and path not in elsewhere:
            spec.specifier = Sdf.SpecifierDef
            spec.typeName = spec.typeName or type_name
    return created


def prim_name(wish: str, taken: Iterable[str], writer: str | None = None, digest: str | None = None) -> str:
    """The prim name of a new reconstruction under ``/World/Reconstructions`` (rules in the module docstring).

    ``taken``: names already under ``/World/Reconstructions``; ignored for a
    shared writer (``writer`` given), whose names are deterministic so that
    adding the same asset twice finds the first prim.
    """
    base = sanitize_name(wish, fallback=FALLBACK_NAME)
    if writer:
        return f"{writer}__{base.lstrip('_') or FALLBACK_NAME}" + (f"_{digest}" if digest else "")
    return unique_name(base, taken)


@dataclass
class Added:
    """The outcome of :func:`add_reference`.

    Attributes:
        prim_path: the reconstruction's prim, ``/World/Reconstructions/<name>``.
        created: scaffold prims made for it, outermost first (to remove on undo).
        set_default_prim: whether the layer's defaultPrim was set to ``World``.
        existed: the prim was already there (same asset, same name, same writer); nothing changed.
    """

    prim_path: Sdf.Path
    created: list[Sdf.Path] = field(default_factory=list)
    set_default_prim: bool = False
    existed: bool = False


def add_reference(layer: Sdf.Layer, asset: AssetRef, anchor_dir: Path | str | None, name: str | None = None,
                  writer: str | None = None, source: str | None = None, time: str | None = None,
                  defined_elsewhere: Iterable[Sdf.Path] = (), taken: Iterable[str] = ()) -> Added:
    """Author the reconstruction prim referencing ``asset`` under ``/World/Reconstructions`` in ``layer``.

    Args:
        layer: the receiving layer (an anonymous working copy, or the open stage's layer in Kit).
        asset: the checked asset (:func:`inspect_asset`).
        anchor_dir: the folder of the file ``layer`` is saved as (``None``: absolute asset path).
        name: prim name wish; default: the asset's prim name.
        writer: the shared-stage writer (already a writer name), or ``None`` in a plain stage.
        source: the photo it came from; default: what the asset records.
        time: UTC time stamp to record; default: now.
        defined_elsewhere: scaffold paths another layer of the stage defines (see :func:`ensure_scaffold`).
        taken: extra names to avoid beside the layer's own children (the composed stage's, in Kit).
    """
    elsewhere = set(defined_elsewhere)
    created = ensure_scaffold(layer, elsewhere)
    set_default = not layer.defaultPrim and WORLD not in elsewhere
    if set_default:
        layer.defaultPrim = WORLD.name
    parent = layer.GetPrimAtPath(RECONSTRUCTIONS)
    names = {child.name for child in parent.nameChildren} | set(taken)
    path = RECONSTRUCTIONS.AppendChild(prim_name(name or asset.name, names, writer, asset.digest if writer else None))
    if writer and layer.GetPrimAtPath(path):
        return Added(path, created, set_default, existed=True)
    spec = Sdf.PrimSpec(parent, path.name, Sdf.SpecifierDef, "Xform")
    spec.referenceList.Prepend(Sdf.Reference(asset_path_for(asset.path, anchor_dir), asset.prim))
    record = {"source": asset.source if source is None else str(source), "time": time or utc_now()}
    if writer:
        record["writer"] = writer
    spec.customData = {"lift3d": record}
    return Added(path, created, set_default)


def remove_reference(layer: Sdf.Layer, added: Added) -> None:
    """Undo :func:`add_reference` on ``layer``: remove the prim, the scaffold it made, the defaultPrim it set."""
    if not added.existed:
        _remove_spec(layer, added.prim_path)
    for path in reversed(added.created):  # innermost first
        spec = layer.GetPrimAtPath(path)
        if spec is not None and not spec.nameChildren:
            _remove_spec(layer, path)
    if added.set_default_prim and layer.defaultPrim == WORLD.name:
        layer.ClearDefaultPrim()


def _remove_spec(layer: Sdf.Layer, path: Sdf.Path) -> None:
    spec = layer.GetPrimAtPath(path)
    if spec is None:
        return
    parent = layer.GetPrimAtPath(path.GetParentPath()) if path.GetParentPath() != Sdf.Path.absoluteRootPath \
        else layer.pseudoRoot
    del parent.nameChildren[path.name]
