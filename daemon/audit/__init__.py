"""The audit log: an append-only, hash-chained record of what the service did and who changed what.

Imports nothing else from ``daemon`` but ``daemon.config`` (to find where the log lives).
"""
