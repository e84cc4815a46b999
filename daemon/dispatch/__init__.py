"""The Celery backend of dispatch: jobs claimed by ``veil serve`` run on ``veil worker`` processes on any host.

``topology`` names and declares the queues (quorum, a delivery limit, dead letters); ``app`` builds the Celery
application both sides share; ``payload`` holds the messages that cross the broker; ``limits`` derives a job's
queue and time limits from its media; ``client`` is the ``Dispatcher`` that ``veil serve`` uses (enqueue,
results, dead letters); ``task`` runs one delivery in a worker's child (lock, process, publish); ``node``
starts a ``veil worker`` and answers; ``metrics`` are a node's Prometheus metrics; ``fleet`` is the broker's
view for ``veil status --fleet``. May import ``pipeline``, ``daemon.config``, ``daemon.intake``,
``daemon.publish`` and the worker-side modules of ``daemon.service``; ``daemon.service`` imports ``client``
only, and only when ``[dispatch] backend = "celery"``.
"""
