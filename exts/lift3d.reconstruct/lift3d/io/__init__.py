"""Reconstructor inputs: photos, masks, automatic foreground and calibrated views.

* :mod:`lift3d.io.images`: :func:`load_image`, :func:`load_mask`, :func:`object_mask`,
  :func:`object_mask_info`.
* :mod:`lift3d.io.foreground`: :func:`extract_foreground` (GrabCut seeded from the border),
  :func:`split_objects`.
* :mod:`lift3d.io.views`: NeRF / Instant-NGP ``transforms.json`` cameras.
"""

from .foreground import extract_foreground
from .images import LoadedImage, load_image, load_mask, object_mask, object_mask_info
from .views import View, cameras_for_images, read_transforms

__all__ = ["LoadedImage", "View", "cameras_for_images", "extract_foreground",
           "load_image", "load_mask", "object_mask", "object_mask_info", "read_transforms"]
