"""A user's own vehicle library as training shapes (``lift3d train --assets DIR``).

Each asset file in the folder (``*.usd``, ``*.usda``, ``*.usdc``, ``*.obj``, ``*.glb``)
becomes one training shape in three steps:

1. **Load** (:func:`load_mesh`): every mesh of the file with its world transform
   (USD through :mod:`lift3d.usd.meshes`, OBJ and glTF binary through trimesh),
   triangulated and brought to the canonical frame: +Y up, front towards +Z,
   metres. A USD stage's ``metersPerUnit`` is honoured, and a Z-up stage is turned
   to Y-up by the usual rotation (-90 degrees about X: its front must then face
   -Y, Blender's convention). OBJ files carry no units or axes and are read as
   metres, +Y up, front +Z (glTF's own convention, which GLB files follow). The
   vehicle is then stood on the ground (lowest point at y = 0) and centred in x
   and z.
2. **Register** (:func:`register_mesh`): render calibrated views of it
   (:data:`REGISTRATION_YAWS` yaws x :data:`REGISTRATION_PITCHES_DEG` elevations,
   :data:`REGISTRATION_SIZE` pixels) with the project's Warp rasterizer, write them
   with a NeRF ``transforms.json`` and run the multi-view fit of ``lift3d
   reconstruct`` (category car). The fit writes its asset in the views' world
   frame, which is the canonical frame here, so the fitted points are the asset
   on the car template's topology with no further transform. A fit that put the
   template back to front is turned round (the template's lamps then face +Z
   again, so the renders and their yaw labels agree).
3. **Describe** (:func:`fit_vehicle`): for every body type, least squares over its
   generator parameters (in [0, 1] of the type's ranges, from the middle) of
   ``vehicle_points(vehicle) - registered points``; the best type wins. Its RMS
   residual (metres) is recorded, a measure of how far the asset lies from the
   procedural world.

Registrations are cached (JSON + ``.npy``) under the training cache, keyed by the
file's SHA-256 and the registration settings, so a second run does not refit.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_text_atomic
from ..digest import file_digest
from ..errors import InputError
from ..templates import Template
from ..templates.vehicles import (BODY_TYPES, COMMON, DEFORM_MODES, GENERATOR_VERSION, PARAM_NAMES, Vehicle,
                                  vehicle_points)
from .shapes import RegisteredShape, shapes_key

__all__ = ["ASSET_SUFFIXES", "RegisteredShape", "canonical_frame", "find_assets", "fit_vehicle", "load_mesh",
           "register_asset", "register_folder", "register_mesh", "registration_views", "shapes_key"]

ASSET_SUFFIXES = (".usd", ".usda", ".usdc", ".obj", ".glb")
"""File types read as vehicle assets."""

REGISTRATION_VERSION = 1
"""Bumped whenever registration would give a different result (cached registrations are redone)."""
REGISTRATION_YAWS = 8
REGISTRATION_PITCHES_DEG = (10.0, 35.0)
REGISTRATION_SIZE = 256
REGISTRATION_FOV_DEG = 40.0
"""The calibrated views rendered of each asset: yaws evenly round the circle at each elevation."""

LENGTH_LIMITS_M = (0.5, 30.0)
"""A vehicle's longest side must fall in this range once in metres (else its units are wrong)."""


