"""Read a lift3d USD asset back into an :class:`lift3d.asset.Asset`, and summarise any asset layer.

:func:`read_asset` inverts :func:`lift3d.usd.writer.write_asset` exactly
(points, faces, UVs, texture, parts, labels, material bindings, material
specs, cameras, provenance). :func:`summarize_asset` and
:func:`format_summary` back ``lift3d info`` and work on any USD asset, not
only ours. Both accept the asset folder (``NAME/``) or its layer file.

A lift3d asset is an interface layer with its geometry and materials behind a
payload (see :mod:`lift3d.usd.writer`); the reader opens it with the payload
loaded, so it reads the composed asset. Single-layer assets (the category
templates in ``config/templates``, older lift3d assets, other tools' files)
read the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pxr import Ar, Sdf, Tf, Usd, UsdGeom, UsdLux, UsdSemantics, UsdShade

from ..asset import Asset, MaterialSpec, Part
from ..camera import Camera
from ..errors import InputError
from .writer import PART_FAMILY

_LAYER_SUFFIXES = (".usda", ".usdc", ".usd", ".usdz")
FALLBACK_WIDTH_PX = 1920
"""Image width given to cameras that carry no pixel intrinsics of their own."""


def resolve_layer_path(path: Path | str) -> Path:
    """The asset layer for ``path``: the file itself, or ``DIR/DIR.usd[a|c]`` (or the only layer) in a folder."""
    p = Path(path)
    if p.is_dir():
        candidates = [p / f"{p.name}{suffix}" for suffix in _LAYER_SUFFIXES]
        found = [c for c in candidates if c.is_file()]
        if not found:
            found = sorted(c for c in p.iterdir() if c.suffix in _LAYER_SUFFIXES and c.is_file())
        if not found:
            raise InputError(f"{p} contains no USD layer ({p.name}.usda or {p.name}.usdc)")
        return found[0]
    if not p.exists():
        raise InputError(f"{p} does not exist")
    return p


def open_asset_stage(path: Path | str) -> tuple[Usd.Stage, Path]:
    """Open the asset at ``path`` (folder or layer) as a stage; InputError if it is not a readable USD layer.

    Layers this process already holds (the interface and its payload's layers)
    are reloaded from disk first (unless they have unsaved edits), so an asset
    rewritten since is read as it is now.
    """
    layer_path = resolve_layer_path(path)
    held = {layer.identifier for layer in Sdf.Layer.GetLoadedLayers()}
    try:
        layer = Sdf.Layer.Find(str(layer_path))
        if layer is not None and not layer.dirty:
            layer.Reload(force=True)  # the file may have been replaced since this process opened it
        elif layer is None:
            layer = Sdf.Layer.FindOrOpen(str(layer_path))
    except Tf.ErrorException:
        layer = None
    if layer is None:
        raise InputError(f"{layer_path} is not a readable USD layer")
    stage = Usd.Stage.Open(layer, Usd.Stage.LoadAll)
    for used in stage.GetUsedLayers():
        if used is not layer and used.identifier in held and not used.anonymous and not used.dirty:
            used.Reload(force=True)
    return stage, layer_path


def _default_prim(stage: Usd.Stage, layer_path: Path) -> Usd.Prim:
    prim = stage.GetDefaultPrim()
    if not prim:
        raise InputError(f"{layer_path} has no defaultPrim, so it is not a lift3d asset")
    return prim


def _find_mesh(root: Usd.Prim, layer_path: Path) -> UsdGeom.Mesh:
    for prim in Usd.PrimRange(root):
        if prim.IsA(UsdGeom.Mesh):
            return UsdGeom.Mesh(prim)
    raise InputError(f"{layer_path} contains no mesh")


def from_custom_data(value: Any) -> Any:
    """Inverse of :func:`lift3d.usd.writer.to_custom_data`: plain Python values (arrays become lists).

    Strings holding JSON containers (how the writer stores lists USD cannot
    represent) are decoded.
    """
    if isinstance(value, dict):
        return {k: from_custom_data(v) for k, v in value.items()}
    if isinstance(value, str) and value[:1] in "[{" and value[-1:] in "]}":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
        return [from_custom_data(v) for v in value]
    return value


def _surface_shader(material: UsdShade.Material) -> UsdShade.Shader | None:
    shader = material.ComputeSurfaceSource()[0]
    return shader if shader and shader.GetPrim().IsValid() else None


def _texture_of(shader: UsdShade.Shader) -> UsdShade.Shader | None:
    """The UsdUVTexture feeding ``shader``'s diffuseColor, if any."""
    diffuse = shader.GetInput("diffuseColor")
    if not diffuse or not diffuse.HasConnectedSource():
        return None
    source = diffuse.GetConnectedSources()[0][0].source
    tex = UsdShade.Shader(source.GetPrim())
    return tex if tex.GetIdAttr().Get() == "UsdUVTexture" else None


def _f32(value: float) -> float:
    """The shortest decimal that round-trips the float32 ``value`` (0.35f reads back as 0.35, not 0.3499999940)."""
    return float(np.format_float_positional(np.float32(value), unique=True))


def _input(shader: UsdShade.Shader, name: str, default: Any) -> Any:
    inp = shader.GetInput(name)
    value = inp.Get() if inp else None
    return default if value is None else value


def _material_spec(material: UsdShade.Material) -> tuple[MaterialSpec, UsdShade.Shader | None]:
    shader = _surface_shader(material)
    kind = material.GetPrim().GetCustomDataByKey("lift3d:kind") or "generic"
    if shader is None:
        return MaterialSpec(kind=kind, textured=False), None
    texture = _texture_of(shader)
    spec = MaterialSpec(
        kind=kind,
        base_color=tuple(_f32(c) for c in _input(shader, "diffuseColor", (0.18, 0.18, 0.18))),
        textured=texture is not None,
        roughness=_f32(_input(shader, "roughness", 0.5)),
        metallic=_f32(_input(shader, "metallic", 0.0)),
        opacity=_f32(_input(shader, "opacity", 1.0)),
        emissive_color=tuple(_f32(c) for c in _input(shader, "emissiveColor", (0.0, 0.0, 0.0))),
    )
    return spec, texture


def _resolve_texture(texture: UsdShade.Shader) -> tuple[str, str | None]:
    """(authored asset path, resolved filesystem path or None) of a UsdUVTexture's ``file``."""
    value = _input(texture, "file", None)
    if value is None:
        return "", None
    authored = value.path
    resolved = value.resolvedPath
    if not resolved:
        attr = texture.GetInput("file").GetAttr()
        for spec in attr.GetPropertyStack(Usd.TimeCode.Default()):
            anchored = Sdf.ComputeAssetPathRelativeToLayer(spec.layer, authored)
            resolved = str(Ar.GetResolver().Resolve(anchored)) or None
            if resolved:
                break
    return authored, resolved or None


def _camera_from_prim(prim: Usd.Prim) -> Camera:
    """A :class:`Camera` from a UsdGeom.Camera: exact customData intrinsics, else derived from the apertures.

    A USD camera has no resolution, so without ``lift3d:intrinsics`` the image
    is taken to be :data:`FALLBACK_WIDTH_PX` wide with square pixels (the
    height follows from the aperture ratio); the projection is then the same
    up to that choice of pixel grid. The pose is the prim's local-to-world.
    """
    usd_cam = UsdGeom.Camera(prim)
    c2w = np.array(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default()),
                   dtype=np.float64).T
    intr = prim.GetCustomDataByKey("lift3d:intrinsics")
    if intr is not None and len(intr) == 6:
        fx, fy, cx, cy, w, h = (float(v) for v in intr)
        width, height = int(round(w)), int(round(h))
    else:
        gf = usd_cam.GetCamera(Usd.TimeCode.Default())
        h_ap, v_ap = gf.horizontalAperture, gf.verticalAperture
        width = FALLBACK_WIDTH_PX
        height = max(1, int(round(width * v_ap / h_ap)))
        fx = gf.focalLength * width / h_ap
        fy = gf.focalLength * height / v_ap
        cx = width * (0.5 - gf.horizontalApertureOffset / h_ap)
        cy = height * (0.5 + gf.verticalApertureOffset / v_ap)
    name = prim.GetCustomDataByKey("lift3d:photo") or prim.GetCustomDataByKey("lift3d:name") or prim.GetName()
    return Camera(fx, fy, cx, cy, width, height, c2w, str(name))


