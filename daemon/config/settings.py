"""The service configuration's public names, in one place for the rest of Veil to import.

The models are in ``schema``, the file source in ``sources``, reading and error reporting in ``loading``.
"""

from __future__ import annotations

from daemon.config.dispatch import DispatchSettings
from daemon.config.loading import (
    SYSTEM_CONFIG,
    TRIAL_STATE,
    ConfigError,
    load_settings,
    trial_folder,
    trial_state_dir,
    unknown_environment,
)
from daemon.config.schema import (
    DEFAULT_IGNORE,
    DEFAULT_PROFILE,
    DriftSettings,
    FolderSettings,
    MetricsSettings,
    ModelsSettings,
    ServiceSettings,
    Settings,
    WatchSettings,
    ZoneSettings,
)
from daemon.config.sources import ENV_PREFIX

__all__ = [
    "DEFAULT_IGNORE", "DEFAULT_PROFILE", "ENV_PREFIX", "SYSTEM_CONFIG", "TRIAL_STATE", "ConfigError", "DispatchSettings",
    "DriftSettings", "FolderSettings", "MetricsSettings", "ModelsSettings", "ServiceSettings", "Settings",
    "WatchSettings", "ZoneSettings", "load_settings", "trial_folder", "trial_state_dir", "unknown_environment",
]
