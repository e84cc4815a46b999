"""The ``veil`` command. Each subcommand lives in its own module with a ``register(subparsers)``.

The only place that parses arguments. It may import every other daemon package; nothing imports it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each subcommand and the module that registers it, in the order they appear in --help.
COMMANDS = {
    "process": "daemon.cli.process",
    "eval": "daemon.cli.eval",
    "eval-video": "daemon.cli.eval_video",
    "models": "daemon.cli.models",
    "serve": "daemon.cli.serve",
    "worker": "daemon.cli.worker",
    "config": "daemon.cli.config",
    "status": "daemon.cli.status",
    "review": "daemon.cli.review",
    "drift": "daemon.cli.drift",
    "audit": "daemon.cli.audit",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of ``command`` alone where it names one: importing them all took
    1.5 s more than ``veil process`` needs (the drift statistics' SciPy above all)."""
    parser = argparse.ArgumentParser(prog="veil", description="Anonymize faces and licence plates in photos and videos.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in [COMMANDS[command]] if command in COMMANDS else COMMANDS.values():
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    return int(args.handler(args) or 0)
