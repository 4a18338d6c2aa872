"""How good is the soft silhouette's gradient? Cosines against two references, and fits with each.

The soft silhouette (``kernels/soft_silhouette.py``) multiplies one factor per
*contour edge*; the DIB-R / Soft Rasterizer formula multiplies one per *face*,
so its gradient also reaches vertices inside the silhouette that come within
the blur's reach of a background pixel. This tool measures, on the kernel
benchmark's noisy icospheres and on the car template at the fit's working
resolutions:

1. Gradient agreement: the cosine similarity between the vertex gradients of
   ``sum(w * A)`` of (a) ours, (b) the DIB-R formula over all faces (torch
   autograd, ``bench_kernels.torch_soft_silhouette_grad``, restricted to the
   pixels where it is not constant: outside the hard mask and within 7 px of
   it; elsewhere A is exactly 1 or below e-36), and (c) the gradient of the
   *true* anti-aliased silhouette (box-filtered pixel coverage) from Mitsuba
   3's projective sampling at ``--spp`` samples per pixel, twice with different
   seeds so its own noise floor is visible. Two pixel weightings ``w``: white
   noise (uniform in [-1, 1] per pixel, as in the kernel benchmark) and a
   smooth field (the same noise blurred over 4 px, then scaled to unit
   maximum), closer to what a fit's loss feeds back.
2. Fit quality: the product's shape fit (``shape_fit.fit_shape``, fast preset
   levels) of the car template to one photo's silhouette of a procedurally
   generated vehicle (``lift3d.templates.vehicles``, seeded; same topology, so
   the vertex error is known), once with our gradient and once with the DIB-R
   reference's gradient swapped in; input-view and held-out IoU, mean vertex
   error and seconds per step are reported.

    python tools/silhouette_gradient.py              # everything (~8 min on 2 cores), rewrites the block
    python tools/silhouette_gradient.py --quick      # the small cases only, prints

The generated block of ``exts/lift3d.reconstruct/docs/PERFORMANCE.md`` between
the ``gradient`` markers is replaced; the reading of it is written by hand.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import warp as wp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kernels import (DOC, SIGMA, Peers, framing_camera, icosphere, machine,  # noqa: E402
                           make_mitsuba_projective, torch_soft_silhouette_grad, write_results)

from lift3d.camera import Camera, orbit_camera  # noqa: E402
from lift3d.kernels.mesh_ops import MeshTopology  # noqa: E402
from lift3d.kernels.soft_silhouette import (SoftSilhouetteContext, soft_silhouette,  # noqa: E402
                                            soft_silhouette_backward)
from lift3d.pipeline.silhouette import hard_mask, mask_iou, soft_silhouette_torch  # noqa: E402

BEGIN, END = "<!-- gradient:begin -->", "<!-- gradient:end -->"
BAND_PX = 7
"""Reach of the reference's non-constant pixels outside the hard mask (exp(-49) ~ 5e-22 beyond)."""
PAIRS = 1 << 21
PRESET_LEVELS, PRESET_STEPS = [64, 128], [40, 30]
"""The fits' working resolutions and steps: the ``fast`` preset's (``config/presets.toml``)."""


