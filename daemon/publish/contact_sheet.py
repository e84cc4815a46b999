"""The reviewer's contact sheet: frames of the *masked* output, with detection outlines and scores.

It is drawn from the published result only, never from the input, so it cannot show unmasked pixels.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from pipeline.qc import QCReport
from pipeline.records import ObjectClass

_MAX_SIDE = 1600
_VIDEO_FRAMES = 6
_MIN_TILE_WIDTH = 320
_COLORS = {"face": (255, 64, 64), "license_plate": (64, 160, 255)}


Box = tuple[tuple[float, float, float, float], str, float]  # box, class label, score


def _companion_boxes(masked_output: Path, report: QCReport) -> dict[int, list[Box]]:
    """Per frame, the masked regions the video pipeline recorded in its boxes companion (if any)."""
    boxes: dict[int, list[Box]] = {}
    for name in report.companions:
        if not name.endswith(".jsonl.gz"):
            continue
        with gzip.open(masked_output.with_name(name), "rt") as lines:
            for line in lines:
                row = json.loads(line)
                if "f" not in row:
                    continue  # the header
                regions = []
                for x1, y1, x2, y2, raw_label, score, *_ in row.get("mask", []):
                    label = ObjectClass(int(raw_label)).label if isinstance(raw_label, int) else str(raw_label)
                    regions.append(((x1, y1, x2, y2), label, float(score) if score is not None else float("nan")))
                if regions:
                    boxes[int(row["f"])] = regions
    return boxes


def _pick(candidates: list[int], count: int) -> list[int]:
    if len(candidates) <= count:
        return candidates
    return [candidates[int(i * len(candidates) / count)] for i in range(count)]


def _video_tiles(path: Path, boxes: dict[int, list[Box]], count: int) -> list[Image.Image]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or 0
        wanted = set(_pick(sorted(boxes), count))  # frames with masked regions first
        if len(wanted) < count and total > 0:
            wanted |= set(_pick([i for i in range(total) if i not in wanted], count - len(wanted)))
        tiles: list[Image.Image] = []
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted or (not wanted and len(tiles) < count):
                tiles.append(_outline(frame.to_image(), boxes.get(index, [])))
            if (wanted and index >= max(wanted)) or len(tiles) >= count:
                break
        return tiles


def _outline(image: Image.Image, regions: Sequence[Box]) -> Image.Image:
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    for (x1, y1, x2, y2), label, score in regions:
        color = _COLORS.get(label, (255, 255, 0))
        draw.rectangle((x1, y1, x2, y2), outline=color, width=max(1, image.width // 400))
        draw.text((x1 + 2, max(0, y1 - 12)), f"{label} {score:.2f}", fill=color)
    return image


def write_contact_sheet(masked_output: Path, report: QCReport, dest: Path) -> None:
    media = report.output.media_type if report.output else report.input.media_type
    if media == "video":
        tiles = _video_tiles(masked_output, _companion_boxes(masked_output, report), _VIDEO_FRAMES)
    else:
        regions = [(d.box, d.object_class, d.score) for d in report.detections]
        with Image.open(masked_output) as image:
            image.load()
            tiles = [_outline(image, regions)]
    if not tiles:
        raise ValueError("no frame could be read from the masked output")
    if tiles[0].width < _MIN_TILE_WIDTH:  # tiny inputs: enlarge so outlines and labels stay legible
        factor = -(-_MIN_TILE_WIDTH // tiles[0].width)
        tiles = [t.resize((t.width * factor, t.height * factor), Image.Resampling.NEAREST) for t in tiles]
    columns = min(3, len(tiles))
    rows = -(-len(tiles) // columns)
    tile_w, tile_h = tiles[0].size
    sheet = Image.new("RGB", (tile_w * columns, tile_h * rows + 20), (24, 24, 24))
    for i, tile in enumerate(tiles):
        sheet.paste(tile.resize((tile_w, tile_h)), ((i % columns) * tile_w, (i // columns) * tile_h))
    reasons = ", ".join(report.review_reasons)[:200]
    ImageDraw.Draw(sheet).text((4, tile_h * rows + 4), f"review: {reasons}", fill=(255, 255, 255))
    sheet.thumbnail((_MAX_SIDE, _MAX_SIDE))
    sheet.save(dest, "JPEG", quality=85)