def face_material_names(mesh: UsdGeom.Mesh, n_faces: int) -> np.ndarray:
    """(n_faces,) object array: name of the material bound to each face ("" where none).

    The mesh's own binding applies everywhere, then the ``materialBind``
    subsets' bindings override it on their faces (UsdShade's resolution rule).
    """
    out = np.full(n_faces, "", dtype=object)
    binding_api = UsdShade.MaterialBindingAPI(mesh.GetPrim())
    direct = binding_api.GetDirectBinding().GetMaterial()
    if direct:
        out[:] = direct.GetPrim().GetName()
    for subset in binding_api.GetMaterialBindSubsets():
        bound = UsdShade.MaterialBindingAPI(subset.GetPrim()).GetDirectBinding().GetMaterial()
        idx = np.asarray(subset.GetIndicesAttr().Get() or [], dtype=np.int64)
        if bound and len(idx) and idx.min() >= 0 and idx.max() < n_faces:
            out[idx] = bound.GetPrim().GetName()
    return out


def is_camera_alias(prim: Usd.Prim) -> bool:
    """Whether ``prim`` is the ``SourceCamera`` alias of a single-photo asset's camera (not a camera of its own)."""
    return bool(prim.GetCustomDataByKey("lift3d:aliasOf"))


def _cameras(root: Usd.Prim) -> list[Camera]:
    return [_camera_from_prim(p) for p in Usd.PrimRange(root) if p.IsA(UsdGeom.Camera) and not is_camera_alias(p)]


