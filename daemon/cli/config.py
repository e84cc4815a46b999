"""``veil config check [FILE]``: validate a configuration, naming the bad key and value."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon.config.settings import SYSTEM_CONFIG, ConfigError, Settings, load_settings


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
    for line in missing_folders(settings):
        print(f"warning: {line}", file=sys.stderr)
    return 0


def missing_folders(settings: Settings) -> list[str]:
    """Configured folders that do not exist (yet). ``veil serve`` creates them where it may, but under systemd
    only ``install.sh --system`` does, and a missing ReadWritePaths entry stops the unit from starting."""
    lines = []
    for folder in settings.folders:
        named = {"ingest": folder.ingest, "output": folder.output, "review": folder.review_dir,
                 "failed": folder.failed_dir, "originals": folder.originals_dir, "spotcheck": folder.spotcheck_dir,
                 "rework": folder.rework_dir}
        for role, path in named.items():
            if not path.is_dir():
                what = "is not a folder" if path.exists() else "does not exist"
                lines.append(f"folder {folder.name!r}: {role} {path} {what}")
    return lines


def show_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.path)
    except ConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(settings.model_dump_json(indent=2))
    return 0
