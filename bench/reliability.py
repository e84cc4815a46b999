"""Reliability benchmark: the real `veil serve` under hostile input, a kill -9 soak and a burst load.

    .venv/bin/python bench/reliability.py            # 2,000 images + 20 clips, 30 kill cycles
    .venv/bin/python bench/reliability.py --quick    # 200 images + 4 clips, 6 kill cycles

Three scenarios, each on fresh folders under bench/.work/reliability/ (removed afterwards unless --keep):

- hostile: the batch of broken, odd and special files from tests/integration/hostile_files.py.
- soak: files dropped in rounds; each round starts the service and kills it with SIGKILL at a random point
  (some rounds kill a worker first); a last start finishes the work.
- load: N small images (some real photos from ../shared/eval when present) plus clips dropped at once into
  a running service; peak RSS of the service and its workers sampled from /proc, throughput, and queue
  latency (drop to sidecar) per file. Baseline in the same run: `veil process` on the same files.

Every dropped file must come out exactly once (output, review or failed). A publication counts as unmasked
when a file in output/review has no sidecar or comes with a "failed" sidecar, or when its sidecar lists
masked regions and the file is byte-identical to its input or one of those regions is unchanged from it. It prints a table and asserts
nothing; the exit status is 1 when a file was lost, duplicated or published unmasked.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.qc import SIDECAR_SUFFIX, QCReport

from tests.integration.hostile_files import hostile_batch
from tests.integration.serve_harness import FAST_PROFILE, Daemon, files, write_image, write_video

WORK = REPO / "bench" / ".work" / "reliability"
EVAL = REPO.parent / "shared" / "eval"


@dataclass
class Row:
    scenario: str
    cases: int
    faults: int = 0
    lost: int = 0
    duplicated: int = 0
    unmasked: int = 0
    leftovers: int = 0  # Veil's temporary files left in a destination folder (partial copies, never inputs)
    notes: list[str] = field(default_factory=list)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait(condition, deadline_s: float, what: str):
    deadline = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {deadline_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def published_count(root: Path) -> int:
    return sum(1 for f in ("out", "review", "failed") for n in files(root / f) if n.endswith(SIDECAR_SUFFIX))


def _region_unchanged(original: Path, output: Path, boxes: list[tuple[float, float, float, float]]) -> int:
    try:
        before = np.asarray(Image.open(original).convert("RGB"), dtype=np.float32)
        after = np.asarray(Image.open(output).convert("RGB"), dtype=np.float32)
    except (OSError, ValueError):
        return 0  # not a decodable still image (a video): covered by the other checks
    if before.shape != after.shape:
        return 0
    unchanged = 0
    for x1, y1, x2, y2 in boxes:
        xs, ys = slice(max(0, int(x1)), int(np.ceil(x2))), slice(max(0, int(y1)), int(np.ceil(y2)))
        a, b = before[ys, xs], after[ys, xs]
        if a.size and min(a.shape[:2]) >= 4 and np.abs(a - b).mean() < 0.5:
            unchanged += 1
    return unchanged


def account(row: Row, root: Path, inputs: dict[str, Path]) -> dict[str, tuple[str, QCReport]]:
    """Fill lost, duplicated and unmasked from the folders; ``inputs`` maps each name to a pristine copy."""
    found: dict[str, list[tuple[str, QCReport]]] = {}
    referenced: set[str] = set()
    for folder in ("out", "review", "failed"):
        for name in files(root / folder):
            if not name.endswith(SIDECAR_SUFFIX):
                continue
            report = QCReport.from_json((root / folder / name).read_bytes())
            found.setdefault(report.input.name, []).append((folder, report))
            main = name[: -len(SIDECAR_SUFFIX)]
            referenced.update({f"{folder}/{name}", f"{folder}/{main}"})
            referenced.update(f"{folder}/{str(Path(main).with_name(c))}" for c in report.companions)
            if folder == "failed":
                continue
            output = root / folder / main
            if report.disposition == "failed" or not output.is_file():
                row.unmasked += 1
                row.notes.append(f"{folder}/{main}: {report.disposition} without its output")
                continue
            pristine = inputs.get(report.input.name)
            masked = [d.box for d in report.detections if d.masked]
            # Identical bytes are fine with nothing to mask (a lossless PNG re-encodes to the same file).
            if pristine is not None and masked and sha256(output) == sha256(pristine):
                row.unmasked += 1
                row.notes.append(f"{folder}/{main}: identical to its input")
            if pristine is not None and masked:
                unchanged = _region_unchanged(pristine, output, masked)
                if unchanged:
                    row.unmasked += 1
                    row.notes.append(f"{folder}/{main}: {unchanged} masked region(s) unchanged")
    for folder in ("out", "review", "failed", "originals"):
        for name in files(root / folder):
            if name.endswith(".veil-tmp"):
                row.leftovers += 1
                row.notes.append(f"{folder}/{name}: temporary file left behind")
            elif folder in ("out", "review") and f"{folder}/{name}" not in referenced:
                row.unmasked += 1
                row.notes.append(f"{folder}/{name}: published without a sidecar")
    for name in inputs:
        copies = found.get(name, [])
        if not copies:
            row.lost += 1
            row.notes.append(f"lost: {name!r}")
        elif len(copies) > 1:
            row.duplicated += 1
            row.notes.append(f"published {len(copies)} times: {name!r}")
    return {name: copies[0] for name, copies in found.items() if copies}


def _pristine(staging: Path, keep: Path) -> dict[str, Path]:
    """Copy every file under ``staging`` to ``keep`` (what the inputs were), keyed by relative name."""
    inputs = {}
    for rel in files(staging):
        target = keep / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staging / rel, target)
        inputs[rel] = target
    return inputs


def _drop(staging: Path, ingest: Path) -> None:
    """Everything at once: one rename per top-level entry (a folder moves with its tree)."""
    ingest.mkdir(parents=True, exist_ok=True)
    for entry in sorted(staging.iterdir()):
        os.rename(entry, ingest / entry.name)


def _stop(daemon: Daemon) -> None:
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.stop(deadline_s=120)


def _kill_all(daemon: Daemon) -> None:
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.kill()


# -- hostile -------------------------------------------------------------------------------------------------

def scenario_hostile(root: Path) -> Row:
    staging = root / "staging"
    expect = hostile_batch(staging)
    inputs = _pristine(staging, root / "pristine")
    daemon = Daemon(root, workers=2)
    specials = {}
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"outside the share")
    daemon.ingest.mkdir(parents=True)
    for name, make in (("passwd-link.jpg", lambda p: os.symlink("/etc/passwd", p)),
                       ("outside-dir", lambda p: os.symlink(outside, p)),
                       ("pipe.jpg", os.mkfifo),
                       ("socket.jpg", lambda p: os.mknod(p, stat.S_IFSOCK | 0o600)),
                       ("zero-device.mp4", lambda p: os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 5)))):
        try:
            make(daemon.ingest / name)
            specials[name] = os.lstat(daemon.ingest / name).st_mode
        except PermissionError:
            pass
    row = Row("hostile inputs", cases=len(expect) + len(specials))
    try:
        daemon.start().wait_ready()
        _drop(staging, daemon.ingest)
        wait(lambda: daemon.finished() >= len(expect), 600, "the hostile batch")
        if daemon.proc.poll() is not None:
            row.notes.append(f"the service exited with {daemon.proc.returncode}")
    finally:
        _stop(daemon)
    found = account(row, root, inputs)
    wrong = [n for n, (allowed, _) in expect.items() if n in found and found[n][1].disposition not in allowed]
    row.notes += [f"unexpected outcome: {n!r} {found[n][1].disposition}" for n in wrong]
    for name, mode in specials.items():
        if os.lstat(daemon.ingest / name).st_mode != mode:
            row.lost += 1
            row.notes.append(f"special file {name} was moved or changed")
    if (outside / "secret.txt").read_bytes() != b"outside the share" or len(list(outside.iterdir())) != 1:
        row.notes.append("a file outside the share was touched")
        row.lost += 1
    return row


# -- soak ----------------------------------------------------------------------------------------------------

def _worker_pids(daemon: Daemon) -> list[int]:
    return [w["pid"] for w in (daemon.service.status() or {}).get("workers", []) if w.get("pid")]


def scenario_soak(root: Path, cycles: int, seed: int) -> Row:
    rng = random.Random(seed)
    staging, keep = root / "staging", root / "pristine"
    inputs: dict[str, Path] = {}
    row = Row(f"kill -9 soak ({cycles} cycles)", cases=0)
    daemon = None
    for cycle in range(cycles):
        for i in range(8):
            write_image(staging / f"c{cycle:03d}" / f"img{i}.jpg", cycle * 100 + i)
        if cycle % 5 == 0:
            write_video(staging / f"clip{cycle:03d}.mp4", seconds=1.0, seed=cycle)
        inputs.update(_pristine(staging, keep))
        daemon = Daemon(root, workers=2)
        _drop(staging, daemon.ingest)
        daemon.start()
        try:
            daemon.wait_ready()
            time.sleep(rng.uniform(0.0, 2.5))  # the kill point: a random moment in the service's work
            workers = _worker_pids(daemon)
            if workers and rng.random() < 0.3:
                os.kill(rng.choice(workers), signal.SIGKILL)
                row.faults += 1
                time.sleep(rng.uniform(0.0, 1.0))
        finally:
            _kill_all(daemon)
        row.faults += 1
    row.cases = len(inputs)
    final = Daemon(root, workers=2)
    started = time.monotonic()
    try:
        final.start().wait_ready()
        processing = final.ingest / ".veil" / "processing" / final.instance
        wait(lambda: published_count(root) >= len(inputs) and not files(final.ingest)
             and not (processing.exists() and any(processing.iterdir())), 1800, "the soak to finish")
    except TimeoutError as exc:
        row.notes.append(str(exc))
    finally:
        _stop(final)
    row.notes.append(f"finishing after the last kill took {time.monotonic() - started:.0f} s")
    account(row, root, inputs)
    return row


# -- load ----------------------------------------------------------------------------------------------------

def _eval_photos(limit: int) -> list[Path]:
    photos = []
    for folder in ("rbnr_faces", "dlib_faces_voc", "cmu_mit_faces"):
        images = EVAL / folder / "images"
        if images.is_dir():
            photos += sorted(p for p in images.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return photos[:limit]


def _write_photo(src: Path, dst: Path, long_side: int = 320) -> None:
    image = Image.open(src).convert("RGB")
    image.thumbnail((long_side, long_side))
    dst.parent.mkdir(parents=True, exist_ok=True)
    image.save(dst, quality=90)


def _vm(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def scenario_load(root: Path, images: int, clips: int, workers: int) -> tuple[Row, list[str]]:
    staging = root / "staging"
    photos = _eval_photos(min(100, images // 20))
    for i in range(images):
        target = staging / f"batch{i // 250:02d}" / f"img{i:04d}.jpg"
        if i % 20 == 0 and photos:
            _write_photo(photos[(i // 20) % len(photos)], target)  # real faces, so masks are checked too
        else:
            write_image(target, i)
    for i in range(clips):
        write_video(staging / f"clips/clip{i:02d}.mp4", seconds=1.0, seed=i)
    inputs = _pristine(staging, root / "pristine")
    row = Row(f"load ({images} images + {clips} clips)", cases=len(inputs))
    lines: list[str] = []

    # Baseline in this run: the batch command on the same files, same profile and device.
    baseline_out = root / "baseline"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "daemon.cli", "process", str(staging), "-o", str(baseline_out),
                    "--classes", "face", "--threads", "1"], cwd=REPO, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    baseline_s = time.monotonic() - started

    daemon = Daemon(root, workers=workers)
    peak = {"service": 0, "worker": 0}
    most_claimed = 0
    try:
        daemon.start().wait_ready()
        dropped_at = time.time()
        drop_started = time.monotonic()
        _drop(staging, daemon.ingest)

        def done() -> bool:
            nonlocal most_claimed
            status = daemon.service.status() or {}
            most_claimed = max(most_claimed, status.get("queue", {}).get("claimed", 0))
            peak["service"] = max(peak["service"], _vm(daemon.proc.pid, "VmHWM"))
            for pid in _worker_pids(daemon):
                peak["worker"] = max(peak["worker"], _vm(pid, "VmHWM"))
            return daemon.finished() >= len(inputs) or daemon.proc.poll() is not None

        wait(done, 7200, "the load")
        elapsed = time.monotonic() - drop_started
    finally:
        _stop(daemon)
    found = account(row, root, inputs)
    latencies = []
    for name, (folder, report) in found.items():
        main = report.output.name if report.output is not None and folder != "failed" else name
        sidecar = root / folder / (main + SIDECAR_SUFFIX)
        if sidecar.exists():
            latencies.append(sidecar.stat().st_mtime - dropped_at)
    lat = np.array(sorted(latencies)) if latencies else np.zeros(1)
    daemon_rate = len(inputs) / elapsed
    baseline_rate = len(inputs) / baseline_s
    outcomes = {d: sum(1 for _, r in found.values() if r.disposition == d) for d in ("done", "review", "failed")}
    lines += [
        f"  outcomes: {outcomes}",
        f"  throughput: veil serve ({workers} workers) {daemon_rate:.1f} files/s over {elapsed:.0f} s; "
        f"baseline `veil process` (1 process) {baseline_rate:.1f} files/s over {baseline_s:.0f} s "
        f"(model load included); ratio serve/process {daemon_rate / baseline_rate:.2f}",
        f"  queue latency (drop to sidecar): p50 {np.percentile(lat, 50):.1f} s, p95 {np.percentile(lat, 95):.1f} s, "
        f"max {lat.max():.1f} s",
        f"  peak RSS (VmHWM): service {peak['service'] / 1024:.0f} MiB, largest worker {peak['worker'] / 1024:.0f} MiB; "
        f"jobs claimed ahead of the workers at most {most_claimed} (the rest waited in ingest)",
    ]
    return row, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images + 4 clips, 6 kill cycles")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--clips", type=int, default=None)
    parser.add_argument("--cycles", type=int, default=None, help="kill -9 cycles in the soak")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=["hostile", "soak", "load"], action="append")
    parser.add_argument("--keep", action="store_true", help="keep bench/.work/reliability for inspection")
    args = parser.parse_args()
    images = args.images or (200 if args.quick else 2000)
    clips = args.clips if args.clips is not None else (4 if args.quick else 20)
    cycles = args.cycles or (6 if args.quick else 30)
    only = set(args.only or ["hostile", "soak", "load"])

    shutil.rmtree(WORK, ignore_errors=True)
    rows: list[Row] = []
    details: list[str] = []
    print(f"profile: faces only ({FAST_PROFILE.strip().splitlines()[-1]}), CPU, threads 1 per worker; "
          f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    if "hostile" in only:
        rows.append(scenario_hostile(WORK / "hostile"))
        print(f"hostile done: {rows[-1]}", flush=True)
    if "soak" in only:
        rows.append(scenario_soak(WORK / "soak", cycles, args.seed))
        print(f"soak done: {rows[-1].scenario}", flush=True)
    if "load" in only:
        row, lines = scenario_load(WORK / "load", images, clips, args.workers)
        rows.append(row)
        details += lines

    print()
    header = ("scenario", "cases tried", "faults injected", "files lost", "duplicated", "unmasked publications",
              "temp files left")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print(f"| {row.scenario} | {row.cases} | {row.faults} | {row.lost} | {row.duplicated} | {row.unmasked} | "
              f"{row.leftovers} |")
    total = Row("total", sum(r.cases for r in rows), sum(r.faults for r in rows), sum(r.lost for r in rows),
                sum(r.duplicated for r in rows), sum(r.unmasked for r in rows), sum(r.leftovers for r in rows))
    print(f"| **{total.scenario}** | {total.cases} | {total.faults} | {total.lost} | {total.duplicated} | "
          f"{total.unmasked} | {total.leftovers} |")
    print()
    for line in details:
        print(line)
    for row in rows:
        for note in row.notes[:20]:
            print(f"  [{row.scenario}] {note}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    return 1 if total.lost or total.duplicated or total.unmasked or total.leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
