"""What a file is, by its first bytes, never by its name."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from pipeline.errors import InputError

MediaKind = Literal["image", "video", "unknown"]

_IMAGE_MAGIC = (
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"GIF87a"),
    (0, b"GIF89a"),
    (0, b"II*\x00"),  # TIFF, little-endian
    (0, b"MM\x00*"),  # TIFF, big-endian
    (0, b"BM"),
)
_VIDEO_MAGIC = (
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
    (4, b"ftyp"),  # MP4, MOV, M4V, 3GP
    (4, b"moov"),  # old QuickTime
    (4, b"mdat"),
    (4, b"wide"),
    (4, b"free"),
)


def read_head(path: Path, size: int = 64) -> bytes:
    """The first bytes of a regular file. Links, FIFOs, devices and sockets are refused unopened."""
    try:
        info = os.lstat(path)
    except OSError as error:
        raise InputError(f"cannot stat input: {error.strerror}") from error
    if not stat.S_ISREG(info.st_mode):
        raise InputError("not a regular file (symlink, FIFO, socket or device): refused")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        raise InputError(f"cannot open input: {error.strerror}") from error
    with os.fdopen(fd, "rb") as handle:
        return handle.read(size)


# ISO base media files ("ftyp" at offset 4, like MP4) whose major brand is a still image: HEIC/HEIF, AVIF. The
# sequence brands (msf1, hevc, avis) go the same way: the image loader reads their primary image alone.
_STILL_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"mif2", b"msf1", b"avif", b"avis",
                 b"avci"}


def sniff(path: Path) -> MediaKind:
    head = read_head(path, 256)
    if not head:
        raise InputError("empty file (0 bytes)")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[4:8] == b"ftyp" and head[8:12] in _STILL_BRANDS:
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if any(head[offset : offset + len(magic)] == magic for offset, magic in _IMAGE_MAGIC):
        return "image"
    if any(head[offset : offset + len(magic)] == magic for offset, magic in _VIDEO_MAGIC):
        return "video"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:  # MPEG transport stream
        return "video"
    return "unknown"
