"""Pinhole projection as Warp functions, shared by every kernel family.

Conventions (see ``lift3d.camera``): world +Y up, metres; camera axes OpenGL
(looks down -Z); image pixels ``(u, v)`` with ``u`` right, ``v`` down, origin
at the top-left corner, pixel centres at half-integers.

A camera is passed to kernels as

* ``w2c``: ``wp.mat44`` world-to-camera (rigid), float32;
* ``K``: ``wp.vec4`` = ``(fx, fy, cx, cy)`` in pixels.

``to_camera`` gives camera-space points; ``project`` maps a camera-space point
with ``z < 0`` to ``vec3(u, v, depth)`` where ``depth = -z`` (metres).
"""

from __future__ import annotations

import numpy as np
import warp as wp

NEAR = wp.constant(1.0e-4)
"""Near clipping distance (metres): geometry closer than this to the camera plane is not drawn."""


@wp.func
def to_camera(w2c: wp.mat44, p: wp.vec3) -> wp.vec3:
    """World point (metres) -> camera-space point (metres, OpenGL axes)."""
    return wp.transform_point(w2c, p)


@wp.func
def project(K: wp.vec4, pc: wp.vec3) -> wp.vec3:
    """Camera-space point -> (u, v, depth): pixels, pixels, metres. Valid for ``depth > NEAR``."""
    d = -pc[2]
    inv = 1.0 / wp.max(d, NEAR)
    return wp.vec3(K[2] + K[0] * pc[0] * inv, K[3] - K[1] * pc[1] * inv, d)


@wp.func
def project_adjoint(K: wp.vec4, pc: wp.vec3, g: wp.vec3) -> wp.vec3:
    """Vector-Jacobian product of :func:`project`: d(loss)/d(pc) given ``g`` = d(loss)/d(u, v, depth)."""
    d = wp.max(-pc[2], NEAR)
    inv = 1.0 / d
    gx = g[0] * K[0] * inv
    gy = -g[1] * K[1] * inv
    # u = cx + fx x / d, v = cy - fy y / d, d = -z  =>  du/dz = fx x / d^2, dv/dz = -fy y / d^2, dd/dz = -1
    gz = g[0] * K[0] * pc[0] * inv * inv - g[1] * K[1] * pc[1] * inv * inv - g[2]
    return wp.vec3(gx, gy, gz)


def camera_args(camera) -> tuple[wp.mat44, wp.vec4]:
    """``(w2c, K)`` kernel arguments from a :class:`lift3d.camera.Camera`."""
    w2c = np.asarray(camera.world_to_cam, dtype=np.float32)
    return wp.mat44(*w2c.reshape(-1).tolist()), wp.vec4(*camera.intrinsics.tolist())
