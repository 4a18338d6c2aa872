"""NVIDIA Warp kernels of lift3d, importable as ``lift3d.kernels``.

One kernel family per module; every module documents its array shapes,
units and frames. Kernels run on the CPU device and on CUDA.
"""
