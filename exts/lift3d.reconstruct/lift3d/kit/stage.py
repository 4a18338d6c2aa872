"""Where a reconstruction goes for an open stage, and how the stage refers to it (pxr only).

* Asset folder: beside the stage's root layer (``<stage dir>/<NAME>/<NAME>.usda``)
  when that layer is a local file; the configured output folder when the stage is
  anonymous (not saved yet) or lives on a server (``omniverse://``, ``https://``),
  where a local folder cannot be "beside" it. URLs are taken apart with
  ``omni.client`` when Kit has it, else with the standard library.
* Reference: anchored relative to the editing layer (``./NAME/NAME.usda``) when
  that layer is a file, so the project folder can move; absolute otherwise.
* Layer: the edit target, or the shared-stage writer layer named in the settings
  when the stage's layer stack has one (``writers/<writer>.usda``, see
  :mod:`lift3d.usd.shared_stage`).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from pxr import Sdf, Usd

from ..usd import stage_refs
from ..usd.shared_stage import WRITERS_FOLDER, writer_name


_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def local_file(identifier: str) -> Path | None:
    """The local file a layer identifier names, or ``None`` for a remote URL or an empty one.

    Local means a plain path (``/data/scene.usd``, ``C:/data/scene.usd``) or a
    ``file:`` URL; ``omniverse://``, ``http(s)://`` and every other scheme are remote.
    """
    if not identifier:
        return None
    try:
        import omni.client
    except ImportError:  # outside Kit, or a Kit without the client library
        if _DRIVE.match(identifier) or "://" not in identifier and not identifier.startswith("file:"):
            return Path(identifier)
        parts = urlsplit(identifier)
        if parts.scheme == "file" and parts.netloc in ("", "localhost"):
            return Path(url2pathname(unquote(parts.path)))
        return None
    url = omni.client.break_url(identifier)
    if url.scheme in (None, "", "file") and url.path and (url.scheme != "file" or url.host in (None, "", "localhost")):
        path = url.path
        if url.scheme == "file" and re.match(r"^/[A-Za-z]:", path):  # file:///C:/x -> C:/x
            path = path[1:]
        return Path(path)
    return None


def output_dir_for(stage: Usd.Stage | None, fallback: str | Path) -> Path:
    """Folder that receives the asset folders of reconstructions added to ``stage``.

    ``fallback`` (relative to the current working directory when relative) is used
    when there is no stage, its root layer is anonymous, or it is not a local file
    (a Nucleus or web URL).
    """
    if stage is not None:
        root = stage.GetRootLayer()
        if not root.anonymous:
            path = local_file(root.identifier)
            if path is not None:
                return Path(root.realPath or path).resolve().parent
    return Path(fallback).expanduser().resolve()


def stage_identity(stage: Usd.Stage | None) -> str:
    """What tells two open stages apart: the root layer's identifier ("" for no stage)."""
    return stage.GetRootLayer().identifier if stage is not None else ""


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


def anchor_dir(layer: Sdf.Layer) -> Path | None:
    """The local folder ``layer``'s relative asset paths start from; ``None`` (absolute paths) when the
    layer is anonymous or not a local file."""
    if local_file(layer.identifier) is None:
        return None
    return stage_refs.layer_dir(layer)