def find_assets(folder: Path | str) -> list[Path]:
    """The asset files directly in ``folder`` (sorted by name); InputError if it is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"asset folder {folder} does not exist or is not a folder")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in ASSET_SUFFIXES)
    if not found:
        raise InputError(f"asset folder {folder} holds no {', '.join('*' + s for s in ASSET_SUFFIXES)} file")
    return found


def canonical_frame(points: np.ndarray, up_axis: str = "Y", meters_per_unit: float = 1.0) -> np.ndarray:
    """Points in metres, +Y up, on the ground (min y = 0) and centred in x and z."""
    p = np.asarray(points, dtype=np.float64) * float(meters_per_unit)
    if up_axis.upper() == "Z":
        p = np.stack([p[:, 0], p[:, 2], -p[:, 1]], axis=1)
    lo, hi = p.min(axis=0), p.max(axis=0)
    return p - np.array([0.5 * (lo[0] + hi[0]), lo[1], 0.5 * (lo[2] + hi[2])])


def _trimesh_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    try:
        loaded = trimesh.load(str(path), force="scene", process=False)
        mesh = loaded.to_geometry() if hasattr(loaded, "to_geometry") else loaded.dump(concatenate=True)
        points = np.asarray(mesh.vertices, dtype=np.float64).reshape(-1, 3)
        faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    except Exception as exc:  # noqa: BLE001 - trimesh raises many kinds for damaged files
        raise InputError(f"{path} cannot be read as a mesh ({type(exc).__name__}: {exc})") from None
    return points, faces


def load_mesh(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 canonical points and (F, 3) int64 triangles of an asset file (see the module docstring).

    Raises :class:`InputError` (one line naming the file) for an unreadable or empty file, or
    one whose size is not a vehicle's in metres.
    """
    path = Path(path)
    if path.suffix.lower() in (".usd", ".usda", ".usdc"):
        from ..usd.meshes import read_world_meshes

        mesh = read_world_meshes(path)
        points, faces, up, mpu = mesh.points, mesh.faces, mesh.up_axis, mesh.meters_per_unit
    else:
        points, faces = _trimesh_mesh(path)
        up, mpu = "Y", 1.0
    if len(points) == 0 or len(faces) == 0:
        raise InputError(f"{path} holds no triangles")
    if not np.isfinite(points).all() or faces.min() < 0 or faces.max() >= len(points):
        raise InputError(f"{path} holds a broken mesh (non-finite points or bad face indices)")
    points = canonical_frame(points, up, mpu)
    length = float((points.max(axis=0) - points.min(axis=0)).max())
    if not LENGTH_LIMITS_M[0] <= length <= LENGTH_LIMITS_M[1]:
        raise InputError(f"{path} is {length:.3g} m long, not a vehicle's size in metres; set the stage's "
                         "metersPerUnit or scale the file to metres")
    return points, faces


def registration_views(points: np.ndarray, faces: np.ndarray, folder: Path,
                       size: int = REGISTRATION_SIZE) -> Path:
    """Render the calibrated views of a canonical mesh into ``folder`` (RGBA PNGs, alpha = mask) and
    write their ``transforms.json``; returns its path."""
    from PIL import Image

    from ..camera import orbit_camera
    from ..kernels.raster import rasterize
    from ..preview import LIGHT, face_normals

    folder.mkdir(parents=True, exist_ok=True)
    lo, hi = points.min(axis=0), points.max(axis=0)
    target = 0.5 * (lo + hi)
    radius = 0.5 * float(np.linalg.norm(hi - lo))
    fov = math.radians(REGISTRATION_FOV_DEG)
    distance = 1.15 * radius / math.sin(0.5 * fov)
    normals = face_normals(points, faces)
    light = LIGHT / np.linalg.norm(LIGHT)
    shading = (0.35 + 0.55 * np.abs(normals @ light)).astype(np.float32)
    frames = []
    for pitch in REGISTRATION_PITCHES_DEG:
        for k in range(REGISTRATION_YAWS):
            yaw = 2.0 * math.pi * (k + 0.5 * (pitch != REGISTRATION_PITCHES_DEG[0])) / REGISTRATION_YAWS
            name = f"view_{len(frames):02d}"
            cam = orbit_camera(yaw, math.radians(pitch), distance, fov, size, size, target, name)
            tri = rasterize(points.astype(np.float32), faces.astype(np.int32), cam, size, size,
                            device="cpu").tri_id.numpy()
            covered = tri >= 0
            rgba = np.zeros((size, size, 4), np.uint8)
            rgba[covered, :3] = np.round(255.0 * shading[tri[covered]])[:, None]
            rgba[covered, 3] = 255
            Image.fromarray(rgba, "RGBA").save(folder / f"{name}.png")
            frames.append({"file_path": f"{name}.png", "transform_matrix": cam.cam_to_world.tolist()})
    path = folder / "transforms.json"
    path.write_text(json.dumps({"camera_angle_x": fov, "w": size, "h": size, "frames": frames}, indent=1))
    return path


