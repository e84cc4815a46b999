"""A file modified or replaced after `veil serve` claimed it: never published from a mix of versions; each
published result names the exact bytes it was made from."""

from __future__ import annotations

import hashlib
import os

from pipeline.qc import QCReport

from tests.integration.hostile_files import video_bytes
from tests.integration.serve_harness import sidecars, video_in_flight, wait_for


def test_a_file_modified_or_replaced_after_its_claim_is_never_published_from_a_mix(tmp_path, daemons):
    # The default profile (faces and plates): a 2 s clip is in flight for seconds, long enough to change it.
    daemon = daemons(tmp_path, profile="").start().wait_ready()
    first = video_bytes(tmp_path / "v1.part", seconds=2.0, seed=1)
    second = video_bytes(tmp_path / "v2.part", seconds=1.0, seed=2)
    third = video_bytes(tmp_path / "v3.part", seconds=1.0, seed=3)
    assert len({first, second, third}) == 3
    target = daemon.ingest / "clip.mp4"
    with open(target, "wb") as writer:  # a writer that stalls longer than settle_s, then carries on
        writer.write(first)
        writer.flush()
        wait_for(lambda: video_in_flight(daemon, "clip.mp4", min_s=0.3), 120, "the first version to be in flight")
        assert not target.exists()  # claimed: renamed away, the writer still holds the same inode
        writer.seek(0)
        writer.truncate()
        writer.write(second)
    # Replaced: a new file under the claimed name (a rename over it, as copy tools do) is a new input.
    replacement = tmp_path / "clip.mp4.part"
    replacement.write_bytes(third)
    os.rename(replacement, target)
    wait_for(lambda: daemon.finished() == 2, 300, "both versions")
    assert daemon.stop() == 0

    published = {}
    for folder in ("out", "review"):
        for sidecar in sidecars(tmp_path / folder):
            report = QCReport.from_json((tmp_path / folder / sidecar).read_bytes())
            published[report.input.sha256] = report
    digest = {hashlib.sha256(data).hexdigest(): label
              for data, label in ((first, "first"), (second, "second"), (third, "third"))}
    # The claimed file's first version was never published (its result was made from bytes that changed);
    # its final version and the replacement each once, each sidecar naming the exact bytes it was made from.
    assert sorted(digest[sha] for sha in published) == ["second", "third"]
    for report in published.values():
        assert report.disposition in ("done", "review") and report.video is not None
    originals = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "originals").iterdir()}
    assert originals == set(published)
    [changed] = daemon.events("job_attempt_failed")
    assert "changed" in changed["reason"]
