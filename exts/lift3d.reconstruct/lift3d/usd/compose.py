"""Put assets into a stage: create or open a stage, add an asset as a reference.

A stage made here is Y-up, in metres, with an Xform ``/World`` as its
defaultPrim (kind ``assembly``); reconstructions land under
``/World/Reconstructions`` (an Xform of kind ``group``, so the component
assets below it stay in the model hierarchy).

:func:`add_reference` is safe with concurrent writers (other threads or
processes, on one machine or on a shared filesystem that honours locks): it
takes an exclusive lock on ``<stage>.lock``, re-reads the stage file from
disk, adds the prim, and writes the whole layer to a temporary sibling that
``os.replace`` moves over the stage. Readers always see a complete file and no
writer loses another's prims.
"""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout
from pxr import Kind, Sdf, Tf, Usd, UsdGeom

from ..atomic import ensure_writable_dir, atomic_path
from ..errors import InputError
from ..naming import sanitize_name, unique_name
from .reader import resolve_layer_path

WORLD = Sdf.Path("/World")
RECONSTRUCTIONS = WORLD.AppendChild("Reconstructions")
LOCK_TIMEOUT_S = 60.0
"""How long :func:`add_reference` waits for another writer's lock before giving up."""


def _lock(stage_path: Path) -> FileLock:
    return FileLock(str(stage_path) + ".lock", timeout=LOCK_TIMEOUT_S)


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


def _read_layer(path: Path) -> Sdf.Layer:
    """A private, uncached, editable copy of the layer file ``path``; InputError if it is not a USD layer."""
    return open_layer(path, f"{path} exists but is not a valid USD layer", anonymous=True)


def check_stage_layer(path: Path | str) -> None:
    """Raise InputError unless the existing file ``path`` is a readable USD layer (reads only)."""
    _read_layer(Path(path))


def _new_stage_layer(suffix: str) -> Sdf.Layer:
    """An anonymous layer holding an empty stage: Y up, metres, ``/World`` (Xform, kind assembly) as defaultPrim."""
    layer = Sdf.Layer.CreateAnonymous("stage" + suffix)
    stage = Usd.Stage.Open(layer)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    world = UsdGeom.Xform.Define(stage, WORLD).GetPrim()
    Usd.ModelAPI(world).SetKind(Kind.Tokens.assembly)
    stage.SetDefaultPrim(world)
    return layer


def _save(layer: Sdf.Layer, path: Path) -> None:
    """Write ``layer`` to ``path`` atomically (temporary sibling, then ``os.replace``)."""
    with atomic_path(path) as tmp:
        if not layer.Export(str(tmp)):
            raise OSError(f"could not write {path}")


def _check_stage_path(path: Path) -> None:
    if path.suffix not in (".usda", ".usdc", ".usd"):
        raise InputError(f"stage file {path} must end in .usda, .usdc or .usd")
    ensure_writable_dir(path.parent)


def open_or_create_stage(path: Path | str) -> Usd.Stage:
    """Open the stage at ``path``, creating it first (atomically) if the file does not exist.

    Raises:
        InputError: the folder is not writable (when creating), or the file
            exists but is not a valid USD layer.
    """
    path = Path(path).absolute()
    if not path.exists():
        _check_stage_path(path)
        with _lock(path):
            if not path.exists():
                _save(_new_stage_layer(path.suffix), path)
    layer = open_layer(path, f"{path} exists but is not a valid USD layer")
    return Usd.Stage.Open(layer)


def relative_asset_path(asset_path: Path, anchor_dir: Path) -> str:
    """``asset_path`` relative to ``anchor_dir`` as a USD anchored path (``./x`` or ``../x``, forward slashes).

    Falls back to the absolute path when no relative path exists (another drive on Windows).
    """
    try:
        rel = os.path.relpath(asset_path, anchor_dir)
    except ValueError:
        return asset_path.as_posix()
    rel = Path(rel).as_posix()
    return rel if rel.startswith("../") else "./" + rel


def _asset_default_prim(asset_layer: Path) -> str:
    layer = open_layer(asset_layer, f"{asset_layer} is not a readable USD layer")
    if not layer.defaultPrim:
        raise InputError(f"{asset_layer} has no defaultPrim, so it cannot be referenced")
    return layer.defaultPrim


def _ensure_xform(layer: Sdf.Layer, path: Sdf.Path, kind: str) -> None:
    spec = layer.GetPrimAtPath(path)
    if spec is None:
        spec = Sdf.CreatePrimInLayer(layer, path)
        spec.specifier = Sdf.SpecifierDef
        spec.typeName = "Xform"
        spec.kind = kind
    elif spec.specifier != Sdf.SpecifierDef:
        spec.specifier = Sdf.SpecifierDef
        spec.typeName = spec.typeName or "Xform"


def add_reference(stage_path: Path | str, asset_path: Path | str, name: str | None = None) -> str:
    """Reference the asset at ``asset_path`` under ``/World/Reconstructions/<unique name>`` in ``stage_path``.

    Args:
        stage_path: the stage's root layer; created (Y up, metres, ``/World``) if missing.
        asset_path: an asset layer or asset folder; stored relative to the stage when possible.
        name: prim name wish (sanitised); default: the asset's defaultPrim. ``_2``, ``_3``, ...
            are appended when a prim of that name already exists.

    Returns:
        The new prim's path, e.g. ``/World/Reconstructions/toy_car``.

    Raises:
        InputError: the stage's folder is not writable, the stage file exists but is not a USD
            layer, or the asset is not a referenceable USD layer. The stage is then unchanged.
    """
    stage_path = Path(stage_path).absolute()
    asset_layer = resolve_layer_path(asset_path).absolute()
    default_prim = _asset_default_prim(asset_layer)
    _check_stage_path(stage_path)
    base = sanitize_name(name if name else default_prim, fallback="asset")
    try:
        with _lock(stage_path):
            layer = _read_layer(stage_path) if stage_path.exists() else _new_stage_layer(stage_path.suffix)
            if not layer.defaultPrim:
                layer.defaultPrim = WORLD.name
            _ensure_xform(layer, WORLD, Kind.Tokens.assembly)
            _ensure_xform(layer, RECONSTRUCTIONS, Kind.Tokens.group)
            parent = layer.GetPrimAtPath(RECONSTRUCTIONS)
            prim_name = unique_name(base, [child.name for child in parent.nameChildren])
            spec = Sdf.PrimSpec(parent, prim_name, Sdf.SpecifierDef, "Xform")
            spec.referenceList.Prepend(Sdf.Reference(relative_asset_path(asset_layer, stage_path.parent)))
            _save(layer, stage_path)
    except Timeout:
        raise InputError(f"{stage_path} is locked by another writer (waited {LOCK_TIMEOUT_S:g} s)") from None
    return str(spec.path)
