"""The shared clips (``../shared/eval/videos``, three) at the SHIPPED defaults (``Params()``, the default engine,
every class), each processed once for all the checks here: the media contract (every frame, the duration and the
audio kept, data and subtitle streams dropped, no decode warning) and the review router's goal for ordinary
footage (none goes to review)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.params import Params
from pipeline.qc import QCReport
from pipeline.video.process import process_video

from tests.conftest import EVAL, missing
from tests.integration.test_video_media import ffprobe, video_stream

# Every clip the folder holds, as the media contract ran before; "(absent)" fails under CI, skips locally.
CLIPS = sorted(p.name for p in (EVAL / "videos").glob("*.mp4")) or ["(absent)"]

pytestmark = [pytest.mark.shared, pytest.mark.slow]
needs_ffprobe = pytest.mark.skipif(not shutil.which("ffprobe"), reason="needs ffprobe")


@pytest.fixture(scope="module", params=CLIPS)
def published(request, tmp_path_factory, engine) -> tuple[Path, Path, QCReport]:
    """(the shared clip, its published copy, the report), processed with ``Params()``."""
    src = EVAL / "videos" / request.param
    if not src.is_file():
        missing(f"the shared clip {src}")
    dst = tmp_path_factory.mktemp("shared-clip") / src.name
    return src, dst, process_video(src, dst, Params(), engine, name=src.name)


@needs_ffprobe
def test_shared_clips_keep_frames_duration_audio_and_drop_data(published):
    src, dst, report = published
    assert report.disposition in ("done", "review"), report.error
    before, after = ffprobe(src, "packets"), ffprobe(dst, "packets")
    vin, vout = video_stream(before), video_stream(after)
    assert int(vout["nb_read_packets"]) == int(vin["nb_read_packets"]) == report.video["frames_written"]
    assert float(after["format"]["duration"]) == pytest.approx(float(before["format"]["duration"]), abs=0.05)
    kinds_in = [s["codec_type"] for s in before["streams"]]
    kinds_out = [s["codec_type"] for s in after["streams"]]
    assert kinds_out.count("audio") == kinds_in.count("audio")
    assert set(kinds_out) <= {"video", "audio"}
    assert not report.video["decode_warnings"]


def test_at_the_shipped_defaults_no_shared_clip_goes_to_review(published):
    _, _, report = published
    assert report.disposition == "done", report.review_reasons
    assert report.video is not None and report.video["keyframes"] >= 2
