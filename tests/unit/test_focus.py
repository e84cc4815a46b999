"""Out-of-focus pictures are sharpened for the plate detector alone (pipeline/detect/focus.py, views.py): the blur
measure tells a focused picture from the same picture out of focus at any resolution, the sharpening brings it
back towards the focused one, and every entry of the engine feeds the sharpened view to the plate detector and
the picture as it came to the face detector."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.detect.exposure import denoised, levelled
from pipeline.detect.focus import BLURRED, STREAKED, Blur, measure, sharpened
from pipeline.detect.views import detector_views
from pipeline.eval.degraded import blur, motion, night
from pipeline.params import DetectorParams
from pipeline.records import ObjectClass

from tests.unit.test_exposure import brightest_fed, entries


def street(shape: tuple[int, int] = (900, 1200), seed: int = 0) -> np.ndarray:
    """A focused picture: a few hundred flat rectangles of random colours and lines of plate-like text."""
    rng = np.random.default_rng(seed)
    rgb = np.full((*shape, 3), 128, np.uint8)
    for _ in range(300):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        rgb[y:y + rng.integers(4, shape[0] // 6), x:x + rng.integers(4, shape[1] // 6)] = rng.integers(0, 256, 3)
    for _ in range(12):
        corner = (int(rng.integers(0, shape[1] - 300)), int(rng.integers(30, shape[0])))
        cv2.putText(rgb, "AB 123 CD", corner, cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
    return rgb


@pytest.mark.parametrize("shape", [(450, 600), (900, 1200), (1080, 1920)])
def test_the_blur_measure_tells_a_focused_picture_from_the_same_out_of_focus_at_any_size(shape):
    focused = street(shape)
    assert measure(focused).effect < BLURRED / 2
    assert measure(blur(focused)).effect > BLURRED + 0.05  # blur: a Gaussian of the long side / 300
    assert not measure(focused).out_of_focus and measure(blur(focused)).out_of_focus


def test_more_blur_measures_more():
    focused = street()
    measures = [measure(cv2.GaussianBlur(focused, (0, 0), sigma)).effect for sigma in (0.5, 1, 2, 4, 8)]
    assert measures == sorted(measures) and measure(focused).effect < measures[0]


def test_a_flat_picture_is_not_out_of_focus_and_stripes_are_judged_across_them():
    assert measure(np.full((100, 100, 3), 7, np.uint8)).effect == 0.0
    assert measure(np.full((1, 300, 3), 7, np.uint8)).effect == 0.0
    stripes = np.zeros((200, 200, 3), np.uint8)
    stripes[:, ::40], stripes[:, 100:140] = 255, 200  # sharp vertical lines and a bar: no contrast down the columns
    assert not measure(stripes).out_of_focus
    assert measure(cv2.GaussianBlur(stripes, (0, 0), 3)).out_of_focus


@pytest.mark.parametrize("shape", [(1, 5000), (5000, 1), (2, 20000)])
def test_a_picture_thousands_of_times_longer_than_wide_is_measured(shape):
    line = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    assert 0.0 <= measure(line).effect <= 1.0


def error(picture: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(picture.astype(np.float32) - truth).mean())


def edges(picture: np.ndarray, axis: int) -> float:
    """Mean contrast between neighbours across the rows (``axis`` 1) or down the columns (0)."""
    return float(np.abs(np.diff(picture.astype(np.float32), axis=axis)).mean())


def test_sharpening_brings_an_out_of_focus_picture_back_towards_the_focused_one():
    focused = street()
    soft = blur(focused)
    restored = sharpened(soft, measure(soft))
    assert measure(restored).effect < measure(soft).effect - 0.1
    assert error(restored, focused) < error(soft, focused) * 0.9
    assert abs(float(restored.mean()) - float(soft.mean())) < 2  # the levels stay


@pytest.mark.parametrize("turn", [False, True], ids=["horizontal", "vertical"])
def test_a_shaken_picture_is_told_by_its_streak_and_sharpened_along_it_alone(turn):
    """A streak (pipeline/eval/degraded.py's "motion": a box a hundredth of the long side long) blurs one axis;
    the gate takes it by the difference between the axes, and sharpening along the streak alone takes some of the
    blur away and leaves the other axis as it was, where sharpening every way would bring up edges across it."""
    focused = street()
    streaked = motion(focused)
    if turn:
        focused, streaked = np.ascontiguousarray(focused.transpose(1, 0, 2)), np.ascontiguousarray(streaked.transpose(1, 0, 2))
    shaken = measure(streaked)
    assert abs(measure(focused).streak) < STREAKED / 2
    assert (shaken.streak <= -STREAKED) if turn else (shaken.streak >= STREAKED)
    assert shaken.out_of_focus and shaken.streaked
    along = sharpened(streaked, shaken)
    every_way = sharpened(streaked, Blur(shaken.effect, shaken.effect))
    assert error(along, focused) < error(every_way, focused) * 0.7
    along_streak = "columns" if turn else "rows"
    assert getattr(measure(along), along_streak) < getattr(shaken, along_streak) - 0.05
    across = 1 if turn else 0  # the array axis whose neighbours the streak did not blur together
    assert abs(edges(along, across) / edges(streaked, across) - 1) < 0.2
    assert edges(every_way, across) > 2 * edges(streaked, across)


def test_the_measure_comes_back_whole_from_the_two_numbers_a_sidecar_records():
    for measured in (Blur(0.5, 0.2), Blur(0.2, 0.5), Blur(0.3, 0.3)):
        assert Blur.recorded(measured.effect, measured.streak) == pytest.approx(measured)
    assert Blur(0.4, 0.2).out_of_focus and not Blur(0.4, 0.3).out_of_focus and Blur(0.3, 0.5).out_of_focus


def test_only_the_plate_detector_sees_an_out_of_focus_picture_sharpened():
    soft = blur(street())
    views = detector_views(soft, ObjectClass)
    assert views[ObjectClass.FACE] is soft
    assert np.array_equal(views[ObjectClass.LICENSE_PLATE], sharpened(soft, measure(soft)))
    assert all(view is soft for view in detector_views(soft, ObjectClass, sharpen_blurred=False).values())
    focused = street()
    assert all(view is focused for view in detector_views(focused, ObjectClass).values())


def test_a_dark_picture_out_of_focus_is_levelled_and_smoothed_not_sharpened(monkeypatch):
    """Sharpening would bring up the noise the levelling amplified: a night shot's plate view is smoothed."""
    monkeypatch.setattr("pipeline.detect.focus.sharpened", lambda rgb, blur: pytest.fail("a night shot sharpened"))
    dark = night(blur(street()))
    views = detector_views(dark, ObjectClass)
    assert np.array_equal(views[ObjectClass.FACE], levelled(dark))
    assert np.array_equal(views[ObjectClass.LICENSE_PLATE], denoised(levelled(dark)))


def test_sharpening_is_on_in_the_shipped_defaults():
    assert DetectorParams().sharpen_blurred


SOFT = blur(street())


@pytest.mark.parametrize("entry", ["detect", "detect_frames", "detect_deep", "detect_around"])
def test_every_entry_feeds_the_sharpened_view_to_the_plate_detector_alone(entry, monkeypatch):
    """The sharpening replaced by a picture of one grey level (a marker no crop or scaling changes): the plate
    detector sees only that, the face detector never; with ``sharpen_blurred`` off, neither does."""
    monkeypatch.setattr("pipeline.detect.focus.sharpened", lambda rgb, blur: np.full_like(rgb, 77))
    run = entries(SOFT)[entry]
    fed = brightest_fed(run)
    assert set(fed[ObjectClass.LICENSE_PLATE]) == {77}, fed
    assert fed[ObjectClass.FACE] and 77 not in fed[ObjectClass.FACE], fed
    unsharpened = brightest_fed(run, sharpen_blurred=False)
    assert all(unsharpened.values()) and 77 not in unsharpened[ObjectClass.LICENSE_PLATE], unsharpened
