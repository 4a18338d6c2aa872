"""NVIDIA Warp kernels of lift3d, importable as ``lift3d.kernels``.

One kernel family per module; every module documents its array shapes,
units and frames. Kernels run on the CPU device and on CUDA.

Warp's start-up banner and per-module load messages go to stdout, which would
break ``lift3d ... --json``; they are silenced unless ``LIFT3D_WARP_VERBOSE=1``.
Inside Kit, ``omni.warp.core`` has initialised Warp already and this changes nothing.
"""

import os

import warp as wp

if os.environ.get("LIFT3D_WARP_VERBOSE") != "1":
    wp.config.log_level = wp.LOG_WARNING