def _labels(prim: Usd.Prim) -> list[str]:
    attr = UsdSemantics.LabelsAPI(prim, "class").GetLabelsAttr()
    value = attr.Get() if attr else None
    return [str(v) for v in value] if value else []


def read_asset(path: Path | str) -> Asset:
    """Read the asset at ``path`` (asset folder or layer file) into an :class:`Asset`.

    Raises:
        InputError: not a readable USD layer, no defaultPrim, no mesh, or a
            mesh that is not made of triangles.
    """
    stage, layer_path = open_asset_stage(path)
    root = _default_prim(stage, layer_path)
    mesh = _find_mesh(root, layer_path)
    points = np.asarray(mesh.GetPointsAttr().Get() or [], dtype=np.float32).reshape(-1, 3)
    counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get() or [], dtype=np.int32)
    if len(counts) == 0 or np.any(counts != 3):
        raise InputError(f"{layer_path}: the mesh {mesh.GetPath()} is not a triangle mesh")
    faces = np.asarray(mesh.GetFaceVertexIndicesAttr().Get(), dtype=np.int32).reshape(-1, 3)
    st = UsdGeom.PrimvarsAPI(mesh).GetPrimvar("st")
    uv_faces = None
    if st and st.HasValue():
        uv = np.asarray(st.Get(), dtype=np.float32).reshape(-1, 2)
        if st.GetInterpolation() == UsdGeom.Tokens.faceVarying:
            idx = st.GetIndices() if st.IsIndexed() else np.arange(len(uv))
            uv_faces = np.asarray(idx, dtype=np.int32).reshape(-1, 3)
    else:
        uv = np.zeros((len(points), 2), dtype=np.float32)

    materials: dict[str, MaterialSpec] = {}
    texture_image: np.ndarray | None = None
    for prim in Usd.PrimRange(root):
        if not prim.IsA(UsdShade.Material):
            continue
        spec, tex = _material_spec(UsdShade.Material(prim))
        materials[prim.GetName()] = spec
        if tex is not None and texture_image is None:
            _, resolved = _resolve_texture(tex)
            if resolved is None:
                raise InputError(f"{layer_path}: texture of material {prim.GetName()} cannot be found")
            with Image.open(resolved) as img:
                texture_image = np.asarray(img.convert("RGBA" if "A" in img.getbands() else "RGB"))

    face_material = face_material_names(mesh, len(faces))
    parts = []
    for subset in UsdGeom.Subset.GetGeomSubsets(mesh, UsdGeom.Tokens.face, PART_FAMILY):
        idx = np.asarray(subset.GetIndicesAttr().Get() or [], dtype=np.int32)
        labels = _labels(subset.GetPrim())
        material = str(face_material[idx[0]]) if len(idx) else str(
            subset.GetPrim().GetCustomDataByKey("lift3d:material") or "")
        parts.append(Part(subset.GetPrim().GetName(), labels[0] if labels else "object", idx, material))
    if not parts:
        parts = [Part("object", "object", np.arange(len(faces)), str(face_material[0]) if len(faces) else "")]
    for part in parts:
        if part.material not in materials:
            part.material = part.material or "object"
            materials.setdefault(part.material, MaterialSpec.preset("generic", textured=False))

    provenance = from_custom_data(dict(root.GetCustomDataByKey("lift3d") or {}))
    return Asset(name=root.GetName(), points=points, faces=faces, uv=uv, uv_faces=uv_faces,
                 texture=texture_image, parts=parts, materials=materials, cameras=_cameras(root),
                 provenance=provenance)


