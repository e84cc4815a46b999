"""The running service: start and stop in order, the main loop, the worker pool and its processes.

Owns the spine after intake. ``lifecycle`` starts the parts in order and stops them in reverse (``folders``,
drift, ``publisher``, ``pool``, ``recovery``, intake, rework), claims (``claiming``) and dispatches
to the workers ``workforce`` sizes;
``pool`` supervises the ``worker`` processes, which speak in ``messages`` and beat through ``heartbeat``
as their work moves; ``snapshot`` and ``status`` report what it is doing, ``notify`` tells systemd.
May import every other daemon package except ``daemon.cli``; ``worker``, ``worker_spec``, ``messages`` and
``heartbeat`` run in the spawned child and import only ``pipeline`` and the publish helpers they need.
"""
