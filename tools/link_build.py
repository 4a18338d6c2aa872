"""Create the links that the Kit build (premake5.lua) creates, without Kit's repo tools.

``./repo.sh build`` runs this. It reads ``premake5.lua`` (following its
``include(...)`` of each extension's ``premake5.lua``), collects every
``repo_build.prebuild_link { {SOURCE, ext.target_dir.."/DEST"}, ... }`` pair and
creates each as a relative symbolic link:

* in place (default): the extension folder itself is the target, so only the
  links that bring repository-level folders into it are made —
  ``kernels/`` -> ``exts/lift3d.reconstruct/lift3d/kernels`` and ``config/`` ->
  ``exts/lift3d.reconstruct/lift3d/config`` (both git-ignored) — and the
  extension folder can be put on Kit's extension path as it is;
* ``--target-dir DIR``: a separate built extension folder, as ``repo build``
  makes under ``_build/<platform>/<config>/exts/``.

An existing correct link is left alone, a stale link is replaced, and a real
file or folder in the way is an error (exit status 2; nothing is deleted).
``--clean`` removes the links again. Symbolic links need developer mode or
administrator rights on Windows.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_COMMENT = re.compile(r"--[^\n]*")
_INCLUDE = re.compile(r'\binclude\s*\(\s*"([^"]+)"\s*\)')
_LINK_BLOCK = re.compile(r"repo_build\.prebuild_link\s*\{(.*?)\n\s*\}", re.DOTALL)
_PAIR = re.compile(r'\{\s*"([^"]+)"\s*,\s*ext\.target_dir\s*\.\.\s*"([^"]*)"\s*\}')
_ENTRY = re.compile(r'\{\s*"')
_EXT_INFO = re.compile(r"\bget_current_extension_info\s*\(\s*\)")


class BuildError(Exception):
    """The premake description cannot be followed, or a link would overwrite real files."""


@dataclass(frozen=True)
class Link:
    """One ``prebuild_link`` pair.

    Attributes:
        extension: the extension's folder name (Kit derives the extension from it).
        extension_dir: the extension's source folder (where its premake5.lua is).
        source: what the link points to (absolute).
        dest: path inside the extension's target folder, relative (``lift3d/kernels``).
    """

    extension: str
    extension_dir: Path
    source: Path
    dest: str


def parse_premake(path: Path, root: Path) -> list[Link]:
    """All link pairs of ``path`` and the premake files it includes, in order.

    ``%{root}`` in a source is the repository root; other sources are relative to
    the premake file's folder. Only destinations of the form
    ``ext.target_dir.."/..."`` are understood (Kit's convention).
    """
    text = _COMMENT.sub("", path.read_text(encoding="utf-8"))
    links: list[Link] = []
    blocks = _LINK_BLOCK.findall(text)
    if blocks and not _EXT_INFO.search(text):
        raise BuildError(f"{path}: prebuild_link without get_current_extension_info()")
    for block in blocks:
        pairs = _PAIR.findall(block)
        if len(pairs) != len(_ENTRY.findall(block)):
            raise BuildError(f"{path}: a prebuild_link entry is not {{\"SOURCE\", ext.target_dir..\"/DEST\"}}")
        for source, dest in pairs:
            src = Path(source.replace("%{root}", str(root))) if source.startswith("%{root}") else path.parent / source
            links.append(Link(path.parent.name, path.parent, src.resolve(), dest.lstrip("/")))
    for included in _INCLUDE.findall(text):
        target = path.parent / included
        links.extend(parse_premake(target / "premake5.lua" if target.is_dir() else target, root))
    return links


def _points_to(link: Path, source: Path) -> bool:
    return link.is_symlink() and link.resolve() == source.resolve()


def create_links(links: list[Link], target_dir: Path | None = None, dry_run: bool = False) -> list[Path]:
    """Create ``links`` into ``target_dir`` (default: each extension's own folder); returns the links made.

    Links whose source already is the destination (in place) are skipped. Links are
    created in order, so a link into a linked folder lands where that folder points.
    """
    made: list[Path] = []
    for link in links:
        base = target_dir if target_dir is not None else link.extension_dir
        dest = base / link.dest
        if not link.source.exists():
            raise BuildError(f"{link.source} does not exist (linked to {dest})")
        if dest.resolve() == link.source and not dest.is_symlink():
            continue  # in place: the source already sits there
        if _points_to(dest, link.source):
            made.append(dest)
            continue
        if dest.exists() and not dest.is_symlink():
            raise BuildError(f"{dest} exists and is not a link; move it away to build")
        if dry_run:
            made.append(dest)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink():
            dest.unlink()
        relative = os.path.relpath(link.source, dest.parent.resolve())
        os.symlink(relative, dest, target_is_directory=link.source.is_dir())
        made.append(dest)
    return made


def remove_links(links: list[Link], target_dir: Path | None = None) -> list[Path]:
    """Remove the links :func:`create_links` makes (innermost first); returns those removed."""
    removed = []
    for link in reversed(links):
        dest = (target_dir if target_dir is not None else link.extension_dir) / link.dest
        if dest.is_symlink():
            dest.unlink()
            removed.append(dest)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the Kit build links described by premake5.lua.")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (holds premake5.lua)")
    parser.add_argument("--target-dir", type=Path, default=None,
                        help="built extension folder (default: link in place, into the extension's own folder)")
    parser.add_argument("--clean", action="store_true", help="remove the links instead")
    parser.add_argument("--dry-run", action="store_true", help="print what would be linked")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        links = parse_premake(root / "premake5.lua", root)
        if args.target_dir is not None and len({link.extension for link in links}) > 1:
            raise BuildError("--target-dir needs a single extension in premake5.lua")
        if args.clean:
            for path in remove_links(links, args.target_dir):
                print(f"removed {path}")
            return 0
        for path in create_links(links, args.target_dir, dry_run=args.dry_run):
            print(f"{path} -> {os.readlink(path) if path.is_symlink() else '(dry run)'}")
    except (BuildError, OSError) as exc:
        print(f"link_build: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
