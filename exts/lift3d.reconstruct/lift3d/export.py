"""Interchange formats: an asset to glTF 2.0 (``.glb``, ``.gltf``) or Wavefront OBJ, through trimesh.

``lift3d export ASSET --format glb|gltf|obj [--out FILE]``

* **Parts** become separate named meshes (glTF: one node and one mesh per
  part, named after the part, under a root node named after the asset; OBJ:
  one ``o`` object per part).
* **Materials** carry the asset's UsdPreviewSurface intent: base colour
  (linear RGB, with opacity as alpha and ``BLEND`` mode below 1), roughness,
  metallic and emissive colour (glTF's emissive factor is limited to [0, 1],
  so a brighter emitter keeps its hue at full strength). A textured material
  gets the albedo texture as its base colour texture and a white factor.
  OBJ's MTL gets ``Kd``, ``d`` and ``map_Kd`` plus the PBR extension lines
  ``Pr`` (roughness), ``Pm`` (metallic) and ``Ke`` (emission) that Blender and
  others read.
* **Textures are embedded**: inside the ``.glb`` binary chunk, as a data URI
  in a ``.gltf``; an OBJ writes its texture image beside the ``.mtl``.
* **Units and axes**: metres, +Y up, front towards +Z: the asset's own frame,
  which is glTF's convention, so no transform is applied.

Face-varying UVs (seams) are unwelded per part: every distinct (vertex, uv)
pair of a part becomes one exported vertex. Nothing here imports ``pxr``.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .asset import Asset, MaterialSpec
from .errors import InputError

FORMATS = ("glb", "gltf", "obj")


def _part_mesh(asset: Asset, faces_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices (n, 3), uv (n, 2), faces (k, 3)) of the faces ``faces_idx``, one vertex per distinct (point, uv)."""
    faces = asset.faces[faces_idx]
    uv_faces = asset.uv_faces[faces_idx] if asset.uv_faces is not None else faces
    pairs = np.stack([faces.reshape(-1), uv_faces.reshape(-1)], axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    vertices = asset.points[unique[:, 0]].astype(np.float64)
    uv = asset.uv[unique[:, 1]].astype(np.float64) if len(asset.uv) else np.zeros((len(unique), 2))
    return vertices, uv, inverse.reshape(-1, 3).astype(np.int64)


def _emissive(spec: MaterialSpec) -> list[float]:
    e = np.clip(np.asarray(spec.emissive_color, dtype=np.float64), 0.0, None)
    peak = float(e.max()) if e.size else 0.0
    return (e / peak if peak > 1.0 else e).tolist()


def _texture_image(asset: Asset) -> Any:
    from PIL import Image

    tex = np.ascontiguousarray(asset.texture)
    return Image.fromarray(tex, "RGBA" if tex.shape[2] == 4 else "RGB")


def _material(name: str, spec: MaterialSpec, texture: Any) -> Any:
    from trimesh.visual.material import PBRMaterial

    textured = spec.textured and texture is not None
    base = [1.0, 1.0, 1.0] if textured else [float(c) for c in spec.base_color]
    opacity = float(np.clip(spec.opacity, 0.0, 1.0))
    return PBRMaterial(name=name, baseColorFactor=[*base, opacity], baseColorTexture=texture if textured else None,
                       roughnessFactor=float(spec.roughness), metallicFactor=float(spec.metallic),
                       emissiveFactor=_emissive(spec), alphaMode="BLEND" if opacity < 1.0 else "OPAQUE",
                       doubleSided=False)


def asset_scene(asset: Asset) -> Any:
    """A ``trimesh.Scene`` of ``asset``: one named, textured mesh per part under a root node named after it."""
    import trimesh
    from trimesh.visual import TextureVisuals

    if len(asset.faces) == 0:
        raise InputError(f"asset {asset.name} has no geometry to export")
    texture = _texture_image(asset) if asset.texture is not None else None
    materials = {name: _material(name, spec, texture) for name, spec in asset.materials.items()}
    scene = trimesh.Scene()
    scene.graph.update(frame_from=scene.graph.base_frame, frame_to=asset.name, matrix=np.eye(4))
    for part in asset.parts:
        if len(part.faces) == 0:
            continue
        vertices, uv, faces = _part_mesh(asset, part.faces)
        material = materials.get(part.material) or _material(part.material, MaterialSpec.preset("generic"), None)
        textured = material.baseColorTexture is not None  # UVs only where a texture uses them
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False,
                               visual=TextureVisuals(uv=uv if textured else None, material=material))
        mesh.metadata["name"] = part.name
        scene.add_geometry(mesh, node_name=part.name, geom_name=part.name, parent_node_name=asset.name)
    return scene


