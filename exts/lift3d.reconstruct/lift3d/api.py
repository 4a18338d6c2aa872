"""The public Python API: what the CLI, the Kit extension and batch jobs call.

Example (no Kit needed)::

    from lift3d.api import CancelToken, ReconstructRequest, reconstruct

    token = CancelToken()
    result = reconstruct(
        ReconstructRequest(images=["car.jpg"], category="car", preset="fast", out_dir="out"),
        progress=lambda stage, fraction: print(f"{stage}: {fraction:.0%}"),
        cancel=token,  # token.cancel() from another thread stops it between steps
    )
    print(result.asset_path, result.metrics["input_view_iou"])

Errors: :class:`lift3d.errors.InputError` for bad input (nothing is written),
:class:`lift3d.errors.Cancelled` when the token was cancelled (nothing is written).
"""

from __future__ import annotations

from typing import Any

from .requests import CancelToken, ProgressFn, ReconstructRequest, ReconstructResult

__all__ = ["CancelToken", "ProgressFn", "ReconstructRequest", "ReconstructResult", "reconstruct"]


def reconstruct(request: ReconstructRequest, progress: ProgressFn | None = None,
                cancel: CancelToken | None = None, settings: Any = None) -> ReconstructResult:
    """Run a reconstruction end to end: load, fit, texture, write the asset, add it to a stage.

    A single photo holding several objects gives one asset per object (``request.objects``,
    :mod:`lift3d.pipeline.objects`): the result is the largest's, the others are in
    ``result.other_objects``. ``result.warnings`` says what may be wrong with each result.

    The request is checked (:func:`lift3d.preflight.check_request`) before torch and Warp are imported,
    so bad input fails fast; the settings' ``runtime`` section then sets the kernels' device and threads.
    """
    from .preflight import check_request

    settings = check_request(request, settings)
    from .kernels.launch import configure  # heavy imports (torch, warp) only from here on
    from .pipeline.objects import reconstruct_objects

    configure(threads=settings.runtime.threads, device=settings.runtime.device)
    return reconstruct_objects(request, progress=progress, cancel=cancel, settings=settings)
