"""``veil serve``: run the service (under systemd, or by hand for a trial)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from daemon import log
from daemon.config.settings import SYSTEM_CONFIG, ConfigError, Settings, load_settings, trial_folder, trial_state_dir

EX_CONFIG = 78  # sysexits.h; the unit does not restart on it: a restart cannot fix a configuration


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="watch ingest folders and anonymize what arrives",
        description="Watch the configured ingest folders and anonymize whatever arrives. Without --config, "
                    "--ingest/--output run a trial with the default profile; otherwise the configuration is "
                    f"read from $VEIL_CONFIG or {SYSTEM_CONFIG}.")
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--ingest", type=Path, help="trial: the folder to watch")
    parser.add_argument("--output", type=Path, help="trial: where clean results go")
    parser.add_argument("--review", type=Path, help="trial: results that need review (default: sibling of OUTPUT)")
    parser.add_argument("--failed", type=Path, help="trial: inputs that failed (default: sibling of OUTPUT)")
    parser.add_argument("--workers", type=int, help="number of worker processes (overrides the configuration)")
    parser.set_defaults(handler=run)


def config_path_for(args: argparse.Namespace) -> Path | None:
    if args.config is not None:
        return args.config
    if getattr(args, "ingest", None) is not None:
        return None  # a trial needs no file
    env = os.environ.get("VEIL_CONFIG")
    return Path(env) if env else SYSTEM_CONFIG


def overrides_for(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if (args.ingest is None) != (args.output is None):
        raise ConfigError("--ingest and --output go together")
    if args.ingest is not None:
        overrides["folders"] = [trial_folder(args.ingest, args.output, args.review, args.failed)]
    elif args.review is not None or args.failed is not None:
        raise ConfigError("--review and --failed only go with --ingest/--output")
    return overrides


def load_for(args: argparse.Namespace) -> tuple[Path | None, dict[str, Any], Settings]:
    """The configuration file, the command-line overrides and the settings of ``args``. A trial
    (--ingest/--output) keeps its state in ``<output's parent>/.veil-state`` unless service.state_dir is set
    (VEIL_SERVICE__STATE_DIR). Raises ConfigError."""
    path = config_path_for(args)
    overrides = overrides_for(args)
    settings = load_settings(path, **overrides)
    if "folders" in overrides and settings.service.state_dir is None:
        overrides["service"] = {"state_dir": trial_state_dir(args.output)}
        settings = load_settings(path, **overrides)
    return path, overrides, settings


def run(args: argparse.Namespace) -> int:
    log.configure()
    if args.workers is not None:
        # Through the environment, so it merges with the file's [service] table and survives a reload.
        os.environ["VEIL_SERVICE__WORKERS"] = str(args.workers)
    try:
        path, overrides, settings = load_for(args)
    except ConfigError as exc:
        log.get().error("config_invalid", error=str(exc))
        print(f"veil serve: invalid configuration: {exc}", file=sys.stderr)
        return EX_CONFIG
    log.configure(settings.service.log_level, log_file_names=settings.service.log_file_names)
    from daemon.service.lifecycle import Service

    return Service(settings, config_path=path, overrides=overrides).run()