def export_bytes(asset: Asset, fmt: str, stem: str | None = None) -> dict[str, bytes]:
    """The files of ``asset`` in format ``fmt`` as {file name: bytes}; the main file comes first.

    ``stem`` names the files (default: the asset's name): ``STEM.glb``; ``STEM.gltf``;
    ``STEM.obj`` with ``STEM.mtl`` and its texture image.
    """
    from trimesh.exchange.gltf import export_glb, export_gltf
    from trimesh.exchange.obj import export_obj

    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    stem = stem or asset.name
    scene = asset_scene(asset)
    if fmt == "glb":
        return {f"{stem}.glb": _glb_with_exact_factors(export_glb(scene, unitize_normals=True), asset)}
    if fmt == "gltf":
        doc = json.loads(export_gltf(scene, embed_buffers=True, unitize_normals=True)["model.gltf"])
        return {f"{stem}.gltf": json.dumps(_exact_factors(doc, asset), indent=1).encode("utf-8")}
    text, extra = export_obj(scene, include_normals=False, include_texture=True, return_texture=True,
                             mtl_name=f"{stem}.mtl")
    return _finish_obj(asset, stem, text, extra)


def _exact_factors(doc: dict[str, Any], asset: Asset) -> dict[str, Any]:
    """Put the materials' exact float factors back (trimesh stores colours as 8-bit, which loses dark linear ones)."""
    for material in doc.get("materials", []):
        spec = asset.materials.get(material.get("name", ""))
        if spec is None:
            continue
        pbr = material.setdefault("pbrMetallicRoughness", {})
        base = [1.0, 1.0, 1.0] if "baseColorTexture" in pbr else [float(c) for c in spec.base_color]
        pbr["baseColorFactor"] = [*base, float(np.clip(spec.opacity, 0.0, 1.0))]
        material["emissiveFactor"] = _emissive(spec)
    return doc


def _glb_with_exact_factors(glb: bytes, asset: Asset) -> bytes:
    """``glb`` with its JSON chunk passed through :func:`_exact_factors` (binary chunk unchanged)."""
    (json_len,) = struct.unpack("<I", glb[12:16])
    doc = _exact_factors(json.loads(glb[20:20 + json_len]), asset)
    text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned; JSON pads with spaces
    rest = glb[20 + json_len:]
    body = struct.pack("<I4s", len(text), b"JSON") + text + rest
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def _finish_obj(asset: Asset, stem: str, text: str, extra: dict[str, bytes]) -> dict[str, bytes]:
    """Add the PBR extension lines to trimesh's MTL, and name the texture file after the asset."""
    mtl = extra.pop(f"{stem}.mtl", b"").decode("utf-8")
    renames = {}
    for old in list(extra):
        new = f"{stem}_{old}"
        renames[old] = new
        extra[new] = extra.pop(old)
    lines_out: list[str] = []
    for line in mtl.splitlines():
        words = line.split()
        if words and words[0].startswith("map_") and words[-1] in renames:
            line = " ".join([*words[:-1], renames[words[-1]]])
        lines_out.append(line)
        if words[:1] == ["newmtl"] and len(words) > 1:
            spec = asset.materials.get(words[1])
            if spec is not None:
                lines_out += [f"Pr {spec.roughness:.6g}", f"Pm {spec.metallic:.6g}",
                              "Ke " + " ".join(f"{c:.6g}" for c in _emissive(spec))]
    return {f"{stem}.obj": text.encode("utf-8"), f"{stem}.mtl": "\n".join(lines_out).encode("utf-8") + b"\n",
            **extra}


def export_asset(path: Path | str, fmt: str, out: Path | str | None = None) -> list[Path]:
    """Export the asset at ``path`` (folder or layer) to ``out`` (default ``<asset folder>/<name>.<fmt>``).

    Returns the written files, main file first; each is written atomically.
    """
    from .atomic import write_bytes_atomic
    from .usd.reader import read_asset, resolve_layer_path

    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    asset = read_asset(path)
    target = Path(out) if out is not None else resolve_layer_path(path).parent / f"{asset.name}.{fmt}"
    if target.suffix.lower() != f".{fmt}":
        raise InputError(f"export file {target} must end in .{fmt} for --format {fmt}")
    files = export_bytes(asset, fmt, stem=target.stem)
    written = []
    for name, data in files.items():
        dest = target.parent / name
        write_bytes_atomic(dest, data)
        written.append(dest)
    return written


def load_back(data: bytes, fmt: str = "glb") -> Any:
    """Read exported glTF bytes back as a ``trimesh.Scene`` (a round-trip check for tests and users)."""
    import trimesh

    return trimesh.load(io.BytesIO(data), file_type=fmt, force="scene")
