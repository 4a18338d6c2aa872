"""lift3d: photographs to textured, part-segmented 3D assets in OpenUSD.

The package is Kit-free: everything here runs in a plain Python environment.
Only ``lift3d.kit`` imports ``omni.*``; only ``lift3d.usd`` imports ``pxr``;
only ``lift3d.kernels`` defines Warp kernels.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