def summarize_asset(path: Path | str) -> dict[str, Any]:
    """A JSON-serialisable summary of the asset at ``path`` (asset folder or layer file).

    Keys: ``file``, ``defaultPrim``, ``kind``, ``upAxis``, ``metersPerUnit``,
    ``prim_count``, ``prims`` ([path, type]), ``triangles``, ``vertices``,
    ``parts`` ({name, label, faces, material}), ``materials`` ({name, kind,
    textured, roughness, opacity, emissive}), ``lights`` ({path, type}),
    ``cameras`` ({name, resolution, fx, fy, alias}: ``alias`` is the name of the ``SourceCamera``
    alias a single-photo asset gives its camera, else ""), ``textures`` ({path, resolves}),
    ``provenance`` (top-level keys of the defaultPrim's ``lift3d`` customData).
    """
    stage, layer_path = open_asset_stage(path)
    root = stage.GetDefaultPrim()
    prims = [[str(p.GetPath()), p.GetTypeName() or "-"] for p in stage.Traverse()]
    triangles = vertices = 0
    parts: list[dict[str, Any]] = []
    materials: list[dict[str, Any]] = []
    lights: list[dict[str, Any]] = []
    cameras: list[dict[str, Any]] = []
    textures: list[dict[str, Any]] = []
    aliases = {(p.GetParent().GetPath(), str(p.GetCustomDataByKey("lift3d:aliasOf"))): p.GetName()
               for p in stage.Traverse() if p.IsA(UsdGeom.Camera) and is_camera_alias(p)}
    for prim in stage.Traverse():
        if prim.IsA(UsdGeom.Mesh):
            mesh = UsdGeom.Mesh(prim)
            counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get() or [], dtype=np.int64)
            triangles += int(np.maximum(counts - 2, 0).sum())
            vertices += len(mesh.GetPointsAttr().Get() or [])
            face_material = face_material_names(mesh, len(counts))
            for subset in UsdGeom.Subset.GetGeomSubsets(mesh, UsdGeom.Tokens.face, PART_FAMILY):
                labels = _labels(subset.GetPrim())
                idx = np.asarray(subset.GetIndicesAttr().Get() or [], dtype=np.int64)
                idx = idx[(idx >= 0) & (idx < len(counts))]
                names = sorted({str(m) for m in face_material[idx] if m})
                parts.append({"name": subset.GetPrim().GetName(), "label": labels[0] if labels else "",
                              "faces": len(idx), "material": ",".join(names)})
        elif prim.IsA(UsdShade.Material):
            spec, tex = _material_spec(UsdShade.Material(prim))
            kind = prim.GetCustomDataByKey("lift3d:kind") or "-"  # only lift3d materials record their intent
            materials.append({"name": prim.GetName(), "kind": kind, "textured": spec.textured,
                              "roughness": round(spec.roughness, 4), "opacity": round(spec.opacity, 4),
                              "emissive": any(c > 0 for c in spec.emissive_color)})
        elif prim.HasAPI(UsdLux.LightAPI):
            lights.append({"path": str(prim.GetPath()), "type": prim.GetTypeName(),
                           "shaping": prim.HasAPI(UsdLux.ShapingAPI)})
        elif prim.IsA(UsdGeom.Camera) and not is_camera_alias(prim):
            cam = _camera_from_prim(prim)
            cameras.append({"name": prim.GetName(), "resolution": [cam.width, cam.height],
                            "fx": round(cam.fx, 3), "fy": round(cam.fy, 3),
                            "alias": aliases.get((prim.GetParent().GetPath(), prim.GetName()), "")})
        elif prim.IsA(UsdShade.Shader) and UsdShade.Shader(prim).GetIdAttr().Get() == "UsdUVTexture":
            authored, resolved = _resolve_texture(UsdShade.Shader(prim))
            if authored and all(t["path"] != authored for t in textures):
                textures.append({"path": authored, "resolves": bool(resolved and Path(resolved).is_file())})
    provenance = root.GetCustomDataByKey("lift3d") if root else None
    return {
        "file": str(layer_path),
        "defaultPrim": root.GetName() if root else "",
        "kind": (Usd.ModelAPI(root).GetKind() or "") if root else "",
        "upAxis": str(UsdGeom.GetStageUpAxis(stage)),
        "metersPerUnit": float(UsdGeom.GetStageMetersPerUnit(stage)),
        "prim_count": len(prims),
        "prims": prims,
        "triangles": triangles,
        "vertices": vertices,
        "parts": parts,
        "materials": materials,
        "lights": lights,
        "cameras": cameras,
        "textures": textures,
        "provenance": sorted(provenance.keys()) if isinstance(provenance, dict) else [],
    }


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def format_summary(summary: dict[str, Any]) -> str:
    """Readable, aligned text of a :func:`summarize_asset` dict (what ``lift3d info`` prints)."""
    head = [
        ["file", summary["file"]],
        ["defaultPrim", f"/{summary['defaultPrim']}" + (f" (kind {summary['kind']})" if summary["kind"] else "")],
        ["stage", f"upAxis {summary['upAxis']}, metersPerUnit {summary['metersPerUnit']:g}"],
        ["geometry", f"{summary['triangles']} triangles, {summary['vertices']} vertices"],
        ["prims", str(summary["prim_count"])],
    ]
    lines = _table(head, indent="")
    sections: list[tuple[str, list[str], list[list[str]]]] = [
        ("parts", ["name", "label", "faces", "material"],
         [[p["name"], p["label"], str(p["faces"]), p["material"]] for p in summary["parts"]]),
        ("materials", ["name", "kind", "textured", "roughness", "opacity", "emissive"],
         [[m["name"], m["kind"], "yes" if m["textured"] else "no", f"{m['roughness']:g}", f"{m['opacity']:g}",
           "yes" if m["emissive"] else "no"] for m in summary["materials"]]),
        ("lights", ["path", "type", "shaping"],
         [[li["path"], li["type"], "yes" if li["shaping"] else "no"] for li in summary["lights"]]),
        ("cameras", ["name", "resolution", "fx", "fy", "alias"],
         [[c["name"], f"{c['resolution'][0]}x{c['resolution'][1]}", f"{c['fx']:g}", f"{c['fy']:g}",
           c.get("alias") or "-"] for c in summary["cameras"]]),
        ("textures", ["path", "resolves"],
         [[t["path"], "yes" if t["resolves"] else "NO"] for t in summary["textures"]]),
    ]
    for title, header, rows in sections:
        lines.append(f"{title} ({len(rows)})" + (":" if rows else ""))
        if rows:
            lines += _table([header, *rows])
    if summary["provenance"]:
        lines.append("provenance: " + ", ".join(summary["provenance"]))
    return "\n".join(lines)

