"""The service configuration: a TOML file, overridden by ``VEIL_...`` environment variables.

Nested keys use ``__`` in the environment: ``VEIL_SERVICE__WORKERS=2``. Lists and tables take JSON:
``VEIL_FOLDERS='[{"name": "cams", "ingest": "/srv/in", "output": "/srv/out"}]'``.
The models here are the contract; ``config/veil.toml`` documents every key.
"""

from __future__ import annotations

import contextvars
import os
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from pipeline.edits import AddRegion
from pipeline.params import Params

SYSTEM_CONFIG = Path("/etc/veil/veil.toml")
ENV_PREFIX = "VEIL_"
DEFAULT_PROFILE = "default"

# Names that are never inputs: partial downloads, editor and OS droppings. Matched against every path
# component, so a whole ``@eaDir`` tree is skipped. Dot-names cover rsync's ``.name.XXXXXX`` temporaries.
DEFAULT_IGNORE = (
    ".*", "*.part", "*.partial", "*.tmp", "*.temp", "*.crdownload", "*.download", "*.!qB", "*.swp",
    "~$*", "~*.tmp", "Thumbs.db", "desktop.ini", "@eaDir", "#recycle", "$RECYCLE.BIN", "lost+found",
)


class ConfigError(Exception):
    """The configuration is invalid. The message names the bad key and value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneSettings(_Strict):
    """A camera zone (README "Camera zones"): a polygon in relative coordinates (x / width, y / height, each
    0..1, so one zone fits every resolution). ``always_mask`` masks it on every frame; ``ignore`` leaves
    detections whose box centre lies inside it unmasked (a screen showing a broadcast, say)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["always_mask", "ignore"]
    polygon: tuple[tuple[float, float], ...]

    @field_validator("polygon")
    @classmethod
    def _drawable(cls, value: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        AddRegion(value)  # at least 3 points, each in [0, 1], some area: the pipeline's own checks
        return value


class FolderSettings(_Strict):
    """One watched ingest folder and where its results go."""

    name: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]+$")
    ingest: Path
    output: Path
    review: Path | None = None  # default: a sibling of output named "review"
    failed: Path | None = None  # default: a sibling of output named "failed"
    originals: Path | None = None  # default: a sibling of output named "originals"
    spotcheck: Path | None = None  # drift spot checks (copies of clean results); default: sibling "spotcheck"
    rework: Path | None = None  # rework documents (README: "Review station"); default: sibling "rework"
    profile: str = DEFAULT_PROFILE
    # What happens to the original once its results are durable: moved to ``originals``, deleted, or kept
    # in the ingest folder (recorded as done, so it is not processed again unless it changes).
    on_success: Literal["archive", "delete", "keep"] = "archive"
    # After a reviewer approves an item (re-rendered from its archived original), keep that original in
    # originals/ (True) or delete it (False).
    keep_originals_after_review: bool = True

    # Camera zones of this source. An ignore zone un-masks detections, so it needs allow_ignore_zones too.
    zones: tuple[ZoneSettings, ...] = ()
    allow_ignore_zones: bool = False

    @field_validator("ingest", "output", "review", "failed", "originals", "spotcheck", "rework")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(os.path.abspath(os.path.expanduser(value)))

    @model_validator(mode="after")
    def _fill_siblings(self) -> "FolderSettings":
        for field in ("review", "failed", "originals", "spotcheck", "rework"):
            if getattr(self, field) is None:
                object.__setattr__(self, field, self.output.parent / field)
        paths = {f: getattr(self, f) for f in ("ingest", "output", "review", "failed", "originals", "spotcheck", "rework")}
        for field, path in paths.items():
            if field != "ingest" and (path == self.ingest or self.ingest in path.parents):
                raise ValueError(f"{field} {str(path)!r} must not be inside the ingest folder {str(self.ingest)!r}")
        return self

    @model_validator(mode="after")
    def _zones_allowed(self) -> "FolderSettings":
        names = [zone.name for zone in self.zones]
        if len(set(names)) != len(names):
            raise ValueError(f"zone names must be unique within a folder, got {names}")
        ignore = [zone.name for zone in self.zones if zone.kind == "ignore"]
        if ignore and not self.allow_ignore_zones:
            raise ValueError(
                f"ignore zone(s) {ignore} leave detections unmasked: set allow_ignore_zones = true on folder "
                f"{self.name!r} to allow them"
            )
        return self

    # The sibling folders as set by _fill_siblings: typed ``Path``, never None once validated.
    @property
    def review_dir(self) -> Path:
        return _filled(self.review)

    @property
    def failed_dir(self) -> Path:
        return _filled(self.failed)

    @property
    def originals_dir(self) -> Path:
        return _filled(self.originals)

    @property
    def spotcheck_dir(self) -> Path:
        return _filled(self.spotcheck)

    @property
    def rework_dir(self) -> Path:
        return _filled(self.rework)

    def destinations(self) -> list[Path]:
        return [self.output, self.review_dir, self.failed_dir, self.originals_dir, self.spotcheck_dir, self.rework_dir]