def band_pixels(mask: np.ndarray) -> torch.Tensor:
    """Flat indices of the pixels outside ``mask`` (H, W) within :data:`BAND_PX` pixels of it."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * BAND_PX + 1, 2 * BAND_PX + 1))
    grown = cv2.dilate(mask.astype(np.uint8), kernel) > 0
    return torch.from_numpy(np.flatnonzero(grown & ~mask))


def ours_grad(points: np.ndarray, faces: np.ndarray, camera: Camera, weights: np.ndarray) -> np.ndarray:
    """(V, 3) gradient of ``sum(weights * A)`` through our kernels."""
    ctx = SoftSilhouetteContext()
    soft_silhouette(wp.array(points, dtype=wp.vec3, device="cpu"), None, camera, camera.width, camera.height, SIGMA,
                    topology=MeshTopology(faces, len(points)), context=ctx)
    return soft_silhouette_backward(ctx, wp.array(weights, dtype=wp.float32, device="cpu")).numpy().astype(np.float64)


def reference_grad(points: np.ndarray, faces: np.ndarray, camera: Camera, weights: np.ndarray) -> np.ndarray:
    """(V, 3) gradient of ``sum(weights * A)`` of the DIB-R formula over all faces (exact over the band).

    Faces whose projected bounding box, grown by :data:`BAND_PX`, holds no band pixel are left out
    (their factors are below e-49 at every band pixel), found with a summed-area table of the band.
    """
    mask = hard_mask(points, faces, camera, camera.width, camera.height)
    pixels = band_pixels(mask)
    band = np.zeros(mask.size, np.int64)
    band[pixels.numpy()] = 1
    table = np.pad(band.reshape(mask.shape).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    uv = camera.project(points)[0][faces]  # (F, 3, 2)
    lo = np.clip(np.floor(uv.min(1) - BAND_PX).astype(np.int64), 0, [camera.width, camera.height])
    hi = np.clip(np.ceil(uv.max(1) + BAND_PX).astype(np.int64), 0, [camera.width, camera.height])
    count = table[hi[:, 1], hi[:, 0]] - table[lo[:, 1], hi[:, 0]] - table[hi[:, 1], lo[:, 0]] + table[lo[:, 1], lo[:, 0]]
    near = faces[count > 0]
    if len(near) == 0:
        return np.zeros((len(points), 3))
    _, _, grad = torch_soft_silhouette_grad(torch.from_numpy(points), torch.from_numpy(near.astype(np.int64)),
                                            camera, SIGMA, torch.from_numpy(weights), PAIRS, pixels=pixels)
    return grad.numpy().astype(np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


def weight_fields(size: int) -> dict[str, np.ndarray]:
    noise = np.random.default_rng(1).uniform(-1.0, 1.0, (size, size)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 4.0)
    return {"noise": noise, "smooth": (smooth / np.abs(smooth).max()).astype(np.float32)}


def car_template():
    """The car template the product uses (from the settings)."""
    from lift3d.settings import load_settings
    from lift3d.templates import load_template

    return load_template(load_settings().template_path("car"))


def car_scene(size: int) -> tuple[np.ndarray, np.ndarray, Camera]:
    """The car template seen from a front three-quarter view, filling the frame as the fit's crops do."""
    template = car_template()
    camera = orbit_camera(0.7, 0.25, 7.0, 0.75, size, size, target=np.array([0.0, 0.7, 0.0]))
    return template.points.astype(np.float32), template.faces.astype(np.int32), camera


def agreement_rows(cases: list[tuple[str, np.ndarray, np.ndarray, Camera]], peers: Peers | None,
                   spp: int) -> list[dict]:
    rows = []
    for name, points, faces, camera in cases:
        for wname, weights in weight_fields(camera.width).items():
            t = time.perf_counter()
            ours = ours_grad(points, faces, camera, weights)
            t_ours = time.perf_counter() - t
            t = time.perf_counter()
            ref = reference_grad(points, faces, camera, weights)
            t_ref = time.perf_counter() - t
            row = {"case": name, "weights": wname, "ours_vs_dibr": cosine(ours, ref), "ours_s": t_ours,
                   "dibr_s": t_ref, "reached_ours": int((np.abs(ours).sum(1) > 0).sum()),
                   "reached_dibr": int((np.abs(ref).sum(1) > 0).sum())}
            if peers is not None and peers.mi is not None:
                run = make_mitsuba_projective(peers, points, faces, camera, weights, spp)
                truth = [np.array(run(2)).reshape(-1, 3).astype(np.float64) for _ in range(2)]
                row.update(ours_vs_true=cosine(ours, truth[0]), dibr_vs_true=cosine(ref, truth[0]),
                           true_vs_true=cosine(truth[0], truth[1]))
            rows.append(row)
            print(row, flush=True)
    return rows


