"""Settings: defaults, user files, environment overrides, and errors that name the key and its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from lift3d.errors import ConfigError, InputError
from lift3d.settings import config_dir, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.upper().startswith("LIFT3D_"):
            monkeypatch.delenv(key)


def _user(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "user.toml"
    path.write_text(text)
    return path


def test_defaults_load_and_are_consistent():
    s = load_settings()
    assert s.output.format == "usda" and s.output.texture_size == 1024
    assert set(s.presets) == {"fast", "balanced", "best"}
    assert set(s.categories) >= {"car", "generic"}
    for preset in s.presets.values():
        assert len(preset.levels) == len(preset.steps)
    for name in s.categories:
        assert s.template_path(name).is_file()
    assert (config_dir() / "lift3d.toml").is_file()


def test_user_file_overrides_defaults_and_adds_presets(tmp_path):
    user = _user(tmp_path, """
[output]
format = "usdc"
[presets.tiny]
levels = [32]
steps = [5]
camera_yaw_steps = 4
camera_pitch_steps = 1
camera_hypotheses = 1
camera_refine_steps = 0
texture_size = 64
photometric_steps = 0
sigma = 2.0
[presets.fast]
steps = [10, 10]
""")
    s = load_settings(user)
    assert s.output.format == "usdc" and s.output.folder == "lift3d_out"  # untouched keys keep defaults
    assert s.preset("tiny").levels == [32]
    assert s.preset("fast").steps == [10, 10] and s.preset("fast").levels == [64, 128]


def test_config_env_variable_selects_the_user_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFT3D_CONFIG", str(_user(tmp_path, "[runtime]\nthreads = 3\n")))
    assert load_settings().runtime.threads == 3


def test_unknown_key_names_key_and_file(tmp_path):
    user = _user(tmp_path, "[output]\nformatt = \"usda\"\n")
    with pytest.raises(ConfigError) as err:
        load_settings(user)
    assert str(user) in str(err.value) and "output.formatt" in str(err.value) and "unknown key" in str(err.value)


def test_unknown_section_names_key_and_file(tmp_path):
    user = _user(tmp_path, "[outptu]\nformat = \"usda\"\n")
    with pytest.raises(ConfigError, match=r"user\.toml: outptu: unknown key"):
        load_settings(user)


def test_bad_value_type_names_key_and_file(tmp_path):
    user = _user(tmp_path, "[output]\ntexture_size = \"big\"\n")
    with pytest.raises(ConfigError) as err:
        load_settings(user)
    msg = str(err.value)
    assert msg.startswith(str(user)) and "output.texture_size" in msg and "integer" in msg


def test_out_of_range_value(tmp_path):
    with pytest.raises(ConfigError, match=r"output\.texture_size.*greater than or equal to 16"):
        load_settings(_user(tmp_path, "[output]\ntexture_size = 4\n"))


def test_levels_steps_length_mismatch(tmp_path):
    user = _user(tmp_path, "[presets.fast]\nlevels = [64, 128, 256]\n")
    with pytest.raises(ConfigError) as err:
        load_settings(user)
    msg = str(err.value)
    assert str(user) in msg and "presets.fast" in msg and "levels and steps must have the same length" in msg


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_user(tmp_path, "[output\nformat = 1"))
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "missing.toml")


def test_env_override_works(monkeypatch, tmp_path):
    monkeypatch.setenv("LIFT3D_OUTPUT__FORMAT", "usdc")
    assert load_settings().output.format == "usdc"
    # The environment beats a user file too.
    assert load_settings(_user(tmp_path, "[output]\nformat = \"usda\"\n")).output.format == "usdc"


def test_bad_env_value_is_reported_as_coming_from_the_environment(monkeypatch):
    monkeypatch.setenv("LIFT3D_OUTPUT__FORMAT", "usdz")
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = str(err.value)
    assert "environment variable LIFT3D_OUTPUT__FORMAT" in msg and "output.format" in msg
    assert "lift3d.toml" not in msg


def test_unknown_names_list_the_choices():
    s = load_settings()
    with pytest.raises(ConfigError, match="unknown preset 'turbo'; choose one of balanced, best, fast"):
        s.preset("turbo")
    with pytest.raises(ConfigError, match="unknown category 'truck'"):
        s.category("truck")


def test_config_errors_are_input_errors():
    assert issubclass(ConfigError, InputError)  # so the CLI reports them with exit status 2
