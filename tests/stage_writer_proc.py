"""A writer process for the shared-stage concurrency tests (run as a script, or imported for ``make_tiny_asset``).

Usage::

    python stage_writer_proc.py add  ROOT WRITER ASSET_DIR COUNT MAX_DELAY SEED
        make COUNT tiny assets and add each to ROOT as WRITER, sleeping a random
        0..MAX_DELAY seconds before each add; prints each prim path.
    python stage_writer_proc.py grow ROOT WRITER ASSET_DIR PREFILL
        fill WRITER's layer with PREFILL reconstructions in one save (if it is
        empty), then add one more per save forever, printing ``saved N`` after
        every completed save (N = reconstructions in the layer on disk).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path


def make_tiny_asset(folder: Path, name: str, seed: int) -> Path:
    """Write ``folder/name/name.usda``: defaultPrim ``/name`` (Xform) with a one-triangle ``mesh``; return its path.

    The triangle's points depend on ``seed`` so every asset's bytes differ.
    """
    from pxr import Usd, UsdGeom

    path = Path(folder) / name / f"{name}.usda"
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, f"/{name}")
    stage.SetDefaultPrim(root.GetPrim())
    mesh = UsdGeom.Mesh.Define(stage, f"/{name}/mesh")
    s = 1.0 + (seed % 997) / 997.0
    mesh.CreatePointsAttr([(0.0, 0.0, 0.0), (s, 0.0, 0.0), (0.0, s, 0.0)])
    mesh.CreateFaceVertexCountsAttr([3])
    mesh.CreateFaceVertexIndicesAttr([0, 1, 2])
    stage.GetRootLayer().Export(str(path))
    return path


def _add(root: str, writer: str, asset_dir: str, count: int, max_delay: float, seed: int) -> None:
    from lift3d.usd.shared_stage import SharedStage

    rng = random.Random(seed)
    stage = SharedStage(root, writer=writer)
    for i in range(count):
        asset = make_tiny_asset(Path(asset_dir), f"{writer}_{i}", seed * 1000 + i)
        time.sleep(rng.uniform(0.0, max_delay))
        print(stage.add(asset, source=f"{writer}_{i}.png"), flush=True)


def _grow(root: str, writer: str, asset_dir: str, prefill: int) -> None:
    from pxr import Sdf

    from lift3d.usd.shared_stage import RECONSTRUCTIONS, AddItem, SharedStage

    stage = SharedStage(root, writer=writer)
    asset = make_tiny_asset(Path(asset_dir), f"{writer}_asset", 7)
    count = 0
    if stage.writer_layer.exists():
        layer = Sdf.Layer.OpenAsAnonymous(str(stage.writer_layer))
        count = len(layer.GetPrimAtPath(RECONSTRUCTIONS).nameChildren)
    if count == 0:
        stage.add_many([AddItem(asset, name=f"p{i}", source="prefill.png") for i in range(prefill)])
        count = prefill
    print(f"saved {count}", flush=True)
    while True:
        stage.add(asset, name=f"g{count}", source="grow.png")
        count += 1
        print(f"saved {count}", flush=True)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "add":
        _add(args[0], args[1], args[2], int(args[3]), float(args[4]), int(args[5]))
    elif mode == "grow":
        _grow(args[0], args[1], args[2], int(args[3]))
    else:
        sys.exit(f"unknown mode {mode!r}")
