"""Automatic foreground extraction for photos without alpha or a mask.

Method: GrabCut (Rother, Kolmogorov and Blake, "GrabCut: interactive
foreground extraction using iterated graph cuts", SIGGRAPH 2004) as
implemented by OpenCV, seeded the way a photographer frames an object: a thin
strip along the image border is *sure background*. Inside it, a smooth
"background plate" (a quadratic colour ramp in the pixel coordinates, fitted
to the strip by least squares; it captures studio sweeps, sky gradients and
vignetting) labels pixels it explains within the strip's own residual spread
*probable background*, and all others *probable foreground*. It runs a few iterations on a copy downscaled to at most
:data:`WORK_SIDE` pixels, GrabCut runs from both seedings and the result whose foreground and
background colour histograms differ most is kept. Then the label map is upscaled to full resolution
and cleaned: morphological opening and closing, the largest connected
component (or, with ``keep="all"``, every object of :func:`split_objects`),
holes filled (a car's see-through windows belong to its silhouette).
:func:`extract_foreground_info` also says how many objects it found and how
confident it is (:func:`mask_confidence`).

The result is refused (:class:`~lift3d.errors.InputError`) when the photo has
no separable object: a (nearly) uniform image, an object that touches all four
borders, a mask under 0.5 % or over 95 % of the image, or foreground colours
that are statistically indistinguishable from the background's (noise).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InputError

WORK_SIDE = 192
"""Longer edge (pixels) of the copy GrabCut runs on."""

ITERATIONS = 5
MIN_FRACTION = 0.005
MAX_FRACTION = 0.95
MIN_SEPARATION = 0.3
"""Smallest Bhattacharyya distance between foreground and background colour histograms."""
CLEAR_SEPARATION = 0.7
"""A separation at or above this counts as fully confident (see :func:`mask_confidence`)."""
MIN_OBJECT_FRACTION = 0.002
"""An object (connected region of a mask) covers at least this fraction of the image..."""
MIN_OBJECT_RATIO = 0.15
"""...and at least this fraction of the largest object's area; smaller regions are specks or fragments."""


