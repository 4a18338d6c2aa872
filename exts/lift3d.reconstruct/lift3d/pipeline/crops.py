"""Square object crops at a working resolution, and silhouette targets for fitting.

A crop is ``(x0, y0, side)``: the top-left corner and edge (pixels of the
original image, may extend past its borders) of a square around the object.
The same crop applied to a camera (:func:`crop_camera`) and to a mask
(:func:`crop_mask`, :func:`soft_target`) keeps them in register.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..camera import Camera

CROP_MARGIN = 0.12
"""Free space around the object in a working crop, as a fraction of its longer side."""
_SUPERSAMPLE = 4


def square_box(mask: np.ndarray, margin: float = CROP_MARGIN) -> tuple[int, int, int]:
    """``(x0, y0, side)`` of a square around the (H, W) mask's bounding box with ``margin`` free space."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    y_lo, y_hi, x_lo, x_hi = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = int(np.ceil(max(x_hi - x_lo, y_hi - y_lo) * (1.0 + 2.0 * margin)))
    return int(np.floor(0.5 * (x_lo + x_hi - side))), int(np.floor(0.5 * (y_lo + y_hi - side))), side


def mask_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre (u, v) and size (width, height) in pixels of the (H, W) mask's bounding box."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    centre = np.array([0.5 * (cols[0] + cols[-1] + 1), 0.5 * (rows[0] + rows[-1] + 1)])
    size = np.array([cols[-1] + 1 - cols[0], rows[-1] + 1 - rows[0]], dtype=np.float64)
    return centre, size


def _resample(image: np.ndarray, box: tuple[int, int, int], size: int) -> np.ndarray:
    x0, y0, side = box
    h, w = image.shape[:2]
    canvas = np.zeros((side, side) + image.shape[2:], dtype=np.float32)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return np.clip(cv2.resize(canvas, (size, size), interpolation=interp), 0.0, 1.0)


def crop_mask(mask: np.ndarray, box: tuple[int, int, int], size: int) -> np.ndarray:
    """(size, size) float32 area coverage in [0, 1] of the (H, W) bool ``mask`` inside the square ``box``."""
    return _resample(np.asarray(mask, dtype=np.float32), box, size)


def crop_image(rgb: np.ndarray, box: tuple[int, int, int], size: int) -> np.ndarray:
    """(size, size, 3) float32 crop of an (H, W, 3) image in [0, 1] (black outside the image)."""
    return _resample(np.asarray(rgb, dtype=np.float32), box, size)


def crop_camera(camera: Camera, box: tuple[int, int, int], size: int) -> Camera:
    """``camera`` (of the original image) for the square crop ``box`` resampled to ``size`` pixels."""
    x0, y0, side = box
    return camera.cropped(x0, y0, side, side).scaled(size, size)


def soft_target(mask: np.ndarray, box: tuple[int, int, int], size: int, sigma: float) -> np.ndarray:
    """(size, size) float32 target for the soft silhouette of :mod:`lift3d.kernels.soft_silhouette`.

    That silhouette is 1 at pixel centres inside the projected mesh and
    ``exp(-d^2 / sigma)`` at distance ``d`` (working pixels) outside it, so a
    perfect fit is not the binary mask but the same function of the mask: 1
    inside, ``exp(-d^2 / sigma)`` outside, with ``d`` measured on a 4x
    supersampled crop for sub-pixel accuracy.
    """
    hi = crop_mask(mask, box, size * _SUPERSAMPLE) >= 0.5
    dist = cv2.distanceTransform((~hi).astype(np.uint8), cv2.DIST_L2, 5)
    dist = np.maximum(dist - 0.5, 0.0) / _SUPERSAMPLE
    centre = _SUPERSAMPLE // 2
    d = dist[centre::_SUPERSAMPLE, centre::_SUPERSAMPLE]
    inside = hi[centre::_SUPERSAMPLE, centre::_SUPERSAMPLE]
    return np.where(inside, 1.0, np.exp(-(d ** 2) / sigma)).astype(np.float32)
