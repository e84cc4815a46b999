"""A job's queue and time limits, from its media: photos and videos apart, so that a photo never waits
behind an hour-long video, and a video's limit scaled by its duration. The soft limit raises inside the job,
which fails the file closed (its partial output removed); the hard limit, later, kills the worker's child."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError
from pipeline.media.sniff import sniff

from daemon.config.dispatch import DispatchSettings
from daemon.dispatch.topology import Kind


@dataclass(frozen=True)
class JobLimits:
    kind: Kind
    soft_s: float
    hard_s: float


def video_seconds(path: Path) -> float | None:
    from pipeline.media.video.probe import probe_video

    try:
        return probe_video(path).duration_s
    except InputError:
        return None  # the worker will fail it with the reason; the limit is the longest allowed


def limits_for(path: Path, dispatch: DispatchSettings) -> JobLimits:
    """Unreadable or unknown files go to the photo queue: they fail fast, whatever they are."""
    try:
        kind: Kind = "video" if sniff(path) == "video" else "photo"
    except InputError:
        kind = "photo"
    if kind == "photo":
        soft = min(dispatch.photo_soft_limit_s, dispatch.max_job_s)
    else:
        seconds = video_seconds(path)
        soft = dispatch.max_job_s if seconds is None else dispatch.video_base_s + dispatch.video_factor * seconds
        soft = min(soft, dispatch.max_job_s)
    return JobLimits(kind, soft, soft + dispatch.hard_grace_s)
