"""Publishing: routing a finished job to output/, review/ or failed/ (``outputs``), its sidecars and the
reviewer's contact sheet. A failure outside the pipeline gets its sidecar from ``pipeline.report.failed_report``.

Owns every write that makes a result visible, through ``daemon.fsutil`` (durable writes). Imports ``pipeline``
records, ``daemon.config`` and the claim and ledger of ``daemon.intake`` (a published job leaves the claim
area); never the service or the command line.
"""
