"""Write an :class:`lift3d.asset.Asset` as a USD asset folder (``docs/DESIGN.md``, section 4).

The folder follows the OpenUSD asset-structure guidelines: a small, readable
interface layer that a stage references, and the heavy data behind a payload::

    NAME/NAME.usda           interface: defaultPrim /NAME (Xform, kind component, assetInfo, extentsHint,
                             customData "lift3d" = provenance), the payload arc, and the Cameras
    NAME/NAME_geo.usdc       the payload: /NAME/Geom and /NAME/Lights, the mesh arrays, subsets and
                             lamps (crate); it sublayers the materials
    NAME/NAME_mat.usda       /NAME/Looks: the materials (small, text)
    NAME/textures/albedo.png

Each layer opens on its own as a complete stage: the geometry layer brings
its materials along, so its bindings resolve even without the interface.

Composed, the prims are::

    /NAME                    Xform, kind=component
      Geom                   Scope
        mesh                 Mesh: points, faceVertexCounts/Indices, normals (vertex, area-weighted),
                             primvars:st (faceVarying+indices, or vertex), extent, subdivisionScheme none
          <part>             GeomSubset, familyName "part" (partition), SemanticsLabelsAPI:class = label
          bind_<material>    GeomSubset, familyName "materialBind" (partition), material:binding
      Looks                  Scope
        <material>           Material -> PreviewSurface (UsdPreviewSurface)
                               [AlbedoTexture (UsdUVTexture) <- StReader (UsdPrimvarReader_float2)]
      Lights                 Scope, only when a part is labelled "headlight"
        <part>_<i>           SphereLight + ShapingAPI, one per connected component of the part
      Cameras                Scope
        <photo>              Camera of each input view, named after its photo (``photo_0.png`` ->
                             ``photo_0``); customData ``lift3d:photo`` = the photo
        SourceCamera         with a single photo only: an internal reference to that camera, so
                             ``Cameras/SourceCamera`` keeps working (customData ``lift3d:aliasOf``)

Why the split: the guidelines keep what a stage needs while the asset is
unloaded (name, kind, bounds, provenance) in the interface layer and the heavy
arrays in crate, which ``omniverse-asset-validator`` asks for. Materials are
small and stay text; lamps belong to the geometry. The cameras stay in the
interface: they describe how the photos were taken rather than the object, and
a user can look through them with the payload unloaded.

Materials are bound through a second subset family, ``materialBind``, rather
than on the ``part`` subsets themselves: that is the family UsdShade's binding
resolution (and so Hydra, Omniverse RTX and usdview) reads, and the one the
USD validators require for subsets that carry bindings. Each part's material is
still recovered exactly, because every part has one material. The mesh itself
is bound to the material covering the most faces, as a fallback.

Cameras: ``horizontalAperture`` is fixed at 20.955 mm (35 mm Academy, USD's
default) and the rest follows from the pixel intrinsics of
:class:`lift3d.camera.Camera`: ``focalLength = fx * H / width``,
``verticalAperture = H * height / width * fx / fy`` and the aperture offsets
move the film window so the principal point lands on ``(cx, cy)`` (see
:func:`camera_apertures`). The exact pixel intrinsics are also stored in the
camera's customData ``lift3d:intrinsics = [fx, fy, cx, cy, width, height]``.

Format: the interface is ``.usda`` by default (``fmt="usdc"`` or
``output.format`` makes it crate too); the geometry is always crate.

The whole folder is built in a hidden temporary sibling and swapped in with
:func:`lift3d.atomic.replace_dir_atomic`: an error mid-write leaves the
previous folder untouched and no temporary debris.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pxr import Gf, Kind, Sdf, Usd, UsdGeom, UsdLux, UsdSemantics, UsdShade, Vt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .. import __version__
from ..asset import Asset, MaterialSpec
from ..atomic import replace_dir_atomic
from ..camera import Camera
from ..errors import InputError
from ..naming import sanitize_name, unique_name

FORMATS = ("usda", "usdc")
HORIZONTAL_APERTURE_MM = 20.955
"""Fixed film-back width of every written camera, millimetres (USD's default)."""
TEXTURE_REL_PATH = "./textures/albedo.png"
"""Asset path of the albedo texture, relative to the asset layer."""
PART_FAMILY = "part"
LIGHT_LABEL = "headlight"
LIGHT_CONE_ANGLE_DEG = 35.0
LIGHT_CONE_SOFTNESS = 0.3
LIGHT_INTENSITY = 5000.0
LIGHT_COLOR = (1.0, 0.95, 0.85)
HEADLIGHT_MIN_LEVEL = 0.17
"""Smallest horizontal share of a lamp's normal (sin of ~10 deg) for which the beam is levelled."""


SOURCE_CAMERA = "SourceCamera"
"""Name of the alias of a single-photo asset's camera."""
GEO_SUFFIX, MAT_SUFFIX = "_geo.usdc", "_mat.usda"
"""File names of the payload's layers, after the asset name."""
_PAYLOAD_CHILDREN = {"geo": ("Geom", "Lights"), "mat": ("Looks",)}


def camera_names(cameras: list[Camera]) -> list[str]:
    """Prim names of the cameras: each photo's name as a USD identifier (``photo_0.png`` -> ``photo_0``),
    made unique in order (``photo_0_2`` for a second camera of the same name)."""
    names: list[str] = []
    for cam in cameras:
        names.append(unique_name(sanitize_name(cam.name, fallback="camera"), names))
    return names


def layer_files(name: str, fmt: str = "usda") -> dict[str, str]:
    """The asset's layer file names: ``interface``, ``geo`` (the payload) and ``mat``."""
    return {"interface": f"{name}.{fmt}", "geo": name + GEO_SUFFIX, "mat": name + MAT_SUFFIX}


def camera_apertures(cam: Camera, horizontal_aperture: float = HORIZONTAL_APERTURE_MM) -> dict[str, float]:
    """USD camera attributes (millimetres) equivalent to ``cam``'s pixel intrinsics.

    A ``UsdGeom.Camera`` images the film window ``[hoff - H/2, hoff + H/2] x
    [voff - V/2, voff + V/2]`` (film plane at ``focalLength``, +y up). Matching it
    with :mod:`lift3d.camera`'s ``u = cx + fx x/(-z)``, ``v = cy - fy y/(-z)``
    (``v`` down) gives ``focalLength = fx H / width``, ``V = focalLength * height / fy``,
    ``hoff = H (0.5 - cx / width)`` and ``voff = V (cy / height - 0.5)``.
    """
    h = float(horizontal_aperture)
    focal = cam.fx * h / cam.width
    v = focal * cam.height / cam.fy
    return {
        "focalLength": focal,
        "horizontalAperture": h,
        "verticalAperture": v,
        "horizontalApertureOffset": h * (0.5 - cam.cx / cam.width),
        "verticalApertureOffset": v * (cam.cy / cam.height - 0.5),
    }


def vertex_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) float32 unit vertex normals, area-weighted over incident faces.

    ``points`` is (V, 3), ``faces`` (F, 3) counter-clockwise from outside. A
    vertex without a usable normal (isolated, or only degenerate faces) gets +Y.
    """
    p = np.asarray(points, dtype=np.float64)
    cross = np.cross(p[faces[:, 1]] - p[faces[:, 0]], p[faces[:, 2]] - p[faces[:, 0]])  # 2 * area * normal
    acc = np.zeros_like(p)
    for k in range(3):
        np.add.at(acc, faces[:, k], cross)
    norm = np.linalg.norm(acc, axis=1, keepdims=True)
    out = np.where(norm > 1e-20, acc / np.maximum(norm, 1e-30), np.array([0.0, 1.0, 0.0]))
    return out.astype(np.float32)


def face_components(faces: np.ndarray) -> np.ndarray:
    """(K,) component id per face of a (K, 3) face array; faces sharing a vertex are connected."""
    if len(faces) == 0:
        return np.zeros(0, dtype=np.int64)
    verts, inverse = np.unique(faces.reshape(-1), return_inverse=True)
    local = inverse.reshape(-1, 3)
    rows = np.concatenate([local[:, 0], local[:, 1]])
    cols = np.concatenate([local[:, 1], local[:, 2]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(verts), len(verts)))
    _, labels = connected_components(graph, directed=False)
    return labels[local[:, 0]]


def to_custom_data(value: Any) -> Any:
    """Convert a JSON-like value into something USD customData can hold.

    Dicts (with string keys) stay dicts; numbers, strings and bools stay
    scalars (numpy scalars become Python ones); non-empty homogeneous lists of
    numbers or strings (and numpy arrays) become arrays. Anything USD cannot
    represent (``None``, empty or mixed lists, lists of dicts) is stored as its
    JSON text.
    """
    if isinstance(value, Mapping):
        return {str(k): to_custom_data(v) for k, v in value.items() if v is not None}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
            return json.dumps(value)
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        items = np.asarray(value).reshape(-1).tolist() if isinstance(value, np.ndarray) else list(value)
        if isinstance(value, np.ndarray) and value.ndim > 1:
            return json.dumps(np.asarray(value).tolist())
        items = [v.item() if isinstance(v, np.generic) else v for v in items]
        if items and all(isinstance(v, str) for v in items):
            return Vt.StringArray(items)
        if items and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            if all(isinstance(v, int) and -2**63 <= v < 2**63 for v in items):
                return Vt.Int64Array(items)
            return Vt.DoubleArray([float(v) for v in items])
        return json.dumps(items, default=str)
    return json.dumps(value, default=str)


def _check_names(asset: Asset) -> None:
    bad = [n for n in [asset.name, *(p.name for p in asset.parts), *asset.materials]
           if not Sdf.Path.IsValidIdentifier(n)]
    if bad:
        raise InputError(f"asset {asset.name!r} has names that are not valid USD identifiers: {', '.join(map(repr, bad))}")


def _define_material(stage: Usd.Stage, path: Sdf.Path, spec: MaterialSpec, textured: bool) -> UsdShade.Material:
    """A UsdPreviewSurface network for ``spec`` at ``path``; textured ones read the albedo texture via ``st``."""
    material = UsdShade.Material.Define(stage, path)
    material.GetPrim().SetCustomDataByKey("lift3d:kind", spec.kind)
    surface = UsdShade.Shader.Define(stage, path.AppendChild("PreviewSurface"))
    surface.CreateIdAttr("UsdPreviewSurface")
    diffuse = surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f)
    diffuse.Set(Gf.Vec3f(*spec.base_color))
    surface.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(float(spec.roughness))
    surface.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(float(spec.metallic))
    surface.CreateInput("opacity", Sdf.ValueTypeNames.Float).Set(float(spec.opacity))
    surface.CreateInput("emissiveColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(*spec.emissive_color))
    if spec.kind == "glass":
        surface.CreateInput("ior", Sdf.ValueTypeNames.Float).Set(1.5)
    material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")
    if textured:
        st_name = material.CreateInput("frame:stPrimvarName", Sdf.ValueTypeNames.String)
        st_name.Set("st")
        reader = UsdShade.Shader.Define(stage, path.AppendChild("StReader"))
        reader.CreateIdAttr("UsdPrimvarReader_float2")
        reader.CreateInput("varname", Sdf.ValueTypeNames.String).ConnectToSource(st_name)
        reader.CreateOutput("result", Sdf.ValueTypeNames.Float2)
        texture = UsdShade.Shader.Define(stage, path.AppendChild("AlbedoTexture"))
        texture.CreateIdAttr("UsdUVTexture")
        texture.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(Sdf.AssetPath(TEXTURE_REL_PATH))
        texture.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
        texture.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("clamp")
        texture.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("clamp")
        texture.CreateInput("fallback", Sdf.ValueTypeNames.Float4).Set(Gf.Vec4f(*spec.base_color, 1.0))
        texture.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
        texture.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
        diffuse.ConnectToSource(texture.ConnectableAPI(), "rgb")
    return material


def _write_mesh(stage: Usd.Stage, path: Sdf.Path, asset: Asset) -> UsdGeom.Mesh:
    mesh = UsdGeom.Mesh.Define(stage, path)
    points = asset.points
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(points))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(asset.faces), 3, dtype=np.int32)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(asset.faces.reshape(-1)))
    mesh.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(vertex_normals(points, asset.faces)))
    mesh.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    mesh.CreateOrientationAttr(UsdGeom.Tokens.rightHanded)
    mesh.CreateDoubleSidedAttr(False)
    mesh.CreateExtentAttr(UsdGeom.Mesh.ComputeExtent(mesh.GetPointsAttr().Get()))
    interp = UsdGeom.Tokens.vertex if asset.uv_faces is None else UsdGeom.Tokens.faceVarying
    st = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, interp)
    st.Set(Vt.Vec2fArray.FromNumpy(asset.uv))
    if asset.uv_faces is not None:
        st.SetIndices(Vt.IntArray.FromNumpy(asset.uv_faces.reshape(-1)))
    return mesh


def _write_parts(mesh: UsdGeom.Mesh, asset: Asset, materials: dict[str, UsdShade.Material]) -> None:
    """Part subsets with semantic labels, materialBind subsets with bindings, and the mesh's fallback binding."""
    for part in asset.parts:
        subset = UsdGeom.Subset.CreateGeomSubset(mesh, part.name, UsdGeom.Tokens.face,
                                                 Vt.IntArray.FromNumpy(part.faces), PART_FAMILY,
                                                 UsdGeom.Tokens.partition)
        labels = UsdSemantics.LabelsAPI.Apply(subset.GetPrim(), "class")
        labels.CreateLabelsAttr(Vt.TokenArray([part.label]))
        if len(part.faces) == 0:  # no face carries its binding, so record the material by name
            subset.GetPrim().SetCustomDataByKey("lift3d:material", part.material)
    binding = UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim())
    faces_per_material: dict[str, list[np.ndarray]] = {}
    for part in asset.parts:
        faces_per_material.setdefault(part.material, []).append(part.faces)
    taken = {p.name for p in asset.parts}
    for name, chunks in faces_per_material.items():
        indices = np.sort(np.concatenate(chunks)).astype(np.int32)
        if len(indices) == 0:
            continue
        subset_name = unique_name(f"bind_{name}", taken)
        taken.add(subset_name)
        subset = binding.CreateMaterialBindSubset(subset_name, Vt.IntArray.FromNumpy(indices), UsdGeom.Tokens.face)
        UsdShade.MaterialBindingAPI.Apply(subset.GetPrim()).Bind(materials[name])
    binding.SetMaterialBindSubsetsFamilyType(UsdGeom.Tokens.partition)
    commonest = max(faces_per_material, key=lambda m: sum(len(c) for c in faces_per_material[m]))
    binding.Bind(materials[commonest])