def register_mesh(points: np.ndarray, faces: np.ndarray, template: Template, preset: str = "fast",
                  config: Path | None = None, name: str = "asset") -> tuple[np.ndarray, float, bool]:
    """Fit the car template to a canonical mesh through its rendered views.

    Returns the registered (V, 3) points (canonical frame, on the ground, centred in x and z),
    the fit's mean input-view mask IoU, and whether the template had to be turned round.
    """
    from ..pipeline.run import run_reconstruction
    from ..requests import ReconstructRequest
    from ..usd.reader import read_asset

    with tempfile.TemporaryDirectory(prefix="lift3d-register-") as tmp:
        work = Path(tmp)
        transforms = registration_views(points, faces, work / "views")
        images = [work / "views" / f["file_path"] for f in json.loads(transforms.read_text())["frames"]]
        request = ReconstructRequest(images=images, views=transforms, category="car", preset=preset,
                                     name="registration", out_dir=work / "out", config=config)
        try:
            result = run_reconstruction(request)
        except InputError as exc:
            raise InputError(f"{name}: the multi-view fit failed ({exc})") from None
        fitted = np.asarray(read_asset(result.asset_path).points, dtype=np.float64)
    if fitted.shape != template.points.shape:
        raise InputError(f"{name}: the fit did not keep the car template's topology")
    reversed_ = bool(np.corrcoef(fitted[:, 2], template.points[:, 2])[0, 1] < 0.0)
    if reversed_:  # the template's front ended up at -Z: turn it round (yaw 180 degrees)
        fitted = fitted * np.array([-1.0, 1.0, -1.0])
    fitted = canonical_frame(fitted)
    return fitted, float(result.metrics.get("input_view_iou", math.nan)), reversed_


def _type_ranges(body_type: str) -> tuple[np.ndarray, np.ndarray]:
    ranges = {**COMMON, **BODY_TYPES[body_type]}
    r = np.array([ranges[p] for p in PARAM_NAMES], dtype=np.float64)
    return r[:, 0], r[:, 1]


def fit_vehicle(points: np.ndarray, template: Template, body_types: tuple[str, ...] | None = None,
                max_vertices: int = 600, coarse_evals: int = 4, fine_evals: int = 30,
                keep: int = 2) -> tuple[Vehicle, float, dict[str, float]]:
    """Generator parameters that best explain registered ``points`` (see the module docstring).

    Every body type gets a short least-squares run from the middle of its ranges; the
    ``keep`` best are refined. Returns the best vehicle (no random deformation), its RMS
    residual in metres and the residual of every type tried.
    """
    from scipy.optimize import least_squares

    types = tuple(body_types or BODY_TYPES)
    target = np.asarray(points, dtype=np.float64)
    sel = np.linspace(0, len(target) - 1, min(max_vertices, len(target))).round().astype(np.int64)

    def make(body_type: str, unit: np.ndarray) -> Vehicle:
        lo, hi = _type_ranges(body_type)
        values = lo.copy()
        free = hi > lo
        values[free] = lo[free] + unit * (hi[free] - lo[free])
        return Vehicle(body_type, dict(zip(PARAM_NAMES, values.tolist())), np.zeros((2, DEFORM_MODES)))

    def run(body_type: str, start: np.ndarray, evals: int) -> tuple[np.ndarray, float]:
        def residual(unit: np.ndarray) -> np.ndarray:
            return (vehicle_points(make(body_type, unit), template)[sel] - target[sel]).ravel()

        res = least_squares(residual, start, bounds=(0.0, 1.0), diff_step=1e-3, max_nfev=evals, x_scale=1.0)
        return res.x, float(np.sqrt(np.mean(res.fun.reshape(-1, 3) ** 2) * 3.0))

    coarse: dict[str, tuple[np.ndarray, float]] = {}
    for body_type in types:
        lo, hi = _type_ranges(body_type)
        coarse[body_type] = run(body_type, np.full(int((hi > lo).sum()), 0.5), coarse_evals)
    errors = {t: r for t, (_, r) in coarse.items()}
    for body_type in sorted(types, key=lambda t: coarse[t][1])[:keep]:
        unit, _ = run(body_type, coarse[body_type][0], fine_evals)
        coarse[body_type] = (unit, 0.0)
        vehicle = make(body_type, unit)
        errors[body_type] = float(np.sqrt(np.mean(np.sum((vehicle_points(vehicle, template) - target) ** 2,
                                                         axis=1))))
    best = min(errors, key=errors.get)
    return make(best, coarse[best][0]), errors[best], errors


