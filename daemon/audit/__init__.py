"""The audit log: an append-only, hash-chained record of what the service did and who changed what.

Imports ``pipeline.detect.catalogue`` (model checksums), ``daemon.config`` (to find where the log lives) and
``daemon.fsutil`` (durable writes); nothing else from ``daemon``.
"""
