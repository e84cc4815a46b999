"""``veil config check [FILE]``: validate a configuration, naming the bad key and value."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon.settings import SYSTEM_CONFIG, ConfigError, load_settings


def register(subparsers) -> None:
    parser = subparsers.add_parser("config", help="check the configuration")
    sub = parser.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate a configuration file (and VEIL_... variables)")
    check.add_argument("path", nargs="?", type=Path, default=SYSTEM_CONFIG, help=f"default: {SYSTEM_CONFIG}")
    check.set_defaults(handler=check_config)
    show = sub.add_parser("show", help="print the effective configuration as JSON")
    show.add_argument("path", nargs="?", type=Path, default=SYSTEM_CONFIG, help=f"default: {SYSTEM_CONFIG}")
    show.set_defaults(handler=show_config)


def check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.path)
    except ConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    folders = ", ".join(f"{f.name} ({f.ingest})" for f in settings.folders)
    print(f"ok: {args.path}: {len(settings.folders)} folder(s): {folders}; {settings.service.workers} worker(s)")
    return 0


def show_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.path)
    except ConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(settings.model_dump_json(indent=2))
    return 0
