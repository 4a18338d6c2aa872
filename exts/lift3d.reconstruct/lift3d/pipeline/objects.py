"""Several objects in one photo: one reconstruction per object, each with its own mask.

A single photo's mask (its alpha, ``--mask`` or the automatic foreground, which
then keeps every object instead of the largest) is split into its connected
objects above a minimum size (:func:`lift3d.io.foreground.split_objects`).
``request.objects`` picks which become assets: ``all``, ``largest`` or the N
largest. Each chosen object runs through :func:`.run.run_reconstruction` with
its own mask and every other object masked out, so a mask never bridges two
objects. The largest is named as a single-object run would be (``NAME``), the
others ``NAME_2``, ``NAME_3``, ... in order of size; each is added to the
request's stage.

Placement: the largest object's asset is in its own frame, as usual; every
other asset is written in that same frame (:func:`.output.placement`), so all
of them stand where the photo shows them when referenced without a transform.

A photo with one object (and every multi-photo request) takes the ordinary
single-object path unchanged.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..camera import Camera
from ..errors import InputError
from ..naming import free_name, sanitize_name
from ..preflight import object_choice
from ..requests import CancelToken, ProgressFn, ReconstructRequest, ReconstructResult
from ..settings import Settings
from .inputs import ObjectMask
from .run import run_reconstruction


def find_objects(request: ReconstructRequest) -> tuple[list[np.ndarray], np.ndarray, dict]:
    """The separate objects of the request's single photo (largest first), its whole mask and the mask's record.

    With one object (or none) the whole mask and record are exactly what the run would compute
    itself (the largest object of an automatic mask; an alpha or given mask as it is).
    """
    from ..io.foreground import split_objects
    from ..io.images import load_image, object_mask_info

    image = load_image(request.images[0])
    mask, info = object_mask_info(image, request.mask, keep="all")
    return split_objects(mask), mask, info


def _name(first: str, index: int, request: ReconstructRequest, out_dir: Path) -> str:
    """``NAME_<index>``; made unique in ``out_dir`` unless the request named the asset (which replaces)."""
    base = f"{first}_{index}"
    return sanitize_name(base) if request.name else free_name(base, out_dir)


def reconstruct_objects(request: ReconstructRequest, progress: ProgressFn | None = None,
                        cancel: CancelToken | None = None, settings: Settings | None = None) -> ReconstructResult:
    """Reconstruct the chosen objects of ``request`` (see the module docstring).

    Returns the largest object's result with the others in ``other_objects``. Bad input for the
    largest object raises as usual; a later object that cannot be reconstructed becomes a warning.
    """
    choice = object_choice(request.objects)
    if settings is None:
        from ..preflight import check_request

        settings = check_request(request)
    if len(request.images) != 1 or request.views is not None:
        return run_reconstruction(request, progress, cancel, settings)
    clock = time.perf_counter()
    objects, mask, info = find_objects(request)
    found = time.perf_counter() - clock  # the mask's cost, counted in the first result's "mask" timing
    if len(objects) <= 1:  # the run reuses the mask instead of extracting it again
        result = run_reconstruction(request, progress, cancel, settings, ObjectMask(mask, info))
        result.timings["mask"] = result.timings.get("mask", 0.0) + found
        return result
    count = len(objects) if choice == "all" else 1 if choice == "largest" else min(int(choice), len(objects))
    out_dir = Path(request.out_dir) if request.out_dir is not None else Path(settings.output.folder)

    def scaled(index: int) -> ProgressFn | None:
        if progress is None:
            return None
        return lambda stage, fraction: progress(stage, (index + fraction) / count)

    results: list[ReconstructResult] = []
    failed: list[str] = []
    reference = None
    for index, mask in enumerate(objects[:count]):
        record = {**info, "objects": len(objects), "object": index + 1, "reconstructed": count}
        sub = request if index == 0 else dataclasses.replace(
            request, name=_name(results[0].name, index + 1, request, out_dir))
        try:
            result = run_reconstruction(sub, scaled(index), cancel, settings,
                                        ObjectMask(mask, record, reference))
        except InputError as exc:
            if index == 0:
                raise
            failed.append(f"object {index + 1} of {request.images[0].name} could not be reconstructed: {exc}")
            continue
        if index == 0:
            record0 = result.cameras[0]
            reference = Camera(*(record0[k] for k in ("fx", "fy", "cx", "cy", "width", "height")),
                               np.asarray(record0["cam_to_world"], dtype=np.float64), "reference")
        results.append(result)
    first = results[0]
    first.timings["mask"] = first.timings.get("mask", 0.0) + found
    first.other_objects = results[1:]
    first.warnings.extend(failed)
    return first
