"""Kernel benchmark: lift3d's Warp kernels against peers, side by side, in one run.

Run with ``./repo.sh bench`` (installs the optional peers of the ``bench``
extra: embreex, open3d, mitsuba, drjit) or directly with the project's Python::

    python tools/bench_kernels.py            # full table, written to docs/PERFORMANCE.md
    python tools/bench_kernels.py --quick    # a subset, printed only

Workloads (noisy subdivided icospheres of 1.3k / 20k / 330k triangles framed
by an orbit camera, images of 256^2 and 512^2 pixels):

* forward visibility (per-pixel nearest triangle through the pixel centres):
  ``lift3d.kernels.raster.rasterize`` vs Embree (embreex, one primary ray per
  pixel centre), Open3D ``RaycastingScene.cast_rays`` and Mitsuba 3
  (``llvm_ad_rgb``) ``Scene.ray_intersect_preliminary`` on a prebuilt ray bundle;
* soft silhouette forward + backward (gradient of a random-weighted pixel sum
  w.r.t. the vertex positions): ``lift3d.kernels.soft_silhouette`` vs Mitsuba 3's
  projective-sampling integrator ``direct_projective`` (an emissive mesh on
  black: its image is the anti-aliased silhouette; one ``mi.render`` and one
  ``dr.backward``) and a plain vectorized torch soft rasterizer (all pixels x
  all faces, chunked, autograd).

Each measurement: one warm-up call, then the minimum of ``--repeats`` calls
(the torch baseline: timed over enough pixel chunks to fill ``--torch-budget``
seconds and scaled to the whole image, marked ``~``). Thread counts: Warp via
lift3d's launcher, torch ``set_num_threads``, Dr.Jit ``set_thread_count``,
Open3D ``cast_rays(nthreads=...)``; embreex has no thread setting (its
``run`` traces the rays in one loop), so its rows are the same call.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import warp as wp

from lift3d.camera import Camera, orbit_camera
from lift3d.kernels.mesh_ops import MeshTopology
from lift3d.kernels.soft_silhouette import SoftSilhouetteContext, soft_silhouette, soft_silhouette_backward
from report_blocks import cpu_info, write_block

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "exts" / "lift3d.reconstruct" / "docs" / "PERFORMANCE.md"
SIGMA = 1.0
"""Soft silhouette sharpness (pixels^2) for every soft workload."""


# --------------------------------------------------------------------------- workloads


def icosphere(level: int, noise: float = 0.02, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Radially noisy unit icosphere, 20 * 4^level faces: (V, 3) float32, (F, 3) int32 (vectorized subdivision)."""
    t = (1.0 + 5.0 ** 0.5) / 2.0
    v = np.array([(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
                  (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)], dtype=np.float64)
    f = np.array([(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
                  (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5),
                  (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)], dtype=np.int64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    for _ in range(level):
        sides = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        keys = np.sort(sides, axis=1)
        unique, inverse = np.unique(keys[:, 0] * len(v) + keys[:, 1], return_inverse=True)
        mids = v[unique // len(v)] + v[unique % len(v)]
        mid = (inverse.reshape(3, -1) + len(v)).T  # (F, 3): midpoints of sides 01, 12, 20
        v = np.vstack([v, mids / np.linalg.norm(mids, axis=1, keepdims=True)])
        a, b, c = f[:, 0], f[:, 1], f[:, 2]
        ab, bc, ca = mid[:, 0], mid[:, 1], mid[:, 2]
        f = np.concatenate([np.stack(x, axis=1) for x in ((a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca))])
    rng = np.random.default_rng(seed)
    v *= 1.0 + noise * rng.uniform(-1.0, 1.0, (len(v), 1))
    return v.astype(np.float32), f.astype(np.int32)


def framing_camera(size: int) -> Camera:
    """A camera 3 m from the origin (46 deg horizontal field of view): the unit sphere fills ~55 % of the image."""
    return orbit_camera(0.3, 0.2, 3.0, 0.8, size, size)


def pixel_rays(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Primary rays through the pixel centres: (H*W, 3) float32 origins and unit directions (world)."""
    ys, xs = np.mgrid[0:camera.height, 0:camera.width]
    d = np.stack([(xs.ravel() + 0.5 - camera.cx) / camera.fx, -(ys.ravel() + 0.5 - camera.cy) / camera.fy,
                  -np.ones(xs.size)], axis=1)
    d = d @ camera.cam_to_world[:3, :3].T
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    origins = np.repeat(camera.position[None], len(d), axis=0)
    return origins.astype(np.float32), d.astype(np.float32)


# --------------------------------------------------------------------------- timing


@dataclass
class Row:
    section: str
    case: str
    threads: int
    times: dict[str, float | None]
    extrapolated: set[str]
    notes: dict[str, str]


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Seconds: one warm-up call, then the minimum over ``repeats`` calls."""
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


class Peers:
    """Imports the optional peers once; records a one-line reason for each one that cannot be used."""

    def __init__(self) -> None:
        self.skipped: dict[str, str] = {}
        self.embree = self._try("embree", lambda: __import__("embreex.rtcore_scene", fromlist=["x"]))
        self.o3d = self._try("open3d", lambda: __import__("open3d"))
        self.mi, self.dr = None, None
        mi = self._try("mitsuba", self._load_mitsuba)
        if mi is not None:
            self.mi, self.dr = mi

    def _try(self, name: str, load: Callable[[], object]):
        try:
            return load()
        except Exception as exc:  # a missing package, a missing shared library, a failed JIT start
            self.skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"SKIP {name}: cannot import or initialise it ({self.skipped[name]})", flush=True)
            return None

    @staticmethod
    def _load_mitsuba():
        import drjit as dr
        import mitsuba as mi

        mi.set_variant("llvm_ad_rgb")
        return mi, dr


# --------------------------------------------------------------------------- visibility


def visibility_rows(peers: Peers, level: int, size: int, threads_list: list[int], repeats: int) -> list[Row]:
    from lift3d.kernels.raster import rasterize

    v, f = icosphere(level)
    camera = framing_camera(size)
    case = f"{len(f) / 1000:.1f}k tris, {size}^2"
    pts = wp.array(v, dtype=wp.vec3, device="cpu")
    tris = wp.array(f, dtype=wp.int32, device="cpu")
    origins, dirs = pixel_rays(camera)
    coverage = {}
    prepared: dict[str, Callable[[int], Callable[[], object]]] = {}

    state = {"out": None}

    def ours(threads: int):
        def run():
            state["out"] = rasterize(pts, tris, camera, size, size, out=state["out"], threads=threads)
        return run

    prepared["ours"] = ours
    if peers.embree is not None:
        scene = peers.embree.EmbreeScene()
        from embreex.mesh_construction import TriangleMesh

        TriangleMesh(scene, v[f].astype(np.float32))
        prepared["embree"] = lambda threads: (lambda: scene.run(origins, dirs))
        coverage["embree"] = lambda: (scene.run(origins, dirs) >= 0).mean()
    if peers.o3d is not None:
        o3d = peers.o3d
        rc = o3d.t.geometry.RaycastingScene()
        rc.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(f.astype(np.uint32)))
        rays = o3d.core.Tensor(np.concatenate([origins, dirs], axis=1))
        prepared["open3d"] = lambda threads: (lambda: rc.cast_rays(rays, nthreads=threads)["primitive_ids"].numpy())
        coverage["open3d"] = lambda: np.isfinite(rc.cast_rays(rays)["t_hit"].numpy()).mean()
    if peers.mi is not None:
        mi, dr = peers.mi, peers.dr
        mscene = mi.load_dict({"type": "scene", "m": mitsuba_mesh(mi, v, f)})
        mrays = mi.Ray3f(mi.Point3f(origins.T.copy()), mi.Vector3f(dirs.T.copy()))

        def mitsuba(threads: int):
            def run():
                dr.set_thread_count(threads)
                pi = mscene.ray_intersect_preliminary(mrays)
                dr.eval(pi.t, pi.prim_index)
                dr.sync_thread()
            return run

        prepared["mitsuba"] = mitsuba

        def mi_cov():
            pi = mscene.ray_intersect_preliminary(mrays)
            return np.isfinite(pi.t.numpy()).mean()

        coverage["mitsuba"] = mi_cov
    ours(1)()
    ours_cov = float((state["out"].tri_id.numpy() >= 0).mean())
    notes = {}
    for name, cov in coverage.items():
        c = float(cov())
        if abs(c - ours_cov) > 0.01:
            notes[name] = f"coverage {c:.3f} vs ours {ours_cov:.3f}"
    rows = []
    for threads in threads_list:
        times = {}
        for name, make in prepared.items():
            times[name] = best_of(make(threads), repeats)
        rows.append(Row("visibility", case, threads, times, set(), notes))
        print_row(rows[-1], flush=True)
    return rows


def mitsuba_mesh(mi, v: np.ndarray, f: np.ndarray, emitter: bool = False):
    """A Mitsuba mesh with these vertices and faces (written to a temporary PLY when it must carry an emitter)."""
    mesh = mi.Mesh("m", len(v), len(f))
    params = mi.traverse(mesh)
    params["vertex_positions"] = mi.Float(v.ravel())
    params["faces"] = mi.UInt32(f.ravel().astype(np.uint32))
    params.update()
    if not emitter:
        return mesh
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mesh.ply")
        mesh.write_ply(path)
        return mi.load_dict({"type": "ply", "filename": path,
                             "emitter": {"type": "area", "radiance": {"type": "rgb", "value": 1.0}}})


# --------------------------------------------------------------------------- soft silhouette


def torch_soft_silhouette_grad(points: torch.Tensor, faces: torch.Tensor, camera: Camera, sigma: float,
                               weights: torch.Tensor, pairs_per_chunk: int, budget_s: float = math.inf,
                               pixels: torch.Tensor | None = None) -> tuple[float, bool, torch.Tensor | None]:
    """The plain baseline: DIB-R ``A = 1 - prod_j (1 - D_j)`` over *all* faces for every pixel, with autograd.

    Forward and backward run chunk by chunk (pixels x all faces per chunk); the
    projection's gradient is accumulated and pulled back once. ``pixels``
    (flat indices into the (H, W) image) restricts the sum to those pixels
    (default: all). Returns (seconds for the whole image, whether it was
    extrapolated, the (V, 3) gradient of ``sum(weights * A)`` w.r.t. ``points``
    or None when extrapolated). When the budget runs out first, the remaining
    pixels are costed at the fastest chunk's time per pixel (the work per pixel
    is the same everywhere).
    """
    height, width = weights.shape
    w2c = torch.tensor(camera.world_to_cam, dtype=torch.float32)
    x = points.detach().clone().requires_grad_()
    t0 = time.perf_counter()
    pc = x @ w2c[:3, :3].T + w2c[:3, 3]
    depth = -pc[:, 2]
    uv = torch.stack([camera.cx + camera.fx * pc[:, 0] / depth, camera.cy - camera.fy * pc[:, 1] / depth], dim=1)
    gathered = [uv[faces[:, k], c] for k in range(3) for c in range(2)]  # corner k, coordinate c: (F,)
    leaves = [g.detach().requires_grad_() for g in gathered]  # each chunk's graph ends here
    corners = [(leaves[2 * k][None], leaves[2 * k + 1][None]) for k in range(3)]  # (1, F) each
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    pu, pv = xs.reshape(-1, 1) + 0.5, ys.reshape(-1, 1) + 0.5
    w = weights.reshape(-1)
    if pixels is not None:
        pu, pv, w = pu[pixels], pv[pixels], w[pixels]
    chunk = max(1, pairs_per_chunk // max(1, len(faces)))
    done = 0
    per_pixel = math.inf  # fastest chunk, seconds per pixel
    setup = time.perf_counter() - t0
    while done < len(pu):
        c0 = time.perf_counter()
        x_, y_ = pu[done:done + chunk], pv[done:done + chunk]  # (C, 1)
        d2 = None
        sides = []
        for k in range(3):
            (ax, ay), (bx, by) = corners[k], corners[(k + 1) % 3]
            ex, ey = bx - ax, by - ay
            rx, ry = x_ - ax, y_ - ay
            t = ((rx * ex + ry * ey) / (ex * ex + ey * ey).clamp_min(1e-12)).clamp(0.0, 1.0)
            dx, dy = rx - t * ex, ry - t * ey
            dk = dx * dx + dy * dy
            d2 = dk if d2 is None else torch.minimum(d2, dk)
            sides.append(ex * ry - ey * rx)
        inside = ((sides[0] >= 0) & (sides[1] >= 0) & (sides[2] >= 0)) | ((sides[0] <= 0) & (sides[1] <= 0)
                                                                          & (sides[2] <= 0))
        soft = torch.where(inside, torch.ones_like(d2), torch.exp(-d2 / sigma))
        coverage = 1.0 - torch.prod(1.0 - soft, dim=1)
        (coverage * w[done:done + chunk]).sum().backward()
        done += len(x_)
        per_pixel = min(per_pixel, (time.perf_counter() - c0) / len(x_))
        if time.perf_counter() - t0 > budget_s and done < len(pu):
            break
    c0 = time.perf_counter()
    torch.autograd.backward(gathered, [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
                                       for leaf in leaves])
    if done == len(pu):
        return time.perf_counter() - t0, False, x.grad
    return setup + len(pu) * per_pixel + (time.perf_counter() - c0), True, None


def soft_rows(peers: Peers, level: int, size: int, threads_list: list[int], repeats: int, mitsuba_spp: int,
              torch_budget: float) -> list[Row]:
    v, f = icosphere(level)
    camera = framing_camera(size)
    case = f"{len(f) / 1000:.1f}k tris, {size}^2"
    weights = np.random.default_rng(1).uniform(-1.0, 1.0, (size, size)).astype(np.float32)
    topology = MeshTopology(f, len(v))
    pts = wp.array(v, dtype=wp.vec3, device="cpu")
    grad = wp.array(weights, dtype=wp.float32, device="cpu")
    ctx = SoftSilhouetteContext()
    rows = []
    mitsuba_run = make_mitsuba_projective(peers, v, f, camera, weights, mitsuba_spp) if peers.mi is not None else None
    notes = {"mitsuba": f"direct_projective, {mitsuba_spp} spp"} if mitsuba_run else {}
    for threads in threads_list:
        def ours():
            soft_silhouette(pts, None, camera, size, size, SIGMA, topology=topology, context=ctx, threads=threads)
            soft_silhouette_backward(ctx, grad)

        times: dict[str, float | None] = {"ours": best_of(ours, repeats)}
        if mitsuba_run is not None:
            times["mitsuba"] = best_of(lambda: mitsuba_run(threads), max(1, min(repeats, 3)))
        torch.set_num_threads(threads)
        tp, tf = torch.from_numpy(v), torch.from_numpy(f.astype(np.int64))
        torch_soft_silhouette_grad(tp, tf, camera, SIGMA, torch.from_numpy(weights), 1 << 21, 0.2)  # warm-up
        times["torch"], extrapolated, _ = torch_soft_silhouette_grad(tp, tf, camera, SIGMA, torch.from_numpy(weights),
                                                                  1 << 21, torch_budget)
        rows.append(Row("soft silhouette fwd+bwd", case, threads, times, {"torch"} if extrapolated else set(), notes))
        print_row(rows[-1], flush=True)
    return rows


def make_mitsuba_projective(peers: Peers, v, f, camera: Camera, weights: np.ndarray, spp: int):
    """One forward ``mi.render`` + one ``dr.backward`` of ``sum(weights * image)`` w.r.t. the vertex positions."""
    mi, dr = peers.mi, peers.dr
    forward = -camera.cam_to_world[:3, 2]
    pos = camera.position
    scene = mi.load_dict({
        "type": "scene",
        "integrator": {"type": "direct_projective", "sppi": 0},
        "sensor": {
            "type": "perspective", "fov_axis": "x",
            "fov": math.degrees(2.0 * math.atan(0.5 * camera.width / camera.fx)),
            "to_world": mi.ScalarTransform4f().look_at(origin=pos.tolist(), target=(pos + forward).tolist(),
                                                       up=camera.cam_to_world[:3, 1].tolist()),
            "film": {"type": "hdrfilm", "width": camera.width, "height": camera.height, "rfilter": {"type": "box"},
                     "pixel_format": "luminance", "sample_border": True},
            "sampler": {"type": "independent", "sample_count": spp},
        },
        "m": mitsuba_mesh(mi, v, f, emitter=True),
    })
    params = mi.traverse(scene)
    key = "m.vertex_positions"
    w = mi.TensorXf(weights[..., None])
    seed = [0]

    def run(threads: int):
        dr.set_thread_count(threads)
        seed[0] += 1
        dr.enable_grad(params[key])
        params.update()
        image = mi.render(scene, params, spp=spp, seed=seed[0])
        dr.backward(dr.sum(image * w, axis=None))
        g = dr.grad(params[key])
        dr.eval(g)
        dr.sync_thread()
        dr.disable_grad(params[key])
        return g

    return run


# --------------------------------------------------------------------------- report


PEER_ORDER = {"visibility": ["embree", "open3d", "mitsuba"], "soft silhouette fwd+bwd": ["mitsuba", "torch"]}


def fmt_ms(t: float | None, approx: bool = False) -> str:
    if t is None or not math.isfinite(t):
        return "skipped"
    return f"{'~' if approx else ''}{t * 1e3:.1f}"


def row_cells(row: Row) -> list[str]:
    ours = row.times["ours"]
    cells = [row.case, str(row.threads), fmt_ms(ours)]
    for peer in PEER_ORDER[row.section]:
        t = row.times.get(peer)
        approx = peer in row.extrapolated
        ratio = "" if t is None else f" ({'~' if approx else ''}{t / ours:.1f}x)"
        cells.append(fmt_ms(t, approx) + ratio)
    return cells


def print_row(row: Row, flush: bool = False) -> None:
    print(f"[{row.section}] " + " | ".join(row_cells(row)), flush=flush)


def markdown(rows: list[Row], header: str) -> str:
    out = [header]
    for section in PEER_ORDER:
        sel = [r for r in rows if r.section == section]
        if not sel:
            continue
        peers = PEER_ORDER[section]
        out += ["", f"### {section}", "",
                "| case | threads | ours ms | " + " | ".join(f"{p} ms (x ours)" for p in peers) + " |",
                "|---" * (3 + len(peers)) + "|"]
        out += ["| " + " | ".join(row_cells(r)) + " |" for r in sel]
        notes = sorted({f"{k}: {v}" for r in sel for k, v in r.notes.items()})
        if notes:
            out += ["", "Notes: " + "; ".join(notes) + "."]
    return "\n".join(out) + "\n"


def machine() -> str:
    """One line on the machine: CPU model, logical CPUs, load average at the start, OS."""
    info = cpu_info()
    return (f"{info['model']}, {info['logical_cpus']} logical CPUs, load average {info['load_average']:.1f} at start, "
            f"{platform.system()}")


def write_results(table: str, path: Path, begin: str = "<!-- bench:begin -->", end: str = "<!-- bench:end -->") -> None:
    """Replace the generated block of ``path`` (between the ``begin`` and ``end`` markers) with ``table``."""
    write_block(path, table, begin, end)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset: 1.3k tris at 256^2 and 20k tris at 512^2, "
                        "the last of --threads only, fewer repeats; prints, writes nothing")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats after the warm-up (min is reported)")
    parser.add_argument("--threads", default="1,2", help="comma-separated CPU thread counts")
    parser.add_argument("--mitsuba-spp", type=int, default=1, help="samples per pixel of the Mitsuba projective render")
    parser.add_argument("--torch-budget", type=float, default=3.0,
                        help="seconds of torch baseline per measurement before extrapolating to the whole image")
    parser.add_argument("--output", type=Path, default=DOC, help="Markdown file whose generated block is replaced")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    wp.config.quiet = True
    wp.init()
    threads_list = [int(t) for t in args.threads.split(",") if t.strip()]
    repeats = args.repeats
    vis_cases = [(3, 256), (3, 512), (5, 256), (5, 512), (7, 256), (7, 512)]
    soft_cases = [(3, 256), (5, 512)]
    if args.quick:
        threads_list, repeats = threads_list[-1:], min(repeats, 2)
        vis_cases = [(3, 256), (5, 512)]
        args.torch_budget = min(args.torch_budget, 1.0)
    started = time.perf_counter()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"lift3d kernel benchmark, {stamp}; {machine()}", flush=True)
    peers = Peers()
    rows: list[Row] = []
    for level, size in vis_cases:
        rows += visibility_rows(peers, level, size, threads_list, repeats)
    for level, size in soft_cases:
        rows += soft_rows(peers, level, size, threads_list, repeats, args.mitsuba_spp, args.torch_budget)
    skipped = "".join(f"\n\nSkipped peer {name}: {why}." for name, why in peers.skipped.items())
    header = (f"Generated by `./repo.sh bench` (`tools/bench_kernels.py{' --quick' if args.quick else ''}`) on "
              f"{stamp}.\n\nMachine: {machine()}. Python {platform.python_version()}, warp {wp.__version__}, "
              f"torch {torch.__version__}. Times are ms (minimum of {repeats} after a warm-up); in brackets "
              f"the peer's time divided by ours (> 1: we are faster); `~`: extrapolated from part of the image. "
              f"Run took {time.perf_counter() - started:.0f} s.{skipped}")
    table = markdown(rows, header)
    print("\n" + table)
    if not (args.quick or args.no_write):
        write_results(table, args.output)
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
