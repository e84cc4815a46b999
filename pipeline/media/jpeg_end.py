"""Where a JPEG's picture ends: what a file carries after it (a phone's motion-photo video, a maker's trailer)
is never decoded nor published, and the sidecar says it was there.

The markers are walked from the start: each segment's length is skipped (an EXIF thumbnail's own end marker
sits inside one), and after each scan header the entropy-coded data runs to the next marker that is neither
a stuffed 0xFF nor a restart. Progressive files have several scans; the first end-of-image marker found so
ends the picture.
"""

from __future__ import annotations

import re

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and the restart markers carry no length
# In a scan, 0xFF is followed by 0x00 (a stuffed byte), a restart marker or more 0xFF fill: anything else is
# the marker that ends it.
_MARKER_IN_SCAN = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


def picture_end(data: bytes) -> int | None:
    """The offset just past the first picture's end-of-image marker, or None where the markers do not lead
    there (not a JPEG, or damaged: the decoder judges those)."""
    if data[:2] != bytes((0xFF, _SOI)):
        return None
    at, size = 2, len(data)
    while at + 1 < size:
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
        elif marker == _EOI:
            return at + 2
        elif marker in _STANDALONE:
            at += 2
        else:
            if at + 4 > size:
                return None
            at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
            if marker == _SOS:
                at = _after_entropy_coded(data, at)
    return None


def _after_entropy_coded(data: bytes, at: int) -> int:
    """The offset of the first marker after the entropy-coded data that starts at ``at`` (or the data's end)."""
    found = _MARKER_IN_SCAN.search(data, at)
    return found.start() if found else len(data)


def bytes_after_picture(data: bytes) -> int:
    """How many bytes follow the picture, not counting padding (zeros, or 0xFF fill) that some cameras add."""
    end = picture_end(data)
    if end is None:
        return 0
    return len(data[end:].strip(b"\x00\xff"))
