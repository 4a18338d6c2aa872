"""Put assets into a plain stage file: create or open a stage, add an asset as a reference.

A stage made here is Y-up, in metres, with an Xform ``/World`` as its
defaultPrim (kind ``assembly``); reconstructions land under
``/World/Reconstructions`` as :mod:`lift3d.usd.stage_refs` lays them out (the
same scaffold, names and prims as the Kit command and the shared stage).

:func:`add_reference` is safe with concurrent writers (other threads or
processes, on one machine or on a shared filesystem that honours locks): it
takes the stage's lock (:func:`lift3d.usd.stage_refs.locked`), re-reads the
stage file from disk, adds the prim, and writes the whole layer to a temporary
sibling that ``os.replace`` moves over the stage. Readers always see a
complete file and no writer loses another's prims.
"""

from __future__ import annotations

from pathlib import Path

from pxr import Kind, Sdf, Usd, UsdGeom

from ..atomic import ensure_writable_dir
from . import check_stage_suffix, stage_refs
from .reader import resolve_layer_path
from .stage_refs import LOCK_TIMEOUT_S, RECONSTRUCTIONS, WORLD, open_layer, save_layer

__all__ = ["LOCK_TIMEOUT_S", "RECONSTRUCTIONS", "WORLD", "add_reference", "check_stage_layer", "open_layer",
           "open_or_create_stage", "relative_asset_path"]


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


def _check_stage_path(path: Path) -> None:
    check_stage_suffix(path)
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
        with stage_refs.locked(path):
            if not path.exists():
                save_layer(_new_stage_layer(path.suffix), path)
    layer = open_layer(path, f"{path} exists but is not a valid USD layer")
    return Usd.Stage.Open(layer)


def relative_asset_path(asset_path: Path, anchor_dir: Path) -> str:
    """``asset_path`` relative to ``anchor_dir`` as a USD anchored path (``./x`` or ``../x``, forward slashes).

    Falls back to the absolute path when no relative path exists (another drive on Windows).
    """
    return stage_refs.asset_path_for(asset_path, anchor_dir)


def add_reference(stage_path: Path | str, asset_path: Path | str, name: str | None = None,
                  source: str | None = None) -> str:
    """Reference the asset at ``asset_path`` under ``/World/Reconstructions/<unique name>`` in ``stage_path``.

    Args:
        stage_path: the stage's root layer; created (Y up, metres, ``/World``) if missing.
        asset_path: an asset layer or asset folder; stored relative to the stage when possible.
        name: prim name wish (sanitised); default: the asset's defaultPrim. ``_2``, ``_3``, ...
            are appended when a prim of that name already exists.
        source: the photo it was made from, recorded in the prim's customData; default: the
            source the asset records.

    Returns:
        The new prim's path, e.g. ``/World/Reconstructions/toy_car``.

    Raises:
        InputError: the stage's folder is not writable, the stage file exists but is not a USD
            layer, or the asset is not a referenceable USD layer. The stage is then unchanged.
    """
    stage_path = Path(stage_path).absolute()
    asset = stage_refs.inspect_asset(resolve_layer_path(asset_path))
    _check_stage_path(stage_path)
    with stage_refs.locked(stage_path):
        layer = _read_layer(stage_path) if stage_path.exists() else _new_stage_layer(stage_path.suffix)
        added = stage_refs.add_reference(layer, asset, stage_path.parent, name=name, source=source)
        save_layer(layer, stage_path)
    return str(added.prim_path)
