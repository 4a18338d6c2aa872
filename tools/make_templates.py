"""Generate the category templates and store them as USD under ``config/templates/``.

The car is the parametric lofted car of :mod:`lift3d.templates.car`
(default :class:`CarParams`: a 4.5 m sedan), the generic template an icosphere;
both are authored here from numbers, never from an evaluation asset. Each is
written with the asset writer and its layer copied to ``config/templates/<name>.usda``
(templates carry no texture). Run it again after changing the generator::

    python tools/make_templates.py
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from lift3d.atomic import write_bytes_atomic
from lift3d.settings import load_settings
from lift3d.templates import WHEEL_NAMES, Template, mirror_map, to_asset
from lift3d.templates.car import CarParams, car_geometry, signed_volume
from lift3d.usd.writer import write_asset


def car_template(p: CarParams | None = None) -> Template:
    """The parametric car template (about 3.6k triangles with the defaults)."""
    p = p or CarParams()
    points, faces, names, rig = car_geometry(p)
    part_names = ["body", "window", "headlight_l", "headlight_r", "taillight_l", "taillight_r", *WHEEL_NAMES]
    part_labels = ["body", "window", "headlight", "headlight", "taillight", "taillight"] + ["wheel"] * 4
    face_part = np.array([part_names.index(n) for n in names], dtype=np.int32)
    uv, uv_faces = _atlas(points, faces)
    return Template(name="car", points=points.astype(np.float32), faces=faces.astype(np.int32), uv=uv,
                    uv_faces=uv_faces, part_names=part_names, part_labels=part_labels, face_part=face_part,
                    mirror=mirror_map(points), symmetric=True, wheels=rig, params=asdict(p))



def _atlas(points: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face-varying UV atlas from xatlas: (T, 2) float32 uv in [0, 1] and (F, 3) int32 uv indices."""
    import xatlas

    atlas = xatlas.Atlas()
    atlas.add_mesh(points.astype(np.float32), faces.astype(np.uint32))
    pack = xatlas.PackOptions()
    pack.padding = 2
    pack.resolution = 1024
    atlas.generate(pack_options=pack)
    _, indices, uvs = atlas[0]
    return np.clip(uvs, 0.0, 1.0).astype(np.float32), indices.astype(np.int32)


def icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere: (V, 3) points on the unit sphere and (F, 3) outward-wound faces."""
    g = (1.0 + 5.0 ** 0.5) / 2.0
    verts = [(-1, g, 0), (1, g, 0), (-1, -g, 0), (1, -g, 0), (0, -1, g), (0, 1, g), (0, -1, -g), (0, 1, -g),
             (g, 0, -1), (g, 0, 1), (-g, 0, -1), (-g, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
             (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5),
             (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    pts = [np.asarray(v, dtype=np.float64) / np.linalg.norm(v) for v in verts]
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}

        def mid(i: int, j: int) -> int:
            key = (min(i, j), max(i, j))
            if key not in cache:
                m = pts[i] + pts[j]
                pts.append(m / np.linalg.norm(m))
                cache[key] = len(pts) - 1
            return cache[key]

        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new
    points = np.asarray(pts)
    faces = np.asarray(faces, dtype=np.int64)
    if signed_volume(points, faces) < 0:
        faces = faces[:, ::-1]
    return points, faces


def generic_template(subdivisions: int = 3, size: float = 1.0) -> Template:
    """Genus-0 icosphere of diameter ``size`` metres resting on the ground, one part ``object``."""
    unit, faces = icosphere(subdivisions)
    points = unit * (0.5 * size) + np.array([0.0, 0.5 * size, 0.0])
    uv, uv_faces = _atlas(points, faces)
    return Template(name="generic", points=points.astype(np.float32), faces=faces.astype(np.int32), uv=uv,
                    uv_faces=uv_faces, part_names=["object"], part_labels=["object"],
                    face_part=np.zeros(len(faces), dtype=np.int32), mirror=mirror_map(points), symmetric=False,
                    params={"subdivisions": subdivisions, "size": size})



def store(template: Template, target: Path) -> Path:
    """Write ``template`` as a single USD layer at ``target`` (atomically)."""
    with tempfile.TemporaryDirectory() as tmp:
        layer = write_asset(to_asset(template), tmp, fmt="usda")
        write_bytes_atomic(target, layer.read_bytes())
    target.chmod(0o644)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "config" / "templates",
                        help="folder for car.usda and generic.usda (default: the project's config/templates)")
    parser.add_argument("--generic-subdivisions", type=int, default=4, help="icosphere subdivision level")
    args = parser.parse_args()
    settings = load_settings()
    car = car_template(CarParams(length=settings.category("car").length_m))
    generic = generic_template(args.generic_subdivisions, size=settings.category("generic").length_m)
    for template in (car, generic):
        path = store(template, args.out / f"{template.name}.usda")
        print(f"{path}: {len(template.points)} points, {len(template.faces)} triangles, parts "
              f"{', '.join(template.part_names)}")


if __name__ == "__main__":
    main()
