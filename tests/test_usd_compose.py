"""Adding assets to a stage: composition, texture resolution through the reference, unique names,
concurrent writers, and error paths that leave the stage untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pxr import Ar, Sdf, Usd, UsdGeom, UsdShade

from lift3d.errors import InputError
from lift3d.usd.compose import add_reference, open_or_create_stage, relative_asset_path
from lift3d.usd.writer import write_asset

from asset_factory import make_car_asset


@pytest.fixture(scope="module")
def asset_layer(tmp_path_factory) -> Path:
    return write_asset(make_car_asset(), tmp_path_factory.mktemp("lib") / "assets")


def test_new_stage_has_the_contract_metadata(tmp_path):
    path = tmp_path / "sub" / "scene.usda"
    stage = open_or_create_stage(path)
    assert path.is_file()
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    world = stage.GetDefaultPrim()
    assert world.GetPath() == Sdf.Path("/World") and world.GetTypeName() == "Xform"
    assert [p.name for p in tmp_path.joinpath("sub").iterdir() if p.name.startswith(".")] == []
    # Opening again returns the same content and does not rewrite the file.
    before = path.read_bytes()
    assert open_or_create_stage(path).GetDefaultPrim().GetPath() == Sdf.Path("/World")
    assert path.read_bytes() == before


def test_reference_composes_with_mesh_cameras_and_texture(tmp_path, asset_layer):
    stage_path = tmp_path / "shots" / "scene.usda"
    prim_path = add_reference(stage_path, asset_layer.parent)
    assert prim_path == "/World/Reconstructions/toy_car"
    layer = Sdf.Layer.FindOrOpen(str(stage_path))
    refs = layer.GetPrimAtPath(prim_path).referenceList.prependedItems
    assert len(refs) == 1
    assert refs[0].assetPath == relative_asset_path(asset_layer, stage_path.parent)
    assert refs[0].assetPath.startswith("../") and not Path(refs[0].assetPath).is_absolute()

    stage = Usd.Stage.Open(str(stage_path))
    prim = stage.GetPrimAtPath(prim_path)
    assert prim and Usd.ModelAPI(prim).GetKind() == "component"
    assert stage.GetPrimAtPath(prim_path + "/Geom/mesh").IsA(UsdGeom.Mesh)
    assert stage.GetPrimAtPath(prim_path + "/Cameras/front_left").IsA(UsdGeom.Camera)
    assert Usd.ModelAPI(stage.GetPrimAtPath("/World/Reconstructions")).GetKind() == "group"
    # The texture's relative path is anchored to the asset layer, not to the stage that references it.
    tex = UsdShade.Shader(stage.GetPrimAtPath(prim_path + "/Looks/paint/AlbedoTexture"))
    file_attr = tex.GetInput("file").GetAttr()
    value = file_attr.Get()
    expected = (asset_layer.parent / "textures" / "albedo.png").resolve()
    assert Path(value.resolvedPath).resolve() == expected
    spec_layer = file_attr.GetPropertyStack(Usd.TimeCode.Default())[0].layer
    anchored = Sdf.ComputeAssetPathRelativeToLayer(spec_layer, value.path)
    assert Path(str(Ar.GetResolver().Resolve(anchored))).resolve() == expected
    # The composed mesh is where the asset put it.
    bbox = UsdGeom.BBoxCache(Usd.TimeCode.Default(), [UsdGeom.Tokens.default_]).ComputeWorldBound(
        stage.GetPrimAtPath(prim_path + "/Geom/mesh")).ComputeAlignedRange()
    assert bbox.GetMin()[1] == pytest.approx(0.0) and bbox.GetMax()[1] == pytest.approx(1.35)


def test_names_are_sanitised_and_unique(tmp_path, asset_layer):
    stage_path = tmp_path / "scene.usda"
    assert add_reference(stage_path, asset_layer) == "/World/Reconstructions/toy_car"
    assert add_reference(stage_path, asset_layer) == "/World/Reconstructions/toy_car_2"
    assert add_reference(stage_path, asset_layer, name="my car (2).jpg") == "/World/Reconstructions/my_car_2"
    assert add_reference(stage_path, asset_layer, name="../../etc/passwd.png") == "/World/Reconstructions/passwd"
    assert add_reference(stage_path, asset_layer, name="toy_car") == "/World/Reconstructions/toy_car_3"
    stage = Usd.Stage.Open(str(stage_path))
    names = [p.GetName() for p in stage.GetPrimAtPath("/World/Reconstructions").GetChildren()]
    assert names == ["toy_car", "toy_car_2", "my_car_2", "passwd", "toy_car_3"]
    assert all(stage.GetPrimAtPath(f"/World/Reconstructions/{n}/Geom/mesh") for n in names)


def test_existing_stage_keeps_its_content(tmp_path, asset_layer):
    stage_path = tmp_path / "scene.usda"
    stage = Usd.Stage.CreateNew(str(stage_path))
    UsdGeom.Xform.Define(stage, "/World")
    UsdGeom.Cube.Define(stage, "/World/Ground")
    stage.Save()
    add_reference(stage_path, asset_layer)
    layer = Sdf.Layer.OpenAsAnonymous(str(stage_path))
    assert layer.GetPrimAtPath("/World/Ground") and layer.GetPrimAtPath("/World/Reconstructions/toy_car")
    assert layer.defaultPrim == "World"


def test_concurrent_writers_lose_nothing(tmp_path, asset_layer):
    stage_path = tmp_path / "shared.usda"
    script = textwrap.dedent(f"""
        import sys
        from lift3d.usd.compose import add_reference
        for i in range(3):
            add_reference({str(stage_path)!r}, {str(asset_layer)!r}, name=f"w{{sys.argv[1]}}_{{i}}")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(w)], stderr=subprocess.PIPE) for w in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    stage = Usd.Stage.Open(str(stage_path))
    names = sorted(p.GetName() for p in stage.GetPrimAtPath("/World/Reconstructions").GetChildren())
    assert names == sorted(f"w{w}_{i}" for w in range(4) for i in range(3))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_corrupt_stage_is_input_error_and_untouched(tmp_path, asset_layer):
    stage_path = tmp_path / "scene.usda"
    stage_path.write_bytes(b"#usda 1.0\n(\n this is not usd")
    with pytest.raises(InputError, match="not a valid USD layer"):
        add_reference(stage_path, asset_layer)
    with pytest.raises(InputError, match="not a valid USD layer"):
        open_or_create_stage(stage_path)
    assert stage_path.read_bytes() == b"#usda 1.0\n(\n this is not usd"


def test_unwritable_stage_folder_is_input_error(tmp_path, asset_layer):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot create output folder"):
        add_reference(blocker / "scene.usda", asset_layer)
    with pytest.raises(InputError, match="cannot create output folder"):
        open_or_create_stage(blocker / "scene.usda")
    assert blocker.read_text() == "x"


def test_bad_asset_or_stage_name_is_input_error(tmp_path, asset_layer):
    not_usd = tmp_path / "photo.usda"
    not_usd.write_bytes(b"\xff\xd8\xff\xe0 jpeg bytes")
    with pytest.raises(InputError, match="not a valid USD layer"):
        add_reference(tmp_path / "scene.usda", not_usd)
    with pytest.raises(InputError, match="must end in"):
        add_reference(tmp_path / "scene.txt", asset_layer)
    assert not (tmp_path / "scene.usda").exists() and not (tmp_path / "scene.txt").exists()


def test_relative_asset_path_forms():
    assert relative_asset_path(Path("/a/b/c/x.usda"), Path("/a/b")) == "./c/x.usda"
    assert relative_asset_path(Path("/a/x.usda"), Path("/a/b")) == "../x.usda"
