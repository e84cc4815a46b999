"""The anchor tool, deface 1.5.0, in venvs of its own (it pins old packages: never install it into Veil's).

Two variants, because deface picks its inference backend by what is importable:
- ``plain``: ``pip install deface==1.5.0`` and nothing else. deface's ``--backend auto`` then finds no
  onnxruntime and runs CenterFace through OpenCV's DNN module. This is deface as a user gets it by default.
- ``ort``: the same plus ``onnx`` and ``onnxruntime``, which deface's ``auto`` prefers (its faster path, and
  the same runtime Veil uses), so the comparison is not won on the runtime alone.

deface is run on a folder without ``-o``: with several inputs its ``-o`` names one output file that every
image overwrites, so each result goes beside its input as ``NAME_anonymized.EXT`` instead.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

DEFACE_VERSION = "1.5.0"
WORK = Path(__file__).resolve().parent / ".work"
VARIANTS = {
    "plain": ("deface-venv", [f"deface=={DEFACE_VERSION}"]),
    "ort": ("deface-ort-venv", [f"deface=={DEFACE_VERSION}", "onnx", "onnxruntime"]),
}
OUTPUT_SUFFIX = "_anonymized"


@dataclass(frozen=True)
class Deface:
    variant: str
    venv: Path

    @property
    def executable(self) -> Path:
        return self.venv / "bin" / "deface"

    def command(self, folder: Path) -> list[str]:
        """deface with its default settings (threshold 0.2, mask scale 1.3, ellipse, blur) on a folder."""
        return [str(self.executable), str(folder)]

    def packages(self) -> str:
        """name==version of what is installed in the venv (for the printed report)."""
        listing = subprocess.run(
            [str(self.venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        wanted = ("deface", "onnxruntime", "opencv-python", "numpy")
        return " ".join(p for p in listing if p.split("==")[0].lower() in wanted)


def output_for(image: Path) -> Path:
    """Where deface writes the result for ``image`` when run without ``-o``."""
    return image.with_name(f"{image.stem}{OUTPUT_SUFFIX}{image.suffix}")


def ensure_deface(variant: str = "plain", work: Path = WORK) -> Deface:
    """Create the variant's venv under ``work`` once (needs the package index the first time)."""
    venv_name, requirements = VARIANTS[variant]
    deface = Deface(variant, work / venv_name)
    if deface.executable.exists():
        return deface
    work.mkdir(parents=True, exist_ok=True)
    print(f"creating {deface.venv} and installing {' '.join(requirements)} ...", flush=True)
    subprocess.run(["python3", "-m", "venv", str(deface.venv)], check=True)
    pip = [str(deface.venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *requirements], check=True)
    return deface

