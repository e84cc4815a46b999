"""The settings models: every key of the configuration, its type, default and checks.

``config/veil.toml`` documents every key; ``daemon.config.loading`` reads the file and the environment into
``Settings``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pipeline.detect.runtime import RuntimeParams
from pipeline.edits import AddRegion
from pipeline.params import Params

from daemon.config.dispatch import DispatchSettings
from daemon.config.sources import ENV_PREFIX, TomlSource, toml_path

DEFAULT_PROFILE = "default"

# Names that are never inputs: partial downloads, editor and OS droppings. Matched against every path
# component, so a whole ``@eaDir`` tree is skipped. Dot-names cover rsync's ``.name.XXXXXX`` temporaries.
DEFAULT_IGNORE = (
    ".*", "*.part", "*.partial", "*.tmp", "*.temp", "*.crdownload", "*.download", "*.!qB", "*.swp",
    "~$*", "~*.tmp", "Thumbs.db", "desktop.ini", "@eaDir", "#recycle", "$RECYCLE.BIN", "lost+found",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneSettings(_Strict):
    """A camera zone (docs/zones.md): a polygon in relative coordinates (x / width, y / height, each
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
    rework: Path | None = None  # rework documents (docs/review.md); default: sibling "rework"
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
    jobs_per_worker: int = Field(default=1, ge=1, le=16)  # jobs at once in each worker, sharing its models
    devices: tuple[str, ...] = ("cpu",)  # assigned to workers in turn: cpu, cuda, cuda:K
    threads: int = Field(default=0, ge=0)  # onnxruntime intra-op threads per worker; 0 = the cores shared among CPU workers
    precision: Literal["fp32", "fp16"] = "fp32"  # onnxruntime models in half precision (see RuntimeParams)
    spin_wait: bool = False  # onnxruntime's threads spin while idle: for spare cores only (see RuntimeParams)
    max_batch: int = Field(default=RuntimeParams().max_batch, ge=1)  # images per network call (see RuntimeParams)
    classes_side_by_side: bool | None = None  # each class's detector on its own thread; None: on a GPU only
    model_dir: Path | None = None  # None: the environment's share/veil/models
    job_timeout_s: float = Field(default=3600.0, gt=0)  # a job running longer is a hang: kill, retry
    heartbeat_timeout_s: float = Field(default=60.0, gt=0)  # a silent worker is hung: kill, retry
    max_attempts: int = Field(default=3, ge=1)  # tries per file before it is failed with the reason
    worker_max_jobs: int = Field(default=0, ge=0)  # replace a worker after this many jobs; 0 = never
    worker_max_rss_mb: int = Field(default=0, ge=0)  # replace a worker using more memory after a job; 0 = never
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
    """Drift monitoring and spot checks (docs/drift.md)."""

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
    """Model lifecycle (docs/models.md): the set every model activation is measured on."""

    # A folder holding annotations.json (COCO: 1 = face, 2 = license_plate) and the images it names, under
    # images/. ``veil models activate`` refuses a candidate whose mask recall on it is below the active one's.
    control_set: Path | None = None

    @field_validator("control_set")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(os.path.abspath(os.path.expanduser(value)))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True, nested_model_default_partial_update=True
    )

    service: ServiceSettings = ServiceSettings()
    watch: WatchSettings = WatchSettings()
    drift: DriftSettings = DriftSettings()
    metrics: MetricsSettings = MetricsSettings()
    models: ModelsSettings = ModelsSettings()
    dispatch: DispatchSettings = DispatchSettings()
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
        path = toml_path.get()
        if path is not None:
            sources.append(TomlSource(settings_cls, toml_file=path))
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
