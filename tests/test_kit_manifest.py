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
SETTINGS = {"preset", "category", "working_resolution", "output_folder", "writer", "format", "config_file", "objects"}


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


def kit_pipapi_installs(pipapi: dict) -> list[tuple[str, str]]:
    """What Kit's pip API (omni.kit.pipapi) does with an extension's ``[python.pipapi]`` table.

    Returns ``(requirement, module it imports to decide whether to install)`` for each
    requirement, in order, or ``[]`` when Kit skips the table. Modelled on Kit 107's
    omni.kit.pipapi: without ``use_online_index = true`` it only logs that the table
    "doesn't do anything"; the import name is the entry at the same position of
    ``modules``, else the requirement with only an ``==...`` pin cut off.
    """
    requirements = pipapi.get("requirements", [])
    if requirements and not pipapi.get("use_online_index", False):
        return []
    modules = pipapi.get("modules", [])
    return [(req, modules[i] if i < len(modules) else req.split("==")[0]) for i, req in enumerate(requirements)]


def test_kit_pip_api_installs_every_requirement_and_can_tell_when_it_is_present(manifest):
    pipapi = manifest["python"]["pipapi"]
    installs = kit_pipapi_installs(pipapi)
    assert [req for req, _ in installs] == pipapi["requirements"], "Kit would skip the requirements"
    named = pipapi["requirements"][:len(pipapi["modules"])]
    assert len(pipapi["modules"]) <= len(pipapi["requirements"]), "more import names than requirements"
    assert all("==" in req for req in pipapi["requirements"][len(named):]), \
        "a requirement without an import name must be an exact pin (Kit then imports the text up to '==')"
    for requirement, module in installs:
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", module), \
            f"{requirement}: Kit would import {module!r}, which is no module name, and reinstall it on every start"
        assert importlib.util.find_spec(module) is not None, f"{requirement} installs no module named {module}"
    # The bundled wheels are tried first, the online index only as the fallback.
    assert pipapi["archiveDirs"] == ["pip_archives"] and pipapi["use_online_index"] is True


def test_the_old_pipapi_table_installed_nothing():
    old = {"requirements": ["pydantic>=2.7"], "use_online_index": False, "archiveDirs": ["pip_archives"]}
    assert kit_pipapi_installs(old) == []
    assert kit_pipapi_installs({"requirements": ["pydantic>=2.7"], "use_online_index": True}) == \
        [("pydantic>=2.7", "pydantic>=2.7")], "without modules Kit imports the requirement text itself"


def test_readme_explains_the_install_strategy_and_how_to_block_the_online_index():
    readme = (EXT / "docs" / "README.md").read_text()
    assert "use_online_index = true" in readme and "modules" in readme
    assert "/exts/omni.kit.pipapi/allowOnlineIndex=false" in readme


def test_warp_is_pinned_to_what_the_core_needs(manifest, pyproject):
    core = next(d for d in pyproject["project"]["dependencies"] if _requirement_name(d) == "warp-lang")
    needed = tuple(int(x) for x in re.search(r">=\s*([\d.]+)", core).group(1).split("."))
    pinned = manifest["dependencies"]["omni.warp.core"].get("version")
    assert pinned, "omni.warp.core accepts any Warp"
    # Kit reads a dependency version as semver-compatible: same major, at least this version.
    version = tuple(int(x) for x in pinned.split("."))
    assert version[0] == needed[0] and version[: len(needed)] >= needed, (pinned, core)


def test_python_and_kit_versions_are_stated(manifest):
    assert manifest["package"]["target"]["python"] == ["cp311", "cp312"]
    init = (EXT / "lift3d" / "kit" / "__init__.py").read_text()
    assert "MIN_PYTHON = (3, 11)" in init
    readme = (EXT / "docs" / "README.md").read_text()
    for fact in ("Kit 107", "Python 3.11", "Kit 108", "Python 3.12"):
        assert fact in readme, fact
    assert "Kit 105-107: 3.10" not in readme


def test_pipapi_requirements_match_pyproject_pins(manifest, pyproject):
    pipapi = manifest["python"]["pipapi"]
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
    assert settings["objects"] == request.objects == "all"


def test_changelog_latest_version_matches(manifest):
    text = (EXT / manifest["package"]["changelog"]).read_text()
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", text, flags=re.MULTILINE)
    assert versions and versions[0] == manifest["package"]["version"]
    assert text.startswith("# Changelog") and "keepachangelog.com" in text


def test_test_section(manifest):
    (test,) = manifest["test"]
    assert test["pythonTests"]["include"] == ["lift3d.kit.tests.*"]
    tests = EXT / "lift3d" / "kit" / "tests"
    assert (tests / "__init__.py").is_file() and list(tests.glob("test_*.py"))
    assert "--no-window" in test["args"]
    assert "omni.kit.ui_test" in test["dependencies"]
    assert isinstance(test["stdoutFailPatterns"]["exclude"], list)


def test_python_module_imports_under_the_stand_ins(kit, manifest):
    module = importlib.import_module(manifest["python"]["module"][0]["name"])
    iext = importlib.import_module("omni.ext").IExt
    exts = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, iext) and v is not iext]
    assert [cls.__name__ for cls in exts] == ["Lift3dExtension"]


def test_stand_ins_do_not_leak_outside_kit_tests():
    stubs = str(ROOT / "tests" / "omni_stubs")
    for name in ("omni", "carb"):
        module = sys.modules.get(name)
        assert module is None or not any(str(p).startswith(stubs) for p in getattr(module, "__path__", [])), name
        spec = importlib.util.find_spec(name)  # a real omni namespace package (e.g. the asset validator) is fine
        assert spec is None or not any(str(p).startswith(stubs) for p in spec.submodule_search_locations or [])
    assert not any(name.startswith("lift3d.kit") for name in sys.modules)
