"""``veil worker``: a Celery worker that runs the jobs ``veil serve`` enqueues (``[dispatch] backend = "celery"``).

Reads the same configuration as ``veil serve`` (folders, profiles, models): the shares must be mounted at the
same paths on every host. One unit per process: a GPU index or ``cpu``; run one per GPU
(systemd/veil-worker@.service).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon import log
from daemon.cli.context import add_config_argument, config_path
from daemon.config.settings import ConfigError, load_settings

EX_CONFIG = 78


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "worker", help="work jobs from the broker (dispatch.backend = \"celery\")",
        description="Run one Celery worker node for one unit (a GPU index, or cpu): it takes jobs from the "
                    "photo and video queues, processes and publishes them, and answers the veil serve that "
                    "enqueued them.")
    add_config_argument(parser)
    parser.add_argument("--unit", default="cpu", help="GPU index (pinned with CUDA_VISIBLE_DEVICES) or 'cpu'")
    parser.add_argument("--queues", default="photo,video",
                        help="which queues this node takes: photo, video or photo,video (default)")
    parser.add_argument("--node", help="Celery node name (default veil-UNIT@HOST)")
    parser.add_argument("--metrics-port", type=int,
                        help="serve this node's Prometheus metrics on this port (default: from "
                             "dispatch.worker_metrics_port and the unit; 0: none)")
    parser.add_argument("--runner", default="daemon.service.worker:PipelineRunner", help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def _kinds(text: str) -> tuple:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    if not kinds or any(k not in ("photo", "video") for k in kinds):
        raise ConfigError(f"--queues takes photo, video or photo,video, not {text!r}")
    return kinds


def run(args: argparse.Namespace) -> int:
    log.configure()
    try:
        path: Path | None = config_path(args.config)
        settings = load_settings(path)
        kinds = _kinds(args.queues)
        if settings.dispatch.backend != "celery":
            raise ConfigError("veil worker needs [dispatch] backend = \"celery\" in the configuration")
        broker = settings.dispatch.resolved_broker_url()
    except (ConfigError, OSError, ValueError) as exc:
        print(f"veil worker: {exc}", file=sys.stderr)
        return EX_CONFIG
    log.configure(settings.service.log_level, log_file_names=settings.service.log_file_names)
    del broker  # read once here so a missing or unreadable file is a configuration error, not a crash
    from pipeline.detect.catalogue import default_model_dir

    from daemon.dispatch.node import run_worker
    from daemon.models.registry import Registry, RegistryError

    try:
        models = Registry(settings.service.model_dir or default_model_dir()).selection()
    except RegistryError as exc:
        print(f"veil worker: active models: {exc}", file=sys.stderr)
        return 1
    return run_worker(settings, models, unit=args.unit, kinds=kinds, node_name=args.node, runner=args.runner,
                      metrics_port=args.metrics_port)
