"""The request and result types of a reconstruction, and its cancel token and progress callback.

They live apart from :mod:`lift3d.api` so that the API (which calls the
pipeline) and the pipeline (which takes these types) do not import each
other. :mod:`lift3d.api` re-exports all of them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import Cancelled

ProgressFn = Callable[[str, float], None]
"""``progress(stage, fraction)``: the current stage's name and the overall fraction done in [0, 1]."""


class CancelToken:
    """Thread-safe cancellation flag, checked between optimisation steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the running job to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` if :meth:`cancel` was called."""
        if self._event.is_set():
            raise Cancelled("reconstruction cancelled")


@dataclass
class ReconstructRequest:
    """One reconstruction job.

    Attributes:
        images: one or more image files (PNG/JPEG/WebP).
        views: optional NeRF-style ``transforms.json`` giving the cameras of ``images``.
        mask: optional mask image for a single input image (white = object).
        category: ``car`` or ``generic`` (see ``config/categories.toml``).
        preset: ``fast``, ``balanced`` or ``best`` (see ``config/presets.toml``).
        name: asset name (sanitised); an existing asset folder of that name is replaced. Default: the
            first image's file name, made unique among ``out_dir``'s entries (``car``, ``car_2``, ...).
        out_dir: folder that receives the asset folder; default ``output.folder``.
        stage: optional USD stage to add the asset to, under ``/World/Reconstructions``; in a lift3d
            shared stage through this writer's own layer (see :mod:`lift3d.usd.shared_stage`).
        config: optional user settings file (TOML).
        fit_shape: deform the template to the silhouettes (``False`` keeps the undeformed,
            camera-placed template: the evaluation baseline).
        init: how a single car photo without camera is initialised: ``learned`` (the predictor's
            hypotheses), ``search`` (the template grid search), ``both`` (the better of the two) or
            ``predicted`` (the predictor's best guess with no refinement; an evaluation line).
            Default: the ``predictor.init`` setting.
        objects: which separate objects of a single photo's mask become assets (the mask is split
            into connected regions above a minimum size, :func:`lift3d.io.foreground.split_objects`):
            ``all`` (default: each its own asset, ``NAME``, ``NAME_2``, ...), ``largest`` (one asset,
            as for a photo of one object) or a number N (the N largest). Each object is fitted to its
            own mask, the others masked out. Ignored for several (calibrated) photos.
    """

    images: list[Path]
    views: Path | None = None
    mask: Path | None = None
    category: str = "car"
    preset: str = "balanced"
    name: str | None = None
    out_dir: Path | None = None
    stage: Path | None = None
    config: Path | None = None
    fit_shape: bool = True
    init: str | None = None
    objects: str | int = "all"

    def __post_init__(self) -> None:
        self.images = [Path(p) for p in self.images]
        for attr in ("views", "mask", "out_dir", "stage", "config"):
            value = getattr(self, attr)
            if value is not None:
                setattr(self, attr, Path(value))


@dataclass
class ReconstructResult:
    """What a reconstruction produced.

    Attributes:
        name: the asset's (sanitised, unique) name.
        asset_path: the asset's root layer (``NAME/NAME.usda``).
        prim_path: where it was added in ``request.stage``, or ``None``.
        cameras: per input view, ``{"image", "fx", "fy", "cx", "cy", "width", "height", "cam_to_world"}``.
        metrics: at least ``input_view_iou`` (mask IoU at the input views, mean).
        timings: seconds per stage.
        warnings: short sentences on what may be wrong with the result (see :mod:`lift3d.pipeline.signals`).
        signals: the quality signals behind the warnings (mask source and confidence, input fit,
            predictor confidence and agreement, camera range, texture coverage).
        other_objects: with several objects in the photo, the results of the second, third, ...
            object (this result is the largest's).
    """

    name: str
    asset_path: Path
    prim_path: str | None = None
    cameras: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)
    other_objects: list["ReconstructResult"] = field(default_factory=list)

    def all_results(self) -> list["ReconstructResult"]:
        """This result and those of the other objects, largest first."""
        return [self, *self.other_objects]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object of the CLI (``other_objects`` only when there are several objects)."""
        others = self.other_objects
        out = asdict(dataclasses.replace(self, other_objects=[]))
        out.pop("other_objects")
        out["asset"] = str(out.pop("asset_path"))
        out["prim"] = out.pop("prim_path")
        if others:
            out["other_objects"] = [o.to_json() for o in others]
        return out


__all__ = ["CancelToken", "ProgressFn", "ReconstructRequest", "ReconstructResult"]
