"""Drift monitoring: per-source statistics of inputs and detector outputs, checked daily against a frozen
reference, without ground truth and without sending anything anywhere (docs/drift.md). Owns the feature schema
and store, the reference and daily checks (``monitor``, ``verdict``), the service's side (``service``), the
report and the simulation. May import ``pipeline``, ``daemon.log``, ``daemon.config`` and ``daemon.audit``;
never the service core or the command line.
"""
