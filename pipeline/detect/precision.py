"""Which precision a default model may run in on this machine: whether the CPU's 8-bit kernels are exact,
and the quantization ranges Veil ships (``pipeline.detect.int8`` rewrites a graph with them). Kept apart from
the rewriting, which needs the onnx library: loading an engine from its kept graphs does not.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import QuantizationError

CALIBRATION_DIR = Path(__file__).with_name("calibration")


# x86 instruction-set extensions with which onnxruntime's 8-bit kernels add their products exactly. Without
# one, the kernels add pairs of uint8 x int8 products in 16 bits (VPMADDUBSW) and saturate: on an AVX2-only
# EPYC, CenterFace's scores at faces turned sideways fell from 0.44-0.80 in float32 to 0.23-0.29, under its
# threshold (3 December); on the AVX-512 VNNI EPYC of the day before, the same faces were masked in int8.
EXACT_INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def exact_int8_kernels(cpuinfo: str | None = None) -> bool:
    """Whether this CPU runs 8-bit inference without saturating: an x86 CPU with one of ``EXACT_INT8_FLAGS``
    (``cpuinfo``: the text of /proc/cpuinfo; read from there when None). Any other CPU, or none that can be
    told, is not."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return bool(EXACT_INT8_FLAGS & set(flags))


def calibration_for(digest: str) -> Path:
    """The shipped ranges of the model file with this SHA-256; a QuantizationError where there are none."""
    path = CALIBRATION_DIR / f"{digest}.json"
    if not path.is_file():
        raise QuantizationError(f"int8 asked for a model Veil has no calibration for (sha256 {digest[:16]}...): "
                                f"set int8 = false for it, or calibrate it with tools/calibrate_int8.py")
    return path
