"""Settings: the TOML files in ``config/`` loaded into validated pydantic models.

Sources, lowest priority first:

1. the project defaults in ``config/`` (``lift3d.toml``, ``presets.toml``,
   ``categories.toml``), shipped inside the package as ``lift3d.config``;
2. an optional user file of the same shape as ``lift3d.toml`` (``--config FILE``
   or the ``LIFT3D_CONFIG`` environment variable), which may also hold
   ``[presets.NAME]`` and ``[categories.NAME]`` tables;
3. environment variables ``LIFT3D_<SECTION>__<KEY>`` (pydantic-settings),
   e.g. ``LIFT3D_OUTPUT__FORMAT=usdc``.

Unknown keys and bad values raise :class:`lift3d.errors.ConfigError` whose
message names the key and the file it came from.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class OutputSettings(_Strict):
    format: Literal["usda", "usdc"] = "usda"
    folder: str = "lift3d_out"
    texture_size: int = Field(1024, ge=16, le=8192)


class RuntimeSettings(_Strict):
    device: Literal["cpu", "cuda", "auto"] = "auto"
    threads: int = Field(0, ge=0, le=256)


class StageSettings(_Strict):
    writer: str = ""


class PredictorSettings(_Strict):
    """The learned vehicle predictor (``lift3d train``) and how a single car photo is initialised."""

    model: str = ""
    init: Literal["learned", "search", "both"] = "both"
    hypotheses: int = Field(4, ge=1, le=16)
    fov: Literal["assumed", "predicted"] = "assumed"

    def model_path(self) -> Path:
        """The model file: ``model`` (relative to the working folder) or the bundled default."""
        if self.model:
            return Path(self.model).expanduser()
        return config_dir() / "models" / "vehicle_predictor.safetensors"


class Preset(_Strict):
    """Time/quality trade-off of one reconstruction (see ``config/presets.toml``)."""

    levels: list[int] = Field(min_length=1)
    steps: list[int] = Field(min_length=1)
    camera_yaw_steps: int = Field(ge=1, le=360)
    camera_pitch_steps: int = Field(ge=1, le=90)
    camera_hypotheses: int = Field(ge=1, le=32)
    camera_refine_steps: int = Field(ge=0, le=10000)
    texture_size: int = Field(ge=16, le=8192)
    photometric_steps: int = Field(ge=0, le=10000)
    sigma: float = Field(gt=0.0, le=100.0)

    @model_validator(mode="after")
    def _levels_match_steps(self) -> "Preset":
        if len(self.levels) != len(self.steps):
            raise ValueError("levels and steps must have the same length")
        if any(level < 8 or level > 4096 for level in self.levels):
            raise ValueError("levels must be between 8 and 4096 pixels")
        if any(s < 0 for s in self.steps):
            raise ValueError("steps must be non-negative")
        return self


class Category(_Strict):
    """An object category: its template and canonical size."""

    template: str
    length_m: float = Field(gt=0.0, le=1000.0)
    symmetric: bool = False
    description: str = ""


class Settings(BaseSettings):
    """All of lift3d's settings."""

    model_config = SettingsConfigDict(env_prefix="LIFT3D_", env_nested_delimiter="__", extra="forbid")

    output: OutputSettings = OutputSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    stage: StageSettings = StageSettings()
    predictor: PredictorSettings = PredictorSettings()
    presets: dict[str, Preset] = {}
    categories: dict[str, Category] = {}

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource):
        # Environment variables override the TOML files (passed as init values).
        return (env_settings, init_settings)

    def preset(self, name: str) -> Preset:
        """The preset called ``name``; an unknown name is a ConfigError listing the choices."""
        try:
            return self.presets[name]
        except KeyError:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(sorted(self.presets))}") from None

    def category(self, name: str) -> Category:
        """The category called ``name``; an unknown name is a ConfigError listing the choices."""
        try:
            return self.categories[name]
        except KeyError:
            raise ConfigError(
                f"unknown category {name!r}; choose one of {', '.join(sorted(self.categories))}") from None

    def template_path(self, category: str) -> Path:
        """Absolute path of ``category``'s template USD file."""
        return config_dir() / self.category(category).template


def config_dir() -> Path:
    """The folder holding the default TOML files and templates (``config/`` of the project)."""
    return Path(str(resources.files("lift3d.config")))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _origin(sources: list[tuple[Path, dict[str, Any]]], loc: tuple[Any, ...]) -> str:
    """Name where the key at ``loc`` (or its nearest parent table) was set.

    Environment variables override the files, so one that sets the key wins;
    otherwise the last file that set it.
    """
    env_names = {name.upper(): name for name in os.environ}
    for depth in range(len(loc), 0, -1):
        env = "LIFT3D_" + "__".join(str(p).upper() for p in loc[:depth])
        if env in env_names:
            return f"environment variable {env_names[env]}"
    for depth in range(len(loc), 0, -1):
        for path, data in reversed(sources):
            node: Any = data
            for part in loc[:depth]:
                if isinstance(node, dict) and part in node:
                    node = node[part]
                else:
                    break
            else:
                return str(path)
    return str(sources[0][0])


def load_settings(user_file: Path | str | None = None) -> Settings:
    """Load and validate the settings (defaults, then ``user_file`` or ``$LIFT3D_CONFIG``, then env)."""
    base = config_dir()
    main = _read_toml(base / "lift3d.toml")
    sources: list[tuple[Path, dict[str, Any]]] = [
        (base / "lift3d.toml", main),
        (base / "presets.toml", {"presets": _read_toml(base / "presets.toml")}),
        (base / "categories.toml", {"categories": _read_toml(base / "categories.toml")}),
    ]
    user = user_file or os.environ.get("LIFT3D_CONFIG") or None
    if user:
        sources.append((Path(user), _read_toml(Path(user))))
    merged: dict[str, Any] = {}
    for _, data in sources:
        merged = _merge(merged, data)
    try:
        return Settings(**merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        where = _origin(sources, loc)
        what = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{where}: {_key_path(loc)}: {what}{more}") from None
