"""Reading the configuration: the TOML file, overridden by ``VEIL_...`` environment variables.

Nested keys use ``__`` in the environment: ``VEIL_SERVICE__WORKERS=2``. Lists and tables take JSON:
``VEIL_FOLDERS='[{"name": "cams", "ingest": "/srv/in", "output": "/srv/out"}]'``. An invalid value is
refused with the key, the value and where it came from (file, variable or command line).
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from daemon.config.schema import Settings
from daemon.config.sources import ENV_PREFIX, toml_path

SYSTEM_CONFIG = Path("/etc/veil/veil.toml")


class ConfigError(Exception):
    """The configuration is invalid. The message names the bad key and value."""


# VEIL_ variables that are not settings: the configuration file's path, and the test suite's own.
_NOT_SETTINGS = ("VEIL_CONFIG", "VEIL_SCREENSHOTS", "VEIL_TEST_")


def _veil_environment() -> dict[str, str]:
    """The VEIL_ variables, by upper-case name (pydantic-settings reads them case-insensitively)."""
    return {name.upper(): name for name in os.environ if name.upper().startswith(ENV_PREFIX)}


def unknown_environment() -> list[str]:
    """VEIL_ variables that name no setting, e.g. a misspelt section (VEIL_SERVCE__WORKERS): pydantic-settings
    ignores them silently, while a misspelt key inside a known section is refused."""
    unknown = []
    for upper, name in sorted(_veil_environment().items()):
        if upper.startswith(_NOT_SETTINGS):
            continue
        section = upper[len(ENV_PREFIX):].split("__", 1)[0].lower()
        if section not in Settings.model_fields:
            unknown.append(name)
    return unknown


def _source_of(loc: tuple[Any, ...], path: Path | None, overrides: dict[str, Any]) -> str:
    """Where a bad value came from: a VEIL_ variable (the most specific that is set), the command line or
    the file. Environment variables win over the file, so one that is set is the source."""
    environment = _veil_environment()
    keys = []
    for part in loc:
        if not isinstance(part, str):
            break
        keys.append(part.upper())
    for n in range(len(keys), 0, -1):
        name = ENV_PREFIX + "__".join(keys[:n])
        if name in environment:
            return f"environment {environment[name]}: "
    if loc and loc[0] in overrides:
        return "command line: "
    return f"{path}: " if path else ""


def _format_error(error: ValidationError, path: Path | None = None, overrides: dict[str, Any] | None = None) -> str:
    lines = []
    for item in error.errors():
        key = ""
        for part in item["loc"]:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" (value: {value!r})"
        lines.append(f"{_source_of(tuple(item['loc']), path, overrides or {})}{key or 'configuration'}: {item['msg']}{shown}")
    return "; ".join(lines)


_warned: set[str] = set()  # unknown VEIL_ variables already warned about (once per process, not per reload)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read ``path`` (optional), apply ``VEIL_...`` variables, then ``overrides``. Raises ConfigError."""
    if path is not None:
        path = Path(path)
        try:
            with path.open("rb") as handle:
                tomllib.load(handle)  # a syntax error is reported with its line, before pydantic sees it
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {str(path)!r}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    for name in unknown_environment():  # named, never its value (it may hold a path with a person's name)
        if name not in _warned:
            _warned.add(name)
            print(f"veil: warning: environment variable {name} names no setting and is ignored", file=sys.stderr)
    token = toml_path.set(path)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, path, overrides)) from None
    except SettingsError as exc:  # a VEIL_ variable that is not valid JSON where a list or table is expected
        raise ConfigError(f"environment: {exc}") from None
    finally:
        toml_path.reset(token)
    if not settings.folders:
        raise ConfigError("folders: no watch folder is configured (add a [[folders]] table, or use --ingest/--output)")
    return settings


TRIAL_STATE = ".veil-state"


def trial_state_dir(output: Path) -> Path:
    """A trial's own state (status file, drift store, audit log): ``<output's parent>/.veil-state``, beside
    its review, failed and originals folders, so two trials never share their figures."""
    return Path(os.path.abspath(os.path.expanduser(output))).parent / TRIAL_STATE


def trial_folder(ingest: Path, output: Path, review: Path | None, failed: Path | None) -> dict[str, Any]:
    """The one folder of ``veil serve --ingest IN --output OUT``: the default profile, siblings of OUT."""
    folder: dict[str, Any] = {"name": "default", "ingest": ingest, "output": output}
    if review is not None:
        folder["review"] = review
    if failed is not None:
        folder["failed"] = failed
    return folder
