"""A process's start with the shipped engine: the models' graphs rewritten at load (an empty graph cache:
the onnx library imported, int8 quantized) against read back from the cache (``pipeline/detect/graph_cache.py``),
rounds alternating, each in a fresh process.

    .venv/bin/python bench/startup.py [--rounds 5]

Prints each round's seconds for ``Engine.load`` at ``Params()`` and ``veil process`` of one photo, the medians
and their ratio (warm over cold). Without VNNI the default models run in float32 and nothing is quantized:
the script says so, and only the onnx import is saved.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
VEIL = Path(sys.executable).with_name("veil")
LOAD = """
import time
started = time.perf_counter()
from pipeline.detect.engine import Engine
from pipeline.detect.runtime import RuntimeParams
from pipeline.params import Params
engine = Engine.load(Params().detector, RuntimeParams())
print(time.perf_counter() - started, *(r.precision for r in engine.model_records))
"""


def engine_load(cache: Path) -> tuple[float, str]:
    """Seconds to import and load the shipped engine in a fresh process, and the models' precisions."""
    out = subprocess.run([sys.executable, "-c", LOAD], env={**os.environ, "CACHE_DIRECTORY": str(cache)},
                         check=True, capture_output=True, text=True, cwd=REPO).stdout.split()
    return float(out[0]), " ".join(out[1:])


def veil_process(cache: Path, photo: Path, out: Path) -> float:
    """Wall seconds of ``veil process PHOTO -o OUT`` with no other flag."""
    started = time.perf_counter()
    subprocess.run([str(VEIL), "process", str(photo), "-o", str(out)], env={**os.environ, "CACHE_DIRECTORY": str(cache)},
                   check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="veil-startup-") as folder:
        root = Path(folder)
        photo = root / "street.jpg"  # a plain 1280x720 picture: the start, not the detection, is measured
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)).save(photo)
        warm = root / "warm"
        _, precisions = engine_load(warm)  # fills the warm cache
        print(f"models: {precisions}" + ("" if "int8" in precisions else " (no int8 here: nothing quantized)"))
        times: dict[str, list[float]] = {"load cold": [], "load warm": [], "process cold": [], "process warm": []}
        for n in range(args.rounds):
            for state in ("cold", "warm"):
                cache = warm if state == "warm" else root / f"cold-{n}"
                times[f"load {state}"].append(engine_load(cache)[0])
                cache = warm if state == "warm" else root / f"cold-{n}-process"
                times[f"process {state}"].append(veil_process(cache, photo, root / f"out-{n}-{state}"))
            print(f"round {n + 1}: " + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in times.items()))
        medians = {name: statistics.median(values) for name, values in times.items()}
        for what in ("load", "process"):
            print(f"{what}: cold {medians[f'{what} cold']:.2f} s, warm {medians[f'{what} warm']:.2f} s, "
                  f"warm/cold {medians[f'{what} warm'] / medians[f'{what} cold']:.2f}")


if __name__ == "__main__":
    main()
