"""The USD asset writer and reader: compliance, exact round trips, cameras, lights, atomicity, errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pxr import Gf, Sdf, Usd, UsdGeom, UsdLux, UsdSemantics, UsdShade

import lift3d
from lift3d.asset import Asset, Part
from lift3d.camera import Camera, look_at
from lift3d.errors import InputError
from lift3d.usd import writer as writer_mod
from lift3d.usd.checker import check_asset
from lift3d.usd.reader import format_summary, read_asset, summarize_asset
from lift3d.usd.writer import camera_apertures, write_asset

from asset_factory import box, make_car_asset


@pytest.fixture(scope="module")
def car() -> Asset:
    return make_car_asset()


@pytest.fixture(scope="module")
def written(car, tmp_path_factory) -> Path:
    return write_asset(car, tmp_path_factory.mktemp("assets"))


@pytest.fixture(scope="module")
def stage(written) -> Usd.Stage:
    return Usd.Stage.Open(str(written))


def _mesh(stage: Usd.Stage) -> UsdGeom.Mesh:
    return UsdGeom.Mesh(stage.GetPrimAtPath("/toy_car/Geom/mesh"))


def _simple_asset(name: str = "cube", **kwargs) -> Asset:
    points, faces = box((0.0, 0.5, 0.0), (1.0, 1.0, 1.0))
    return Asset(name=name, points=points, faces=faces, uv=np.c_[points[:, 0], points[:, 2]] + 0.5, **kwargs)


# ---------------------------------------------------------------- layout and compliance

@pytest.mark.parametrize("fmt", ["usda", "usdc"])
def test_written_assets_pass_the_checker(car, tmp_path, fmt):
    path = write_asset(car, tmp_path, fmt=fmt)
    assert path == tmp_path / "toy_car" / f"toy_car.{fmt}"
    assert Sdf.Layer.FindOrOpen(str(path)).GetFileFormat().primaryFileExtension == fmt
    assert check_asset(path) == []
    assert check_asset(path.parent, warnings=True) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["textures", f"toy_car.{fmt}", "toy_car_geo.usdc",
                                                             "toy_car_mat.usda"]
    back = read_asset(path)
    np.testing.assert_array_equal(back.points, car.points)
    np.testing.assert_array_equal(back.uv_faces, car.uv_faces)
    np.testing.assert_array_equal(back.cameras[1].cam_to_world, car.cameras[1].cam_to_world)


def test_interface_layer_is_small_and_the_arrays_are_in_a_crate_payload(written, car):
    folder = written.parent
    interface = Sdf.Layer.OpenAsAnonymous(str(written))
    root = interface.GetPrimAtPath("/toy_car")
    assert interface.defaultPrim == "toy_car" and root.kind == "component" and root.typeName == "Xform"
    assert [p.assetPath for p in root.payloadList.prependedItems] == ["./toy_car_geo.usdc"]
    assert root.assetInfo["name"] == "toy_car" and root.assetInfo["version"] == lift3d.__version__
    assert "lift3d" in root.customData and "extentsHint" in root.attributes
    assert sorted(root.nameChildren.keys()) == ["Cameras"], "geometry, materials and lamps live in the payload"
    assert written.stat().st_size < 8000
    geo = Sdf.Layer.OpenAsAnonymous(str(folder / "toy_car_geo.usdc"))
    assert geo.GetFileFormat().primaryFileExtension == "usdc"
    assert geo.GetPrimAtPath("/toy_car/Geom/mesh").typeName == "Mesh" and geo.GetPrimAtPath("/toy_car/Lights")
    assert list(geo.subLayerPaths) == ["./toy_car_mat.usda"]
    mat = Sdf.Layer.OpenAsAnonymous(str(folder / "toy_car_mat.usda"))
    assert sorted(mat.GetPrimAtPath("/toy_car/Looks").nameChildren.keys()) == sorted(car.materials)
    assert not mat.GetPrimAtPath("/toy_car/Geom")
    # Each layer is a stage of its own: the geometry brings its materials along.
    for name in ("toy_car_geo.usdc", "toy_car_mat.usda"):
        assert check_asset(folder / name) == [], name
    # Unloaded, the interface still knows the asset's name, kind, bounds and cameras.
    unloaded = Usd.Stage.Open(str(written), Usd.Stage.LoadNone)
    prim = unloaded.GetDefaultPrim()
    assert Usd.ModelAPI(prim).GetKind() == "component" and UsdGeom.ModelAPI(prim).GetExtentsHint()
    assert not unloaded.GetPrimAtPath("/toy_car/Geom/mesh") and unloaded.GetPrimAtPath("/toy_car/Cameras/rear")


def test_rgba_texture_round_trips(tmp_path):
    rgba = np.random.default_rng(1).integers(0, 256, size=(8, 16, 4), dtype=np.uint8)
    back = read_asset(write_asset(_simple_asset(texture=rgba), tmp_path))
    np.testing.assert_array_equal(back.texture, rgba)
    assert back.materials["object"].textured


def test_untextured_vertex_uv_asset_passes_and_round_trips(tmp_path):
    asset = _simple_asset()
    path = write_asset(asset, tmp_path)
    assert check_asset(path) == []
    assert not (path.parent / "textures").exists()
    stage = Usd.Stage.Open(str(path))
    st = UsdGeom.PrimvarsAPI(stage.GetPrimAtPath("/cube/Geom/mesh")).GetPrimvar("st")
    assert st.GetInterpolation() == UsdGeom.Tokens.vertex and not st.IsIndexed()
    back = read_asset(path)
    assert back.uv_faces is None and back.texture is None
    np.testing.assert_array_equal(back.uv, asset.uv)
    assert [(p.name, p.label, p.material) for p in back.parts] == [("object", "object", "object")]
    # No texture was given, so the generic material is written (and read back) untextured.
    assert back.materials == {"object": dataclasses.replace(asset.materials["object"], textured=False)}


def test_empty_part_keeps_its_material(tmp_path):
    asset = make_car_asset(textured=False)
    asset.parts.append(Part("mirror", "mirror", [], "glass"))
    asset.materials["chrome"] = asset.materials["paint"]  # a material no part uses
    path = write_asset(asset, tmp_path)
    assert check_asset(path) == []
    back = read_asset(path)
    assert (back.parts[-1].name, back.parts[-1].label, back.parts[-1].material) == ("mirror", "mirror", "glass")
    assert len(back.parts[-1].faces) == 0 and set(back.materials) == set(asset.materials)


def test_part_named_like_a_binding_subset(tmp_path):
    asset = make_car_asset(textured=False)
    asset.parts[0].name = "bind_paint"
    back = read_asset(write_asset(asset, tmp_path))
    assert (back.parts[0].name, back.parts[0].material) == ("bind_paint", "paint")
    assert [(p.name, p.material) for p in back.parts] == [(p.name, p.material) for p in asset.parts]


def test_checker_reports_broken_assets(tmp_path):
    stage = Usd.Stage.CreateNew(str(tmp_path / "bad.usda"))  # no upAxis, metersPerUnit, defaultPrim
    UsdGeom.Xform.Define(stage, "/bad")
    mat = UsdShade.Material.Define(stage, "/bad/M")
    tex = UsdShade.Shader.Define(stage, "/bad/M/T")
    tex.CreateIdAttr("UsdUVTexture")
    tex.CreateInput("file", Sdf.ValueTypeNames.Asset).Set("/nowhere/albedo.tga")
    mesh = UsdGeom.Mesh.Define(stage, "/bad/mesh")
    mesh.GetPrim().CreateRelationship("material:binding").AddTarget(mat.GetPath())  # no MaterialBindingAPI
    stage.Save()
    problems = "\n".join(check_asset(tmp_path / "bad.usda"))
    for expected in ("upAxis", "metersPerUnit", "defaultPrim", "MaterialBindingAPI", "albedo.tga"):
        assert expected in problems
    assert "absolute path" in problems and "does not resolve" in problems


def test_stage_metadata_kind_and_extents(stage, car):
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    root = stage.GetDefaultPrim()
    assert root.GetPath() == Sdf.Path("/toy_car") and root.GetTypeName() == "Xform"
    assert Usd.ModelAPI(root).GetKind() == "component"
    assert stage.GetRootLayer().customLayerData["lift3d"]["version"] == lift3d.__version__
    boundables = [p for p in stage.Traverse() if p.IsA(UsdGeom.Boundable)]
    assert len(boundables) >= 3  # the mesh and two lights
    for prim in boundables:
        assert UsdGeom.Boundable(prim).GetExtentAttr().HasAuthoredValue(), prim.GetPath()
    extent = np.array(_mesh(stage).GetExtentAttr().Get())
    np.testing.assert_allclose(extent, [car.points.min(0), car.points.max(0)])
    hint = np.array(UsdGeom.ModelAPI(root).GetExtentsHint())
    assert np.all(hint[0] <= extent[0]) and np.all(hint[1] >= extent[1])


def test_mesh_attributes(stage, car):
    mesh = _mesh(stage)
    assert mesh.GetSubdivisionSchemeAttr().Get() == UsdGeom.Tokens.none
    assert mesh.GetOrientationAttr().Get() == UsdGeom.Tokens.rightHanded
    assert mesh.GetDoubleSidedAttr().Get() is False
    assert list(mesh.GetFaceVertexCountsAttr().Get()) == [3] * len(car.faces)
    st = UsdGeom.PrimvarsAPI(mesh).GetPrimvar("st")
    assert st.GetInterpolation() == UsdGeom.Tokens.faceVarying and st.IsIndexed()
    assert st.GetTypeName() == Sdf.ValueTypeNames.TexCoord2fArray
    normals = np.array(mesh.GetNormalsAttr().Get())
    assert mesh.GetNormalsInterpolation() == UsdGeom.Tokens.vertex and normals.shape == car.points.shape
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
    # Body box corners: each area-weighted normal points away from the box centre.
    body = car.points[:8]
    assert np.all(np.sum(normals[:8] * (body - body.mean(0)), axis=1) > 0)


def test_mesh_is_counter_clockwise_from_outside(car):
    # Divergence theorem: a closed outward-oriented mesh has positive signed volume.
    p, f = car.points.astype(np.float64), car.faces
    volume = np.einsum("ij,ij->i", p[f[:, 0]], np.cross(p[f[:, 1]], p[f[:, 2]])).sum() / 6.0
    assert volume > 0


# ---------------------------------------------------------------- round trip

def test_exact_round_trip(written, car):
    back = read_asset(written.parent)  # the folder works as well as the layer
    assert back.name == car.name
    np.testing.assert_array_equal(back.points, car.points)
    np.testing.assert_array_equal(back.faces, car.faces)
    np.testing.assert_array_equal(back.uv, car.uv)
    np.testing.assert_array_equal(back.uv_faces, car.uv_faces)
    np.testing.assert_array_equal(back.texture, car.texture)
    assert [(p.name, p.label, p.material) for p in back.parts] == [(p.name, p.label, p.material) for p in car.parts]
    for a, b in zip(car.parts, back.parts):
        np.testing.assert_array_equal(a.faces, b.faces)
    assert back.materials == car.materials
    assert len(back.cameras) == len(car.cameras) == 3
    for a, b in zip(car.cameras, back.cameras):
        assert (b.fx, b.fy, b.cx, b.cy, b.width, b.height, b.name) == (a.fx, a.fy, a.cx, a.cy, a.width, a.height, a.name)
        np.testing.assert_array_equal(b.cam_to_world, a.cam_to_world)
    assert back.provenance["settings"] == {"preset": "fast", "levels": [64, 128], "sigma": 1.0}
    assert back.provenance["sources"] == car.provenance["sources"]
    assert back.provenance["timings"] == {"fit": 1.25, "bake": 0.5}
    assert "note" not in back.provenance  # None values are dropped
    back.validate()


def test_provenance_is_native_custom_data(stage):
    data = stage.GetDefaultPrim().GetCustomDataByKey("lift3d")
    assert data["metrics"]["input_view_iou"] == pytest.approx(0.91)
    assert list(data["digests"]) == ["ab" * 32, "cd" * 32]
    assert json.loads(data["sources"])[0]["file"] == "front_left.png"  # list of dicts: stored as JSON text


def test_cameras_without_custom_data_fall_back_to_apertures(written, car):
    layer = Sdf.Layer.CreateAnonymous(".usda")  # an in-memory copy, so the shared file stays intact
    layer.TransferContent(Sdf.Layer.FindOrOpen(str(written)))
    copy = Usd.Stage.Open(layer)
    prim = copy.GetPrimAtPath("/toy_car/Cameras/rear")
    prim.ClearCustomDataByKey("lift3d")
    from lift3d.usd.reader import _camera_from_prim

    cam = _camera_from_prim(prim)
    ref = read_asset(written).cameras[1]
    # Without customData the resolution is unknown (square pixels are assumed), but the camera images every
    # point at the same place relative to the frame, and its pose is exact.
    assert cam.fx == pytest.approx(cam.fy, rel=1e-3)  # up to rounding the height to whole pixels
    np.testing.assert_array_equal(cam.cam_to_world, ref.cam_to_world)
    ours, _ = cam.project(car.points)
    theirs, _ = ref.project(car.points)
    np.testing.assert_allclose(ours / [cam.width, cam.height], theirs / [ref.width, ref.height], atol=1e-3)


# ---------------------------------------------------------------- parts and materials

def test_part_subsets_form_a_valid_labelled_partition(stage, car):
    mesh = _mesh(stage)
    valid, reason = UsdGeom.Subset.ValidateFamily(mesh, UsdGeom.Tokens.face, "part")
    assert valid, reason
    assert UsdGeom.Subset.GetFamilyType(mesh, "part") == UsdGeom.Tokens.partition
    subsets = UsdGeom.Subset.GetGeomSubsets(mesh, UsdGeom.Tokens.face, "part")
    labels = {}
    for s in subsets:
        prim = s.GetPrim()
        assert UsdSemantics.LabelsAPI.GetDirectTaxonomies(prim) == ["class"]
        labels[prim.GetName()] = list(UsdSemantics.LabelsAPI(prim, "class").GetLabelsAttr().Get())
    assert labels == {p.name: [p.label] for p in car.parts}
    assert {"body", "wheel", "window", "headlight", "taillight"} <= {v[0] for v in labels.values()}


def test_materials_are_bound_per_part(stage, car):
    mesh = _mesh(stage)
    binding = UsdShade.MaterialBindingAPI(mesh.GetPrim())
    valid, reason = UsdGeom.Subset.ValidateFamily(mesh, UsdGeom.Tokens.face, "materialBind")
    assert valid, reason
    assert binding.GetMaterialBindSubsetsFamilyType() == UsdGeom.Tokens.partition
    face_material = {}
    for subset in binding.GetMaterialBindSubsets():
        assert subset.GetPrim().HasAPI(UsdShade.MaterialBindingAPI)
        material = UsdShade.MaterialBindingAPI(subset.GetPrim()).ComputeBoundMaterial()[0]
        for f in subset.GetIndicesAttr().Get():
            face_material[f] = material.GetPrim().GetName()
    for part in car.parts:
        assert {face_material[int(f)] for f in part.faces} == {part.material}
    assert binding.ComputeBoundMaterial()[0].GetPrim().GetName() == "rubber"  # fallback: most faces


def test_preview_surface_networks(stage, car):
    looks = stage.GetPrimAtPath("/toy_car/Looks")
    assert looks.GetTypeName() == "Scope"
    assert sorted(c.GetName() for c in looks.GetChildren()) == sorted(car.materials)

    def surface(name):
        shader = UsdShade.Material(looks.GetChild(name)).ComputeSurfaceSource()[0]
        assert shader.GetIdAttr().Get() == "UsdPreviewSurface"
        return shader

    glass, lamp, paint = surface("glass"), surface("lamp"), surface("paint")
    assert glass.GetInput("roughness").Get() < 0.1 and glass.GetInput("opacity").Get() < 1.0
    assert max(lamp.GetInput("emissiveColor").Get()) > 1.0
    assert max(surface("rubber").GetInput("emissiveColor").Get()) == 0.0
    assert not surface("rubber").GetInput("diffuseColor").HasConnectedSource()
    # Textured paint: diffuseColor <- UsdUVTexture <- UsdPrimvarReader_float2 <- material frame:stPrimvarName.
    tex = UsdShade.Shader(paint.GetInput("diffuseColor").GetConnectedSources()[0][0].source.GetPrim())
    assert tex.GetIdAttr().Get() == "UsdUVTexture"
    assert tex.GetInput("file").Get().path == "./textures/albedo.png"
    assert tex.GetInput("sourceColorSpace").Get() == "sRGB"
    assert tex.GetInput("wrapS").Get() and tex.GetInput("wrapT").Get()
    reader = UsdShade.Shader(tex.GetInput("st").GetConnectedSources()[0][0].source.GetPrim())
    assert reader.GetIdAttr().Get() == "UsdPrimvarReader_float2"
    varname = reader.GetInput("varname")
    source = varname.GetConnectedSources()[0][0]
    assert source.source.GetPrim() == looks.GetChild("paint") and source.sourceName == "frame:stPrimvarName"
    assert UsdShade.Material(looks.GetChild("paint")).GetInput("frame:stPrimvarName").Get() == "st"
    assert Path(tex.GetInput("file").Get().resolvedPath).is_file()


def test_texture_is_an_srgb_8bit_png(written, car):
    with Image.open(written.parent / "textures" / "albedo.png") as img:
        assert img.format == "PNG" and img.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(img), car.texture)


# ---------------------------------------------------------------- lights

def test_one_shaped_light_per_headlight_component(stage, car):
    lights = [p for p in stage.Traverse() if p.HasAPI(UsdLux.LightAPI)]
    assert len(lights) == 2  # the headlight part has two separate blocks; the taillight gets none
    xs = []
    for prim in lights:
        assert prim.GetParent().GetPath() == Sdf.Path("/toy_car/Lights")
        assert prim.HasAPI(UsdLux.ShapingAPI)
        shaping = UsdLux.ShapingAPI(prim)
        assert 30.0 <= shaping.GetShapingConeAngleAttr().Get() <= 40.0
        assert 0.0 < shaping.GetShapingConeSoftnessAttr().Get() <= 1.0
        m = np.array(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default())).T
        emit = -m[:3, 2] / np.linalg.norm(m[:3, 2])
        assert emit[2] > 0.95 and abs(emit[1]) < 1e-9  # shines forwards (+Z), level with the road
        pos = m[:3, 3]
        assert 2.15 < pos[2] < 2.3 and 0.5 < pos[1] < 0.7  # just in front of the lamp block
        xs.append(pos[0])
    assert sorted(np.sign(xs)) == [-1.0, 1.0] and all(abs(abs(x) - 0.6) < 0.05 for x in xs)


def test_no_lights_without_headlights(tmp_path):
    stage = Usd.Stage.Open(str(write_asset(_simple_asset(), tmp_path)))
    assert not stage.GetPrimAtPath("/cube/Lights")
    assert not any(p.HasAPI(UsdLux.LightAPI) for p in stage.Traverse())


# ---------------------------------------------------------------- cameras

def test_camera_names_and_pose(stage, car):
    cams = stage.GetPrimAtPath("/toy_car/Cameras").GetChildren()
    assert [c.GetName() for c in cams] == ["front_left", "rear", "side"], "named after their photos, no alias"
    assert [c.GetCustomDataByKey("lift3d:photo") for c in cams] == ["front_left.png", "rear.jpg", "side.png"]
    for prim, cam in zip(cams, car.cameras):
        m = np.array(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default())).T
        np.testing.assert_allclose(m, cam.cam_to_world, atol=1e-12)
        usd_cam = UsdGeom.Camera(prim)
        assert usd_cam.GetProjectionAttr().Get() == UsdGeom.Tokens.perspective
        intr = list(prim.GetCustomDataByKey("lift3d:intrinsics"))
        assert intr == [cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height]
        near, far = usd_cam.GetClippingRangeAttr().Get()
        _, depth = cam.project(car.points)
        assert 0 < near < depth.min() and far > depth.max()


def test_camera_names_are_identifiers_and_unique():
    cams = [Camera.from_fov(0.8, 32, 32) for _ in range(4)]
    for cam, name in zip(cams, ["photo 0.PNG", "photo_0.png", "../x/1.webp", ""]):
        cam.name = name
    assert writer_mod.camera_names(cams) == ["photo_0", "photo_0_2", "_1", "camera"]


def test_a_single_photo_keeps_source_camera_as_an_alias(tmp_path):
    cam = Camera.from_fov(0.8, 40, 30)
    cam.name = "photos/my car.jpg"
    cam.cam_to_world = np.array(look_at(np.array([0.0, 1.0, 4.0]), np.array([0.0, 0.5, 0.0])))
    path = write_asset(_simple_asset(cameras=[cam]), tmp_path)
    stage = Usd.Stage.Open(str(path))
    real, alias = stage.GetPrimAtPath("/cube/Cameras/my_car"), stage.GetPrimAtPath("/cube/Cameras/SourceCamera")
    assert real.IsA(UsdGeom.Camera) and alias.IsA(UsdGeom.Camera)
    assert real.GetCustomDataByKey("lift3d:photo") == "photos/my car.jpg"
    assert alias.GetCustomDataByKey("lift3d:aliasOf") == "my_car"
    ours = UsdGeom.Camera(alias).GetCamera(Usd.TimeCode.Default())
    theirs = UsdGeom.Camera(real).GetCamera(Usd.TimeCode.Default())
    assert ours.frustum.ComputeProjectionMatrix() == theirs.frustum.ComputeProjectionMatrix()
    np.testing.assert_array_equal(
        np.array(UsdGeom.Xformable(alias).ComputeLocalToWorldTransform(Usd.TimeCode.Default())),
        np.array(UsdGeom.Xformable(real).ComputeLocalToWorldTransform(Usd.TimeCode.Default())))
    back = read_asset(path)
    assert [c.name for c in back.cameras] == ["photos/my car.jpg"], "the alias is not a second camera"
    summary = summarize_asset(path)
    assert [(c["name"], c["alias"]) for c in summary["cameras"]] == [("my_car", "SourceCamera")]
    assert "SourceCamera" in format_summary(summary)
    assert check_asset(path) == []


def test_usd_camera_projects_like_the_pixel_camera(stage, car):
    """The USD camera (apertures, offsets, focal length) images points where Camera.project puts them."""
    cams = stage.GetPrimAtPath("/toy_car/Cameras").GetChildren()
    for prim, cam in zip(cams, car.cameras):
        frustum = UsdGeom.Camera(prim).GetCamera(Usd.TimeCode.Default()).frustum
        to_ndc = frustum.ComputeViewMatrix() * frustum.ComputeProjectionMatrix()
        ndc = np.array([to_ndc.Transform(Gf.Vec3d(*map(float, p))) for p in car.points])
        u = (ndc[:, 0] + 1.0) * 0.5 * cam.width
        v = (1.0 - ndc[:, 1]) * 0.5 * cam.height
        expected, _ = cam.project(car.points)
        np.testing.assert_allclose(np.c_[u, v], expected, atol=2e-3)


def test_camera_aperture_signs():
    from lift3d.camera import Camera

    cam = Camera(100.0, 80.0, 70.0, 10.0, 100, 50)  # principal point right of and above the centre
    ap = camera_apertures(cam)
    assert ap["focalLength"] == pytest.approx(100.0 * 20.955 / 100)
    assert ap["verticalAperture"] == pytest.approx(20.955 * 50 / 100 * 100 / 80)
    assert ap["horizontalApertureOffset"] < 0 and ap["verticalApertureOffset"] < 0
    centred = camera_apertures(Camera(100.0, 100.0, 50.0, 25.0, 100, 50))
    assert centred["horizontalApertureOffset"] == 0 and centred["verticalApertureOffset"] == 0


# ---------------------------------------------------------------- atomicity and errors

def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_rewrite_replaces_and_failed_rewrite_keeps_previous(car, tmp_path, monkeypatch):
    path = write_asset(car, tmp_path)
    before = _snapshot(tmp_path)
    smaller = _simple_asset("toy_car")
    path2 = write_asset(smaller, tmp_path)  # replaces the whole folder: no stale texture left
    assert path2 == path and not (path.parent / "textures").exists()
    assert len(read_asset(path).faces) == 12

    write_asset(car, tmp_path)
    assert _snapshot(tmp_path) == before

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer_mod, "_write_texture", boom)
    changed = make_car_asset()
    changed.points = changed.points * 2.0
    with pytest.raises(RuntimeError, match="disk full"):
        write_asset(changed, tmp_path)
    assert _snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy_car"]  # no temporary debris


def test_reading_sees_a_rewrite_while_the_old_layer_is_open(car, tmp_path):
    path = write_asset(car, tmp_path)
    held = Usd.Stage.Open(str(path))  # e.g. an application that has the asset open
    write_asset(_simple_asset("toy_car"), tmp_path)
    assert len(read_asset(path).faces) == 12
    assert summarize_asset(path)["triangles"] == 12
    assert held.GetPrimAtPath("/toy_car/Geom/mesh")


def test_unwritable_output_folder_is_input_error(car, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="cannot create output folder"):
        write_asset(car, blocker / "out")


@pytest.mark.parametrize("mutate, message", [
    (lambda a: setattr(a, "name", "bad name"), "not valid USD identifiers"),
    (lambda a: a.parts.__setitem__(0, Part("body-1", "body", a.parts[0].faces, "paint")), "not valid USD"),
    (lambda a: a.faces.__setitem__((0, 0), 10_000), "face index out of range"),
    (lambda a: a.parts.pop(), "partition"),
    (lambda a: a.materials.pop("glass"), "unknown material"),
])
def test_invalid_assets_are_input_errors(tmp_path, mutate, message):
    asset = make_car_asset()
    mutate(asset)
    with pytest.raises(InputError, match=message):
        write_asset(asset, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_is_input_error(car, tmp_path):
    with pytest.raises(InputError, match="usdz"):
        write_asset(car, tmp_path, fmt="usdz")


@pytest.mark.parametrize("content", [b"", b"#usda 1.0\n(\n garbage", b"\x89PNG\r\n\x1a\nnot usd at all"])
def test_reader_rejects_non_usd_files(tmp_path, content):
    bad = tmp_path / "bad.usda"
    bad.write_bytes(content)
    with pytest.raises(InputError, match="not a readable USD layer"):
        read_asset(bad)
    with pytest.raises(InputError, match="not a readable USD layer"):
        summarize_asset(bad)


def test_reader_rejects_missing_paths(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_asset(tmp_path / "nope.usda")
    with pytest.raises(InputError, match="contains no USD layer"):
        read_asset(tmp_path)
    (tmp_path / "empty.usda").write_text("#usda 1.0\n")
    with pytest.raises(InputError, match="has no defaultPrim"):
        read_asset(tmp_path / "empty.usda")


# ---------------------------------------------------------------- summary

def test_summary_and_its_text(written, car):
    summary = summarize_asset(written)
    json.dumps(summary)
    assert summary["defaultPrim"] == "toy_car" and summary["kind"] == "component"
    assert summary["upAxis"] == "Y" and summary["metersPerUnit"] == 1.0
    assert summary["triangles"] == len(car.faces) and summary["vertices"] == len(car.points)
    assert ["/toy_car/Geom/mesh", "Mesh"] in summary["prims"] and summary["prim_count"] == len(summary["prims"])
    assert {(p["name"], p["label"], p["faces"], p["material"]) for p in summary["parts"]} == {
        (p.name, p.label, len(p.faces), p.material) for p in car.parts}
    mats = {m["name"]: m for m in summary["materials"]}
    assert mats["paint"]["textured"] and not mats["glass"]["textured"] and mats["glass"]["opacity"] < 1
    assert mats["lamp"]["emissive"] and not mats["rubber"]["emissive"]
    assert [c["name"] for c in summary["cameras"]] == ["front_left", "rear", "side"]
    assert summary["cameras"][1] == {"name": "rear", "resolution": [64, 48], "fx": 70.0, "fy": 55.0, "alias": ""}
    assert summary["textures"] == [{"path": "./textures/albedo.png", "resolves": True}]
    assert len(summary["lights"]) == 2 and all(li["shaping"] for li in summary["lights"])
    assert "settings" in summary["provenance"]
    text = format_summary(summary)
    for expected in ("108 triangles", "72 vertices", "kind component", "headlight", "rear",
                     "64x48", "./textures/albedo.png", "taillamp"):
        assert expected in text
    assert "\t" not in text


def test_summary_reports_a_missing_texture(written, tmp_path):
    import shutil

    copy = tmp_path / "toy_car"
    shutil.copytree(written.parent, copy)
    (copy / "textures" / "albedo.png").unlink()
    summary = summarize_asset(copy)
    assert summary["textures"] == [{"path": "./textures/albedo.png", "resolves": False}]
    assert "NO" in format_summary(summary)
    assert any("does not resolve" in p or "unresolvable" in p.lower() for p in check_asset(copy))

