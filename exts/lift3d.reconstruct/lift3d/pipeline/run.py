"""One reconstruction, end to end: photos in, a textured, part-labelled USD asset out.

The run is a chain of named stages, each a function of plain data with its own
options (the data flow of ``docs/DESIGN.md``, section 2); each is timed, and
``progress(stage, fraction)`` reports the overall fraction:

1. ``load`` (:func:`.inputs.load_inputs`): settings, preset, category and template;
   every input is validated *before* any heavy work, so bad input raises
   :class:`lift3d.errors.InputError` and writes nothing.
2. ``mask`` (:func:`.inputs.object_masks_info`): the object mask of every photo and where it came
   from (or the one object given by :mod:`.objects` when the photo holds several).
3. ``camera`` (:func:`.initialise.initialise`): given cameras and a visual-hull
   placement, or, for one photo, the learned predictor's hypotheses and/or the
   grid search (cars) or a fixed front view (generic objects).
4. ``shape`` (:func:`.shape_fit.fit_stage`): the silhouette fit with the wheels
   (skipped with ``fit_shape=False`` or zero steps: the undeformed start, the
   evaluation's baseline).
5. ``texture`` (:func:`.texture.texture_stage`): the baked albedo and the part materials.
6. ``write`` (:func:`.output.write_result`): metrics, quality signals and warnings
   (:mod:`.signals`), provenance, the asset folder
   (atomic) and, when asked, a reference in a stage.

A cancelled run raises :class:`lift3d.errors.Cancelled` between steps; the
asset is written in one atomic step at the very end, so nothing is left behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..requests import CancelToken, ProgressFn, ReconstructRequest, ReconstructResult
from ..settings import Settings
from .initialise import InitOptions, initialise
from .inputs import ObjectMask, load_inputs, object_masks_info
from .output import write_result
from .shape_fit import FitOptions, FitView, fit_stage
from .texture import TextureOptions, texture_stage

STAGES = (("load", 0.02), ("mask", 0.03), ("camera", 0.2), ("shape", 0.55), ("texture", 0.15), ("write", 0.05))
"""Stage names and their share of the overall progress."""


class _Progress:
    """Maps per-stage fractions to the overall fraction, checks for cancellation and times the stages."""

    def __init__(self, progress: ProgressFn | None, cancel: CancelToken | None) -> None:
        self.fn = progress
        self.cancel = cancel
        self.starts = {}
        self.timings: dict[str, float] = {}
        self._clock: tuple[str, float] | None = None
        acc = 0.0
        for name, share in STAGES:
            self.starts[name] = (acc, share)
            acc += share

    def check(self) -> None:
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()

    def stage(self, name: str) -> Callable[[float], None]:
        """Start stage ``name`` (ending the previous one's clock); returns its fraction reporter."""
        self.done()
        self._clock = (name, time.perf_counter())
        start, share = self.starts[name]

        def report(fraction: float) -> None:
            self.check()
            if self.fn is not None:
                self.fn(name, min(1.0, start + share * max(0.0, min(1.0, fraction))))

        report(0.0)
        return report

    def done(self) -> None:
        """Stop the current stage's clock."""
        if self._clock is not None:
            name, start = self._clock
            self.timings[name] = time.perf_counter() - start
            self._clock = None


def _add_to_stage(stage: Path, asset_path: Path, source: Path) -> str:
    """Reference the asset in ``stage``; returns the prim path.

    In a lift3d shared stage (``lift3d stage init``) the reference goes into this
    writer's own layer, as ``lift3d stage add`` and ``lift3d batch`` do; any other
    stage gets it in its root layer (``docs/DESIGN.md``, Shared stage).
    """
    from ..usd.shared_stage import SharedStage, is_shared_stage

    if is_shared_stage(stage):
        return SharedStage(stage, create=False).add(asset_path, source=str(source))
    from ..usd.compose import add_reference

    return add_reference(stage, asset_path)


def run_reconstruction(request: ReconstructRequest, progress: ProgressFn | None = None,
                       cancel: CancelToken | None = None, settings: Settings | None = None,
                       object_mask: ObjectMask | None = None) -> ReconstructResult:
    """Reconstruct ``request`` (see the module docstring); returns what was written and measured.

    ``object_mask`` replaces a single photo's mask with one object's (:mod:`.objects`); this
    function itself always makes one asset.

    torch runs single-threaded meanwhile: its tensors here are small (a few
    thousand vertices, one image), where intra-op threads cost far more in
    synchronisation than they save; the pixel work runs in the Warp kernels'
    own thread pool.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(request, progress, cancel, settings, object_mask)
    finally:
        torch.set_num_threads(threads)


def _run(request: ReconstructRequest, progress: ProgressFn | None, cancel: CancelToken | None,
         settings: Settings | None, object_mask: ObjectMask | None = None) -> ReconstructResult:
    steps = _Progress(progress, cancel)

    report = steps.stage("load")
    inputs = load_inputs(request, settings)
    init_options = InitOptions.from_settings(inputs.settings, inputs.preset, request.init)
    report(1.0)

    report = steps.stage("mask")
    masks, mask_info = object_masks_info(inputs, object_mask)
    report(1.0)

    report = steps.stage("camera")
    initial = initialise(inputs, masks, init_options, report, steps.check)
    report(1.0)

    report = steps.stage("shape")
    fit_options = FitOptions.from_preset(inputs.preset)
    fit_info: dict = {}
    points, transform, plane = initial.transform.apply(initial.start), initial.transform, initial.symmetry_plane
    if request.fit_shape and sum(fit_options.steps) > 0 and init_options.mode != "predicted":
        calibrated = inputs.cameras is not None
        views = [FitView(cam, m) for cam, m in zip(initial.cameras, masks)]
        fit, fit_info = fit_stage(inputs.template, inputs.images[0].rgb, views, initial.start, initial.transform,
                                  calibrated, fit_options, report, steps.check)
        points, transform = fit.points.astype("float64"), fit.transform
        if plane is not None and calibrated:
            from .initialise import symmetry_plane

            plane = symmetry_plane(transform)
    report(1.0)

    report = steps.stage("texture")
    texture, coverage, parts, materials = texture_stage(points, inputs.template, inputs.images, masks,
                                                        initial.cameras, plane, initial.body,
                                                        TextureOptions.from_settings(inputs.preset, inputs.settings),
                                                        steps.check, report)

    steps.stage("write")
    result = write_result(inputs, masks, initial, points, texture, coverage, parts, materials, fit_info,
                          steps.timings, steps.check, _add_to_stage, mask_info, object_mask)
    steps.done()
    result.timings["write"] = steps.timings["write"]
    if progress is not None:  # no cancellation check: the asset is written, so the run has succeeded
        progress("write", 1.0)
    return result
