"""Stand-in for ``omni.ui`` (tests only).

Widgets record their arguments and children; containers are context managers as
in omni.ui; ``Frame.set_build_fn`` builds at once (Kit builds on the next draw).
Widgets created with ``identifier=`` can be looked up with :func:`find` (Kit's
``omni.kit.ui_test`` finds them the same way). ``windows`` lists live windows.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

_stack: list["Widget"] = []
_by_identifier: dict[str, "Widget"] = {}
windows: list["Window"] = []

TEST_HELPERS = ("find", "windows")

# omni.ui widgets take their properties as keyword arguments (omni.ui API reference, e.g.
# ``Button.__init__(self, text: str = '', **kwargs)``); the stand-in refuses a keyword that
# is not one of the properties this project uses, so a typo fails here as it would in Kit.
_PROPERTIES = {"identifier", "width", "height", "visible", "enabled", "tooltip", "style", "name", "spacing",
               "word_wrap", "fill_policy", "build_fn", "clicked_fn", "alignment", "text", "model", "checked"}


def find(identifier: str) -> "Widget | None":
    """Test helper: the live widget built with ``identifier``."""
    return _by_identifier.get(identifier)


class FillPolicy(enum.IntEnum):
    STRETCH = 0
    PRESERVE_ASPECT_FIT = 1
    PRESERVE_ASPECT_CROP = 2


class IwpFillPolicy(enum.IntEnum):
    # omni.ui API reference, omni.ui.IwpFillPolicy: ImageWithProvider's own fill policy (a separate
    # type from Image's FillPolicy, so pybind refuses one where the other is expected).
    IWP_STRETCH = 0
    IWP_PRESERVE_ASPECT_FIT = 1
    IWP_PRESERVE_ASPECT_CROP = 2


class Alignment(enum.IntEnum):
    LEFT = 1
    CENTER = 4
    LEFT_CENTER = 9


class WidgetMouseDropEvent:
    def __init__(self, mime_data: str, x: float = 0.0, y: float = 0.0) -> None:
        self.mime_data, self.x, self.y = mime_data, x, y


# -- models -----------------------------------------------------------------------------------


class SimpleValueModel:
    def __init__(self, value: Any = None) -> None:
        self._value = value

    def set_value(self, value: Any) -> None:
        self._value = value

    def get_value_as_string(self) -> str:
        return "" if self._value is None else str(self._value)

    def get_value_as_float(self) -> float:
        return float(self._value or 0.0)

    def get_value_as_int(self) -> int:
        return int(self._value or 0)

    @property
    def as_string(self) -> str:
        return self.get_value_as_string()

    @property
    def as_float(self) -> float:
        return self.get_value_as_float()

    @property
    def as_int(self) -> int:
        return self.get_value_as_int()


class SimpleStringModel(SimpleValueModel):
    def __init__(self, value: str = "") -> None:
        super().__init__(value)


class SimpleFloatModel(SimpleValueModel):
    def __init__(self, value: float = 0.0) -> None:
        super().__init__(value)


class SimpleIntModel(SimpleValueModel):
    def __init__(self, value: int = 0) -> None:
        super().__init__(value)


class ComboBoxModel:
    def __init__(self, index: int, items: list[str]) -> None:
        self.items = list(items)
        self._index = SimpleIntModel(index)

    def get_item_value_model(self, item: Any = None, column_id: int = 0) -> SimpleIntModel:
        return self._index


# -- widgets ----------------------------------------------------------------------------------


class Widget:
    def __init__(self, **kwargs) -> None:
        unknown = set(kwargs) - _PROPERTIES
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments {sorted(unknown)}")
        self.kwargs = kwargs
        self.identifier = kwargs.get("identifier", "")
        self.visible = kwargs.get("visible", True)
        self.enabled = kwargs.get("enabled", True)
        self.tooltip = kwargs.get("tooltip", "")
        self.children: list[Widget] = []
        self.accept_drop_fn: Callable | None = None
        self.drop_fn: Callable | None = None
        if _stack:
            _stack[-1].children.append(self)
        if self.identifier:
            _by_identifier[self.identifier] = self

    def set_accept_drop_fn(self, fn: Callable[[str], bool]) -> None:
        self.accept_drop_fn = fn

    def set_drop_fn(self, fn: Callable[[WidgetMouseDropEvent], None]) -> None:
        self.drop_fn = fn

    def _forget(self) -> None:
        for child in self.children:
            child._forget()
        if self.identifier and _by_identifier.get(self.identifier) is self:
            del _by_identifier[self.identifier]

    def destroy(self) -> None:
        self._forget()
        self.children = []


class Container(Widget):
    def __enter__(self) -> "Container":
        _stack.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _stack.pop()

    def clear(self) -> None:
        for child in self.children:
            child._forget()
        self.children = []


class VStack(Container):
    pass


class HStack(Container):
    pass


class Frame(Container):
    def __init__(self, **kwargs) -> None:
        build_fn = kwargs.pop("build_fn", None)
        super().__init__(**kwargs)
        self._build_fn = None
        if build_fn is not None:
            self.set_build_fn(build_fn)

    def set_build_fn(self, fn: Callable[[], None]) -> None:
        self._build_fn = fn
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        if self._build_fn is not None:
            with self:
                self._build_fn()


class Label(Widget):
    def __init__(self, text: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.text = text


class Button(Widget):
    def __init__(self, text: str = "", **kwargs) -> None:
        self._clicked_fn = kwargs.pop("clicked_fn", None)
        super().__init__(**kwargs)
        self.text = text

    def set_clicked_fn(self, fn: Callable[[], None]) -> None:
        self._clicked_fn = fn

    def call_clicked_fn(self) -> None:
        if self.enabled and self._clicked_fn is not None:
            self._clicked_fn()


class ComboBox(Widget):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(**kwargs)
        index, *items = args or (0,)
        self.model = ComboBoxModel(index, list(items))


class StringField(Widget):
    def __init__(self, model: SimpleStringModel | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model or SimpleStringModel()


class ProgressBar(Widget):
    def __init__(self, model: SimpleFloatModel | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model or SimpleFloatModel()


def _check_fill_policy(widget: str, kwargs: dict, expected: type) -> None:
    """The bindings take only their own fill policy type (Image: FillPolicy, ImageWithProvider: IwpFillPolicy)."""
    policy = kwargs.get("fill_policy")
    if policy is not None and not isinstance(policy, expected):
        raise TypeError(f"{widget}(): fill_policy must be an omni.ui.{expected.__name__}, not {policy!r}")


class Image(Widget):
    def __init__(self, url: str = "", **kwargs) -> None:
        _check_fill_policy("Image", kwargs, FillPolicy)
        super().__init__(**kwargs)
        self.source_url = url


class ImageProvider:
    """Base of the image providers; ``width`` and ``height`` are read-only properties in omni.ui."""

    _sizes: tuple[int, int] = (0, 0)

    @property
    def width(self) -> int:
        return self._sizes[0]

    @property
    def height(self) -> int:
        return self._sizes[1]


class ByteImageProvider(ImageProvider):
    # omni.ui API reference, omni.ui.ByteImageProvider: __init__ has two overloads, () and
    # (bytes, sizes, format=, stride=); the stand-in has the first, the one lift3d uses.
    def __init__(self) -> None:
        self.data = None

    # Kit 107 typings (omni/ui/_ui.pyi) and the omni.ui API reference: set_data_array(self, arg0:
    # numpy.ndarray[uint8], arg1: List[int]); pybind names the parameters arg0/arg1, so they are
    # positional only. The stand-in takes RGBA8 pixels, sizes [width, height], and refuses a
    # buffer of another length or type (Kit would log an error and show nothing).
    def set_data_array(self, arg0, arg1, /) -> None:
        import numpy as np

        if not isinstance(arg0, np.ndarray) or arg0.dtype != np.uint8:
            raise TypeError("ByteImageProvider.set_data_array() takes a numpy uint8 array")
        width, height = (int(v) for v in arg1)
        if arg0.size != width * height * 4:
            raise ValueError(f"set_data_array(): {arg0.size} bytes for {width} x {height} RGBA8 pixels")
        self.data = arg0.copy()
        self._sizes = (width, height)


class ImageWithProvider(Widget):
    # omni.ui API reference, omni.ui.ImageWithProvider.__init__ overloads: (arg0: ImageProvider, **kwargs),
    # (arg0: str, **kwargs) and (**kwargs); arg0 is positional only.
    def __init__(self, arg0=None, /, **kwargs) -> None:
        _check_fill_policy("ImageWithProvider", kwargs, IwpFillPolicy)
        super().__init__(**kwargs)
        self.provider = arg0


class Window:
    def __init__(self, title: str, dockPreference=None, **kwargs) -> None:
        unknown = set(kwargs) - {"width", "height", "visible", "flags", "padding_x", "padding_y"}
        if unknown:
            raise TypeError(f"Window() got unexpected keyword arguments {sorted(unknown)}")
        self.title, self.kwargs = title, kwargs
        self.width, self.height = kwargs.get("width", 400), kwargs.get("height", 300)
        self._visible = kwargs.get("visible", True)
        self._visibility_fn: Callable[[bool], None] | None = None
        self.frame = Frame()
        self.destroyed = False
        windows.append(self)

    @property
    def visible(self) -> bool:
        return self._visible

    @visible.setter
    def visible(self, value: bool) -> None:
        changed = value != self._visible
        self._visible = value
        if changed and self._visibility_fn is not None:
            self._visibility_fn(value)

    def set_visibility_changed_fn(self, fn: Callable[[bool], None]) -> None:
        self._visibility_fn = fn

    def focus(self) -> None:
        pass

    def destroy(self) -> None:
        self.frame.destroy()
        self._visibility_fn = None
        self.destroyed = True
        if self in windows:
            windows.remove(self)


class Workspace:
    @staticmethod
    def get_window(title: str) -> Window | None:
        return next((w for w in windows if w.title == title), None)
