"""What bench/video.py measures, and its printed tables: per clip, per stage, ratios, recall, quality."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

ALL = "all"  # the clip column of a row summed over a size's clips
FLOOR = "floor (transcode)"
# Stage columns, in the order a frame meets them; stages a run records beyond these follow, sorted.
STAGE_ORDER = ("decode", "motion", "detect", "plan", "features", "mask", "encode")


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float
    peak_rss_mb: float  # MiB

    def __add__(self, other: "Timing") -> "Timing":
        return Timing(self.wall + other.wall, self.cpu + other.cpu, max(self.peak_rss_mb, other.peak_rss_mb))


@dataclass(frozen=True)
class Quality:
    """The squared error summed over the pixel channels compared (outside the masks), and how many there were."""

    sse: float
    count: int

    @property
    def psnr(self) -> float:
        return math.inf if self.sse == 0 else 10 * math.log10(255.0**2 * self.count / self.sse)

    def __add__(self, other: "Quality") -> "Quality":
        return Quality(self.sse + other.sse, self.count + other.count)


@dataclass(frozen=True)
class Row:
    """One variant on one clip (or on all clips of a size, ``clip`` = ALL): ``run`` is the child (or the sum
    of the ``runs`` children) on the clip(s), ``single`` the same variant's child on the one-frame clip."""

    size: str
    clip: str
    variant: str
    frames: int
    run: Timing
    single: Timing
    runs: int = 1
    stages: dict[str, float] = field(default_factory=dict)  # busy seconds per stage (Veil and the floor)
    single_stages: dict[str, float] = field(default_factory=dict)  # the same in the one-frame run
    quality: Quality | str | None = None  # str: why it was not measured

    @property
    def wall_fps(self) -> float:
        return self.frames / self.run.wall

    @property
    def steady_fps(self) -> float:
        """Start-up (one frame's run) taken out of each child: (frames - 1) / (t(clip) - t(one frame)); NaN where
        the clip took no longer than its start-up (too few frames to tell it from the start-up's noise)."""
        spent = self.run.wall - self.runs * self.single.wall
        return (self.frames - self.runs) / spent if spent > 0 else math.nan

    @property
    def cpu_fps(self) -> float:
        """Frames per CPU second, start-up subtracted the same way: less moved by other load on the machine."""
        spent = self.run.cpu - self.runs * self.single.cpu
        return (self.frames - self.runs) / spent if spent > 0 else math.nan

    def stage_ms(self, stage: str) -> float | None:
        """Busy ms per frame of ``stage``, the one-frame run's taken out like start-up from ``steady_fps`` (the
        first inference's warm-up is in that run's "detect"); None where the run did not record the stage."""
        if stage not in self.stages:
            return None
        seconds = self.stages[stage] - self.runs * self.single_stages.get(stage, 0.0)
        return 1000 * seconds / max(self.frames - self.runs, 1)


def total(rows: list[Row]) -> Row:
    """The rows of one variant and size summed into one (clip ALL): frames, times, stages and squared error."""
    stages: dict[str, float] = {}
    for row in rows:
        for stage, seconds in row.stages.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    quality = rows[0].quality
    for row in rows[1:]:
        quality = quality + row.quality if isinstance(quality, Quality) and isinstance(row.quality, Quality) else None
    run = sum((r.run for r in rows[1:]), start=rows[0].run)
    return replace(rows[0], clip=ALL, frames=sum(r.frames for r in rows), run=run, runs=sum(r.runs for r in rows),
                   stages=stages, quality=quality)


@dataclass(frozen=True)
class Recall:
    """Per class: (masked box-frames, box-frames), None where not scored; the longest unmasked run of any
    object of the scored classes (frames)."""

    face: tuple[int, int] | None
    plate: tuple[int, int] | None
    longest_run: int


# ---- tables ------------------------------------------------------------------------------------------


def cell(value: float, width: int, digits: int = 2) -> str:
    """``value`` right-aligned in ``width``, "-" where it is not a number (see Row.steady_fps)."""
    return f"{value:{width}.{digits}f}" if math.isfinite(value) else f"{'-':>{width}}"


def psnr_text(quality: Quality | str | None) -> str:
    return f"{quality.psnr:8.2f}" if isinstance(quality, Quality) else f"{'-':>8}"


