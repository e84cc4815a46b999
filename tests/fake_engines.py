"""What fake engines in tests share: they define ``detect``, and the video path also calls ``detect_frames``,
``views`` and ``tilts``."""

from __future__ import annotations


class FrameByFrame:
    """``Engine.detect_frames`` and ``max_batch`` for a fake that defines ``detect``: one frame at a time, as
    the shipped ``max_batch = 1`` runs them."""

    max_batch = 1

    def views(self, rgb, only=None):
        return {}  # a fake's detect looks at the picture itself

    def tilts(self, object_class):
        return False  # a fake's detect_deep has no tilted views to run

    def detect_frames(self, images, scales, only, views=None):
        return [self.detect(rgb, plan, classes) for rgb, plan, classes in zip(images, scales, only)]  # type: ignore[attr-defined]
