"""config/veil.toml documents every key of the settings models, each with a comment."""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path

from pydantic import BaseModel

from pipeline.params import Params

from daemon.config.settings import FolderSettings, Settings, load_settings

CONFIG = Path(__file__).resolve().parents[2] / "config" / "veil.toml"
COMMENTED_KEY = re.compile(r"^#\s?([a-z_0-9]+ = .*)$")


def _uncommented() -> dict:
    """The file with its commented-out optional keys (``# key = value``) switched on."""
    lines = [COMMENTED_KEY.sub(r"\1", line) for line in CONFIG.read_text().splitlines()]
    return tomllib.loads("\n".join(lines))


def _missing(model: type[BaseModel], table: dict, prefix: str) -> list[str]:
    missing = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if name not in table:
            missing.append(key)
            continue
        annotation = field.annotation
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            missing += _missing(annotation, table[name], key + ".")
        elif origin is tuple and args and args[0] is FolderSettings:
            missing += _missing(FolderSettings, table[name][0], key + "[0].")
        elif origin is dict and args and isinstance(args[1], type) and issubclass(args[1], BaseModel):
            for entry in table[name]:  # e.g. profiles.default, detector.per_class.face
                missing += _missing(args[1], table[name][entry], f"{key}.{entry}.")
    return missing


def test_every_key_is_in_the_default_file():
    assert _missing(Settings, _uncommented(), "") == []


def test_every_key_has_a_comment_in_its_table_or_above_it():
    lines = CONFIG.read_text().splitlines()
    for index, line in enumerate(lines):
        if not re.match(r"^[a-z_0-9]+ = ", line):
            continue
        start = index
        while start > 0 and not lines[start].startswith("["):
            start -= 1
        span = lines[max(0, start - 6): index]
        assert any(b.startswith("#") for b in span), f"undocumented: {line}"


def test_the_file_with_optional_keys_switched_on_is_still_valid(tmp_path):
    path = tmp_path / "veil.toml"
    path.write_text("\n".join(COMMENTED_KEY.sub(r"\1", line) for line in CONFIG.read_text().splitlines()))
    settings = load_settings(path)
    assert settings.watch.done_marker == ".done"


def test_the_shipped_profile_is_the_code_default():
    """A table in the file replaces the whole default object, so a key left out there silently changes a
    default (e.g. turns off a detection pass). The shipped file must mean exactly the code's defaults."""
    settings = load_settings(CONFIG)
    assert settings.profiles["default"] == Params()
