"""The drift monitor's numbers: rates, minimum sizes, test levels and hysteresis (``[drift]`` in the settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DriftConfig:
    """The numbers behind every decision; the service fills them from ``[drift]`` (see daemon/config/settings.py)."""

    spot_check_rate: float = 0.02
    alert_spot_check_rate: float = 0.10
    reference_min_days: int = 7
    reference_min_files: int = 1000
    window_min_files: int = 300
    window_max_days: int = 7
    ks_alpha: float = 0.01
    psi_floor: float = 0.05
    proportion_alpha: float = 0.01
    proportion_limit: float = 0.05
    hysteresis_days: int = 2
