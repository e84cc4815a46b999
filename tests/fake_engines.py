"""What fake engines in tests share: they define ``detect``, and the video path also calls ``detect_frames``."""

from __future__ import annotations


class FrameByFrame:
    """``Engine.detect_frames`` and ``max_batch`` for a fake that defines ``detect``: one frame at a time, as
    the shipped ``max_batch = 1`` runs them."""

    max_batch = 1

    def detect_frames(self, images, scales, only):
        return [self.detect(rgb, plan, classes) for rgb, plan, classes in zip(images, scales, only)]  # type: ignore[attr-defined]
