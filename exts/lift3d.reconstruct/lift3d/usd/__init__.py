"""Everything that touches OpenUSD (``pxr``) lives in this subpackage.

* :mod:`.writer` -- :func:`~.writer.write_asset`: an :class:`lift3d.asset.Asset`
  to an asset folder (interface ``NAME/NAME.usda``, crate payload ``NAME_geo.usdc``, materials
  ``NAME_mat.usda``, ``textures/albedo.png``; ``docs/DESIGN.md`` section 4), atomically.
* :mod:`.reader` -- :func:`~.reader.read_asset` (exact inverse of the writer),
  :func:`~.reader.summarize_asset` / :func:`~.reader.format_summary` (``lift3d info``).
* :mod:`.stage_refs` -- the one place that adds (and removes) a reconstruction under
  ``/World/Reconstructions``: scaffold, prim names, the lock, the reference.
* :mod:`.compose` -- :func:`~.compose.open_or_create_stage` and
  :func:`~.compose.add_reference`: an asset under ``/World/Reconstructions`` of a stage file.
* :mod:`.checker` -- :func:`~.checker.check_asset`: the USD compliance rules (``usdchecker``).
* :mod:`.meshes` -- :func:`~.meshes.read_world_meshes`: every mesh of any USD file, triangulated,
  in world space (a user's vehicles for ``lift3d train --assets``).
* :mod:`.shared_stage` -- one stage, many concurrent writers, one sublayer each.

Submodules are imported on demand, so ``import lift3d.usd`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

STAGE_SUFFIXES = (".usda", ".usdc", ".usd")
"""File endings of a stage a reconstruction can be added to."""


def check_stage_suffix(stage: Path) -> None:
    """InputError unless the stage file ``stage`` ends in one of :data:`STAGE_SUFFIXES` (no ``pxr`` needed)."""
    if Path(stage).suffix not in STAGE_SUFFIXES:
        raise InputError(f"stage file {stage} must end in .usda, .usdc or .usd")
