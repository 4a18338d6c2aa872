"""Generate the category templates and store them as USD under ``config/templates/``.

The car is the parametric lofted car of :mod:`lift3d.pipeline.template_geometry`
(default :class:`CarParams`: a 4.5 m sedan), the generic template an icosphere;
both are authored here from numbers, never from an evaluation asset. Each is
written with the asset writer and its layer copied to ``config/templates/<name>.usda``
(templates carry no texture). Run it again after changing the generator::

    python tools/make_templates.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lift3d.atomic import write_bytes_atomic
from lift3d.pipeline.template_geometry import CarParams, car_template, generic_template
from lift3d.settings import load_settings
from lift3d.templates import Template, to_asset
from lift3d.usd.writer import write_asset


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
