"""Every stand-in of the Kit API has the real signature, recorded with its source in real_signatures.py.

The stand-ins are only as good as their likeness: a stand-in that accepts a keyword the
real API lacks hides a TypeError that Kit would raise. This walks every stand-in
module, and checks that each public function and method is in the table with the same
parameter names, in the same order, and that no entry of the table is stale.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest

from omni_stubs.harness import STUBS, kit  # noqa: F401  (the fixture)
from omni_stubs.real_signatures import REAL


def shape(fn) -> str:
    """``(self, name, other=, *args, **kwargs)``: names, defaults marked, no types or default values."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            out.append(f"*{p.name}")
        elif p.kind is p.VAR_KEYWORD:
            out.append(f"**{p.name}")
        else:
            out.append(p.name + ("=" if p.default is not p.empty else ""))
    return "(" + ", ".join(out) + ")"


def stand_in_callables() -> dict[str, object]:
    """Every public function and method the stand-in modules define, by dotted name (test helpers left out)."""
    found: dict[str, object] = {}
    for path in sorted(STUBS.rglob("*.py")):
        rel = path.relative_to(STUBS)
        if rel.parts[0] not in ("omni", "carb"):
            continue
        name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        module = importlib.import_module(name)
        helpers = set(getattr(module, "TEST_HELPERS", ()))
        for attr, obj in vars(module).items():
            if attr.startswith("_") or attr in helpers or getattr(obj, "__module__", None) != name:
                continue
            if inspect.isfunction(obj):
                found[f"{name}.{attr}"] = obj
            elif inspect.isclass(obj):
                for method, value in vars(obj).items():
                    if method.startswith("_") and method != "__init__":
                        continue
                    value = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
                    if inspect.isfunction(value):
                        found[f"{name}.{attr}.{method}"] = value
    return found


def test_every_stand_in_has_the_real_signature(kit):
    found = stand_in_callables()
    assert len(found) > 50
    missing = sorted(set(found) - set(REAL))
    assert not missing, f"stand-ins without a real signature in real_signatures.py: {missing}"
    stale = sorted(set(REAL) - set(found))
    assert not stale, f"entries of real_signatures.py with no stand-in: {stale}"
    wrong = {key: (shape(fn), REAL[key][0]) for key, fn in found.items()
             if REAL[key][0] is not None and shape(fn) != REAL[key][0]}
    assert not wrong, f"stand-in signature != real one: {wrong}"


def test_every_entry_names_its_source():
    for key, (signature, source) in REAL.items():
        assert source and len(source) > 20, key
        if signature is not None:
            assert signature.startswith("(") and signature.endswith(")"), key


def test_no_stand_in_invents_a_catch_all(kit):
    for key, fn in stand_in_callables().items():
        real = REAL[key][0]
        if real is not None and "**" in shape(fn):
            assert "**" in real, f"{key} accepts any keyword, the real API does not"


@pytest.mark.parametrize("module, call", [
    ("omni.kit.window.drop_support", lambda m: m.ExternalDragDrop(window_name="w", drop_handler=print)),
    ("omni.kit.menu.utils", lambda m: m.MenuItemDescription(name="x", no_such_option=True)),
    ("omni.kit.window.file_importer", lambda m: m.get_file_importer().show_window(title="t", multi=True)),
    ("omni.kit.notification_manager", lambda m: m.post_notification("t", no_such_option=1)),
    ("omni.ui", lambda m: m.Button("b", clicked=print)),
    ("omni.ui", lambda m: m.ImageWithProvider(m.ByteImageProvider(), fill_policy=m.FillPolicy.PRESERVE_ASPECT_FIT)),
    ("omni.ui", lambda m: m.Image("x.png", fill_policy=m.IwpFillPolicy.IWP_PRESERVE_ASPECT_FIT)),
    ("omni.ui", lambda m: m.ImageWithProvider(provider=m.ByteImageProvider())),
    ("omni.ui", lambda m: m.ByteImageProvider().set_data_array(arg0=np.zeros((2, 2, 4), np.uint8), arg1=[2, 2])),
    ("omni.ui", lambda m: m.ByteImageProvider().set_data_array(np.zeros((2, 2, 4), np.float32), [2, 2])),
])
def test_stand_ins_refuse_what_kit_refuses(kit, module, call):
    with pytest.raises(TypeError):
        call(importlib.import_module(module))


def test_byte_image_provider_stand_in_refuses_pixels_of_another_size(kit):
    provider = importlib.import_module("omni.ui").ByteImageProvider()
    with pytest.raises(ValueError):
        provider.set_data_array(np.zeros((2, 3, 4), np.uint8), [2, 2])
    provider.set_data_array(np.zeros((2, 3, 4), np.uint8), [3, 2])
    assert (provider.width, provider.height) == (3, 2)
