"""`lift3d export`: glTF/GLB and OBJ through trimesh; structure read back, and the Khronos glTF Validator."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lift3d.cli import main
from lift3d.export import export_asset, export_bytes, load_back
from lift3d.usd.writer import write_asset

from asset_factory import make_car_asset

pytest.importorskip("trimesh", reason="trimesh is not installed")

VALIDATOR_VERSION = "2.0.0-dev.3.10"
_VALIDATE_JS = """
const validator = require('gltf-validator');
const fs = require('fs');
validator.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])))
  .then((report) => console.log(JSON.stringify(report)))
  .catch((error) => { console.error(String(error)); process.exit(3); });
"""


@pytest.fixture(scope="module")
def asset_layer(tmp_path_factory) -> Path:
    return write_asset(make_car_asset(), tmp_path_factory.mktemp("export"))


def _glb_json(data: bytes) -> dict:
    magic, version, length = struct.unpack("<4sII", data[:12])
    assert magic == b"glTF" and version == 2 and length == len(data)
    chunk_len, chunk_type = struct.unpack("<I4s", data[12:20])
    assert chunk_type == b"JSON"
    return json.loads(data[20:20 + chunk_len])


def test_glb_structure_parts_materials_texture(asset_layer, tmp_path):
    asset = make_car_asset()
    (glb_path,) = export_asset(asset_layer, "glb", tmp_path / "car.glb")
    doc = _glb_json(glb_path.read_bytes())
    assert doc["asset"]["version"] == "2.0"
    root = doc["nodes"][doc["scenes"][doc.get("scene", 0)]["nodes"][0]]
    assert root["name"] == "toy_car" and "matrix" not in root and "scale" not in root, "metres, +Y up: no transform"
    children = [doc["nodes"][i] for i in root["children"]]
    assert sorted(n["name"] for n in children) == sorted(p.name for p in asset.parts)
    meshes = {n["name"]: doc["meshes"][n["mesh"]] for n in children}
    materials = {m["name"]: m for m in doc["materials"]}
    for part in asset.parts:
        mesh = meshes[part.name]
        assert mesh["name"] == part.name
        (prim,) = mesh["primitives"]
        assert doc["materials"][prim["material"]]["name"] == part.material
        assert doc["accessors"][prim["indices"]]["count"] == 3 * len(part.faces)
    paint = materials["paint"]["pbrMetallicRoughness"]
    assert paint["roughnessFactor"] == pytest.approx(0.35) and paint["metallicFactor"] == pytest.approx(0.2)
    assert paint["baseColorFactor"] == [1.0, 1.0, 1.0, 1.0] and "baseColorTexture" in paint
    rubber = materials["rubber"]["pbrMetallicRoughness"]
    assert rubber["baseColorFactor"] == pytest.approx([0.03, 0.03, 0.03, 1.0]), "exact linear factors, not 8-bit"
    assert rubber["roughnessFactor"] == pytest.approx(0.9) and "baseColorTexture" not in rubber
    glass = materials["glass"]
    assert glass["alphaMode"] == "BLEND" and glass["pbrMetallicRoughness"]["baseColorFactor"][3] == pytest.approx(0.35)
    assert materials["lamp"]["emissiveFactor"] == pytest.approx([1.0, 3.9 / 4.0, 3.6 / 4.0])
    (image,) = doc["images"]
    assert image["mimeType"] == "image/png" and "bufferView" in image, "the texture is embedded"
    assert "uri" not in doc["buffers"][0]


def test_glb_reads_back_with_the_same_geometry(asset_layer):
    asset = make_car_asset()
    scene = load_back(export_bytes(asset, "glb")["toy_car.glb"])
    assert sorted(scene.geometry) == sorted(p.name for p in asset.parts)
    body = next(p for p in asset.parts if p.name == "body")
    mesh = scene.geometry["body"]
    assert len(mesh.faces) == len(body.faces)
    np.testing.assert_allclose(mesh.bounds, [asset.points[asset.faces[body.faces]].reshape(-1, 3).min(0),
                                             asset.points[asset.faces[body.faces]].reshape(-1, 3).max(0)], atol=1e-6)
    assert mesh.visual.material.name == "paint"
    np.testing.assert_array_equal(np.asarray(mesh.visual.material.baseColorTexture.convert("RGB")), asset.texture)
    # the UVs survive (glTF flips v; trimesh flips it back to USD's st convention)
    corners_uv = asset.uv[asset.uv_faces[body.faces]].reshape(-1, 2)
    got = mesh.visual.uv[mesh.faces].reshape(-1, 2)
    np.testing.assert_allclose(got, corners_uv, atol=1e-6)


def test_gltf_is_one_self_contained_file(tmp_path, asset_layer):
    files = export_asset(asset_layer, "gltf", tmp_path / "car.gltf")
    assert [f.name for f in files] == ["car.gltf"]
    doc = json.loads(files[0].read_text())
    assert all(b["uri"].startswith("data:") for b in doc["buffers"])
    assert {n["name"] for n in doc["nodes"]} >= {"toy_car", "body", "wheel_fl", "headlight"}


def test_obj_has_named_objects_and_pbr_materials(tmp_path, asset_layer):
    files = export_asset(asset_layer, "obj", tmp_path / "car.obj")
    names = sorted(f.name for f in files)
    assert names[:2] == ["car.mtl", "car.obj"] and len(names) == 3 and names[2].endswith(".png")
    obj = (tmp_path / "car.obj").read_text().splitlines()
    assert "mtllib car.mtl" in obj
    assert [line[2:] for line in obj if line.startswith("o ")] == [p.name for p in make_car_asset().parts]
    assert sum(line.startswith("f ") for line in obj) == 108
    mtl = (tmp_path / "car.mtl").read_text()
    paint = mtl.split("newmtl paint", 1)[1].split("newmtl", 1)[0]
    assert "Pr 0.35" in paint and "Pm 0.2" in paint and f"map_Kd {names[2]}" in paint


def test_cli_export_defaults_and_errors(asset_layer, tmp_path, capsys):
    assert main(["export", str(asset_layer.parent), "--format", "glb"]) == 0
    written = asset_layer.parent / "toy_car.glb"
    assert written.is_file() and str(written) in capsys.readouterr().out
    written.unlink()
    assert main(["export", str(asset_layer), "--format", "fbx"]) == 2
    assert "unknown export format 'fbx'" in capsys.readouterr().err
    assert main(["export", str(asset_layer), "--format", "glb", "--out", str(tmp_path / "x.obj")]) == 2
    assert main(["export", str(tmp_path / "missing.usda")]) == 2
    assert not (tmp_path / "x.obj").exists()


# ----------------------------------------------------------------------------- Khronos glTF Validator


def _validator_dir() -> Path:
    """The npm package ``gltf-validator`` in a cache folder, installed on first use; skips when that cannot be done."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the Khronos glTF Validator needs node and npm, which are not on PATH")
    cache = Path(os.environ.get("LIFT3D_TEST_CACHE") or Path.home() / ".cache" / "lift3d-tests") / "gltf-validator"
    package = cache / "node_modules" / "gltf-validator" / "package.json"
    if not package.is_file() or json.loads(package.read_text()).get("version") != VALIDATOR_VERSION:
        cache.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run([npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund",
                                   f"gltf-validator@{VALIDATOR_VERSION}"], capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.skip("installing gltf-validator with npm timed out (no registry access?)")
        if done.returncode != 0 or not package.is_file():
            pytest.skip(f"could not install gltf-validator with npm: {done.stderr.strip().splitlines()[-1:]}")
    (cache / "validate.js").write_text(_VALIDATE_JS)
    return cache


def test_glb_passes_the_khronos_validator(asset_layer, tmp_path):
    validator = _validator_dir()
    (glb,) = export_asset(asset_layer, "glb", tmp_path / "car.glb")
    run = subprocess.run(["node", str(validator / "validate.js"), str(glb)], capture_output=True, text=True,
                         timeout=120, cwd=validator)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    issues = report["issues"]
    serious = [m for m in issues["messages"] if m["severity"] <= 1]
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, serious
    assert report["info"]["drawCallCount"] == len(make_car_asset().parts)
    assert report["info"]["totalTriangleCount"] == 108