def _frame_from_normal(origin: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """(4, 4) local-to-world (column vectors) whose -Z axis points along ``normal``, placed at ``origin``."""
    z = -normal / np.linalg.norm(normal)
    up = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.99 else np.array([1.0, 0.0, 0.0])
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, origin
    return m


def headlight_frames(asset: Asset) -> list[tuple[str, np.ndarray, float]]:
    """One light per connected component of every ``headlight`` part.

    Returns ``(prim name, (4, 4) local-to-world, radius in metres)`` per light:
    the light sits at the component's area-weighted centroid, pushed outwards
    along the component's mean normal by 1% of the asset's bounding-box
    diagonal (at least 5 mm), and emits along that normal (UsdLux lights emit
    along their -Z). The mean normal is the area-weighted sum of the normals of
    the faces that look away from the asset's centre (all faces when none do),
    so closed lamp blocks, whose normals cancel, still point outwards.
    Headlights light the road, not the sky: the beam aims along the horizontal
    part of that normal (+Y is up in every lift3d frame; lamp glass on a car is
    often sloped), unless the normal is within about 10 degrees of vertical.
    """
    pts = asset.points.astype(np.float64)
    diag = float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
    centre = 0.5 * (pts.max(axis=0) + pts.min(axis=0))
    out: list[tuple[str, np.ndarray, float]] = []
    for part in asset.parts:
        if part.label != LIGHT_LABEL or len(part.faces) == 0:
            continue
        faces = asset.faces[part.faces]
        comps = face_components(faces)
        for c in range(int(comps.max()) + 1):
            f = faces[comps == c]
            a, b, d = pts[f[:, 0]], pts[f[:, 1]], pts[f[:, 2]]
            cross = np.cross(b - a, d - a)
            area = 0.5 * np.linalg.norm(cross, axis=1)
            centroids = (a + b + d) / 3.0
            centroid = (centroids * area[:, None]).sum(0) / area.sum() if area.sum() > 0 else centroids.mean(0)
            outward = centroid - centre
            facing = cross @ outward > 0.0  # a closed lamp block's normals cancel; keep its outer side
            normal = cross[facing].sum(axis=0) if facing.any() else cross.sum(axis=0)
            if np.linalg.norm(normal) < 1e-12:
                normal = cross.sum(axis=0)
            if np.linalg.norm(normal) < 1e-12:
                normal = outward if np.linalg.norm(outward) > 1e-12 else np.array([0.0, 0.0, 1.0])
            normal = normal / np.linalg.norm(normal)
            corners = pts[f.reshape(-1)]
            size = float(np.linalg.norm(corners.max(axis=0) - corners.min(axis=0)))
            radius = float(np.clip(0.25 * size, 0.005, 0.1))
            origin = centroid + normal * max(0.01 * diag, 0.005)
            level = np.array([normal[0], 0.0, normal[2]])
            aim = level / np.linalg.norm(level) if np.linalg.norm(level) > HEADLIGHT_MIN_LEVEL else normal
            out.append((f"{part.name}_{c}", _frame_from_normal(origin, aim), radius))
    return out


def _write_lights(stage: Usd.Stage, root: Sdf.Path, asset: Asset) -> None:
    frames = headlight_frames(asset)
    if not frames:
        return
    scope = UsdGeom.Scope.Define(stage, root.AppendChild("Lights"))
    for name, frame, radius in frames:
        light = UsdLux.SphereLight.Define(stage, scope.GetPath().AppendChild(name))
        light.AddTransformOp().Set(Gf.Matrix4d(frame.T.tolist()))
        light.CreateRadiusAttr(radius)
        light.CreateIntensityAttr(LIGHT_INTENSITY)
        light.CreateColorAttr(Gf.Vec3f(*LIGHT_COLOR))
        shaping = UsdLux.ShapingAPI.Apply(light.GetPrim())
        shaping.CreateShapingConeAngleAttr(LIGHT_CONE_ANGLE_DEG)
        shaping.CreateShapingConeSoftnessAttr(LIGHT_CONE_SOFTNESS)
        light.CreateExtentAttr(UsdGeom.Boundable.ComputeExtentFromPlugins(
            UsdGeom.Boundable(light.GetPrim()), Usd.TimeCode.Default()))


def _write_cameras(stage: Usd.Stage, root: Sdf.Path, asset: Asset) -> None:
    if not asset.cameras:
        return
    scope = UsdGeom.Scope.Define(stage, root.AppendChild("Cameras"))
    pts = asset.points.astype(np.float64)
    centre = 0.5 * (pts.max(axis=0) + pts.min(axis=0))
    radius = 0.5 * float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
    names = camera_names(asset.cameras)
    for name, cam in zip(names, asset.cameras):
        usd_cam = UsdGeom.Camera.Define(stage, scope.GetPath().AppendChild(name))
        usd_cam.AddTransformOp().Set(Gf.Matrix4d(cam.cam_to_world.T.tolist()))
        usd_cam.CreateProjectionAttr(UsdGeom.Tokens.perspective)
        for attr, value in camera_apertures(cam).items():
            usd_cam.GetPrim().GetAttribute(attr).Set(float(value))
        distance = float(np.linalg.norm(cam.position - centre))
        near = max(0.01, 0.5 * (distance - radius))
        far = max(2.0 * (distance + radius), near * 10.0)
        usd_cam.CreateClippingRangeAttr(Gf.Vec2f(near, far))
        prim = usd_cam.GetPrim()
        prim.SetCustomDataByKey("lift3d:intrinsics", Vt.DoubleArray(
            [cam.fx, cam.fy, cam.cx, cam.cy, float(cam.width), float(cam.height)]))
        prim.SetCustomDataByKey("lift3d:photo", cam.name)
    if len(names) == 1 and names[0] != SOURCE_CAMERA:
        alias = stage.DefinePrim(scope.GetPath().AppendChild(SOURCE_CAMERA))
        alias.GetReferences().AddInternalReference(scope.GetPath().AppendChild(names[0]))
        alias.SetCustomDataByKey("lift3d:aliasOf", names[0])


def build_stage(asset: Asset) -> Usd.Stage:
    """Author ``asset`` into a new in-memory stage, all in its one root layer (:func:`split_layers` splits it)."""
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root_path = Sdf.Path.absoluteRootPath.AppendChild(asset.name)
    root = UsdGeom.Xform.Define(stage, root_path).GetPrim()
    stage.SetDefaultPrim(root)
    Usd.ModelAPI(root).SetKind(Kind.Tokens.component)
    root.SetCustomDataByKey("lift3d", to_custom_data(asset.provenance))
    model = Usd.ModelAPI(root)
    model.SetAssetName(asset.name)
    model.SetAssetVersion(__version__)
    layer = stage.GetRootLayer()
    layer.customLayerData = {"lift3d": {"version": __version__}}
    layer.documentation = f"lift3d asset {asset.name}"

    textured = asset.texture is not None
    UsdGeom.Scope.Define(stage, root_path.AppendChild("Looks"))
    materials = {name: _define_material(stage, root_path.AppendChild("Looks").AppendChild(name), spec,
                                        textured and spec.textured)
                 for name, spec in asset.materials.items()}
    UsdGeom.Scope.Define(stage, root_path.AppendChild("Geom"))
    mesh = _write_mesh(stage, root_path.AppendChild("Geom").AppendChild("mesh"), asset)
    _write_parts(mesh, asset, materials)
    _write_lights(stage, root_path, asset)
    _write_cameras(stage, root_path, asset)

    cache = UsdGeom.BBoxCache(Usd.TimeCode.Default(),
                              [UsdGeom.Tokens.default_, UsdGeom.Tokens.render, UsdGeom.Tokens.proxy])
    model = UsdGeom.ModelAPI(root)
    model.SetExtentsHint(model.ComputeExtentsHint(cache))
    return stage


def _new_layer(source: Sdf.Layer, suffix: str) -> Sdf.Layer:
    """An anonymous layer with ``source``'s stage metadata (up axis, units, defaultPrim, lift3d version)."""
    layer = Sdf.Layer.CreateAnonymous(suffix)
    for key in ("upAxis", "metersPerUnit"):
        layer.pseudoRoot.SetInfo(key, source.pseudoRoot.GetInfo(key))
    layer.defaultPrim = source.defaultPrim
    layer.customLayerData = source.customLayerData
    return layer


def split_layers(stage: Usd.Stage, fmt: str = "usda") -> dict[str, Sdf.Layer]:
    """Split :func:`build_stage`'s one layer into the asset's layers, by file name (module docstring)."""
    source = stage.GetRootLayer()
    root = Sdf.Path.absoluteRootPath.AppendChild(source.defaultPrim)
    files = layer_files(source.defaultPrim, fmt)
    out: dict[str, Sdf.Layer] = {}
    for key in ("geo", "mat"):
        layer = _new_layer(source, Path(files[key]).suffix)
        Sdf.PrimSpec(layer.pseudoRoot, root.name, Sdf.SpecifierDef, "Xform")
        for child in _PAYLOAD_CHILDREN[key]:
            if source.GetPrimAtPath(root.AppendChild(child)):
                Sdf.CopySpec(source, root.AppendChild(child), layer, root.AppendChild(child))
        out[files[key]] = layer
    out[files["geo"]].subLayerPaths.append("./" + files["mat"])
    out[files["geo"]].documentation = f"lift3d asset {root.name}: payload (geometry and lamps; materials sublayered)"
    out[files["mat"]].documentation = f"lift3d asset {root.name}: materials"
    interface = _new_layer(source, "." + fmt)
    Sdf.CopySpec(source, root, interface, root)
    spec = interface.GetPrimAtPath(root)
    for child in ("Geom", "Looks", "Lights"):
        if child in spec.nameChildren:
            del spec.nameChildren[child]
    spec.payloadList.Prepend(Sdf.Payload("./" + files["geo"]))
    interface.documentation = source.documentation
    out[files["interface"]] = interface
    return out


def _write_texture(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "RGBA" if image.shape[2] == 4 else "RGB"
    Image.fromarray(np.ascontiguousarray(image), mode).save(path, format="PNG")


def write_asset(asset: Asset, out_dir: Path | str, fmt: str = "usda",
                then: Callable[[Path], None] | None = None) -> Path:
    """Write ``asset`` to ``out_dir/<asset.name>/``: the interface layer ``<asset.name>.<fmt>``, its payload
    layers and ``textures/albedo.png`` (the layout in the module docstring).

    Args:
        asset: the asset; validated first.
        out_dir: folder that receives the asset folder (created if missing).
        fmt: the interface layer's format: ``"usda"`` (text, default) or ``"usdc"`` (binary).
        then: called with the asset layer's path once the asset is in place (e.g. to
            reference it from a stage); if it raises, the asset folder is restored to what
            it was before (the previous asset of that name, or nothing) and the error propagates.

    Returns:
        The path of the interface layer (what a stage references).

    Raises:
        InputError: invalid asset data or names, unknown format, or an
            output folder that cannot be created or written.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown USD format {fmt!r}; choose one of {', '.join(FORMATS)}")
    try:
        asset.validate()
    except ValueError as exc:
        raise InputError(f"asset {asset.name!r} is invalid: {exc}") from None
    _check_names(asset)
    layers = split_layers(build_stage(asset), fmt)
    layer_name = layer_files(asset.name, fmt)["interface"]

    def fill(tmp: Path) -> None:
        if asset.texture is not None:
            _write_texture(np.asarray(asset.texture), tmp / TEXTURE_REL_PATH)
        for file_name, layer in layers.items():
            if not layer.Export(str(tmp / file_name)):
                raise OSError(f"could not write {file_name}")

    target = Path(out_dir) / asset.name
    replace_dir_atomic(target, fill, None if then is None else lambda: then(target / layer_name))
    return target / layer_name
