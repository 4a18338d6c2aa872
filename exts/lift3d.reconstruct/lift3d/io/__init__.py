"""Reconstructor inputs: photos, masks, automatic foreground and calibrated views.

* :mod:`lift3d.io.images`: :func:`load_image`, :func:`load_mask`, :func:`object_mask`,
  :func:`object_mask_info`.
* :mod:`lift3d.io.foreground`: :func:`extract_foreground` (GrabCut seeded from the border),
  :func:`split_objects`.
* :mod:`lift3d.io.views`: NeRF / Instant-NGP ``transforms.json`` cameras.

Submodules are imported on demand (OpenCV only where it is used), so the pre-flight checks stay cheap.
"""
