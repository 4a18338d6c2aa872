"""The one undoable command that adds a reconstruction to the open stage.

``omni.kit.commands.execute("Lift3dAddReconstruction", asset_path=..., prim_name=...,
usd_context_name="", writer="", source="")`` references the asset under
``/World/Reconstructions/<unique name>`` (creating ``/World`` and
``/World/Reconstructions`` when missing) and returns the new prim path; one undo
removes the prim and whatever parents it created. The asset's cameras sit under
its default prim, so they come along with the reference.

The scaffold, the prim's name, the reference and its ``customData["lift3d"]``
(source, time; writer in a shared stage) come from :mod:`lift3d.usd.stage_refs`,
as for ``lift3d reconstruct --stage``, ``lift3d stage add`` and ``lift3d batch``.
In a lift3d shared stage whose layer stack holds the writer's layer, the prim is
authored there and named ``<writer>__<name>_<digest>``, so two people never
author the same prim and ``lift3d stage list`` shows it.
"""

from __future__ import annotations

from pathlib import Path

import omni.kit.commands
import omni.usd
from pxr import Sdf, Usd

from ..errors import InputError
from ..usd import stage_refs
from ..usd.shared_stage import writer_name
from .stage import anchor_dir, writer_layer


class Lift3dAddReconstructionCommand(omni.kit.commands.Command):
    """Reference a lift3d asset under ``/World/Reconstructions/<name>``; undo removes it.

    Args:
        asset_path: the asset's root layer (``NAME/NAME.usda``).
        prim_name: preferred prim name (sanitised, made unique); default: the asset's defaultPrim.
            (Not ``name``: that is ``omni.kit.commands.execute``'s own first parameter.)
        usd_context_name: the USD context whose stage receives it ("" = the default).
        writer: shared-stage writer whose layer receives the prim ("" or no such layer: the edit target).
        source: the photograph it was reconstructed from, recorded in the prim's customData.
    """

    def __init__(self, asset_path: str, prim_name: str = "", usd_context_name: str = "", writer: str = "",
                 source: str = "") -> None:
        self._asset_path = str(asset_path)
        self._name = prim_name or None
        self._context_name = usd_context_name
        self._writer = writer
        self._source = source
        self._added: stage_refs.Added | None = None
        self._layer_id = ""

    def _stage(self) -> Usd.Stage:
        context = omni.usd.get_context(self._context_name)
        if context is None:  # Kit returns None for a context name that does not exist
            raise InputError(f"there is no USD context named {self._context_name!r}")
        stage = context.get_stage()
        if stage is None:
            raise InputError("no stage is open to add the reconstruction to")
        return stage

    def do(self) -> str:
        stage = self._stage()
        asset = stage_refs.inspect_asset(Path(self._asset_path).resolve())
        shared = writer_layer(stage, self._writer)
        layer = shared or stage.GetEditTarget().GetLayer()
        self._layer_id = layer.identifier
        # Outside a shared writer layer, scaffold prims another layer already defines only get an ``over``.
        elsewhere = [] if shared else [path for path, _, _ in stage_refs.SCAFFOLD if stage.GetPrimAtPath(path)]
        parent = stage.GetPrimAtPath(stage_refs.RECONSTRUCTIONS)
        taken = [child.GetName() for child in parent.GetAllChildren()] if parent else []
        self._added = stage_refs.add_reference(layer, asset, anchor_dir(layer), name=self._name,
                                               writer=writer_name(self._writer) if shared else None,
                                               source=self._source or None, defined_elsewhere=elsewhere,
                                               taken=taken)
        return self._added.prim_path.pathString

    def undo(self) -> None:
        # Kit also calls undo() after a do() that raised; then there is nothing to remove.
        if self._added is None:
            return
        layer = Sdf.Layer.Find(self._layer_id) or self._stage().GetEditTarget().GetLayer()
        stage_refs.remove_reference(layer, self._added)
        self._added = None
