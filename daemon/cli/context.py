"""The configuration an administrative command (``veil models``, ``veil audit``) works against.

``--config`` if given, else $VEIL_CONFIG, else /etc/veil/veil.toml when it exists, else the defaults: the
command then sees the same model directory, audit log and drift store as the service.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from daemon.config.settings import SYSTEM_CONFIG, Settings, load_settings


def add_config_argument(parser: argparse.ArgumentParser, **kwargs) -> None:
    parser.add_argument("--config", type=Path, help=f"service configuration (default: $VEIL_CONFIG or {SYSTEM_CONFIG})",
                        **kwargs)


def config_path(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    env = os.environ.get("VEIL_CONFIG")
    if env:
        return Path(env)
    return SYSTEM_CONFIG if SYSTEM_CONFIG.is_file() else None


def settings_for(explicit: Path | None) -> Settings | None:
    """The service's settings, or None when there is no configuration file. Raises ConfigError."""
    path = config_path(explicit)
    return None if path is None else load_settings(path)
