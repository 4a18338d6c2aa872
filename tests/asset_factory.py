"""A small, fully specified test asset: a toy car made of boxes (no reconstruction needed).

Frame: +Y up, front towards +Z, metres (see ``lift3d.camera``). Parts: body,
four wheels, a window, two headlight blocks in one ``headlight`` part (so two
lights), and a taillight part. UVs are face-varying (with seams); the cameras
include an off-centre principal point and non-square pixels.
"""

from __future__ import annotations

import numpy as np

from lift3d.asset import Asset, MaterialSpec, Part
from lift3d.camera import Camera, look_at, orbit_camera

# Corner order: bit 0 -> +x, bit 1 -> +y, bit 2 -> +z. Two CCW (from outside) triangles per side.
_BOX_FACES = np.array([
    [0, 2, 3], [0, 3, 1],  # -z
    [4, 5, 7], [4, 7, 6],  # +z
    [0, 4, 6], [0, 6, 2],  # -x
    [1, 3, 7], [1, 7, 5],  # +x
    [0, 1, 5], [0, 5, 4],  # -y
    [2, 6, 7], [2, 7, 3],  # +y
], dtype=np.int32)


def box(center: tuple[float, float, float], size: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(8, 3) corners and (12, 3) outward-facing triangles of an axis-aligned box."""
    c, s = np.asarray(center, dtype=np.float64), np.asarray(size, dtype=np.float64)
    bits = np.array([[(i >> k) & 1 for k in range(3)] for i in range(8)], dtype=np.float64)
    return (c + (bits - 0.5) * s).astype(np.float32), _BOX_FACES.copy()


def make_car_asset(name: str = "toy_car", textured: bool = True) -> Asset:
    """The toy car asset described in the module docstring (72 + 24 + 12 faces)."""
    blocks = [  # (part name, label, material, center, size)
        ("body", "body", "paint", (0.0, 0.55, 0.0), (1.8, 0.6, 4.2)),
        ("wheel_fl", "wheel", "rubber", (0.85, 0.33, 1.3), (0.25, 0.66, 0.66)),
        ("wheel_fr", "wheel", "rubber", (-0.85, 0.33, 1.3), (0.25, 0.66, 0.66)),
        ("wheel_rl", "wheel", "rubber", (0.85, 0.33, -1.3), (0.25, 0.66, 0.66)),
        ("wheel_rr", "wheel", "rubber", (-0.85, 0.33, -1.3), (0.25, 0.66, 0.66)),
        ("window", "window", "glass", (0.0, 1.1, -0.2), (1.5, 0.5, 2.0)),
        ("headlight", "headlight", "lamp", (0.6, 0.6, 2.12), (0.35, 0.15, 0.06)),
        ("headlight", "headlight", "lamp", (-0.6, 0.6, 2.12), (0.35, 0.15, 0.06)),
        ("taillight", "taillight", "taillamp", (0.0, 0.65, -2.12), (1.4, 0.1, 0.06)),
    ]
    points, faces, owner = [], [], []
    for i, (_, _, _, center, size) in enumerate(blocks):
        p, f = box(center, size)
        faces.append(f + sum(len(q) for q in points))
        points.append(p)
        owner += [i] * len(f)
    faces_arr = np.concatenate(faces)
    owner_arr = np.asarray(owner)
    parts: dict[str, Part] = {}
    for i, (pname, label, material, _, _) in enumerate(blocks):
        idx = np.nonzero(owner_arr == i)[0]
        if pname in parts:
            parts[pname].faces = np.concatenate([parts[pname].faces, idx]).astype(np.int32)
        else:
            parts[pname] = Part(pname, label, idx, material)
    # Face-varying UVs: each box side is its own quad chart in a 12 x 9 grid of cells (seams everywhere).
    n_faces = len(faces_arr)
    uv, uv_faces = [], np.zeros((n_faces, 3), dtype=np.int32)
    for side in range(n_faces // 2):
        gx, gy = side % 12, side // 12
        u0, v0, du, dv = gx / 12, gy / 9, 1 / 12 * 0.9, 1 / 9 * 0.9
        base = len(uv)
        uv += [(u0, v0), (u0 + du, v0), (u0 + du, v0 + dv), (u0, v0 + dv)]
        uv_faces[2 * side] = [base, base + 1, base + 2]
        uv_faces[2 * side + 1] = [base, base + 2, base + 3]
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    materials = {
        "paint": MaterialSpec.preset("paint", textured=textured),
        "rubber": MaterialSpec.preset("rubber", textured=False),
        "glass": MaterialSpec.preset("glass", textured=False),
        "lamp": MaterialSpec.preset("lamp", textured=False),
        "taillamp": MaterialSpec(kind="lamp", base_color=(0.8, 0.05, 0.05), textured=False, roughness=0.25,
                                 emissive_color=(2.0, 0.1, 0.1)),
    }
    cameras = [
        orbit_camera(0.6, 0.25, 7.0, np.radians(50.0), 64, 48, target=np.array([0.0, 0.6, 0.0]),
                     name="front_left.png"),
        Camera(fx=70.0, fy=55.0, cx=29.5, cy=27.25, width=64, height=48,  # off-centre, non-square pixels
               cam_to_world=look_at(np.array([-4.0, 2.0, -5.0]), np.array([0.0, 0.5, 0.0])), name="rear.jpg"),
        Camera(fx=120.0, fy=120.0, cx=52.0, cy=20.0, width=100, height=40,
               cam_to_world=look_at(np.array([6.0, 1.0, 0.5]), np.array([0.0, 0.6, 0.0])), name="side.png"),
    ]
    provenance = {
        "version": "0.1.0",
        "sources": [{"file": "front_left.png", "sha256": "ab" * 32}],
        "digests": ["ab" * 32, "cd" * 32],
        "settings": {"preset": "fast", "levels": np.array([64, 128]), "sigma": np.float32(1.0)},
        "timings": {"fit": 1.25, "bake": np.float64(0.5)},
        "metrics": {"input_view_iou": 0.91},
        "note": None,
    }
    return Asset(name=name, points=np.concatenate(points), faces=faces_arr, uv=np.asarray(uv, dtype=np.float32),
                 uv_faces=uv_faces, texture=texture if textured else None, parts=list(parts.values()),
                 materials=materials, cameras=cameras, provenance=provenance)
