"""Runners for `veil worker --runner` in the broker tests: the real pipeline, with two faults by file name.

``poison*``: the child dies (os._exit) every time it meets the file, as a file that crashes a decoder would.
``slow*``: the job first waits VEIL_TEST_SLOW_S seconds (default 6), so that a test can kill or time it.
``stubborn*``: the job ignores its soft time limit and runs on, until the hard limit kills the child.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline.qc import QCReport

from daemon.service.worker import PipelineRunner
from daemon.service.worker_spec import JobSpec


class TestRunner(PipelineRunner):
    __test__ = False  # not a pytest class

    def run(self, job: JobSpec) -> QCReport:
        name = Path(job.name).name
        if name.startswith("poison"):
            os._exit(17)
        if name.startswith("stubborn"):
            from billiard.exceptions import SoftTimeLimitExceeded

            try:
                time.sleep(60)
            except SoftTimeLimitExceeded:
                time.sleep(60)  # a native call that cannot be interrupted, say
        if name.startswith("slow"):
            Path(job.dst).with_name("partial.tmp").write_bytes(b"half a result")  # leftovers a kill leaves
            time.sleep(float(os.environ.get("VEIL_TEST_SLOW_S", "6")))
        return super().run(job)