def _filled(path: Path | None) -> Path:
    assert path is not None, "FolderSettings._fill_siblings sets every sibling folder"
    return path


class WatchSettings(_Strict):
    """How arrivals are noticed and when a file counts as complete."""

    mode: Literal["inotify", "poll"] = "inotify"  # poll: for SMB/NFS shares written by other machines
    rescan_interval_s: float = Field(default=60.0, gt=0)  # full rescan, even with inotify
    poll_interval_s: float = Field(default=5.0, gt=0)  # full rescan in poll mode
    settle_s: float = Field(default=5.0, ge=0)  # size and mtime unchanged this long: the file is complete
    done_marker: str | None = None  # e.g. ".done": take "x.jpg" only once "x.jpg.done" exists
    ignore: tuple[str, ...] = ()  # extra glob patterns, added to the built-in list

    def ignore_patterns(self) -> tuple[str, ...]:
        return DEFAULT_IGNORE + self.ignore


class ServiceSettings(_Strict):
    """The worker pool and the life of the process."""

    instance: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9_.-]+$")
    workers: int = Field(default=1, ge=1, le=64)
    devices: tuple[str, ...] = ("cpu",)  # assigned to workers in turn: cpu, cuda, cuda:K
    threads: int = Field(default=0, ge=0)  # onnxruntime intra-op threads per worker; 0 = the cores shared among CPU workers
    precision: Literal["fp32", "fp16"] = "fp32"  # onnxruntime models in half precision (see RuntimeParams)
    model_dir: Path | None = None  # None: the environment's share/veil/models
    job_timeout_s: float = Field(default=3600.0, gt=0)  # a job running longer is a hang: kill, retry
    heartbeat_timeout_s: float = Field(default=60.0, gt=0)  # a silent worker is hung: kill, retry
    max_attempts: int = Field(default=3, ge=1)  # tries per file before it is failed with the reason
    stop_timeout_s: float = Field(default=60.0, ge=0)  # on SIGTERM: running jobs get this long to finish
    state_dir: Path | None = None  # status file; None: $RUNTIME_DIRECTORY, else a per-user temp folder
    log_file_names: bool = False  # file names in logs and status; off: job ids and folder names only
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("devices")
    @classmethod
    def _known_devices(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one device is needed")
        for device in value:
            if device not in ("cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
                raise ValueError(f"unknown device {device!r} (cpu, cuda or cuda:K)")
        return value

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        runtime = os.environ.get("RUNTIME_DIRECTORY")
        if runtime:
            return Path(runtime.split(":")[0])
        return Path(os.environ.get("TMPDIR", "/tmp")) / f"veil-{os.getuid()}"


class DriftSettings(_Strict):
    """Drift monitoring and spot checks (README: "Drift monitoring")."""

    enabled: bool = True
    store_dir: Path | None = None  # drift.sqlite and audit.jsonl; None: $STATE_DIRECTORY, else service.state_dir
    spot_check_rate: float = Field(default=0.02, ge=0, le=1)  # share of clean files also copied to spotcheck/
    alert_spot_check_rate: float = Field(default=0.10, ge=0, le=1)  # the share while an alert is unacknowledged
    reference_min_days: int = Field(default=7, ge=1)
    reference_min_files: int = Field(default=1000, ge=1)
    window_min_files: int = Field(default=300, ge=1)  # fewer in the window: "insufficient data", never an alert
    window_max_days: int = Field(default=7, ge=1)  # how far back a window may reach to gather window_min_files
    sample_per_day: int = Field(default=500, ge=10)  # feature vectors kept per source and day (for KS tests)
    ks_alpha: float = Field(default=0.01, gt=0, lt=1)  # family-wise, Holm-corrected over the features
    psi_floor: float = Field(default=0.05, ge=0)  # the least PSI excess that can count as drift
    proportion_alpha: float = Field(default=0.01, gt=0, lt=1)
    proportion_limit: float = Field(default=0.05, ge=0, le=1)  # absolute change of a share that can count
    hysteresis_days: int = Field(default=2, ge=1)  # consecutive days to raise or to clear a state
    check_interval_s: float = Field(default=3600.0, gt=0)  # how often the service looks for days to check

    def resolved_store_dir(self, service: "ServiceSettings") -> Path:
        if self.store_dir is not None:
            return self.store_dir
        state = os.environ.get("STATE_DIRECTORY")
        return Path(state.split(":")[0]) if state else service.resolved_state_dir()


class MetricsSettings(_Strict):
    """Prometheus metrics over HTTP; off unless enabled. Bind to localhost unless you mean otherwise."""

    enabled: bool = False
    address: str = "127.0.0.1"
    port: int = Field(default=9464, ge=1, le=65535)


class ModelsSettings(_Strict):
    """Model lifecycle (README: "Model lifecycle"): the set every model activation is measured on."""

    # A folder holding annotations.json (COCO: 1 = face, 2 = license_plate) and the images it names, under
    # images/. ``veil models activate`` refuses a candidate whose mask recall on it is below the active one's.
    control_set: Path | None = None

    @field_validator("control_set")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(os.path.abspath(os.path.expanduser(value)))


_toml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar("veil_toml_path", default=None)

# Path-valued keys. In a configuration file a relative path is relative to the file's own folder (README
# "Configure"), never to the current directory, which is "/" under systemd and anything by hand.
_SECTION_PATHS = {"service": ("model_dir", "state_dir"), "drift": ("store_dir",), "models": ("control_set",)}
_FOLDER_PATHS = ("ingest", "output", "review", "failed", "originals", "spotcheck", "rework")


def _anchored(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value and not value.startswith("~") and not os.path.isabs(value):
        return str(base / value)
    return value


class _TomlSource(TomlConfigSettingsSource):
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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True, nested_model_default_partial_update=True
    )

    service: ServiceSettings = ServiceSettings()
    watch: WatchSettings = WatchSettings()
    drift: DriftSettings = DriftSettings()
    metrics: MetricsSettings = MetricsSettings()
    models: ModelsSettings = ModelsSettings()
    profiles: dict[str, Params] = Field(default_factory=lambda: {DEFAULT_PROFILE: Params()})
    folders: tuple[FolderSettings, ...] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _toml_path.get()
        if path is not None:
            sources.append(_TomlSource(settings_cls, toml_file=path))
        return tuple(sources)

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if DEFAULT_PROFILE not in self.profiles:
            self.profiles[DEFAULT_PROFILE] = Params()
        names = [f.name for f in self.folders]
        if len(set(names)) != len(names):
            raise ValueError(f"folder names must be unique, got {names}")
        ingests = [f.ingest for f in self.folders]
        for i, a in enumerate(ingests):
            for b in ingests[i + 1:]:
                if a == b or a in b.parents or b in a.parents:
                    raise ValueError(f"ingest folders overlap: {str(a)!r} and {str(b)!r}")
        for folder in self.folders:
            if folder.profile not in self.profiles:
                raise ValueError(f"folder {folder.name!r} uses profile {folder.profile!r}, which is not defined")
        return self

    def params_for(self, folder: FolderSettings) -> Params:
        return self.profiles[folder.profile]

    def folder(self, name: str) -> FolderSettings:
        for folder in self.folders:
            if folder.name == name:
                return folder
        raise KeyError(name)


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
    token = _toml_path.set(path)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, path, overrides)) from None
    except SettingsError as exc:  # a VEIL_ variable that is not valid JSON where a list or table is expected
        raise ConfigError(f"environment: {exc}") from None
    finally:
        _toml_path.reset(token)
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
