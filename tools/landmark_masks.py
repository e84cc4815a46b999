#!/usr/bin/env python3
"""Would masks fitted to CenterFace's five landmarks cover the labelled faces with less area than today's squares?

    .venv/bin/python tools/landmark_masks.py [--eval-root ../shared/eval] [--sets cmu_mit_faces,rbnr_faces,dlib_faces_voc]

CenterFace (float32, each photo whole at its own size) gives boxes and landmarks; each labelled face is matched to
its best detection (IoU >= ``MATCH``). The head ellipse of a face: centred ``t`` of the way from the mouth to the
eyes, turned with the line from mouth to eyes, with semi-axes ``alpha`` (along it) and ``beta`` (across) times the
face's scale (the mouth-to-eyes distance, or 0.75 of the eye distance, or a quarter of the box's long side,
whichever is largest). One factor k scales every ellipse: the smallest that covers 99.5% of the labelled faces of
every set to ``COVERED``. Prints, per shape, k and each set's ellipse area over its shipped square masks' area.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.detect.centerface import ALIGN, STRIDE, decode
from pipeline.detect.nms import iou_matrix, nms
from pipeline.detect.onnx import make_spatial_dims_dynamic
from pipeline.eval.images import COVERED, label_bounds
from pipeline.media.image import load_image

MATCH = 0.2
SHAPES = [(t, alpha, beta) for t in (0.3, 0.6, 0.9) for alpha, beta in ((2.0, 1.6), (1.8, 1.8), (2.2, 1.5))]
FACTORS = np.arange(0.3, 3.01, 0.02)
Face = tuple[np.ndarray, np.ndarray, np.ndarray]  # label box, detected box, landmarks (5, 2)


def faces_with_landmarks(session: ort.InferenceSession, set_dir: Path) -> list[Face]:
    gt = json.loads((set_dir / "annotations.json").read_text())
    names = [o.name for o in session.get_outputs()]
    faces = []
    for info in gt["images"]:
        rgb = load_image(set_dir / "images" / info["file_name"], 10**9).rgb
        height, width = rgb.shape[:2]
        blob = np.zeros((1, 3, -(-height // ALIGN) * ALIGN, -(-width // ALIGN) * ALIGN), np.float32)
        blob[0, :, :height, :width] = rgb.transpose(2, 0, 1)
        heatmap, scale, offset, landmarks = session.run(names, {session.get_inputs()[0].name: blob})
        boxes, scores = decode(heatmap[0, 0], scale[0], offset[0], 0.2, height, width)
        rows, cols = np.nonzero(heatmap[0, 0] >= 0.2)  # the same cells decode kept, in the same order
        size_h, size_w = np.exp(scale[0, 0, rows, cols]) * STRIDE, np.exp(scale[0, 1, rows, cols]) * STRIDE
        left = (cols + offset[0, 1, rows, cols] + 0.5) * STRIDE - size_w / 2
        top = (rows + offset[0, 0, rows, cols] + 0.5) * STRIDE - size_h / 2
        points = np.stack([np.stack([landmarks[0, 2 * j + 1, rows, cols] * size_w + left,
                                     landmarks[0, 2 * j, rows, cols] * size_h + top], axis=1) for j in range(5)], axis=1)
        keep = nms(boxes, scores, 0.3)
        boxes, points = boxes[keep], points[keep]
        labels = [label_bounds(a, rgb.shape) for a in gt["annotations"] if a["image_id"] == info["id"] and a["category_id"] == 1]
        for label in np.array(labels, np.float32).reshape(-1, 4):
            overlap = iou_matrix(boxes, label[None])[:, 0] if len(boxes) else np.zeros(0)
            if len(overlap) and overlap.max() >= MATCH:
                faces.append((label, boxes[int(overlap.argmax())], points[int(overlap.argmax())]))
    return faces


def ellipse_covers(label: np.ndarray, centre: np.ndarray, along: float, across: float, angle: float) -> float:
    x0, y0, x1, y1 = (int(round(v)) for v in label)
    ys, xs = np.mgrid[y0:max(y0 + 1, y1), x0:max(x0 + 1, x1)] + 0.5
    dx, dy = xs - centre[0], ys - centre[1]
    u, v = dx * np.cos(angle) + dy * np.sin(angle), -dx * np.sin(angle) + dy * np.cos(angle)
    return float(((u / along) ** 2 + (v / across) ** 2 <= 1).mean())


def head(face: Face, t: float, alpha: float, beta: float) -> tuple[np.ndarray, float, float, float]:
    """The ellipse (centre, semi-axis along the face, across it, angle) before the common factor."""
    _, box, (left_eye, right_eye, _, left_mouth, right_mouth) = face
    eyes, mouth = (left_eye + right_eye) / 2, (left_mouth + right_mouth) / 2
    up = eyes - mouth
    scale = max(float(np.linalg.norm(up)), 0.75 * float(np.linalg.norm(right_eye - left_eye)), 0.25 * float(max(box[2:] - box[:2])))
    return mouth + t * up, alpha * scale, beta * scale, float(np.arctan2(up[1], up[0]))


def needed_factor(face: Face, shape: tuple[float, float, float]) -> float:
    centre, along, across, angle = head(face, *shape)
    return next((float(k) for k in FACTORS if ellipse_covers(face[0], centre, along * k, across * k, angle) >= COVERED), float("inf"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    parser.add_argument("--model", type=Path, default=Path(sys.prefix) / "share" / "veil" / "models" / "centerface.onnx")
    parser.add_argument("--sets", default="cmu_mit_faces,rbnr_faces,dlib_faces_voc")
    args = parser.parse_args()
    model = onnx.load(str(args.model))
    make_spatial_dims_dynamic(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    sets = {name: faces_with_landmarks(session, args.eval_root / name) for name in args.sets.split(",")}
    print(f"matched faces: {', '.join(f'{n} {len(f)}' for n, f in sets.items())}")
    print("| t, alpha, beta | k | " + " | ".join(sets) + " |\n|---|---|" + "---|" * len(sets))
    for shape in SHAPES:
        needed = {n: np.array([needed_factor(f, shape) for f in faces]) for n, faces in sets.items()}
        k = max(float(np.percentile(v, 99.5)) for v in needed.values())
        ratios = []
        for faces in sets.values():
            ellipses = sum(np.pi * head(f, *shape)[1] * head(f, *shape)[2] * k * k for f in faces)
            squares = sum((1.5 * float(max(f[1][2:] - f[1][:2]))) ** 2 for f in faces)  # shipped: squared, 25% a side
            ratios.append(f"{ellipses / squares:.2f}")
        print(f"| {shape} | {k:.2f} | " + " | ".join(ratios) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
