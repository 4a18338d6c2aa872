"""Checks of a reconstruction request that run before any heavy import (torch, Warp).

:func:`check_request` looks at everything a user can get wrong (settings,
preset and category names, image, mask and camera files, output folder,
stage) with cheap reads only: image *headers*, the camera file, the stage
layer. A mistake is reported as :class:`lift3d.errors.InputError` (or its
subclass ``ConfigError``) in a fraction of a second, instead of after the
seconds it takes to load torch and Warp. The reconstruction validates again
as it decodes (a file can be truncated after its header), so these checks
only move the usual errors earlier; they never let more through.

Only numpy, Pillow and pydantic are imported here, plus ``pxr`` when a stage
file is given.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .errors import ConfigError, InputError
from .requests import ReconstructRequest
from .settings import Settings, load_settings
from .usd import check_stage_suffix

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
"""Image formats the reconstructor decodes (as :mod:`lift3d.io.images`)."""
INIT_MODES = ("learned", "search", "both", "predicted")
"""How a single car photo may be initialised (see :mod:`lift3d.pipeline.initialise`)."""
OBJECT_CHOICES = ("all", "largest")


def object_choice(value: object) -> str | int:
    """``objects`` of a request, normalised: ``all``, ``largest`` or a count N >= 1 (also given as text)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if value in OBJECT_CHOICES:
        return value
    raise InputError(f"unknown objects {value!r}; choose all, largest or a number of objects (1 or more)")


def check_image_header(path: Path, what: str = "image") -> tuple[int, int]:
    """``(width, height)`` stored in the header of the PNG, JPEG or WebP file ``path``; InputError otherwise."""
    from PIL import Image, UnidentifiedImageError

    from .io.images import MAX_PIXELS

    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not an image file")
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{what} {path} is an empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path, formats=IMAGE_FORMATS) as im:
                width, height = im.size
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{what} {path} is not a PNG, JPEG or WebP image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{what} {path} is too large to decode safely (more than "
                         f"{MAX_PIXELS // 1_000_000} MP)") from None
    except PermissionError as exc:
        raise InputError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{what} {path} is corrupt or truncated ({exc})") from None
    if width <= 0 or height <= 0:
        raise InputError(f"{what} {path} has no pixels")
    if width * height > MAX_PIXELS:
        raise InputError(f"{what} {path} is {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} MP "
                         "limit")
    return width, height


def check_writable_folder(folder: Path, what: str) -> None:
    """InputError unless ``folder`` exists as a writable folder or could be created there (nothing is created)."""
    probe = folder.absolute()
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{what} {folder} cannot be created because {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{what} {folder} is not writable")


def check_stage_file(stage: Path) -> None:
    """InputError unless a reference can be added to the stage file ``stage`` (reads only)."""
    if stage.is_dir():
        raise InputError(f"stage file {stage} is a folder")
    check_stage_suffix(stage)
    check_writable_folder(stage.parent, "stage folder")
    if stage.exists():
        from .usd.compose import check_stage_layer

        check_stage_layer(stage)


def check_request(request: ReconstructRequest, settings: Settings | None = None) -> Settings:
    """Validate ``request`` cheaply (see the module docstring); returns the settings it was checked against.

    Raises:
        ConfigError: bad settings file, unknown preset or category, missing template.
        InputError: any other bad input.
    """
    settings = settings or load_settings(request.config)
    settings.preset(request.preset)
    settings.category(request.category)
    if request.init is not None and request.init not in INIT_MODES:
        raise InputError(f"unknown init {request.init!r}; choose one of {', '.join(INIT_MODES)}")
    object_choice(request.objects)
    if not request.images:
        raise InputError("no input images were given")
    if request.mask is not None and len(request.images) > 1:
        raise InputError("a mask file can only be given with a single image")
    if len(request.images) > 1 and request.views is None:
        raise InputError("several images need their cameras: pass a transforms.json with --views")
    for image in request.images:
        check_image_header(Path(image))
    if request.mask is not None:
        check_image_header(Path(request.mask), "mask")
    if request.views is not None:
        from .io.views import cameras_for_images

        cameras_for_images(request.views, request.images)
    template = settings.template_path(request.category)
    if not template.is_file():
        raise ConfigError(f"the template {template} of category {request.category!r} does not exist")
    out_dir = Path(request.out_dir) if request.out_dir is not None else Path(settings.output.folder)
    check_writable_folder(out_dir, "output folder")
    if request.stage is not None:
        check_stage_file(Path(request.stage))
    return settings
