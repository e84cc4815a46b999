"""The ``veil`` command. Each subcommand lives in its own module with a ``register(subparsers)``.

The only place that parses arguments. It may import every other daemon package; nothing imports it.
"""

from __future__ import annotations

import argparse
import importlib

# Modules that register subcommands, in the order they appear in --help.
COMMAND_MODULES = (
    "daemon.cli.process",
    "daemon.cli.eval",
    "daemon.cli.eval_video",
    "daemon.cli.models",
    "daemon.cli.serve",
    "daemon.cli.worker",
    "daemon.cli.config",
    "daemon.cli.status",
    "daemon.cli.review",
    "daemon.cli.drift",
    "daemon.cli.audit",
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
