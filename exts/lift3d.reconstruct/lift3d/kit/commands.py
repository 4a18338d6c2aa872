"""The one undoable command that adds a reconstruction to the open stage.

``omni.kit.commands.execute("Lift3dAddReconstruction", asset_path=..., prim_name=...,
usd_context_name="", writer="", source="")`` references the asset under
``/World/Reconstructions/<unique name>`` (creating ``/World`` and the
``Reconstructions`` scope when missing) and returns the new prim path; one undo
removes the prim and whatever parents it created. The asset's ``SourceCamera``
prims sit under its default prim, so they come along with the reference.

In a lift3d shared stage whose layer stack holds the writer's layer, the prim is
authored there and named ``<writer>__<name>`` with ``customData["lift3d"]``
(writer, source, time) as :mod:`lift3d.usd.shared_stage` does, so two people
never author the same prim and ``lift3d stage list`` shows it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import omni.kit.commands
import omni.usd
from pxr import Sdf, Usd, UsdGeom

from ..errors import InputError
from ..naming import sanitize_name, unique_name
from ..usd.shared_stage import writer_name
from .stage import RECONSTRUCTIONS, reference_path, writer_layer


class Lift3dAddReconstructionCommand(omni.kit.commands.Command):
    """Reference a lift3d asset under ``/World/Reconstructions/<name>``; undo removes it.

    Args:
        asset_path: the asset's root layer (``NAME/NAME.usda``).
        prim_name: preferred prim name (sanitised, made unique); default from the file name.
            (Not ``name``: that is ``omni.kit.commands.execute``'s own first parameter.)
        usd_context_name: the USD context whose stage receives it ("" = the default).
        writer: shared-stage writer whose layer receives the prim ("" or no such layer: the edit target).
        source: the photograph it was reconstructed from, recorded in the prim's customData.
    """

    def __init__(self, asset_path: str, prim_name: str = "", usd_context_name: str = "", writer: str = "",
                 source: str = "") -> None:
        self._asset_path = str(asset_path)
        self._name = sanitize_name(prim_name or Path(asset_path).stem, fallback="reconstruction")
        self._context_name = usd_context_name
        self._writer = writer
        self._source = source
        self._created: list[Sdf.Path] = []
        self._layer_id = ""
        self._set_default_prim = False

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
        shared = writer_layer(stage, self._writer)
        layer = shared or stage.GetEditTarget().GetLayer()
        name = f"{writer_name(self._writer)}__{self._name.lstrip('_')}" if shared else self._name
        self._layer_id = layer.identifier
        created: list[Sdf.Path] = []
        self._created = created  # filled as prims are made, so Kit's undo after a failed do() removes them
        with Usd.EditContext(stage, layer):
            parent = Sdf.Path(RECONSTRUCTIONS)
            for path in parent.GetPrefixes():
                if not stage.GetPrimAtPath(path):
                    kind = UsdGeom.Xform if path.pathElementCount == 1 else UsdGeom.Scope
                    kind.Define(stage, path)
                    created.append(path)
            if created and created[0] == Sdf.Path("/World") and not stage.HasDefaultPrim():
                stage.SetDefaultPrim(stage.GetPrimAtPath("/World"))
                self._set_default_prim = True
            taken = [child.GetName() for child in stage.GetPrimAtPath(parent).GetAllChildren()]
            prim_path = parent.AppendChild(unique_name(name, taken))
            prim = stage.DefinePrim(prim_path, "Xform")
            self._created = [prim_path, *reversed(created)]
            prim.GetReferences().AddReference(reference_path(layer, self._asset_path))
            record = {"source": self._source, "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
            if shared:
                record["writer"] = writer_name(self._writer)
            prim.SetCustomDataByKey("lift3d", record)
        return prim_path.pathString

    def undo(self) -> None:
        # Kit also calls undo() after a do() that raised; then there may be nothing to remove.
        if not self._created and not self._set_default_prim:
            return
        stage = self._stage()
        layer = Sdf.Layer.Find(self._layer_id) or stage.GetEditTarget().GetLayer()
        with Usd.EditContext(stage, layer):
            for path in self._created:
                stage.RemovePrim(path)
            if self._set_default_prim:
                stage.ClearDefaultPrim()
        self._created = []
        self._set_default_prim = False
