"""The ``veil`` command. Each subcommand lives in its own module with a ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that register subcommands, in the order they appear in --help.
COMMAND_MODULES = (
    "daemon.cmd_process",
    "daemon.cmd_eval",
    "daemon.cmd_eval_video",
    "daemon.cmd_models",
    "daemon.cmd_serve",
    "daemon.cmd_config",
    "daemon.cmd_status",
    "daemon.cmd_review",
    "daemon.drift.cmd_drift",
    "daemon.cmd_audit",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="veil", description="Anonymize faces and licence plates in photos and videos.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