def _settings_key(preset: str, config: Path | None, body_types: tuple[str, ...] | None = None) -> str:
    """Short hash of everything besides the file that a registration depends on."""
    record = {"registration": REGISTRATION_VERSION, "generator": GENERATOR_VERSION, "preset": preset,
              **({"body_types": list(body_types)} if body_types else {}),
              "config": file_digest(config) if config is not None and Path(config).is_file() else "",
              "views": [REGISTRATION_YAWS, list(REGISTRATION_PITCHES_DEG), REGISTRATION_SIZE, REGISTRATION_FOV_DEG]}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:10]


def _load_cached(stem: Path, name: str, digest: str, vertices: int) -> RegisteredShape | None:
    try:
        record = json.loads(stem.with_suffix(".json").read_text())
        points = np.load(stem.with_suffix(".npy"), allow_pickle=False)
        vehicle = Vehicle(record["body_type"], {k: float(record["params"][k]) for k in PARAM_NAMES},
                          np.zeros((2, DEFORM_MODES)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if points.shape != (vertices, 3) or not np.isfinite(points).all() or record.get("sha256") != digest:
        return None
    return RegisteredShape(name, digest, points.astype(np.float64), vehicle, float(record["residual_m"]),
                           float(record["fit_iou"]), bool(record.get("reversed", False)))


def _save_cached(stem: Path, shape: RegisteredShape) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    record = {**shape.summary(), "residual_m": shape.residual_m, "fit_iou": shape.fit_iou,
              "params": shape.vehicle.params}
    with atomic_path(stem.with_suffix(".npy")) as tmp:
        np.save(tmp, shape.points)
    write_text_atomic(stem.with_suffix(".json"), json.dumps(record))


def register_asset(path: Path | str, template: Template, cache_dir: Path | None = None, preset: str = "fast",
                   config: Path | None = None, body_types: tuple[str, ...] | None = None) -> RegisteredShape:
    """Load, register and describe one asset file, through the cache when ``cache_dir`` is given.

    ``preset`` (and the settings file ``config``) run the multi-view fit; ``body_types`` limits
    the body types :func:`fit_vehicle` tries (default: all).
    """
    path = Path(path)
    try:
        digest = file_digest(path)
    except OSError as exc:
        raise InputError(f"asset {path} cannot be read ({exc.strerror or exc})") from None
    stem = None
    if cache_dir is not None:
        stem = Path(cache_dir) / f"{digest[:24]}_{_settings_key(preset, config, body_types)}"
        cached = _load_cached(stem, path.name, digest, len(template.points))
        if cached is not None:
            return cached
    points, faces = load_mesh(path)
    registered, fit_iou, reversed_ = register_mesh(points, faces, template, preset, config, path.name)
    vehicle, residual, _ = fit_vehicle(registered, template, body_types)
    shape = RegisteredShape(path.name, digest, registered, vehicle, residual, fit_iou, reversed_)
    if stem is not None:
        _save_cached(stem, shape)
    return shape


def register_folder(folder: Path | str, template: Template, cache_dir: Path | None = None, preset: str = "fast",
                    config: Path | None = None, body_types: tuple[str, ...] | None = None,
                    progress: Callable[[int, int, str], None] | None = None) -> list[RegisteredShape]:
    """:func:`register_asset` for every asset file of ``folder``; ``progress(done, total, name)`` after each."""
    files = find_assets(folder)
    shapes = []
    for i, path in enumerate(files):
        shapes.append(register_asset(path, template, cache_dir, preset, config, body_types))
        if progress is not None:
            progress(i + 1, len(files), path.name)
    return shapes
