"""Where a reconstruction goes for an open stage, and how the stage refers to it (pxr only).

* Asset folder: beside the stage's root layer (``<stage dir>/<NAME>/<NAME>.usda``),
  or the configured output folder when the stage is anonymous (not saved yet).
* Reference: anchored relative to the editing layer (``./NAME/NAME.usda``) when
  that layer is a file, so the project folder can move; absolute otherwise.
* Layer: the edit target, or the shared-stage writer layer named in the settings
  when the stage's layer stack has one (``writers/<writer>.usda``, see
  :mod:`lift3d.usd.shared_stage`).
"""

from __future__ import annotations

import os
from pathlib import Path

from pxr import Sdf, Usd

from ..usd.shared_stage import WRITERS_FOLDER, writer_name

RECONSTRUCTIONS = "/World/Reconstructions"
"""Parent prim of every reconstruction in a stage (DESIGN.md section 4)."""


def output_dir_for(stage: Usd.Stage | None, fallback: str | Path) -> Path:
    """Folder that receives the asset folders of reconstructions added to ``stage``.

    ``fallback`` (relative to the current working directory when relative) is used
    when there is no stage or its root layer is anonymous.
    """
    if stage is not None:
        root = stage.GetRootLayer()
        if not root.anonymous and root.realPath:
            return Path(root.realPath).resolve().parent
    return Path(fallback).expanduser().resolve()


def writer_layer(stage: Usd.Stage, writer: str) -> Sdf.Layer | None:
    """The shared-stage layer of ``writer`` (``writers/<writer name>.usda`` in the layer stack), if any.

    The writer name is sanitised exactly as :func:`lift3d.usd.shared_stage.writer_name` does.
    """
    if not writer:
        return None
    wanted = writer_name(writer)
    for layer in stage.GetLayerStack(includeSessionLayers=False):
        path = Path(layer.realPath) if layer.realPath else None
        if path is not None and path.stem == wanted and path.parent.name == WRITERS_FOLDER:
            return layer
    return None


def reference_path(layer: Sdf.Layer, asset_path: str | Path) -> str:
    """How ``layer`` should spell the asset path: ``./NAME/NAME.usda`` when possible, else absolute."""
    asset = Path(asset_path).resolve()
    if layer.anonymous or not layer.realPath:
        return asset.as_posix()
    try:
        rel = os.path.relpath(asset, Path(layer.realPath).resolve().parent)
    except ValueError:  # another drive on Windows
        return asset.as_posix()
    rel = Path(rel).as_posix()
    return rel if rel.startswith("../") else f"./{rel}"
