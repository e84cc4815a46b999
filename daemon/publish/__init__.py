"""Publishing: durable writes (``fsutil``), routing a finished job to output/, review/ or failed/ (``outputs``),
its sidecars, reports and contact sheet.

Owns every write that makes a result visible. Imports ``pipeline`` records, ``daemon.config`` and the claim
and ledger of ``daemon.intake`` (a published job leaves the claim area); never the service or the command line.
``fsutil`` imports nothing from ``daemon``: intake and the audit log write through it.
"""
