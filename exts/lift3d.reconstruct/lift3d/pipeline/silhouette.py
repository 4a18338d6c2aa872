"""Silhouettes for fitting: the soft silhouette as a torch op, the hard mask, and mask IoU.

The soft silhouette (:mod:`lift3d.kernels.soft_silhouette`, DIB-R family,
Warp kernels with a hand-written adjoint, as the torch op
:class:`lift3d.kernels.torch_geometry.SoftSilhouette`) lets vertex positions
be optimised with torch;
the hard mask comes from the visibility rasterizer
(:mod:`lift3d.kernels.raster`). Images are (H, W), pixels of the given
:class:`lift3d.camera.Camera` (v down); points are (V, 3) metres in the
camera's world frame.
"""

from __future__ import annotations

import numpy as np
import torch

from ..camera import Camera
from ..kernels.mesh_ops import MeshTopology
from ..kernels.torch_geometry import SoftSilhouette


def soft_silhouette_torch(points: torch.Tensor, topology: MeshTopology, camera: Camera, width: int, height: int,
                          sigma: float) -> torch.Tensor:
    """(H, W) float32 soft silhouette in [0, 1] of ``points`` (V, 3), differentiable w.r.t. ``points``."""
    return SoftSilhouette.apply(points.to(torch.float32).contiguous(), topology, camera, int(width), int(height),
                                float(sigma))


def hard_mask(points: np.ndarray, faces: np.ndarray, camera: Camera, width: int, height: int) -> np.ndarray:
    """(H, W) bool: pixel centres covered by the mesh (visibility rasterizer)."""
    from ..kernels.raster import rasterize

    return rasterize(np.asarray(points, dtype=np.float32), np.asarray(faces, dtype=np.int32), camera, width, height,
                     device="cpu").mask


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (H, W) boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def silhouette_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared difference of a predicted (H, W) soft silhouette and its target, per unit target area.

    Minimal exactly where the prediction equals the target (unlike a soft IoU,
    which pushes fractional pixels to 0 or 1), and comparable across
    resolutions and object sizes: 0 is perfect, about 1 means nothing overlaps.
    """
    return ((pred - target) ** 2).sum() / target.sum().clamp_min(1.0)
