"""``veil COMMAND``: the parser holds only that command, so a run imports only its own module (the others'
libraries cost a second or more a start); ``veil`` alone or ``veil --help`` lists every command."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from daemon.cli import COMMANDS, build_parser


def commands_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


def test_veil_alone_lists_every_command_in_order():
    for first in (None, "--help", "no-such-command"):
        assert list(commands_of(build_parser(first))) == list(COMMANDS)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_alone_parses_as_it_does_among_all(command):
    alone = commands_of(build_parser(command))
    assert list(alone) == [command]
    assert alone[command].format_help() == commands_of(build_parser())[command].format_help()


def imported_after(call: str) -> tuple[set[str], bool]:
    """The ``daemon.cli`` modules a fresh process has imported after ``call``, and whether SciPy's statistics."""
    probe = (f"import json, sys; from daemon.cli import build_parser; {call}; "
             "print(json.dumps([[m for m in sys.modules if m.startswith('daemon.cli.')], 'scipy.stats' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    modules, scipy_stats = json.loads(out)
    return set(modules), scipy_stats


def test_a_run_of_one_command_imports_no_other_commands_module():
    assert imported_after("build_parser('process')") == ({"daemon.cli.process"}, False)  # no drift statistics
    every, _ = imported_after("build_parser()")
    assert set(COMMANDS.values()) <= every


def test_eval_video_reads_a_mid_shot_roll_as_two_frames_in_order():
    parser = build_parser("eval-video")
    assert parser.parse_args(["eval-video", "--tilt", "45", "--tilt-over", "40,55"]).tilt_over == (40, 55)
    assert parser.parse_args(["eval-video"]).tilt_over == (0, 0)  # askew from the start, if at all
    for wrong in ("55,40", "40", "a,b"):
        with pytest.raises(SystemExit):
            parser.parse_args(["eval-video", "--tilt-over", wrong])
