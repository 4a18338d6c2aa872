"""The Kit manifest (config/extension.toml), its docs and images, checked against the project's own config."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest
from PIL import Image

import lift3d
from lift3d.api import ReconstructRequest
from lift3d.settings import load_settings
from omni_stubs.harness import kit  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "exts" / "lift3d.reconstruct"

REQUIRED = {"omni.kit.uiapp", "omni.usd", "omni.kit.commands", "omni.kit.actions.core", "omni.warp.core"}
OPTIONAL = {"omni.kit.menu.utils", "omni.kit.window.file_importer", "omni.kit.window.drop_support",
            "omni.kit.viewport.window", "omni.kit.notification_manager"}
SETTINGS = {"preset", "category", "working_resolution", "output_folder", "writer", "format", "config_file"}


@pytest.fixture(scope="module")
def manifest() -> dict:
    with open(EXT / "config" / "extension.toml", "rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _ext_settings(manifest: dict) -> dict:
    return manifest["settings"]["exts"]["lift3d.reconstruct"]


def test_package_section(manifest, pyproject):
    package = manifest["package"]
    assert package["version"] == "0.1.0" == pyproject["project"]["version"] == lift3d.__version__
    for key in ("title", "description", "category", "keywords", "authors", "repository"):
        assert key in package, key
    assert package["title"] and package["description"] and package["keywords"]


@pytest.mark.parametrize("key", ["readme", "changelog", "icon", "preview_image"])
def test_every_referenced_file_exists(manifest, key):
    assert (EXT / manifest["package"][key]).is_file(), manifest["package"][key]


def test_pip_archive_folder_exists(manifest):
    for folder in manifest["python"]["pipapi"]["archiveDirs"]:
        assert (EXT / folder).is_dir(), folder


def test_images_have_the_sizes_kit_expects(manifest):
    with Image.open(EXT / manifest["package"]["icon"]) as icon:
        assert icon.format == "PNG" and icon.size == (256, 256)
    with Image.open(EXT / manifest["package"]["preview_image"]) as preview:
        assert preview.format == "PNG" and preview.size[0] * 9 == preview.size[1] * 16


def test_dependencies(manifest):
    deps = manifest["dependencies"]
    assert set(deps) == REQUIRED | OPTIONAL
    for name in OPTIONAL:
        assert deps[name].get("optional") is True, name
    for name in REQUIRED:
        assert not deps[name].get("optional", False), name


def test_python_module_is_the_kit_adapter(manifest):
    modules = [m["name"] for m in manifest["python"]["module"]]
    assert modules == ["lift3d.kit"]
    assert (EXT / "lift3d" / "kit" / "__init__.py").is_file()


def _requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec, maxsplit=1)[0].lower()


def test_pipapi_requirements_match_pyproject_pins(manifest, pyproject):
    pipapi = manifest["python"]["pipapi"]
    assert pipapi["use_online_index"] is False
    requirements = pipapi["requirements"]
    assert "torch==2.13.0" in requirements
    pinned = {_requirement_name(d): d for d in pyproject["project"]["dependencies"]}
    for spec in requirements:
        assert pinned.get(_requirement_name(spec)) == spec, f"{spec} differs from pyproject.toml"
    names = {_requirement_name(s) for s in requirements}
    # Kit brings these itself (omni.usd, omni.warp.core, its own numpy); the CLI-only ones are not needed.
    assert not names & {"usd-core", "warp-lang"}
    assert names == set(pinned) - {"usd-core", "warp-lang", "numpy", "typer", "rich"}


def test_settings_keys_are_documented(manifest):
    settings = _ext_settings(manifest)
    assert set(settings) == SETTINGS
    readme = (EXT / "docs" / "README.md").read_text()
    for key in SETTINGS:
        assert f"`{key}`" in readme, f"setting {key} is not documented in docs/README.md"


def test_settings_mirror_the_project_config(manifest):
    settings = _ext_settings(manifest)
    config = load_settings()
    request = ReconstructRequest(images=["x.png"])
    assert settings["preset"] == request.preset and settings["preset"] in config.presets
    assert settings["category"] == request.category and settings["category"] in config.categories
    finest = max(config.preset(settings["preset"]).levels)
    assert settings["working_resolution"] == finest
    # The default cap changes no preset.
    assert all(max(p.levels) <= settings["working_resolution"] for p in config.presets.values())
    assert settings["output_folder"] == config.output.folder
    assert settings["writer"] == config.stage.writer
    assert settings["format"] == config.output.format
    assert settings["config_file"] == ""


def test_changelog_latest_version_matches(manifest):
    text = (EXT / manifest["package"]["changelog"]).read_text()
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", text, flags=re.MULTILINE)
    assert versions and versions[0] == manifest["package"]["version"]
    assert text.startswith("# Changelog") and "keepachangelog.com" in text


def test_test_section(manifest):
    (test,) = manifest["test"]
    assert "--no-window" in test["args"]
    assert "omni.kit.ui_test" in test["dependencies"]
    assert isinstance(test["stdoutFailPatterns"]["exclude"], list)


def test_python_module_imports_under_the_stand_ins(kit, manifest):
    module = importlib.import_module(manifest["python"]["module"][0]["name"])
    iext = importlib.import_module("omni.ext").IExt
    exts = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, iext) and v is not iext]
    assert [cls.__name__ for cls in exts] == ["Lift3dExtension"]


def test_stand_ins_do_not_leak_outside_kit_tests():
    assert "omni" not in sys.modules and "carb" not in sys.modules
    assert importlib.util.find_spec("omni") is None
    assert not any(name.startswith("lift3d.kit") for name in sys.modules)
