"""Category templates, in one place: the data model and loader (:mod:`.model`), the parametric
car with its body shapes and shape modes (:mod:`.car`), and the procedural vehicle generator
built on it (:mod:`.vehicles`).

The stored templates live in ``config/templates/`` and are authored by
``tools/make_templates.py``.
"""

from .model import (WHEEL_NAMES, Template, WheelRig, from_asset, load_template, mirror_map, template_record,
                    to_asset)

__all__ = ["WHEEL_NAMES", "Template", "WheelRig", "from_asset", "load_template", "mirror_map", "template_record",
           "to_asset"]