def print_header() -> None:
    print(f"{'size':6} {'clip':6} {'variant':30} {'frames':>6} {'wall s':>7} {'fps':>6} {'steady':>6} {'cpu s':>7} "
          f"{'fps/cpu':>7} {'RSS MiB':>7} {'start s':>7} {'PSNR out dB':>11}")


def print_row(row: Row) -> None:
    print(f"{row.size:6} {row.clip:6} {row.variant:30} {row.frames:6} {row.run.wall:7.1f} {row.wall_fps:6.2f} "
          f"{cell(row.steady_fps, 6)} {row.run.cpu:7.1f} {cell(row.cpu_fps, 7)} {row.run.peak_rss_mb:7.0f} "
          f"{row.single.wall:7.1f} {psnr_text(row.quality):>11}", flush=True)


def print_ratios(rows: list[Row]) -> None:
    """Per size and clip (and all clips): each Veil variant's steady fps over deface's and over the floor's."""
    print("\nratios of steady frames/s (of frames per CPU second), same run, per clip (>1: Veil is faster):")
    for size, clip in dict.fromkeys((r.size, r.clip) for r in rows):
        mine = [r for r in rows if (r.size, r.clip) == (size, clip)]
        deface = next((r for r in mine if r.variant.startswith("deface")), None)
        floor = next((r for r in mine if r.variant == FLOOR), None)
        for row in (r for r in mine if r.variant.startswith("veil")):
            print(f"  {size:6} {clip:6} {row.variant:30} {_ratio(row, deface)} x deface   {_ratio(row, floor)} x floor")


def _ratio(row: Row, base: Row | None) -> str:
    if base is None:
        return f"{'-':>6} {'':7}"
    return f"{cell(row.steady_fps / base.steady_fps, 6)} ({cell(row.cpu_fps / base.cpu_fps, 5)})"


def print_stages(rows: list[Row]) -> None:
    """Busy milliseconds per frame of each stage, for the rows that record stages (Veil and the floor)."""
    timed = [r for r in rows if r.stages]
    if not timed:
        return
    names = set().union(*(r.stages for r in timed))
    columns = [s for s in STAGE_ORDER if s in names] + sorted(names - set(STAGE_ORDER))
    print("\nper stage: busy ms per frame, the one-frame run's seconds taken out as for 'steady' (the wall ms per "
          "frame without start-up); stages overlap on threads, so they can add up to more than 'steady':")
    print(f"{'size':6} {'clip':6} {'variant':30} {'steady':>8}" + "".join(f" {c:>8}" for c in columns))
    for row in timed:
        cells = "".join(f" {ms:8.1f}" if (ms := row.stage_ms(c)) is not None else f" {'-':>8}" for c in columns)
        print(f"{row.size:6} {row.clip:6} {row.variant:30} {cell(1000 / row.steady_fps, 8, 1)}" + cells)


def share(found: tuple[int, int] | None) -> str:
    return f"{found[0] / found[1]:8.2%} {found[0]:5}/{found[1]:<5}" if found else f"{'-':>8} {'':11}"


def print_recall(recalls: dict[tuple[str, str, str], Recall], in_view: dict[tuple[str, str], str],
                 covered: float) -> None:
    """One line per (size, clip, variant), in the order of ``in_view``, which describes each (size, clip)'s
    ground truth; variants in measuring order."""
    print(f"\nmask recall per clip (box-frames >= {covered:.0%} masked; '-': the clip has no such object, or the "
          "variant does not mask the class):")
    print(f"{'size':6} {'clip':6} {'variant':30} {'face recall':>20} {'plate recall':>20} {'longest unmasked run':>21}"
          "  in view (ground truth)")
    order = {key: n for n, key in enumerate(in_view)}
    for (size, clip, variant), recall in sorted(recalls.items(), key=lambda item: order[item[0][:2]]):
        print(f"{size:6} {clip:6} {variant:30} {share(recall.face):>20} {share(recall.plate):>20} "
              f"{recall.longest_run:>14} frames  {in_view[size, clip]}")


def print_quality_note(rows: Iterable[Row]) -> None:
    """Why a PSNR is "-": the output differs from the input in frame count or size (deface's writer, imageio's
    ffmpeg, scales 1920x1080 to 1920x1088, a multiple of 16: its 1080p output is not compared)."""
    for row in rows:
        if isinstance(row.quality, str):
            print(f"PSNR not measured for {row.variant} on {row.size} {row.clip}: {row.quality}")
