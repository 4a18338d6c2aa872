"""The extension's settings (``/exts/lift3d.reconstruct/*`` in carb.settings) and the job settings they give.

The defaults live in ``config/extension.toml`` under ``[settings]`` and mirror
the project defaults in ``config/lift3d.toml`` and ``config/presets.toml``.
Every key can be overridden like any Kit setting, e.g. on the command line:
``--/exts/lift3d.reconstruct/preset=fast``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import carb
import carb.settings
from pydantic import ValidationError

from ..errors import ConfigError, InputError
from ..preflight import object_choice
from ..settings import Preset, Settings, load_settings

SETTINGS_ROOT = "/exts/lift3d.reconstruct"


@dataclass
class KitOptions:
    """The extension's settings.

    Attributes:
        preset: default quality preset (``fast``, ``balanced``, ``best``).
        category: default object category (``car``, ``generic``).
        working_resolution: finest working resolution of the coarse-to-fine fit,
            pixels (square); preset levels above it are replaced by it.
        output_folder: asset folder when the stage has no file yet (anonymous);
            otherwise assets go beside the stage's root layer.
        writer: layer of a shared stage that receives the references ("" = the edit target).
        format: asset file format, ``usda`` or ``usdc``.
        config_file: optional user settings TOML (as ``lift3d --config``), "" for none.
        objects: which objects of a photo showing several become assets (as ``lift3d reconstruct
            --objects``): ``all`` (each its own asset and prim), ``largest``, or a number N (the N largest).
    """

    preset: str = "balanced"
    category: str = "car"
    working_resolution: int = 256
    output_folder: str = "lift3d_out"
    writer: str = ""
    format: str = "usda"
    config_file: str = ""
    objects: str = "all"


def read_options() -> KitOptions:
    """Read :class:`KitOptions` from carb.settings; unset keys, and values of the wrong type, keep the defaults."""
    settings = carb.settings.get_settings()
    values = {}
    for name, default in KitOptions().__dict__.items():
        value = settings.get(f"{SETTINGS_ROOT}/{name}")
        if value is None:
            continue
        try:
            values[name] = type(default)(value)
        except (TypeError, ValueError):
            carb.log_warn(f"lift3d: setting {SETTINGS_ROOT}/{name} = {value!r} is not a {type(default).__name__}; "
                          f"using {default!r}")
    return KitOptions(**values)


def cap_levels(preset: Preset, resolution: int) -> Preset:
    """``preset`` with its coarse-to-fine levels capped at ``resolution`` pixels.

    Levels below ``resolution`` are kept with their steps; if any level was at or
    above it, ``resolution`` becomes the last level and takes the steps of the
    first level it replaces. A cap at or above the finest level changes nothing.
    """
    kept = [(level, steps) for level, steps in zip(preset.levels, preset.steps) if level < resolution]
    if len(kept) < len(preset.levels):
        kept.append((resolution, preset.steps[len(kept)]))
    return preset.model_copy(update={"levels": [k[0] for k in kept], "steps": [k[1] for k in kept]})


def job_settings(options: KitOptions, preset: str) -> Settings:
    """The lift3d settings of one job: project defaults, ``config_file``, then the Kit settings.

    Raises:
        lift3d.errors.ConfigError: ``config_file`` is missing or invalid, ``preset`` is
            unknown, or a Kit setting has a bad value (the message names the setting).
    """
    settings = load_settings(Path(options.config_file) if options.config_file else None)
    chosen = settings.preset(preset)
    key = ""
    try:
        for key, section, field in (("format", settings.output, "format"), ("output_folder", settings.output, "folder"),
                                    ("writer", settings.stage, "writer")):
            setattr(section, field, getattr(options, key))
        key = "working_resolution"
        capped = Preset.model_validate(cap_levels(chosen, options.working_resolution).model_dump())
    except ValidationError as exc:
        raise ConfigError(f"Kit setting {SETTINGS_ROOT}/{key}: {exc.errors()[0]['msg']}") from None
    settings.presets = {**settings.presets, preset: capped}
    return settings


def job_objects(options: KitOptions) -> str | int:
    """The ``objects`` choice of a job (``all``, ``largest`` or a count N).

    Raises:
        lift3d.errors.ConfigError: the setting is none of those (the message names the setting).
    """
    try:
        return object_choice(options.objects)
    except InputError as exc:
        raise ConfigError(f"Kit setting {SETTINGS_ROOT}/objects: {exc}") from None
