"""The running service: start and stop in order, the main loop, the worker pool and its processes.

Owns the spine after intake: dispatch to workers, collect outcomes, hand them to publish, report status to
systemd. May import every other daemon package except ``daemon.cli``.
"""
