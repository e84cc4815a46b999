"""The published-pixels judge (tests/published_pixels.py) itself: a blurred dark, flat face counts as masked,
while a JPEG re-encode, a box half blurred and a flat box left alone do not."""

from __future__ import annotations

import cv2
import numpy as np

from tests.published_pixels import changed, reencoded

BOX = (20, 20, 40, 40)


def dark_flat_face() -> np.ndarray:
    """A grey scan's dark face: fine texture a few grey levels deep on a dark ground."""
    texture = np.random.default_rng(3).normal(40.0, 6.0, (80, 80))
    return np.repeat(np.clip(texture, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def blurred(picture: np.ndarray, x0: int = 20, x1: int = 60) -> np.ndarray:
    out = picture.copy()
    out[20:60, x0:x1] = cv2.GaussianBlur(picture, (0, 0), 6)[20:60, x0:x1]
    return out


def test_a_blur_over_a_dark_flat_face_counts_as_masked_though_its_pixels_change_little():
    face = dark_flat_face()
    assert changed(face, blurred(face), BOX)


def test_a_jpeg_re_encode_a_half_blurred_box_and_an_untouched_flat_box_do_not():
    face = dark_flat_face()
    assert not changed(face, reencoded(face), BOX)
    assert not changed(face, blurred(face, x0=40), BOX)
    flat = np.full((80, 80, 3), 40, np.uint8)
    assert not changed(flat, flat.copy(), BOX)
