"""Pictures for the review page, always from the MASKED result (review/, spotcheck/), never the original.

Images are re-encoded as JPEG (browsers cannot show every format Veil writes, TIFF say). A video frame N is
decoded from the masked output with PyAV; a reader stays open per video so scrubbing forward is cheap, and
recent frames are kept encoded. Track boxes come from the video's boxes companion.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps

from pipeline.media.video import DecodedFrame, VideoReader
from pipeline.video.qc import BOXES_SUFFIX, read_boxes

from daemon.review.rework import Item

_JPEG_QUALITY = 88
_CACHED_FRAMES = 64


def jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=_JPEG_QUALITY)
    return out.getvalue()


def image_jpeg(item: Item) -> bytes:
    with Image.open(item.output_path) as opened:
        picture = ImageOps.exif_transpose(opened)  # outputs carry no orientation, but a spot check might
        return jpeg(np.asarray(picture.convert("RGB")))


class _Cursor:
    """An open reader positioned after the last frame it gave."""

    def __init__(self, path: Path) -> None:
        self.reader = VideoReader(path)
        self.frames: Iterator[DecodedFrame] = self.reader.frames()
        self.next_index = 0

    def seek(self, index: int) -> DecodedFrame | None:
        for frame in self.frames:
            self.next_index = frame.index + 1
            if frame.index == index:
                return frame
        return None


class FrameSource:
    """JPEG frames of one masked video."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cursor: _Cursor | None = None
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def frame(self, index: int) -> bytes | None:
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
            if self._cursor is None or index < self._cursor.next_index:
                self.close()
                self._cursor = _Cursor(self.path)  # backwards: decode again from the start
            decoded = self._cursor.seek(index)
            if decoded is None:
                return None
            data = self._cache[index] = jpeg(decoded.rgb)
            while len(self._cache) > _CACHED_FRAMES:
                self._cache.popitem(last=False)
            return data

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.reader.close()
            self._cursor = None


def track_boxes(item: Item, first: int, count: int) -> list[dict]:
    """Frames ``first`` .. ``first + count - 1`` of the boxes companion: the track boxes and masked regions
    (pixels of the output) per frame."""
    companions = [n for n in item.report.companions if n.endswith(BOXES_SUFFIX)]
    if not companions:
        return []
    frames = []
    for record in read_boxes(item.output_path.with_name(companions[0])):
        index = record.get("f")
        if index is None or index < first:
            continue
        if index >= first + count:
            break
        frames.append({"f": index, "trk": record.get("trk", []), "mask": record.get("mask", [])})
    return frames
