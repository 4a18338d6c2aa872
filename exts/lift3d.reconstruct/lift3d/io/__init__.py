"""Reconstructor inputs: photos, masks, automatic foreground, object crops and calibrated views.

* :mod:`lift3d.io.images`: :func:`load_image`, :func:`load_mask`, :func:`object_mask`,
  :func:`crop_to_object`.
* :mod:`lift3d.io.foreground`: :func:`extract_foreground` (GrabCut seeded from the border).
* :mod:`lift3d.io.views`: NeRF / Instant-NGP ``transforms.json`` cameras.
"""

from .foreground import extract_foreground
from .images import Crop, LoadedImage, crop_to_object, load_image, load_mask, object_mask
from .views import View, cameras_for_images, read_transforms

__all__ = ["Crop", "LoadedImage", "View", "cameras_for_images", "crop_to_object", "extract_foreground",
           "load_image", "load_mask", "object_mask", "read_transforms"]
