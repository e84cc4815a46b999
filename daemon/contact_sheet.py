"""The reviewer's contact sheet: frames of the *masked* output, with detection outlines and scores.

It is drawn from the published result only, never from the input, so it cannot show unmasked pixels.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from pipeline.qc import QCReport

_MAX_SIDE = 1600
_VIDEO_FRAMES = 6
_COLORS = {"face": (255, 64, 64), "license_plate": (64, 160, 255)}


def _video_frames(path: Path, count: int) -> list[Image.Image]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or 0
        frames: list[Image.Image] = []
        if total <= 0:  # unknown length: take the first frames
            for frame in container.decode(stream):
                frames.append(frame.to_image())
                if len(frames) >= count:
                    break
            return frames
        wanted = {int(i * total / count) for i in range(count)}
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                frames.append(frame.to_image())
            if index >= max(wanted):
                break
        return frames


def _outline(image: Image.Image, report: QCReport) -> Image.Image:
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    for det in report.detections:
        if report.output and report.output.width and report.output.width != image.width:
            continue  # boxes are in output pixels; only draw on frames of that size
        color = _COLORS.get(det.object_class, (255, 255, 0))
        x1, y1, x2, y2 = det.box
        draw.rectangle((x1, y1, x2, y2), outline=color, width=max(1, image.width // 400))
        draw.text((x1 + 2, max(0, y1 - 12)), f"{det.object_class} {det.score:.2f}", fill=color)
    return image


def write_contact_sheet(masked_output: Path, report: QCReport, dest: Path) -> None:
    media = report.output.media_type if report.output else report.input.media_type
    if media == "video":
        tiles = [_outline(frame, report) for frame in _video_frames(masked_output, _VIDEO_FRAMES)]
    else:
        with Image.open(masked_output) as image:
            image.load()
            tiles = [_outline(image, report)]
    if not tiles:
        raise ValueError("no frame could be read from the masked output")
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
