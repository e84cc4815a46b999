"""`veil serve` end to end on videos dropped at once: layouts of the worker pool (processes x jobs each,
``[service] workers`` and ``jobs_per_worker``) against each other, rounds alternating.

    .venv/bin/python bench/gpu.py --render /tmp/clips --frames 60       # clips with faces and plates (or your own)
    .venv/bin/python bench/worker_jobs.py --clips /tmp/clips [--layouts 2x1,1x2] [--rounds 3] [--device cpu]

Per layout and round: a fresh `veil serve` at the shipped profile on temporary folders, its workers on
``--device``; once it is ready, every clip (``--copies`` times) is moved into its ingest at once, and the
clock runs until the last sidecar is published. Prints, per round, frames/s summed over the files (all their
frames over the wall time) and the highest resident memory of the service and its workers together
(sampled), then the medians per layout and their ratio to the first layout's. Every file
must end "done" or "review": a failed one stops the run. On a GPU host, ``--device cuda`` measures what
several videos in one worker (their network calls batched together) give against a process each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.serve_harness import SHIPPED_PROFILE, Daemon, wait_for


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def resident_mib(pids: list[int]) -> float:
    """The resident memory of these processes together, now (a process gone counts nothing)."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def sidecars(root: Path) -> list[Path]:
    return [p for folder in ("out", "review", "failed") for p in (root / folder).rglob("*.veil.json")]


def one_round(clips: list[Path], copies: int, workers: int, jobs: int, device: str) -> tuple[float, float]:
    """Seconds from the drop to the last sidecar, for every clip ``copies`` times, and the most MiB resident
    in the service and its workers together meanwhile."""
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as scratch:
        root = Path(scratch)
        staged = root / "staged"
        staged.mkdir()
        names = []
        for copy in range(copies):
            for clip in clips:
                name = f"{copy}-{clip.name}"
                shutil.copyfile(clip, staged / name)
                names.append(name)
        # threads = 0: the cores shared among the CPU workers, as the service's default does.
        daemon = Daemon(root, workers=workers, jobs_per_worker=jobs, threads=0, device=device, settle_s=0.2,
                        profile=SHIPPED_PROFILE, log_file_names=False)
        daemon.ingest.mkdir()
        daemon.start().wait_ready(600)
        try:
            assert daemon.proc is not None
            status = daemon.status() or {}
            pids = [daemon.proc.pid, *(worker["pid"] for worker in status["workers"] if worker["pid"])]
            peak = 0.0

            def published_all() -> bool:
                nonlocal peak
                assert daemon.proc is not None and daemon.proc.poll() is None, f"veil serve exited: {daemon.log_path}"
                peak = max(peak, resident_mib(pids))
                return len(sidecars(root)) >= len(names)

            started = time.perf_counter()
            for name in names:  # a rename: each file arrives whole
                (staged / name).rename(daemon.ingest / name)
            wait_for(published_all, 3600, "every file")
            wall = time.perf_counter() - started
        finally:
            daemon.stop()
        failed = [p.name for p in sidecars(root) if p.parent.name == "failed"]
        if failed:
            raise SystemExit(f"failed: {failed}; see the log of a rerun")
        return wall, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, required=True, help="a folder of *.mp4")
    parser.add_argument("--layouts", default="2x1,1x2", help="workers x jobs_per_worker, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=1, help="each clip dropped this many times")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    clips = sorted(args.clips.glob("*.mp4"))
    if not clips:
        parser.error(f"no *.mp4 in {args.clips}")
    frames = args.copies * sum(frame_count(clip) for clip in clips)
    layouts = [tuple(int(n) for n in layout.split("x")) for layout in args.layouts.split(",")]
    print(f"{len(clips) * args.copies} files, {frames} frames, device {args.device}, {os.cpu_count()} cores")
    rates: dict[tuple[int, ...], list[float]] = {layout: [] for layout in layouts}
    peaks: dict[tuple[int, ...], list[float]] = {layout: [] for layout in layouts}
    for round_ in range(args.rounds):
        for layout in layouts if round_ % 2 == 0 else reversed(layouts):
            wall, peak = one_round(clips, args.copies, *layout, args.device)
            rates[layout].append(frames / wall)
            peaks[layout].append(peak)
            print(f"round {round_ + 1}, {layout[0]} workers x {layout[1]} jobs: {wall:.1f} s, "
                  f"{frames / wall:.2f} frames/s summed, {peak:.0f} MiB resident at most", flush=True)
    first = statistics.median(rates[layouts[0]])
    for layout, values in rates.items():
        median = statistics.median(values)
        print(f"{layout[0]} workers x {layout[1]} jobs: median {median:.2f} frames/s summed, "
              f"{median / first:.2f}x {layouts[0][0]}x{layouts[0][1]}; "
              f"median of the peaks {statistics.median(peaks[layout]):.0f} MiB resident")
    return 0


if __name__ == "__main__":
    sys.exit(main())
