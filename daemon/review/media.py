"""Pictures for the review page, always from the MASKED result (review/, spotcheck/), never the original.

Images are re-encoded as JPEG (browsers cannot show every format Veil writes: TIFF, HEIC say). A video frame N is
decoded from the masked output with PyAV; a reader stays open per video so scrubbing forward is cheap, and
recent frames are kept encoded. Track boxes come from the video's boxes companion. Every file is opened
without following links (rework/confined.py); libraries that want a path get ``/proc/self/fd/N`` of the
descriptor so opened (Linux). Regions a profile left unmasked are masked before encoding (unmasked.py).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Generator, Iterator

import numpy as np
from PIL import Image, ImageOps

import pipeline.media.image  # noqa: F401 - registers the HEIC/HEIF reader with Pillow: a result may be one
from pipeline.media.video import DecodedFrame, VideoReader
from pipeline.video.qc import BOXES_SUFFIX

from daemon.review.rework import Item
from daemon.review.rework.confined import open_confined
from daemon.review.unmasked import Unmasked, photo_unmasked, video_unmasked

Cover = Callable[[np.ndarray, int], np.ndarray]  # (rgb, frame index) -> rgb as the page may see it

_JPEG_QUALITY = 88
_CACHED_FRAMES = 64


def jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=_JPEG_QUALITY)
    return out.getvalue()


@contextlib.contextmanager
def confined_path(root: Path, path: Path) -> Iterator[Path]:
    """A path that opens the very file ``open_confined`` opened: for libraries that take a path. A library
    that opened it keeps its own descriptor; this one closes on leaving."""
    fd = open_confined(root, path)
    try:
        yield Path(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def image_jpeg(item: Item, unmasked: Unmasked | None = None) -> bytes:
    """The masked result as JPEG, with regions the profile left unmasked masked here too."""
    with os.fdopen(open_confined(item.root, item.output_path), "rb") as handle, Image.open(handle) as opened:
        picture = ImageOps.exif_transpose(opened)  # outputs carry no orientation, but a spot check might
        rgb = np.asarray(picture.convert("RGB"))
    return jpeg((unmasked or photo_unmasked(item)).cover(rgb, 0))


class _Cursor:
    """An open reader positioned after the last frame it gave."""

    def __init__(self, path: Path) -> None:
        self.reader = VideoReader(path)
        self.frames: Generator[DecodedFrame, None, None] = self.reader.frames()
        self.next_index = 0

    def seek(self, index: int) -> DecodedFrame | None:
        for frame in self.frames:
            self.next_index = frame.index + 1
            if frame.index == index:
                return frame
        return None

    def close(self) -> None:
        self.frames.close()  # stops the reader's conversion threads
        self.reader.close()


class FrameSource:
    """JPEG frames of one masked video, each passed through ``cover`` before encoding."""

    def __init__(self, root: Path, path: Path, cover: Cover) -> None:
        self.root = root
        self.path = path
        self.cover = cover
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
                with confined_path(self.root, self.path) as path:
                    self._cursor = _Cursor(path)  # backwards: decode again from the start
            decoded = self._cursor.seek(index)
            if decoded is None:
                return None
            data = self._cache[index] = jpeg(self.cover(decoded.rgb, index))
            while len(self._cache) > _CACHED_FRAMES:
                self._cache.popitem(last=False)
            return data

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None


def companion_rows(item: Item) -> Iterator[dict[str, Any]]:
    """The frame records of the item's boxes companion (none without one), opened without following links."""
    companions = [n for n in item.report.companions if n.endswith(BOXES_SUFFIX)]
    if not companions:
        return
    fd = open_confined(item.root, item.output_path.with_name(companions[0]))
    with os.fdopen(fd, "rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("end"):
                return
            if "f" in record:
                yield record


def item_unmasked(item: Item) -> Unmasked:
    """What to cover in the item's pictures (unmasked.py)."""
    if item.output_info.media_type == "video":
        return video_unmasked(item, companion_rows(item))
    return photo_unmasked(item)


def track_boxes(item: Item, first: int, count: int) -> list[dict]:
    """Frames ``first`` .. ``first + count - 1`` of the boxes companion: the track boxes and masked regions
    (pixels of the output) per frame."""
    frames = []
    for record in companion_rows(item):
        index = record.get("f")
        if index is None or index < first:
            continue
        if index >= first + count:
            break
        frames.append({"f": index, "trk": record.get("trk", []), "mask": record.get("mask", [])})
    return frames
