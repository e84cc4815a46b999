"""Where settings come from besides the environment: the TOML file, with its relative paths anchored to it.

pydantic-settings builds its sources inside the ``Settings`` constructor, so the file's path reaches it
through a context variable that ``load_settings`` sets around the call.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, TomlConfigSettingsSource

ENV_PREFIX = "VEIL_"

toml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar("veil_toml_path", default=None)

# Path-valued keys. In a configuration file a relative path is relative to the file's own folder (docs/
# configuration.md), never to the current directory, which is "/" under systemd and anything by hand.
_SECTION_PATHS = {"service": ("model_dir", "state_dir"), "drift": ("store_dir",), "models": ("control_set",)}
_FOLDER_PATHS = ("ingest", "output", "review", "failed", "originals", "spotcheck", "rework")


def _anchored(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value and not value.startswith("~") and not os.path.isabs(value):
        return str(base / value)
    return value


class TomlSource(TomlConfigSettingsSource):
    """The configuration file, with relative paths resolved against the file's folder."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        super().__init__(settings_cls, toml_file=toml_file)
        self._base = Path(os.path.abspath(toml_file)).parent

    def __call__(self) -> dict[str, Any]:
        data = dict(super().__call__())
        for section, keys in _SECTION_PATHS.items():
            if isinstance(data.get(section), dict):
                data[section] = {k: _anchored(v, self._base) if k in keys else v for k, v in data[section].items()}
        if isinstance(data.get("folders"), list):
            data["folders"] = [
                {k: _anchored(v, self._base) if k in _FOLDER_PATHS else v for k, v in folder.items()}
                if isinstance(folder, dict) else folder
                for folder in data["folders"]
            ]
        return data

