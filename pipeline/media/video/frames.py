"""One decoded picture, its turn between coded and upright orientation, and the conversion settings that
reader and writer share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from av.video.reformatter import Interpolation

from pipeline.media.turn import turned

# Colour conversion flags: with accurate rounding and full chroma interpolation, YUV -> RGB -> YUV gives
# the luma back (bit-exact where the colour lies inside the RGB cube); swscale's defaults darken every pixel
# by about one level per round trip.
# Bilinear chroma costs 1080p about 10 ms a frame to RGB where bicubic cost 18 to 26, with the same luma
# round trip; the RGB differs by 0.02 of a level on average (at most 3), the chroma round trip by 0.002.
SWS_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT

# Above this (2560x1440), x264 is set to hold fewer frames, to bound the encoder's memory.
LARGE_FRAME_PIXELS = 2560 * 1440


@dataclass
class DecodedFrame:
    """One decoded picture: its position in decode order, its timestamp, and upright RGB pixels."""

    index: int
    pts: int
    duration: int  # in time_base units; 0 when the stream does not say
    rgb: np.ndarray  # HxWx3 uint8, upright; masked in place


def normal_rotation(degrees: float | int | None) -> int:
    """Snap a display rotation to a multiple of 90 in [0, 360). Odd angles are refused by the caller."""
    if degrees is None:
        return 0
    value = int(round(float(degrees))) % 360
    return value


def upright(coded: np.ndarray, rotation: int) -> np.ndarray:
    """The picture as it is meant to be seen: ``rotation`` degrees counter-clockwise from the coded one."""
    return turned(coded, rotation // 90)


def coded(upright_rgb: np.ndarray, rotation: int) -> np.ndarray:
    """The inverse of :func:`upright`: back into the orientation the encoder stores."""
    return turned(upright_rgb, -(rotation // 90))
