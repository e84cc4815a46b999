"""Image benchmark: Veil against the anchor tool deface 1.5.0, on the same photos in the same run.

    .venv/bin/python bench/images.py [--quick]

1. Builds two photo sets from ../shared/eval (deterministic JPEG q95 + COCO JSON under bench/.work/sets):
   "1-2 MP" (annotated face and plate photos resampled to a long side of 1280-1600 px) and "12 MP" (a few of
   them resampled to 4000x3000 or 3000x4000). Ground-truth boxes are scaled with the pixels.
2. Times each tool's real command line on each set (wall and CPU time, model load included), and the same
   command on an empty folder (start-up alone), so a per-image figure without start-up can be given too.
3. Measures what each tool masked, per ground-truth box, two ways: exactly, from the tool's own definition of
   its masks (Veil's QC sidecar; deface writes none, so ``deface_regions.py`` re-runs deface's own detector
   and mask geometry in its venv), and estimated from input and output pixels alone, the same measure for
   both tools (``changed_pixels``). A box counts as masked when at least 90% of its pixels are.
4. Reports peak RSS of each tool's process (``os.wait4``).

It is a benchmark, not a test: it prints tables and ratios measured in this run and asserts nothing. Other
work on the machine shifts absolute numbers; ratios measured in one run are the figures to read.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anchor  # bench/ is a folder of scripts, not a package

REPO = Path(__file__).resolve().parents[1]
EVAL_ROOT = REPO / ".." / "shared" / "eval"
WORK = anchor.WORK
FACE, PLATE = 1, 2
JPEG_QUALITY = 95
DIFF_LEVEL = 12  # a pixel changed when its median-filtered max-channel difference exceeds this
COVERED = 0.9  # a ground-truth box is masked when at least this share of its pixels changed
TOUCHED = 0.5  # looser: at least half of the box changed (a detection whose mask misses the corners)

# (source folder, category that must be present in a chosen image, images in the full run, in --quick)
SOURCES = (
    ("rbnr_faces", FACE, 14, 2),
    ("dlib_faces_voc", FACE, 5, 1),
    ("cmu_mit_faces", FACE, 12, 1),
    ("openalpr_endtoend", PLATE, 13, 2),
)
MIN_SOURCE_SIDE = 300  # smaller originals would be blown up more than 5x
MP12_FACES, MP12_PLATES = (3, 1), (1, 0)  # 12 MP images from face / plate sources: (full run, --quick)


# ---------------------------------------------------------------------------------------------- photo sets


@dataclass(frozen=True)
class PhotoSet:
    name: str
    folder: Path  # holds images/ and annotations.json

    @property
    def images(self) -> Path:
        return self.folder / "images"

    @property
    def annotations(self) -> Path:
        return self.folder / "annotations.json"

    def coco(self) -> dict:
        return json.loads(self.annotations.read_text())


@dataclass
class _SetBuilder:
    """Writes resampled JPEGs and their scaled boxes into one COCO file."""

    folder: Path
    images: list = field(default_factory=list)
    annotations: list = field(default_factory=list)

    def add(self, source: Path, boxes: list[dict], name: str, size: tuple[int, int]) -> None:
        with Image.open(source) as original:
            picture = original.convert("RGB")  # grayscale sources too: both tools get the same 3-channel JPEG
        scale_x, scale_y = size[0] / picture.width, size[1] / picture.height
        if picture.size != size:
            picture = picture.resize(size, Image.Resampling.LANCZOS)
        picture.save(self.folder / "images" / name, quality=JPEG_QUALITY)  # no EXIF: boxes are raw pixels
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": name, "width": size[0], "height": size[1]})
        for box in boxes:
            x, y, w, h = box["bbox"]
            self.annotations.append({
                "id": len(self.annotations) + 1, "image_id": image_id, "category_id": box["category_id"],
                "bbox": [x * scale_x, y * scale_y, w * scale_x, h * scale_y], "area": w * h * scale_x * scale_y,
                "iscrowd": 0,
            })

    def finish(self, name: str) -> PhotoSet:
        categories = [{"id": FACE, "name": "face"}, {"id": PLATE, "name": "license_plate"}]
        coco = {"images": self.images, "annotations": self.annotations, "categories": categories}
        (self.folder / "annotations.json").write_text(json.dumps(coco, indent=1))
        return PhotoSet(name, self.folder)


def _evenly(items: Sequence, count: int) -> list:
    if count >= len(items):
        return list(items)
    if count == 1:
        return [items[len(items) // 2]]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def _size_1_2_mp(width: int, height: int) -> tuple[int, int]:
    """Unchanged when the long side is already 1280-1600 px, else resampled to a long side of 1440 px."""
    long_side = max(width, height)
    if 1280 <= long_side <= 1600:
        return width, height
    scale = 1440 / long_side
    return round(width * scale), round(height * scale)


def _candidates(eval_root: Path, source: str, category: int) -> tuple[list[tuple[dict, list[dict]]], Path]:
    """Images of a source that show at least one box of ``category``, sorted by file name."""
    coco = json.loads((eval_root / source / "annotations.json").read_text())
    boxes: dict[int, list[dict]] = {}
    for annotation in coco["annotations"]:
        boxes.setdefault(annotation["image_id"], []).append(annotation)
    chosen = [
        (image, boxes[image["id"]])
        for image in sorted(coco["images"], key=lambda i: i["file_name"])
        if max(image["width"], image["height"]) >= MIN_SOURCE_SIDE
        and any(b["category_id"] == category for b in boxes.get(image["id"], []))
    ]
    return chosen, eval_root / source / "images"


def build_sets(eval_root: Path, work: Path, quick: bool) -> list[PhotoSet]:
    """The "1-2 MP" and "12 MP" sets, rebuilt from scratch (same bytes every run)."""
    mid = _SetBuilder(_fresh(work / "sets" / "mp1-2"))
    large = _SetBuilder(_fresh(work / "sets" / "mp12"))
    large_picks: dict[int, list] = {FACE: [], PLATE: []}
    for source, category, full_count, quick_count in SOURCES:
        candidates, image_root = _candidates(eval_root, source, category)
        for image, boxes in _evenly(candidates, quick_count if quick else full_count):
            mid.add(image_root / image["file_name"], boxes, _bench_name(source, image),
                    _size_1_2_mp(image["width"], image["height"]))
        # 12 MP candidates: 4:3 either way round, so resampling to 4000x3000 does not distort them.
        four_three = [c for c in candidates if abs(_aspect(c[0]) - 4 / 3) < 0.04]
        large_picks[category].append([(source, image_root, *c) for c in _evenly(four_three, 3)])
    for category, (full_count, quick_count) in ((FACE, MP12_FACES), (PLATE, MP12_PLATES)):
        turns = itertools.zip_longest(*large_picks[category])  # one per source in turn
        interleaved = [pick for group in turns for pick in group if pick is not None]
        for source, image_root, image, boxes in interleaved[: quick_count if quick else full_count]:
            size = (4000, 3000) if image["width"] >= image["height"] else (3000, 4000)
            large.add(image_root / image["file_name"], boxes, _bench_name(source, image), size)
    return [mid.finish("1-2 MP"), large.finish("12 MP")]


def _aspect(image: dict) -> float:
    return max(image["width"], image["height"]) / min(image["width"], image["height"])


def _bench_name(source: str, image: dict) -> str:
    return str(Path(f"{source}__{image['file_name'].replace('/', '_')}").with_suffix(".jpg"))


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "images").mkdir(parents=True)
    return folder


# ---------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Timed:
    wall_s: float
    cpu_s: float  # user + system of the process and its children: less sensitive to other load than wall
    max_rss_mb: float


def run_timed(command: list[str], log: Path) -> Timed:
    """Run a command to completion; wall time, CPU time and peak RSS of that process alone (``os.wait4``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {process.returncode}; see {log}")
    return Timed(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


@dataclass(frozen=True)
class Tool:
    """One command under test: ``command(src, out)`` processes every image of folder ``src``."""

    label: str
    slug: str  # its folder under bench/.work/runs/<set>/
    classes: str  # what it masks: "faces" or "faces+plates"
    kind: str  # "veil" or "deface"
    argv: tuple[str, ...]
    python: str = ""  # deface: its venv's interpreter, to list the exact regions with deface's own code

    def prepare(self, images: Path, run_dir: Path) -> tuple[Path, Path]:
        """(input folder, output folder) for a run. deface writes beside its inputs: give it linked copies."""
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        if self.kind == "veil":
            return images, run_dir / "out"
        source = run_dir / "in"
        source.mkdir()
        for image in sorted(images.iterdir()):
            os.link(image, source / image.name)
        return source, source

    def command(self, src: Path, out: Path) -> list[str]:
        if self.kind == "veil":
            return [*self.argv, str(src), "-o", str(out)]
        return [*self.argv, str(src)]

    def output_for(self, out: Path, image_name: str) -> Path:
        if self.kind == "veil":
            return out / image_name
        return anchor.output_for(out / image_name)

    def footprints(self, images: Path, out: Path, run_dir: Path) -> "Footprints":
        """Where the exact masked regions of this run can be read (untimed, after the timed run)."""
        if self.kind == "veil":
            return Footprints(sidecars=out)
        masks = run_dir / "footprints"
        run_timed([self.python, str(Path(__file__).with_name("deface_regions.py")), str(images), str(masks)],
                  run_dir / "footprints.log")
        return Footprints(masks=masks)


@dataclass(frozen=True)
class Footprints:
    """The pixels a tool masked, as the tool itself defines them: Veil's QC sidecars (masked detections
    grown by the margin), or deface's own geometry re-run by ``deface_regions.py`` (PNG per image)."""

    sidecars: Path | None = None
    masks: Path | None = None

    def of(self, image_name: str, shape: tuple[int, int]) -> np.ndarray:
        if self.masks is not None:
            with Image.open(self.masks / f"{image_name}.png") as mask:
                return np.asarray(mask) > 0
        return _sidecar_coverage(self.sidecars / f"{image_name}.veil.json", shape)


def veil_tools() -> list[Tool]:
    veil = Path(sys.executable).with_name("veil")
    if not veil.exists():
        veil = Path(shutil.which("veil") or "veil")
    return [
        Tool("veil", "veil-all", "faces+plates", "veil", (str(veil), "process")),
        Tool("veil --classes face", "veil-faces", "faces", "veil", (str(veil), "process", "--classes", "face")),
    ]


def deface_tools(variants: Sequence[str]) -> list[Tool]:
    tools = []
    for variant in variants:
        deface = anchor.ensure_deface(variant)
        label, slug = ("deface", "deface") if variant == "plain" else ("deface (+onnxruntime)", "deface-ort")
        python = str(deface.venv / "bin" / "python")
        tools.append(Tool(label, slug, "faces", "deface", tuple(deface.command(Path("."))[:-1]), python))
        print(f"{label}: {deface.packages()}")
    return tools


# ---------------------------------------------------------------------------------------------- measuring


@dataclass
class MaskStats:
    """Totals over a set for one tool. Per ground-truth box, the share of its pixels masked: ``exact`` from
    the tool's own footprint, ``estimate`` from the pixel difference alone (the same measure for every tool)."""

    exact: dict = field(default_factory=lambda: {FACE: [], PLATE: []})
    estimate: dict = field(default_factory=lambda: {FACE: [], PLATE: []})
    pixels: int = 0
    outside_exact: int = 0  # footprint pixels outside every ground-truth box
    outside_estimate: int = 0
    raw_changed: int = 0  # pixels whose difference alone passed the level (no closing, no fill)
    stray: int = 0  # of those, outside the footprint: JPEG re-encoding noise, or a footprint that is wrong

    def recall(self, category: int, level: float = COVERED, estimate: bool = False) -> float:
        values = (self.estimate if estimate else self.exact)[category]
        return float(np.mean(np.asarray(values) >= level)) if values else float("nan")

    def mean_cover(self, category: int) -> float:
        return float(np.mean(self.exact[category])) if self.exact[category] else float("nan")


def changed_pixels(before: Path, after: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pixels a tool masked, judged from its input and output alone: (raw, filled).

    Raw: max-channel abs difference, 3x3 median (drops JPEG ringing), above ``DIFF_LEVEL``. Blurring leaves
    smooth skin almost as it was, so a masked face shows as a ring of changed edges around quiet patches: a
    closing (kernel 1% of the long side) and a hole fill turn that back into a region (filled). It is an
    estimate: it misses smooth patches at a mask's edge and fills gaps enclosed by neighbouring masks.
    """
    with Image.open(before) as a, Image.open(after) as b:
        first, second = np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))
    if first.shape != second.shape:
        raise RuntimeError(f"{after} is {second.shape[1]}x{second.shape[0]}, its input {first.shape[1]}x{first.shape[0]}")
    difference = np.abs(first.astype(np.int16) - second.astype(np.int16)).max(axis=2).astype(np.uint8)
    raw = (cv2.medianBlur(difference, 3) > DIFF_LEVEL).astype(np.uint8)
    side = max(3, (max(raw.shape) // 100) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    filled = ndimage.binary_fill_holes(cv2.morphologyEx(raw, cv2.MORPH_CLOSE, kernel).astype(bool))
    return raw.astype(bool), filled


def _pixel_box(bbox: Sequence[float], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    x, y, w, h = bbox
    height, width = shape
    return (max(0, math.floor(x)), max(0, math.floor(y)), min(width, math.ceil(x + w)), min(height, math.ceil(y + h)))


def _sidecar_coverage(sidecar: Path, shape: tuple[int, int]) -> np.ndarray:
    """The pixels Veil masked, from its QC sidecar: the masked detections, through Veil's own mask planning
    (``plan_regions``, ``coverage``) with the parameters recorded in that sidecar."""
    from pipeline.mask import coverage, plan_regions
    from pipeline.params import Params
    from pipeline.records import Detections, ObjectClass

    report = json.loads(sidecar.read_text())
    params = Params.model_validate(report["params"])
    masked = [d for d in report["detections"] if d["masked"]]
    detections = Detections(
        np.array([d["box"] for d in masked], dtype=np.float32).reshape(-1, 4),
        np.array([d["score"] for d in masked], dtype=np.float32),
        np.array([ObjectClass.from_label(d["class"]) for d in masked], dtype=np.int32),
    )
    return coverage(shape, plan_regions(detections, params, shape), params.mask)


def measure(tool: Tool, photos: PhotoSet, out: Path, footprints: Footprints) -> MaskStats:
    coco = photos.coco()
    stats = MaskStats()
    for image in coco["images"]:
        raw, filled = changed_pixels(photos.images / image["file_name"], tool.output_for(out, image["file_name"]))
        exact = footprints.of(image["file_name"], raw.shape)
        inside = np.zeros(raw.shape, dtype=bool)
        for annotation in (a for a in coco["annotations"] if a["image_id"] == image["id"]):
            x0, y0, x1, y1 = _pixel_box(annotation["bbox"], raw.shape)
            if x1 <= x0 or y1 <= y0:
                continue
            inside[y0:y1, x0:x1] = True
            stats.exact[annotation["category_id"]].append(float(exact[y0:y1, x0:x1].mean()))
            stats.estimate[annotation["category_id"]].append(float(filled[y0:y1, x0:x1].mean()))
        stats.pixels += raw.size
        stats.outside_exact += int((exact & ~inside).sum())
        stats.outside_estimate += int((filled & ~inside).sum())
        stats.raw_changed += int(raw.sum())
        stats.stray += int((raw & ~exact).sum())
    return stats


# ---------------------------------------------------------------------------------------------- reporting


@dataclass(frozen=True)
class Result:
    tool: Tool
    photos: PhotoSet
    images: int
    full: Timed
    startup: Timed
    masks: MaskStats

    @property
    def images_per_s(self) -> float:
        return self.images / self.full.wall_s

    @property
    def images_per_s_cpu(self) -> float:
        return self.images / self.full.cpu_s

    @property
    def per_image_s(self) -> float:
        """Wall seconds per image beyond start-up (full run minus the empty-folder run, over the images)."""
        return (self.full.wall_s - self.startup.wall_s) / self.images


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"


def print_tables(results: list[Result]) -> None:
    for photos in dict.fromkeys(r.photos for r in results):
        rows = [r for r in results if r.photos == photos]
        coco = photos.coco()
        faces = sum(a["category_id"] == FACE for a in coco["annotations"])
        plates = sum(a["category_id"] == PLATE for a in coco["annotations"])
        megapixels = np.mean([i["width"] * i["height"] / 1e6 for i in coco["images"]])
        print(f"\n== {photos.name}: {rows[0].images} images, mean {megapixels:.1f} MP, {faces} face boxes,"
              f" {plates} plate boxes ==")
        print(f"{'speed':24} {'masks':13} {'img/s wall':>10} {'img/s cpu':>10} {'start s':>8}"
              f" {'s/img -start':>12} {'peak RSS MB':>11}")
        for r in rows:
            print(f"{r.tool.label:24} {r.tool.classes:13} {r.images_per_s:10.2f} {r.images_per_s_cpu:10.2f}"
                  f" {r.startup.wall_s:8.2f} {r.per_image_s:12.2f} {r.full.max_rss_mb:11.0f}")
        _print_ratios(rows)
        print(f"{'masking':24} {'face >=90%':>10} {'face >=50%':>10} {'face cover':>10} {'plate >=90%':>11}"
              f" {'non-GT':>7} | {'est face >=90%':>14} {'est non-GT':>10} {'stray':>6}")
        for r in rows:
            m = r.masks
            print(f"{r.tool.label:24} {_pct(m.recall(FACE)):>10} {_pct(m.recall(FACE, TOUCHED)):>10}"
                  f" {_pct(m.mean_cover(FACE)):>10} {_pct(m.recall(PLATE)):>11} {_pct(m.outside_exact / m.pixels):>7}"
                  f" | {_pct(m.recall(FACE, estimate=True)):>14} {_pct(m.outside_estimate / m.pixels):>10}"
                  f" {_pct(m.stray / max(1, m.raw_changed)):>6}")


def _print_ratios(rows: list[Result]) -> None:
    veil = {r.tool.classes: r for r in rows if r.tool.kind == "veil"}
    for anchor_row in (r for r in rows if r.tool.kind == "deface"):
        for classes, mine in veil.items():
            print(f"  Veil ({classes}) vs {anchor_row.tool.label} (faces), >1 = Veil faster:"
                  f" img/s wall x{mine.images_per_s / anchor_row.images_per_s:.2f},"
                  f" cpu x{mine.images_per_s_cpu / anchor_row.images_per_s_cpu:.2f},"
                  f" per image without start-up x{anchor_row.per_image_s / mine.per_image_s:.2f}")


LEGEND = f"""
Speed: whole command (interpreter, imports, model load included); 'start s' = the same command on an empty
folder; 's/img -start' = (full - start) / images. 'img/s cpu' = images per CPU second of the tool's process
(user+sys), less sensitive to other load on the machine. Peak RSS of the tool's process (os.wait4).
Masking, exact (left of |): share of ground-truth boxes with >= 90% / >= 50% of their pixels inside the tool's
own masked region (Veil: its QC sidecar through its own mask planning; deface: its own code re-run, bench/deface_regions.py), mean share
masked, and 'non-GT' = share of all image area masked outside ground-truth boxes (unlabelled faces and plates
count there: an upper bound on needless masking).
Masking, estimated from pixels alone (right of |, the same measure for every tool): changed = 3x3-median
max-channel difference > {DIFF_LEVEL}, closed and hole-filled. 'stray' = share of changed pixels outside the
exact region (JPEG re-encoding noise; a large value would mean the exact region is wrong)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a handful of images (a few minutes)")
    parser.add_argument("--eval-root", type=Path, default=EVAL_ROOT)
    parser.add_argument("--deface", choices=["plain", "ort", "both"], default="both",
                        help="which deface install to measure (plain: pip install deface only)")
    args = parser.parse_args(argv)
    if not (args.eval_root / "rbnr_faces" / "annotations.json").exists():
        print(f"bench/images.py: evaluation data not found at {args.eval_root.resolve()}; nothing to measure.")
        return 0

    variants = ["plain", "ort"] if args.deface == "both" else [args.deface]
    tools = [*veil_tools(), *deface_tools(variants)]
    sets = build_sets(args.eval_root, WORK, args.quick)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start;"
          f" Veil with its default (all-core) threads, deface with its defaults")
    empty = WORK / "empty"
    shutil.rmtree(empty, ignore_errors=True)
    empty.mkdir(parents=True)

    results = []
    for photos in sets:
        count = len(photos.coco()["images"])
        for tool in tools:
            run_dir = WORK / "runs" / photos.folder.name / tool.slug
            src, out = tool.prepare(photos.images, run_dir)
            startup = run_timed(tool.command(empty, run_dir / "startup-out"), run_dir / "startup.log")
            print(f"{photos.name:6} {tool.label:24} start-up {startup.wall_s:5.1f} s ...", end=" ", flush=True)
            full = run_timed(tool.command(src, out), run_dir / "run.log")
            print(f"{count} images {full.wall_s:6.1f} s wall, {full.cpu_s:6.1f} s cpu", flush=True)
            footprints = tool.footprints(photos.images, out, run_dir)
            results.append(Result(tool, photos, count, full, startup, measure(tool, photos, out, footprints)))

    print(LEGEND)
    print_tables(results)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
