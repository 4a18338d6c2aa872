"""Calibrated views from a NeRF / Instant-NGP ``transforms.json``.

The convention (Mildenhall et al., NeRF, ECCV 2020; Müller et al., Instant
Neural Graphics Primitives, SIGGRAPH 2022):

* ``frames[].transform_matrix``: row-major 4x4 **camera-to-world**, OpenGL
  camera axes (looks down -Z, +Y up, +X right): exactly
  :attr:`lift3d.camera.Camera.cam_to_world`. It must be rigid.
* ``frames[].file_path``: relative to the JSON file's folder, with or without
  an extension (NeRF synthetic writes ``./train/r_0``; we then try ``.png``,
  ``.jpg``, ``.jpeg`` and ``.webp``).
* Intrinsics, at the top level or per frame (per frame wins): ``fl_x``/``fl_y``
  (pixels) or ``camera_angle_x`` (+ optional ``camera_angle_y``, radians, full
  field of view); ``cx``/``cy`` (pixels, default the image centre); ``w``/``h``
  (pixels, default the image file's size, EXIF orientation applied). When ``w``/``h`` differ from the
  image file's size with the same aspect ratio, the camera is scaled to the
  file; a different aspect ratio is an error. ``fl_y`` defaults to ``fl_x``
  (square pixels) unless ``camera_angle_y`` is given.

Lens distortion keys (``k1``, ``p1``, ...) must be zero or absent: lift3d
models an ideal pinhole.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..camera import Camera
from ..errors import InputError

_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".PNG", ".JPG", ".JPEG", ".WEBP")
_DISTORTION = ("k1", "k2", "k3", "k4", "p1", "p2")
_RIGID_TOL = 1e-3
_ORIENTATION = 0x0112
"""EXIF tag of the orientation."""


@dataclass
class View:
    """One calibrated frame: its image file and its camera (sized like that file)."""

    image_path: Path
    camera: Camera


def _number(value: Any, key: str, source: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"camera file {source}: {key} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise InputError(f"camera file {source}: {key} is not a finite number")
    return float(value)


def _resolve_image(folder: Path, file_path: Any, source: Path, index: int) -> Path:
    if not isinstance(file_path, str) or not file_path:
        raise InputError(f"camera file {source}: frames[{index}].file_path must be a non-empty string")
    base = (folder / file_path)
    candidates = [base] + [base.with_name(base.name + ext) for ext in _EXTENSIONS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise InputError(f"camera file {source}: frames[{index}] points at {file_path!r}, "
                     f"which is not an image file in {folder}")


def _pose(matrix: Any, source: Path, index: int) -> np.ndarray:
    where = f"camera file {source}: frames[{index}].transform_matrix"
    try:
        m = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where} must be a 4x4 array of numbers") from None
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4):
        raise InputError(f"{where} must be a 4x4 array of numbers, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise InputError(f"{where} contains NaN or infinity")
    r = m[:3, :3]
    if (np.abs(m[3] - [0.0, 0.0, 0.0, 1.0]).max() > _RIGID_TOL
            or np.abs(r.T @ r - np.eye(3)).max() > _RIGID_TOL or np.linalg.det(r) < 0.0):
        raise InputError(f"{where} is not a rigid camera-to-world transform (rotation and translation only)")
    return m


def _image_size(path: Path, source: Path) -> tuple[int, int]:
    """``(width, height)`` of the image file as :func:`lift3d.io.images.load_image` decodes it (EXIF orientation
    applied: orientations 5 to 8 swap the stored width and height)."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # damaged EXIF: no orientation, as in load_image
                try:
                    orientation = im.getexif().get(_ORIENTATION, 1)
                except Exception:  # noqa: BLE001 - Pillow raises many kinds for damaged EXIF blocks
                    orientation = 1
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"camera file {source} refers to {path}, which cannot be read as an image ({exc})") \
            from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _camera(meta: dict[str, Any], image: Path, pose: np.ndarray, source: Path, index: int) -> Camera:
    """Intrinsics from ``meta`` (top level merged with the frame), scaled to the image file's size."""
    where = f"frames[{index}]"
    for key in _DISTORTION:
        if key in meta and _number(meta[key], key, source) != 0.0:
            raise InputError(f"camera file {source}: {where} has lens distortion ({key}), which lift3d "
                             "does not model; undistort the images first")
    file_w, file_h = _image_size(image, source)
    w = _number(meta["w"], "w", source) if "w" in meta else float(file_w)
    h = _number(meta["h"], "h", source) if "h" in meta else float(file_h)
    if w <= 0 or h <= 0:
        raise InputError(f"camera file {source}: w and h must be positive")
    if "fl_x" in meta:
        fx = _number(meta["fl_x"], "fl_x", source)
        fy = _number(meta["fl_y"], "fl_y", source) if "fl_y" in meta else fx
    elif "camera_angle_x" in meta:
        ax = _number(meta["camera_angle_x"], "camera_angle_x", source)
        if not 0.0 < ax < math.pi:
            raise InputError(f"camera file {source}: camera_angle_x must be between 0 and pi radians")
        fx = 0.5 * w / math.tan(0.5 * ax)
        fy = fx
        if "camera_angle_y" in meta:
            ay = _number(meta["camera_angle_y"], "camera_angle_y", source)
            if not 0.0 < ay < math.pi:
                raise InputError(f"camera file {source}: camera_angle_y must be between 0 and pi radians")
            fy = 0.5 * h / math.tan(0.5 * ay)
    else:
        raise InputError(f"camera file {source}: {where} has no focal length (camera_angle_x or fl_x)")
    if fx <= 0 or fy <= 0:
        raise InputError(f"camera file {source}: {where} focal length must be positive")
    cx = _number(meta["cx"], "cx", source) if "cx" in meta else 0.5 * w
    cy = _number(meta["cy"], "cy", source) if "cy" in meta else 0.5 * h
    camera = Camera(fx, fy, cx, cy, max(1, round(w)), max(1, round(h)), pose, image.stem)
    if (camera.width, camera.height) != (file_w, file_h):
        if abs(file_w / file_h - w / h) > 1.0 / min(file_w, file_h):
            raise InputError(f"camera file {source}: {where} describes a {w:g}x{h:g} image but {image} is "
                             f"{file_w}x{file_h}, a different aspect ratio")
        camera = camera.scaled(file_w, file_h)
    return camera


