"""premake5.lua's link pairs, and tools/link_build.py creating exactly those links (on temp copies)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = "exts/lift3d.reconstruct"
TOOL = ROOT / "tools" / "link_build.py"
ROOT_LINKS = {("%{root}/kernels", "lift3d/kernels"), ("%{root}/config", "lift3d/config")}


def premake_pairs(text: str) -> set[tuple[str, str]]:
    """The ``{SOURCE, ext.target_dir.."/DEST"}`` pairs of a premake file (read independently of the tool)."""
    text = re.sub(r"--[^\n]*", "", text)
    return {(src, dest.lstrip("/"))
            for src, dest in re.findall(r'\{\s*"([^"]+)"\s*,\s*ext\.target_dir\s*\.\.\s*"([^"]+)"\s*\}', text)}


def test_premake_files_follow_kit_conventions():
    top = (ROOT / "premake5.lua").read_text()
    assert 'repo_build = require("omni/repo/build")' in top
    assert 'dofile("_repo/deps/repo_kit_tools/kit-template/premake5.lua")' in top
    assert f'include("{EXT}")' in top
    ext = (ROOT / EXT / "premake5.lua").read_text()
    assert "local ext = get_current_extension_info()" in ext
    assert re.search(r"project_ext\s*\(\s*ext\s*\)", ext)
    assert "repo_build.prebuild_link" in ext
    pairs = premake_pairs(ext)
    assert ROOT_LINKS <= pairs
    for src, _ in pairs - ROOT_LINKS:  # the extension's own folders
        assert (ROOT / EXT / src).is_dir(), src


def test_in_place_links_are_git_ignored():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for _, dest in ROOT_LINKS:
        assert f"{EXT}/{dest}" in ignored


def test_repo_toml_imports_the_kit_template():
    import tomllib

    with open(ROOT / "repo.toml", "rb") as fh:
        repo = tomllib.load(fh)["repo"]
    assert repo["name"] == "lift3d"
    assert "${root}/_repo/deps/repo_kit_tools/kit-template/repo.toml" in repo["import_configs"]


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of the parts of the repository the build reads, without any existing links."""
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy2(ROOT / "premake5.lua", copy / "premake5.lua")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("kernels", "config"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=ignore)
    ext = copy / EXT
    ext.mkdir(parents=True)
    shutil.copy2(ROOT / EXT / "premake5.lua", ext / "premake5.lua")
    for folder in ("config", "data", "docs", "pip_archives"):
        shutil.copytree(ROOT / EXT / folder, ext / folder, ignore=ignore)
    # The package without whatever links an earlier in-place build left in the real tree.
    shutil.copytree(ROOT / EXT / "lift3d", ext / "lift3d",
                    ignore=lambda d, names: [n for n in names if n in ("__pycache__",)
                                             or (Path(d) == ROOT / EXT / "lift3d" and n in ("kernels", "config"))])
    return copy


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120)


def symlinks_under(folder: Path) -> set[Path]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                found.add(path)
    return found


def import_from(ext_dir: Path) -> list[str]:
    """Import lift3d.kernels and lift3d.config with ``ext_dir`` first on the path.

    Path entries are searched before the editable install's finder, so the package,
    its kernels and its config must all come from ``ext_dir`` (through the links).
    """
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import lift3d.kernels, lift3d.config;"
            "print(lift3d.kernels.__file__); print(lift3d.config.__file__)")
    out = subprocess.run([sys.executable, "-c", code, str(ext_dir)], capture_output=True, text=True,
                         timeout=120)
    return out.stdout.split() if out.returncode == 0 else []


def test_in_place_build_creates_exactly_the_root_links(checkout):
    result = run_tool("--root", str(checkout))
    assert result.returncode == 0, result.stderr
    ext = checkout / EXT
    expected = {ext / dest for _, dest in ROOT_LINKS}
    assert symlinks_under(checkout) == expected
    for src, dest in ROOT_LINKS:
        link = ext / dest
        assert link.resolve() == (checkout / src.replace("%{root}/", "")).resolve()
        assert not os.path.isabs(os.readlink(link)), "links must be relative so the checkout can move"
    assert (ext / "lift3d" / "kernels" / "projection.py").is_file()
    assert (ext / "lift3d" / "config" / "lift3d.toml").is_file()


def test_in_place_build_is_idempotent_and_cleanable(checkout):
    assert run_tool("--root", str(checkout)).returncode == 0
    assert run_tool("--root", str(checkout)).returncode == 0
    ext = checkout / EXT
    assert len(symlinks_under(checkout)) == 2
    clean = run_tool("--root", str(checkout), "--clean")
    assert clean.returncode == 0, clean.stderr
    assert symlinks_under(checkout) == set()
    assert (checkout / "kernels" / "projection.py").is_file(), "clean must not touch the sources"
    assert not (ext / "lift3d" / "kernels").exists()


def test_stale_link_is_replaced_and_real_folder_is_refused(checkout):
    ext = checkout / EXT
    os.symlink("../../../config", ext / "lift3d" / "kernels")  # wrong target
    result = run_tool("--root", str(checkout))
    assert result.returncode == 0, result.stderr
    assert (ext / "lift3d" / "kernels").resolve() == (checkout / "kernels").resolve()
    (ext / "lift3d" / "config").unlink()
    (ext / "lift3d" / "config").mkdir()
    (ext / "lift3d" / "config" / "mine.toml").write_text("x = 1\n")
    result = run_tool("--root", str(checkout))
    assert result.returncode == 2
    assert result.stderr.startswith("link_build: error:") and "not a link" in result.stderr
    assert (ext / "lift3d" / "config" / "mine.toml").read_text() == "x = 1\n", "real files were touched"


def test_built_extension_folder_is_self_contained(checkout, tmp_path):
    build = tmp_path / "_build" / "exts" / "lift3d.reconstruct"
    result = run_tool("--root", str(checkout), "--target-dir", str(build))
    assert result.returncode == 0, result.stderr
    pairs = premake_pairs((checkout / EXT / "premake5.lua").read_text())
    for src, dest in pairs:
        source = checkout / src.replace("%{root}/", "") if src.startswith("%{root}") else checkout / EXT / src
        assert (build / dest).resolve() == source.resolve(), dest
    assert (build / "config" / "extension.toml").is_file()
    assert (build / "data" / "icon.png").is_file()
    files = import_from(build)
    assert len(files) == 2, "lift3d.kernels and lift3d.config must import from the built folder"
    kernels_file, config_file = files
    assert Path(kernels_file).parent == build / "lift3d" / "kernels"
    assert Path(config_file).parent == build / "lift3d" / "config"


def test_without_the_links_the_extension_is_not_self_contained(checkout):
    files = import_from(checkout / EXT)
    inside = checkout / EXT / "lift3d"
    assert not any(Path(f).is_relative_to(inside) for f in files), files


def test_bad_premake_entry_is_reported(checkout):
    ext_premake = checkout / EXT / "premake5.lua"
    ext_premake.write_text(ext_premake.read_text().replace('ext.target_dir.."/docs"', '"somewhere/docs"'))
    result = run_tool("--root", str(checkout))
    assert result.returncode == 2 and "prebuild_link entry" in result.stderr
