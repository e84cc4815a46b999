"""Video ground truth for an object that moves on its own: a face swinging across a still photo.

``pipeline.eval.video`` moves the camera over a still scene, which camera-motion compensation explains
whole. Here the camera stands still and a real face (cut from an evaluation photo, ``face_pool``) swings
left and right over a real background, once per ``period`` frames: between two detections a second apart it
goes out and comes back, so only a detector that sees it between them keeps it masked.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.eval.mixed_scenes import FaceCrop, paste_face
from pipeline.eval.video import GroundTruth
from pipeline.records import ObjectClass


def render_swinging_face(
    background: np.ndarray, face: FaceCrop, out: Path, *, size: tuple[int, int] = (1280, 720), frames: int = 90,
    fps: int = 30, face_height: int = 110, amplitude: float = 0.15, period: int = 30, crf: int = 23,
) -> GroundTruth:
    """Render an H.264 MP4 at ``out`` of ``face`` (its labelled box ``face_height`` pixels tall) swinging over
    ``background`` (BGR, resized to ``size``) by ``amplitude`` of the frame's width either side of the centre,
    and return its ground truth (one object, id 1)."""
    width, height = size
    canvas = cv2.resize(background, size, interpolation=cv2.INTER_AREA)
    scale = face_height / (face.box[3] - face.box[1])
    crop_width, crop_height = face.pixels.shape[1] * scale, face.pixels.shape[0] * scale
    truth = GroundTruth(width, height)
    with av.open(str(out), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            image = canvas.copy()
            x = (width - crop_width) / 2 + amplitude * width * math.sin(2 * math.pi * index / period)
            box = paste_face(image, face, scale, (round(x), round((height - crop_height) / 2)))
            truth.frames.append({"ids": [1], "classes": [int(ObjectClass.FACE)], "boxes": [[round(v, 2) for v in box]]})
            rgb: np.ndarray = np.ascontiguousarray(image[:, :, ::-1])
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return truth
