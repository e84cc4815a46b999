"""`veil serve` with two videos at once in one worker (``[service] jobs_per_worker = 2``), at the shipped
profile: both run side by side on the worker's one engine, neither is taken for hung while the other beats,
and every face and plate on every frame of both is masked, judged on the published pixels alone (decoded and
compared with the input inside each ground-truth box, never the sidecar).

The clips: a moving camera over two mixed scenes (pipeline/eval/mixed_scenes.py: a real plate photo with real
faces pasted in), rendered with per-frame ground truth by pipeline.eval.video.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from pipeline.eval.mixed_scenes import scene_clip_spec, scene_for
from pipeline.eval.video import GroundTruth, Motion, render_clip
from pipeline.params import Params

from daemon.service import heartbeat
from daemon.service.worker import PipelineRunner
from daemon.service.worker_spec import JobSpec, WorkerSpec

from tests.conftest import eval_set, require_eval
from tests.integration.pixel_check import MASKED_SHARE, box_slices, changed
from tests.integration.serve_harness import SHIPPED_PROFILE, assert_each_once, published_file, wait_for

pytestmark = pytest.mark.usefixtures("models_installed")

SCENES = (("openalpr_endtoend", 1, 0), ("openalpr_endtoend", 8, 1))  # (plate set, image id, seed)
SIZE, FRAMES = (640, 360), 30
MIN_SIDE = 12  # a box the frame's edge cuts to a sliver holds too few pixels to judge by their share


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[tuple[Path, GroundTruth]]:
    root = require_eval()
    for name in ("rbnr_faces", "dlib_faces_voc", "openalpr_endtoend"):
        eval_set(name)
    folder = tmp_path_factory.mktemp("clips")
    made = []
    for source_set, image_id, seed in SCENES:
        scene = scene_for(root, source_set, image_id, seed=seed)
        assert scene is not None and scene.faces >= 1
        spec = scene_clip_spec(scene, folder / f"{source_set}-{image_id}.png")
        clip = folder / f"{source_set}-{image_id}.mp4"
        truth = render_clip(spec, clip, size=SIZE, frames=FRAMES, seed=seed, motion=Motion(crf=20))
        assert sum(1 for f in truth.frames if {1, 2} <= set(f["classes"])) >= FRAMES // 2
        made.append((clip, truth))
    return made


def frames_of(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24").astype(np.int16) for frame in container.decode(video=0)]


def box_frame_shares(src: Path, published: Path, truth: GroundTruth) -> list[tuple[int, int, float]]:
    """(frame, class, share of the box's pixels changed) for every ground-truth box-frame."""
    before, after = frames_of(src), frames_of(published)
    assert len(before) == len(after) == len(truth.frames), (len(before), len(after), len(truth.frames))
    shares = []
    for index, (old, new, gt) in enumerate(zip(before, after, truth.frames)):
        diff = changed(old, new)
        for object_class, (x1, y1, x2, y2) in zip(gt["classes"], gt["boxes"]):
            if min(x2 - x1, y2 - y1) >= MIN_SIDE:
                shares.append((index, object_class, float(diff[box_slices((x1, y1, x2, y2), diff.shape)].mean())))
    return shares


def unmasked(shares: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    return [(frame, object_class, round(share, 2)) for frame, object_class, share in shares if share < MASKED_SHARE]


def test_the_video_pixel_check_fails_a_plain_re_encoding(clips, tmp_path):
    """The measure can fail: the input decoded and encoded again, nothing masked, fails every box-frame."""
    import av

    src, truth = clips[0]
    copy = tmp_path / "copy.mp4"
    with av.open(str(src)) as source, av.open(str(copy), "w") as target:
        stream = target.add_stream("libx264", rate=25, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for frame in source.decode(video=0):
            frame.pts = None
            target.mux(stream.encode(frame))
        target.mux(stream.encode())
    shares = box_frame_shares(src, copy, truth)
    assert shares and len(unmasked(shares)) == len(shares), max(share for *_, share in shares)


def test_a_video_beats_for_its_own_job(clips, tmp_path):
    """The real runner: every frame's beat names the job (what keeps a video in a shared worker from being
    taken for hung while its neighbour beats)."""
    beats: list[str | None] = []
    heartbeat.install(heartbeat.Beater(lambda beat: beats.append(beat.job_id), 0.0))
    try:
        runner = PipelineRunner(WorkerSpec(index=0, device="cpu", threads=1, model_dir=None,
                                           profiles={"default": Params().model_dump_json()}))
        beats.clear()  # the engine's loading beat for no job
        src = clips[0][0]
        job = JobSpec(job_id="J", profile="default", src=str(src), dst=str(tmp_path / src.name), name=src.name)

        def run() -> None:
            heartbeat.running(job.job_id)
            assert runner.run(job).disposition in ("done", "review")

        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
    finally:
        heartbeat.install(None)
    assert len(beats) >= FRAMES and set(beats) == {"J"}


def test_two_videos_at_once_in_one_worker_are_masked_on_every_frame(clips, tmp_path, daemons):
    # A short heartbeat timeout: a video whose frames beat for its neighbour (or for no job) would be killed.
    daemon = daemons(tmp_path, workers=1, jobs_per_worker=2, heartbeat_timeout_s=20,
                     profile=SHIPPED_PROFILE).start().wait_ready()
    names = [clip.name for clip, _ in clips]
    for clip, _ in clips:
        (daemon.ingest / clip.name).write_bytes(clip.read_bytes())

    together = 0

    def all_done() -> bool:
        nonlocal together
        status = daemon.status() or {}
        pids = [job["pid"] for job in status.get("in_flight", [])]
        together = max([together, *(pids.count(pid) for pid in pids)])
        return daemon.finished() >= len(names)

    wait_for(all_done, 600, "both videos")
    status = daemon.status()
    assert daemon.stop() == 0
    assert together == 2, "the two videos never ran at once in the worker"
    assert status is not None and status["worker_restarts"] == 0 and not daemon.events("job_attempt_failed")
    reports = assert_each_once(daemon, names)
    for clip, truth in clips:
        assert reports[clip.name].disposition in ("done", "review"), reports[clip.name].error
        shares = box_frame_shares(clip, published_file(tmp_path, clip.name), truth)
        assert {object_class for _, object_class, _ in shares} == {1, 2}
        assert not unmasked(shares), f"{clip.name}: box-frames (frame, class, share) not masked: {unmasked(shares)}"