def split_objects(mask: np.ndarray) -> list[np.ndarray]:
    """The separate objects of a mask: its 8-connected regions above the minimum size
    (:data:`MIN_OBJECT_FRACTION` of the image and :data:`MIN_OBJECT_RATIO` of the largest region),
    largest first, each an (H, W) bool mask with its holes filled. Regions below the size are dropped.
    """
    mask = np.asarray(mask, dtype=bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return []
    areas = stats[1:, cv2.CC_STAT_AREA]
    floor = max(MIN_OBJECT_FRACTION * mask.size, MIN_OBJECT_RATIO * float(areas.max()))
    order = [int(i) for i in np.argsort(-areas, kind="stable") if areas[i] >= floor]
    return [_fill_holes(labels == i + 1) for i in order]


def mask_confidence(separation: float, seed_agreement: float) -> float:
    """How far an automatic mask can be trusted, in [0, 1]: the smaller of the colour separation
    (Bhattacharyya distance, mapped from :data:`MIN_SEPARATION` = 0 to :data:`CLEAR_SEPARATION` = 1)
    and the agreement (IoU) of the two independent GrabCut seedings."""
    sep = (separation - MIN_SEPARATION) / (CLEAR_SEPARATION - MIN_SEPARATION)
    return float(round(min(max(0.0, min(1.0, sep)), max(0.0, min(1.0, seed_agreement))), 4))


def _fail(name: str) -> InputError:
    return InputError(f"no separable object found in {name}; supply --mask or an image with transparency")


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Set every background pixel not connected to the image border to foreground."""
    background = (~mask).astype(np.uint8)
    padded = np.pad(background, 1, constant_values=1)
    count, labels = cv2.connectedComponents(padded, connectivity=4)
    outside = labels == labels[0, 0]
    return ~outside[1:-1, 1:-1]


def _separation(image_u8: np.ndarray, mask: np.ndarray) -> float:
    """Bhattacharyya distance (0 = same, 1 = disjoint) of fg and bg colour histograms (8 bins a channel)."""
    fg = mask.astype(np.uint8)
    bg = (~mask).astype(np.uint8)
    bins, ranges = [8, 8, 8], [0, 256, 0, 256, 0, 256]
    h_fg = cv2.calcHist([image_u8], [0, 1, 2], fg, bins, ranges)
    h_bg = cv2.calcHist([image_u8], [0, 1, 2], bg, bins, ranges)
    cv2.normalize(h_fg, h_fg, 1.0, 0.0, cv2.NORM_L1)
    cv2.normalize(h_bg, h_bg, 1.0, 0.0, cv2.NORM_L1)
    return float(cv2.compareHist(h_fg, h_bg, cv2.HISTCMP_BHATTACHARYYA))


def _plate_labels(image: np.ndarray, strip: int) -> np.ndarray:
    """GrabCut seed labels (H, W) uint8 from a quadratic background plate fitted to the border strip.

    ``image`` is (H, W, 3) uint8; the plate is colour = A @ [1, x, y, x^2, xy, y^2] with x, y in [-1, 1].
    """
    h, w = image.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    x = 2.0 * x / max(w - 1, 1) - 1.0
    y = 2.0 * y / max(h - 1, 1) - 1.0
    basis = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)
    border = np.ones((h, w), dtype=bool)
    border[strip:h - strip, strip:w - strip] = False
    colours = image.astype(np.float64)
    coeffs, *_ = np.linalg.lstsq(basis[border], colours[border], rcond=None)
    residual = np.linalg.norm(colours - basis @ coeffs, axis=-1)
    spread = np.median(residual[border])
    mad = np.median(np.abs(residual[border] - spread))
    labels = np.where(residual <= spread + 4.0 * 1.4826 * mad + 6.0, cv2.GC_PR_BGD, cv2.GC_PR_FGD).astype(np.uint8)
    labels[border] = cv2.GC_BGD
    return labels


def _grabcut(image: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """(H, W) bool foreground of GrabCut on uint8 BGR ``image`` from GC_* ``seeds`` (not modified)."""
    labels = seeds.copy()
    if not (labels == cv2.GC_PR_FGD).any():
        return np.zeros(labels.shape, dtype=bool)
    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(image, labels, None, bgd_model, fgd_model, ITERATIONS, cv2.GC_INIT_WITH_MASK)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def extract_foreground(rgb: np.ndarray, name: str = "the image") -> np.ndarray:
    """Segment the main object of a photo: the mask of :func:`extract_foreground_info`."""
    return extract_foreground_info(rgb, name)[0]


def extract_foreground_info(rgb: np.ndarray, name: str = "the image", keep: str = "largest"
                            ) -> tuple[np.ndarray, dict]:
    """Segment the main object (``keep="largest"``) or every object (``keep="all"``) of a photo.

    Args:
        rgb: (H, W, 3) float colour in [0, 1] (sRGB-encoded or linear; only contrasts matter).
        name: how error messages refer to the image (its file name).

    Returns:
        (H, W) bool mask, True on the object: one connected region without holes (``keep="all"``:
        every object of :func:`split_objects`), and a record: ``objects`` (how many separate objects
        were found), ``separation`` (foreground/background colour distance), ``seed_agreement``
        (IoU of the two seedings' results, 1 when only one was usable) and ``confidence``
        (:func:`mask_confidence`).

    Raises:
        InputError: "no separable object found in <name>; supply --mask or an
        image with transparency" when the checks in the module docstring fail.
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("rgb must be an (H, W, 3) array")
    h, w = rgb.shape[:2]
    if min(h, w) < 16 or float(rgb.reshape(-1, 3).std(axis=0).max()) < 0.01:
        raise _fail(name)
    image_u8 = np.ascontiguousarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)[..., ::-1])

    scale = min(1.0, WORK_SIDE / max(h, w))
    sw, sh = max(16, round(w * scale)), max(16, round(h * scale))
    small = cv2.resize(image_u8, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1.0 else image_u8
    strip = max(2, round(0.03 * min(sw, sh)))
    rect = np.full((sh, sw), cv2.GC_BGD, dtype=np.uint8)
    rect[strip:sh - strip, strip:sw - strip] = cv2.GC_PR_FGD
    best, best_score, usable = None, -1.0, []
    for seeds in (rect, _plate_labels(small, strip)):
        fg_small = _grabcut(small, seeds)
        # An object reaching the seed strip on every side extends past the frame.
        touched = [fg_small[strip, :].any(), fg_small[sh - strip - 1, :].any(),
                   fg_small[:, strip].any(), fg_small[:, sw - strip - 1].any()]
        if all(touched) or not MIN_FRACTION <= fg_small.mean() <= MAX_FRACTION:
            continue
        usable.append(fg_small)
        score = _separation(small, fg_small)
        if score > best_score:
            best, best_score = fg_small, score
    if best is None:
        raise _fail(name)
    fg_small = best.astype(np.float32)

    fg = cv2.resize(fg_small, (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5 if scale < 1.0 else fg_small > 0.5
    radius = max(1, round(0.006 * max(h, w)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    fg_u8 = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    fg_u8 = cv2.morphologyEx(fg_u8, cv2.MORPH_CLOSE, kernel)
    objects = split_objects(fg_u8 > 0)  # largest first, holes filled
    if not objects:
        mask = np.zeros(fg_u8.shape, dtype=bool)
    else:
        mask = np.logical_or.reduce(objects) if keep == "all" else objects[0]

    fraction = float(mask.mean())
    if not MIN_FRACTION <= fraction <= MAX_FRACTION:
        raise _fail(name)
    separation = _separation(image_u8, mask)
    if separation < MIN_SEPARATION:
        raise _fail(name)
    agreement = 1.0
    if len(usable) == 2:
        union = np.logical_or(*usable).sum()
        agreement = float(np.logical_and(*usable).sum() / union) if union else 0.0
    return mask, {"objects": max(1, len(objects)), "separation": round(separation, 4),
                  "seed_agreement": round(agreement, 4), "confidence": mask_confidence(separation, agreement)}
