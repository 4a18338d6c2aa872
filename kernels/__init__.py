"""NVIDIA Warp kernels of lift3d, importable as ``lift3d.kernels``.

One kernel family per module; every module documents its array shapes,
units and frames. Kernels run on the CPU device and on CUDA. The kernels take
their device and CPU thread count as arguments (defaults set once by the
application through :func:`lift3d.kernels.launch.configure`); nothing here
reads lift3d's settings.

Warp's start-up banner and per-module load messages go to stdout, which would
break ``lift3d ... --json``; they are silenced unless ``LIFT3D_WARP_VERBOSE=1``.
On a machine without the NVIDIA driver, Warp's native "could not load the CUDA
driver" line is not printed either (:func:`init_warp`). Inside Kit,
``omni.warp.core`` has initialised Warp already and this changes nothing.

Kernel cache: compiled modules live under a folder named after the Warp
version (``<cache>/<version>``), so a Warp upgrade compiles afresh instead of
reusing binaries of another version. Warp 1.13 and later do this themselves;
for older versions a ``WARP_CACHE_PATH`` is given the version folder here.
"""

from __future__ import annotations

import os
import sys

import warp as wp

VERBOSE = os.environ.get("LIFT3D_WARP_VERBOSE") == "1"

if not VERBOSE:
    wp.config.log_level = wp.LOG_WARNING


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def versioned_cache_dir(version: str, configured: str | None, env_path: str | None) -> str | None:
    """The kernel cache folder lift3d gives Warp before its initialisation, or None to keep Warp's choice.

    Warp 1.13 and later put their binaries under ``<base>/<version>`` for any base, and their default
    location is per version too; older versions used a configured or ``WARP_CACHE_PATH`` base as is,
    so there the version folder is added here. A folder set by the host (``configured``) is kept.
    """
    if configured is not None or not env_path or _version(version) >= (1, 13):
        return None
    return os.path.join(os.path.realpath(env_path), version)


def cuda_driver_present() -> bool:
    """Whether the NVIDIA CUDA driver library can be loaded (without initialising Warp)."""
    import ctypes

    names = ("nvcuda.dll",) if os.name == "nt" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


_initialised = False


def init_warp() -> None:
    """Initialise Warp once, without its CUDA-driver warning on a machine that has no NVIDIA driver.

    Warp's native library prints that warning straight to the process's stderr; when the driver is
    absent (checked first) the stderr file descriptor points at the null device for the few
    milliseconds of the initialisation. With ``LIFT3D_WARP_VERBOSE=1`` nothing is hidden.
    """
    global _initialised
    if _initialised:
        return
    cache = versioned_cache_dir(wp.config.version, wp.config.kernel_cache_dir, os.environ.get("WARP_CACHE_PATH"))
    if cache is not None:
        wp.config.kernel_cache_dir = cache
    if VERBOSE or os.name == "nt" or cuda_driver_present():
        wp.init()
    else:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, 2)
                wp.init()
            finally:
                os.dup2(saved, 2)
                os.close(null)
        finally:
            os.close(saved)
    _initialised = True


init_warp()
