"""The lift3d package's modules import each other without a cycle (read from the source, nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import lift3d

PACKAGE_DIR = Path(lift3d.__file__).resolve().parent
KERNELS_DIR = Path(__file__).resolve().parents[1] / "kernels"


def _modules() -> dict[str, Path]:
    """Module name -> source file for every module of lift3d (kernels mapped in as ``lift3d.kernels``)."""
    out: dict[str, Path] = {}
    for root, prefix in ((PACKAGE_DIR, "lift3d"), (KERNELS_DIR, "lift3d.kernels")):
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """lift3d modules that ``name`` imports anywhere in its source (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one.
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in modules else stem for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # ``import lift3d.usd.writer as w`` -> the module itself
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):  # a package importing its own submodule
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_walk_sees_the_package():
    graph = _graph()
    assert "lift3d.api" in graph and "lift3d.pipeline.run" in graph and "lift3d.kernels.launch" in graph
    assert "lift3d.requests" in graph["lift3d.api"]
    assert "lift3d.usd.writer" in graph["lift3d.usd.reader"]


def test_no_import_cycle_in_the_package():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"p": {"p.x"}, "p.x": {"p"}}) is None  # a package importing its own submodule


def test_api_and_pipeline_do_not_import_each_other():
    graph = _graph()
    assert "lift3d.api" not in graph["lift3d.pipeline.run"]
    from lift3d.api import CancelToken, ReconstructRequest, ReconstructResult
    from lift3d.requests import ReconstructRequest as Request

    assert Request is ReconstructRequest and CancelToken and ReconstructResult