class _DibrGradient(torch.autograd.Function):
    """Our soft silhouette forward, the DIB-R reference's gradient backward (the fit's silhouette op, swapped)."""

    @staticmethod
    def forward(ctx, points, topology, camera, width, height, sigma):
        ctx.save_for_backward(points)
        ctx.faces, ctx.camera = topology.faces.reshape(-1, 3), camera
        with torch.enable_grad():
            return soft_silhouette_torch(points.detach(), topology, camera, width, height, sigma).detach()

    @staticmethod
    def backward(ctx, grad_image):
        (points,) = ctx.saved_tensors
        with torch.enable_grad():  # autograd is off inside a backward; the reference runs its own
            grad = reference_grad(points.detach().numpy().astype(np.float32), np.asarray(ctx.faces), ctx.camera,
                                  grad_image.detach().numpy().astype(np.float32))
        return torch.from_numpy(grad).to(points.dtype), None, None, None, None, None


def fit_vehicle(vehicle, size: int, gradient: str, levels: list[int], steps: list[int]) -> dict:
    """Fit the car template to one generated vehicle's silhouette with the product's ``fit_shape``.

    The vehicle is seen by a front three-quarter camera (``size``^2 photo); the start is the template
    scaled to the vehicle's bounding box (what the camera search provides), the camera is the true one.
    Returns the input-view IoU, the mean IoU over three held-out views, the mean vertex error (metres,
    the generated vehicle has the template's topology) and the seconds per fit step.
    """
    from lift3d.pipeline import shape_fit
    from lift3d.templates.vehicles import vehicle_points

    template = car_template()
    truth = vehicle_points(vehicle, template)
    target_box = np.ptp(truth, axis=0)
    start = template.points.astype(np.float64) * (target_box / np.ptp(template.points, axis=0))
    start[:, 1] -= start[:, 1].min() - truth[:, 1].min()
    start[:, 2] += truth[:, 2].mean() - start[:, 2].mean()
    centre = np.array([0.0, 0.5 * target_box[1], 0.0])

    def cam(yaw: float, pitch: float) -> Camera:
        return orbit_camera(yaw, pitch, 2.2 * float(np.linalg.norm(target_box)), 0.75, size, size, target=centre)

    view = cam(0.7, 0.2)
    held_out = [cam(0.7 + math.pi / 2, 0.2), cam(0.7 + math.pi, 0.3), cam(-0.7, 0.5)]
    faces = template.faces.astype(np.int32)
    views = [shape_fit.FitView(view, hard_mask(truth, faces, view, size, size))]
    original = shape_fit.soft_silhouette_torch
    if gradient == "dibr":
        shape_fit.soft_silhouette_torch = _DibrGradient.apply
    try:
        clock = time.perf_counter()
        result = shape_fit.fit_shape(template, views, start, shape_fit.ObjectTransform(), levels, steps, SIGMA,
                                     keep_length=True)
        seconds = (time.perf_counter() - clock) / sum(steps)
    finally:
        shape_fit.soft_silhouette_torch = original
    fitted = result.points.astype(np.float64)

    def iou(points: np.ndarray, camera: Camera) -> float:
        return mask_iou(hard_mask(points, faces, camera, size, size), hard_mask(truth, faces, camera, size, size))

    return {"input_iou": iou(fitted, view), "held_out_iou": float(np.mean([iou(fitted, c) for c in held_out])),
            "vertex_error": float(np.linalg.norm(fitted - truth, axis=1).mean()), "s_per_step": seconds,
            "start": {"input_iou": iou(start, view), "held_out_iou": float(np.mean([iou(start, c) for c in held_out])),
                      "vertex_error": float(np.linalg.norm(start - truth, axis=1).mean())}}


def fit_rows(vehicles: int, levels: list[int], steps: list[int]) -> list[dict]:
    from lift3d.templates.vehicles import sample_vehicle

    rows = []
    rng = np.random.default_rng(7)
    for k in range(vehicles):
        vehicle = sample_vehicle(rng)
        row = {"vehicle": f"{k}: {vehicle.body_type}"}
        for gradient in ("ours", "dibr"):
            row[gradient] = fit_vehicle(vehicle, 512, gradient, levels, steps)
        row["start"] = row["ours"].pop("start")
        row["dibr"].pop("start")
        rows.append(row)
        print(row, flush=True)
    return rows


