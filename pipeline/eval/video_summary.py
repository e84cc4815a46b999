"""A moving-camera evaluation's scores over its clips: mask recall, the longest unmasked runs, the objects
left unmasked and on which frames, IDF1 and HOTA (TrackEval), and the review router as a classifier of
leaking clips. Each clip is scored by ``pipeline.eval.video.score_clip``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ClipResult:
    name: str
    box_frames: int
    masked_box_frames: int
    longest_unmasked_run: dict[int, int]  # object id -> frames
    frames: int
    hota_input: dict  # TrackEval's per-sequence data, all tracks
    hota_input_annotated: dict  # the same without tracks that never touch a ground-truth box (pipeline.eval.video.UNANNOTATED_IOU)
    never_masked: int = 0  # objects present on some frame and masked on none
    disposition: str = ""  # the QC verdict (done, review), set by run_set
    seconds: float = 0.0  # process_video's wall time, rendering and scoring left out, set by run_set
    review_reasons: list[str] = field(default_factory=list)
    unmasked_frames: dict[int, list[int]] = field(default_factory=dict)  # object id -> the frames it was unmasked on

    @property
    def recall(self) -> float:
        return self.masked_box_frames / self.box_frames if self.box_frames else 1.0


def tracking_scores(results: list[ClipResult], *, annotated: bool) -> dict[str, float]:
    """IDF1 and HOTA over all clips (TrackEval combines the sequences as its benchmarks do)."""
    from trackeval.metrics import HOTA, Identity

    hota, identity = HOTA(), Identity({"THRESHOLD": 0.5, "PRINT_CONFIG": False})
    data = {r.name: r.hota_input_annotated if annotated else r.hota_input for r in results}
    per_hota = {name: hota.eval_sequence(d) for name, d in data.items()}
    per_id = {name: identity.eval_sequence(d) for name, d in data.items()}
    combined_hota = hota.combine_sequences(per_hota)
    combined_id = identity.combine_sequences(per_id)
    return {
        "HOTA": float(np.mean(combined_hota["HOTA"])),
        "DetA": float(np.mean(combined_hota["DetA"])),
        "AssA": float(np.mean(combined_hota["AssA"])),
        "IDF1": float(combined_id["IDF1"]),
    }


def summarise(results: list[ClipResult]) -> dict[str, Any]:
    box_frames = sum(r.box_frames for r in results)
    masked = sum(r.masked_box_frames for r in results)
    longest = max((max(r.longest_unmasked_run.values(), default=0) for r in results), default=0)
    summary: dict[str, Any] = {
        "clips": len(results),
        "frames": sum(r.frames for r in results),
        "objects": sum(len(r.longest_unmasked_run) for r in results),
        "box_frames": box_frames,
        "masked_box_frames": masked,
        "mask_recall": masked / box_frames if box_frames else 1.0,
        "longest_unmasked_run": longest,
        "objects_unmasked_2plus": sum(1 for r in results for v in r.longest_unmasked_run.values() if v >= 2),
        "objects_never_masked": sum(r.never_masked for r in results),
        "review": review_routing(results),
        "per_clip": [
            {"clip": r.name, "box_frames": r.box_frames, "masked_box_frames": r.masked_box_frames,
             "longest_unmasked_run": r.longest_unmasked_run, "objects_never_masked": r.never_masked,
             "disposition": r.disposition, "review_reasons": r.review_reasons,
             "unmasked_frames": {object_id: frame_ranges(frames) for object_id, frames in r.unmasked_frames.items()}}
            for r in results
        ],
    }
    summary["tracking_annotated"] = tracking_scores(results, annotated=True)
    summary["tracking_all_tracks"] = tracking_scores(results, annotated=False)
    return summary


def review_routing(results: list[ClipResult]) -> dict[str, Any]:
    """The review router as a classifier of leaks, as ``veil eval`` reports it for photos: the clips routed,
    and of the clips that leak (some labelled box-frame unmasked), the share routed."""
    routed = [r for r in results if r.disposition == "review"]
    leaking = [r for r in results if r.masked_box_frames < r.box_frames]
    captured = sum(1 for r in leaking if r.disposition == "review")
    return {"routed": len(routed), "review_rate": round(len(routed) / max(1, len(results)), 4), "leaking": len(leaking),
            "captured": captured, "leak_capture": round(captured / len(leaking), 4) if leaking else None}


def frame_ranges(frames: list[int]) -> str:
    """Frame numbers, ascending, as runs: [2, 3, 4, 9] -> "2-4,9"."""
    runs: list[list[int]] = []
    for frame in frames:
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