def read_transforms(path: Path | str) -> list[View]:
    """Read every frame of a ``transforms.json`` (see the module docstring).

    Raises :class:`InputError` (one sentence naming the file) if it is missing,
    not JSON, lacks ``frames``/``file_path``/``transform_matrix``/a focal length,
    holds NaN/infinite numbers or a non-rigid matrix, or names a missing image.
    """
    source = Path(path)
    if source.is_dir():
        raise InputError(f"camera file {source} is a folder, not a transforms.json file")
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"camera file {source} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"camera file {source} cannot be read ({exc})") from None
    try:
        data = json.loads(text, parse_constant=lambda name: float(name))
    except json.JSONDecodeError as exc:
        raise InputError(f"camera file {source} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(f"camera file {source} must hold a JSON object with a 'frames' list")
    frames = data.get("frames")
    if frames is None:
        raise InputError(f"camera file {source} has no 'frames' list")
    if not isinstance(frames, list):
        raise InputError(f"camera file {source}: 'frames' must be a list, not {type(frames).__name__}")
    if not frames:
        raise InputError(f"camera file {source} has an empty 'frames' list; it needs one frame per image")
    top = {k: v for k, v in data.items() if k != "frames"}
    views: list[View] = []
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise InputError(f"camera file {source}: frames[{i}] must be a JSON object")
        for key in ("file_path", "transform_matrix"):
            if key not in frame:
                raise InputError(f"camera file {source}: frames[{i}] has no '{key}'")
        image = _resolve_image(source.parent, frame["file_path"], source, i)
        pose = _pose(frame["transform_matrix"], source, i)
        views.append(View(image, _camera({**top, **frame}, image, pose, source, i)))
    return views


def cameras_for_images(path: Path | str, images: list[Path | str]) -> list[Camera]:
    """The camera of each of ``images`` (in that order) from the ``transforms.json`` at ``path``.

    An image matches a frame by resolved path, else by file name when exactly
    one frame has that name, else by file stem (a NeRF ``file_path`` without
    extension). An image with no (or an ambiguous) match is an :class:`InputError`.
    """
    views = read_transforms(path)
    by_path = {v.image_path: v for v in views}
    cameras = []
    for image in images:
        image = Path(image)
        view = by_path.get(image.resolve())
        if view is None:
            named = [v for v in views if v.image_path.name == image.name]
            if not named:
                named = [v for v in views if v.image_path.stem == image.stem]
            if len(named) > 1:
                raise InputError(f"image {image} matches several frames of {path}; pass the image from the "
                                 "folder the camera file refers to")
            if not named:
                raise InputError(f"image {image} has no frame in camera file {path}")
            view = named[0]
        cameras.append(view.camera)
    return cameras
