"""``veil models``: list the detector models with their task, source, licence and checksum."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.models import DEFAULT_MODELS, default_model_dir, sha256_of


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list the detector models and verify them", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    model_dir = args.model_dir or default_model_dir()
    print(f"model directory: {model_dir}")
    broken = 0
    for model in DEFAULT_MODELS:
        path = model_dir / model.file_name
        if not path.is_file():
            state, broken = "MISSING (run ./install.sh)", broken + 1
        elif sha256_of(path) != model.sha256:
            state, broken = "CHECKSUM MISMATCH", broken + 1
        else:
            state = "ok"
        print(f"\n{model.name}  [{state}]")
        print(f"  task     {model.task} ({model.family})")
        print(f"  source   {model.wheel} from the package registry, member {model.member}")
        print(f"  license  {model.license}")
        print(f"  sha256   {model.sha256}")
    return 1 if broken else 0
