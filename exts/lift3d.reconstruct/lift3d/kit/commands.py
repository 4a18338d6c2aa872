"""The one undoable command that adds a reconstruction to the open stage.

``omni.kit.commands.execute("Lift3dAddReconstruction", asset_path=..., prim_name=...,
usd_context_name="", writer="")`` references the asset under
``/World/Reconstructions/<unique name>`` (creating ``/World`` and the
``Reconstructions`` scope when missing) and returns the new prim path; one undo
removes the prim and whatever parents it created. The asset's ``SourceCamera``
prims sit under its default prim, so they come along with the reference.
"""

from __future__ import annotations

from pathlib import Path

import omni.kit.commands
import omni.usd
from pxr import Sdf, Usd, UsdGeom

from ..errors import InputError
from ..naming import sanitize_name, unique_name
from .stage import RECONSTRUCTIONS, editing_layer, reference_path


class Lift3dAddReconstructionCommand(omni.kit.commands.Command):
    """Reference a lift3d asset under ``/World/Reconstructions/<name>``; undo removes it.

    Args:
        asset_path: the asset's root layer (``NAME/NAME.usda``).
        prim_name: preferred prim name (sanitised, made unique); default from the file name.
            (Not ``name``: that is ``omni.kit.commands.execute``'s own first parameter.)
        usd_context_name: the USD context whose stage receives it ("" = the default).
        writer: shared-stage writer layer to author in ("" = the stage's edit target).
    """

    def __init__(self, asset_path: str, prim_name: str = "", usd_context_name: str = "", writer: str = "") -> None:
        self._asset_path = str(asset_path)
        self._name = sanitize_name(prim_name or Path(asset_path).stem, fallback="reconstruction")
        self._context_name = usd_context_name
        self._writer = writer
        self._created: list[Sdf.Path] = []
        self._layer_id = ""
        self._set_default_prim = False

    def _stage(self) -> Usd.Stage:
        stage = omni.usd.get_context(self._context_name).get_stage()
        if stage is None:
            raise InputError("no stage is open to add the reconstruction to")
        return stage

    def do(self) -> str:
        stage = self._stage()
        layer = editing_layer(stage, self._writer)
        self._layer_id = layer.identifier
        created: list[Sdf.Path] = []
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
            prim_path = parent.AppendChild(unique_name(self._name, taken))
            prim = stage.DefinePrim(prim_path)
            prim.GetReferences().AddReference(reference_path(layer, self._asset_path))
            prim.SetCustomDataByKey("lift3d:asset", Path(self._asset_path).resolve().as_posix())
        self._created = [prim_path, *reversed(created)]
        return prim_path.pathString

    def undo(self) -> None:
        stage = self._stage()
        layer = Sdf.Layer.Find(self._layer_id) or stage.GetEditTarget().GetLayer()
        with Usd.EditContext(stage, layer):
            for path in self._created:
                stage.RemovePrim(path)
            if self._set_default_prim:
                stage.ClearDefaultPrim()
        self._created = []
        self._set_default_prim = False
