"""Intake: noticing arrivals, deciding when a file is complete, claiming it, and its camera zones.

Owns everything between a file landing in ingest/ and a claimed job with a journal. Imports ``daemon.config``,
``daemon.fsutil`` and ``daemon.audit`` only.
"""