def markdown(agree: list[dict], fits: list[dict], header: str) -> str:
    out = [header, "", "### Gradient agreement (cosine similarity of the vertex gradients)", "",
           "| case | weights | ours vs DIB-R | ours vs true | DIB-R vs true | true vs true (noise floor) "
           "| vertices reached: ours / DIB-R | seconds: ours / DIB-R |", "|---|---|---:|---:|---:|---:|---|---|"]
    for r in agree:
        def c(key: str) -> str:
            return f"{r[key]:.3f}" if key in r else "-"
        out.append(f"| {r['case']} | {r['weights']} | {c('ours_vs_dibr')} | {c('ours_vs_true')} | "
                   f"{c('dibr_vs_true')} | {c('true_vs_true')} | {r['reached_ours']} / {r['reached_dibr']} | "
                   f"{r['ours_s']:.3f} / {r['dibr_s']:.1f} |")
    out += ["", "### Fit of the car template to a generated vehicle (the product's `fit_shape`, fast preset levels)",
            "", "| vehicle | start: input / held-out IoU, vertex error | ours | DIB-R gradient | s/step: ours / DIB-R |",
            "|---|---|---|---|---|"]

    def cell(r: dict) -> str:
        return f"{r['input_iou']:.3f} / {r['held_out_iou']:.3f}, {100 * r['vertex_error']:.1f} cm"
    for r in fits:
        out.append(f"| {r['vehicle']} | {cell(r['start'])} | {cell(r['ours'])} | {cell(r['dibr'])} | "
                   f"{r['ours']['s_per_step']:.3f} / {r['dibr']['s_per_step']:.2f} |")
    if fits:
        mean = {k: {m: float(np.mean([r[k][m] for r in fits])) for m in ("input_iou", "held_out_iou", "vertex_error")}
                for k in ("start", "ours", "dibr")}
        out.append(f"| **mean of {len(fits)}** | {cell(mean['start'])} | **{cell(mean['ours'])}** | "
                   f"**{cell(mean['dibr'])}** | {np.mean([r['ours']['s_per_step'] for r in fits]):.3f} / "
                   f"{np.mean([r['dibr']['s_per_step'] for r in fits]):.2f} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cases only, no Mitsuba; prints, writes nothing")
    parser.add_argument("--spp", type=int, default=32, help="samples per pixel of the Mitsuba reference gradient")
    parser.add_argument("--vehicles", type=int, default=4, help="generated vehicles to fit per resolution")
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args(argv)
    wp.config.quiet = True
    wp.init()
    torch.set_num_threads(2)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    started = time.perf_counter()
    spheres = [(3, 256)] if args.quick else [(3, 256), (5, 512)]
    cases = [(f"sphere {20 * 4 ** level / 1000:.1f}k tris, {size}^2", *icosphere(level), framing_camera(size))
             for level, size in spheres]
    cases += [(f"car template {len(car_scene(64)[1]) / 1000:.1f}k tris, {size}^2", *car_scene(size))
              for size in ([128] if args.quick else [128, 256])]
    peers = None if args.quick else Peers()
    agree = agreement_rows(cases, peers, args.spp)
    levels, steps = ([64], [10]) if args.quick else (PRESET_LEVELS, PRESET_STEPS)
    fits = fit_rows(1 if args.quick else args.vehicles, levels, steps)
    header = (f"Generated by `python tools/silhouette_gradient.py` on {stamp}: {machine()}; sigma {SIGMA} px^2, "
              f"Mitsuba 3 `direct_projective` at {args.spp} spp as the true gradient; fits at levels {levels}, "
              f"steps {steps}. Run took {time.perf_counter() - started:.0f} s.")
    table = markdown(agree, fits, header)
    print("\n" + table)
    if not args.quick:
        write_results(table, args.output, BEGIN, END)
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
