"""Pack what bench/gpu.py needs on a GPU machine with no network, in two parts of at most 64 MiB each.

    python bench/gpu_bundle.py --clips /tmp/clips --out .dev       # here, after bench/gpu.py --render /tmp/clips

The device machines this project is lent (an H200 with 16 cores; Python 3.12, PyTorch with CUDA 13 and
cuDNN, NumPy, OpenCV and onnx, but no onnxruntime-gpu and none of Veil's other packages) take at most 64 MiB a
call, and onnxruntime-gpu's wheel alone is 256 MB. So:

- ``OUT/a`` (the first call): onnxruntime-gpu, with the GPU code of every architecture but the target's zeroed
  (``--sm``, 90 for Hopper), and with the kernels not built for the oldest architecture zeroed too: those
  are the language-model kernels (flash attention, mixture-of-experts GEMMs), which need a newer GPU's
  instructions and which Veil's two convolutional networks never call. The headers stay, so the library loads as it was built; zeroed code compresses to
  nothing, and the 285 MB CUDA provider packs to about 31 MB. Also the models, and ``setup.sh``, which
  unpacks both into /tmp and checks that CUDA runs each model as the CPU does.
- ``OUT/b`` (the second call, on the same warm machine): the other wheels Veil imports (PyAV, pydantic, ...),
  the clips, a few photos for bench/batching.py, and ``bench.sh``, which runs bench/host_ceiling.py,
  bench/gpu_trace.py, bench/gpu.py and bench/batching.py, and leaves their logs in the call's $OUT.

bench/README.md ("gpu.py") gives the two calls. Only the benchmark uses this: a GPU host installs Veil with
``./install.sh --gpu`` (docs/operations.md).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.detect.catalogue import default_model_dir

from bench.batching import sample_photos

PART_LIMIT = 64 * 2**20  # what one call may carry, the repository's own files included
PLATFORM = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:", "--platform",
            "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64"]
# Veil's imports the device's image lacks, at the versions this checkout runs with.
WHEELS = ("av", "pydantic", "pydantic-core", "pydantic-settings", "annotated-types", "typing-inspection",
          "typing-extensions", "python-dotenv", "structlog", "pillow", "pillow-heif")
FATBIN_MAGIC = 0xBA55ED50  # a fat binary's header in the .nv_fatbin section: one per compiled CUDA file


def download(requirement: str, into: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *PLATFORM, "-d", str(into), requirement],
                   check=True)
    name = requirement.split("==")[0].replace("-", "_").lower()
    return next(p for p in into.glob("*.whl") if p.name.lower().startswith(name + "-"))  # not pillow_heif for pillow


def fatbin_section(library: bytes) -> tuple[int, int]:
    """(offset, size) of the ELF section ``.nv_fatbin``."""
    shoff, = struct.unpack_from("<Q", library, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", library, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", library, shoff + i * shentsize) for i in range(shnum)]
    names_at = sections[shstrndx][4]
    for name, _type, _flags, _addr, offset, size in sections:
        end = library.index(b"\0", names_at + name)
        if library[names_at + name:end] == b".nv_fatbin":
            return offset, size
    raise SystemExit("no .nv_fatbin section: not a CUDA library")


def fat_binaries(library: bytes) -> list[list[tuple[int, int, int]]]:
    """Each fat binary's GPU binaries, as (payload offset, padded size, architecture)."""
    start, size = fatbin_section(library)
    found, position = [], start
    while position < start + size:
        magic, _version, header, body = struct.unpack_from("<IHHQ", library, position)
        if magic != FATBIN_MAGIC:
            position += 8  # alignment padding between fat binaries
            continue
        entries, entry = [], position + header
        while entry < position + header + body:
            _kind, _entry_version, entry_header, padded = struct.unpack_from("<HHIQ", library, entry)
            arch, = struct.unpack_from("<I", library, entry + 28)
            entries.append((entry + entry_header, padded, arch))
            entry += entry_header + padded
        found.append(entries)
        position += header + body
    return found


def keep_only_arch(library: bytearray, sm: int) -> tuple[int, int]:
    """Zero every GPU binary but ``sm``'s, and the fat binaries not built for the oldest architecture the
    library supports (kernels that need a newer GPU's instructions). Returns (bytes kept, bytes zeroed)."""
    binaries = fat_binaries(bytes(library))
    oldest = min(arch for entries in binaries for _, _, arch in entries)
    kept = zeroed = 0
    for entries in binaries:
        general = any(arch == oldest for _, _, arch in entries)
        for payload, padded, arch in entries:
            if arch == sm and general:
                kept += padded
            else:
                library[payload:payload + padded] = bytes(padded)
                zeroed += padded
    return kept, zeroed


def pack_onnxruntime(version: str, sm: int, out: Path, scratch: Path) -> None:
    wheel = download(f"onnxruntime-gpu=={version}", scratch)
    unpacked = scratch / "ort"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    capi = unpacked / "onnxruntime" / "capi"
    for unused in [*capi.glob("libonnxruntime.so*"), *capi.glob("libonnxruntime_providers_tensorrt.so")]:
        unused.unlink()  # the Python module holds the runtime itself; TensorRT is not used
    provider = capi / "libonnxruntime_providers_cuda.so"
    library = bytearray(provider.read_bytes())
    kept, zeroed = keep_only_arch(library, sm)
    provider.write_bytes(library)
    print(f"CUDA provider: sm_{sm} code kept {kept / 1e6:.1f} MB, the rest zeroed {zeroed / 1e6:.1f} MB")
    with tarfile.open(out / "onnxruntime-gpu.tar.xz", "w:xz", preset=9) as tar:
        for path in sorted(unpacked.iterdir()):
            tar.add(path, arcname=path.name)


def pack_photos(eval_root: Path, out: Path, count: int) -> None:
    """The photos bench/batching.py would pick, with their annotations, as a small evaluation root."""
    for path in sample_photos(eval_root, count):
        relative = Path(path).relative_to(eval_root)
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    for set_dir in out.iterdir():
        data = json.loads((eval_root / set_dir.name / "annotations.json").read_text())
        present = {p.relative_to(set_dir / "images").as_posix() for p in (set_dir / "images").rglob("*") if p.is_file()}
        data["images"] = [i for i in data["images"] if i["file_name"] in present]
        ids = {i["id"] for i in data["images"]}
        data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
        (set_dir / "annotations.json").write_text(json.dumps(data))


SETUP = """#!/bin/bash
# First call: unpack onnxruntime-gpu and the models into /tmp (kept while the machine stays warm), then check
# that CUDA runs each model as the CPU does.
set -u
mkdir -p /tmp/site /tmp/veil-models
tar xJf "$(dirname "$0")/onnxruntime-gpu.tar.xz" -C /tmp/site || exit 2
cp "$(dirname "$0")"/models/*.onnx /tmp/veil-models/ || exit 2
nvidia-smi -L; nproc; grep -o -m1 avx512_vnni /proc/cpuinfo; python3 --version
export PYTHONPATH=/tmp/site CUDA_MODULE_LOADING=LAZY
python3 - <<'PY' 2>&1 | grep -v W:onnx
import torch  # noqa: F401  its CUDA libraries
import numpy as np
import onnxruntime as ort
print("onnxruntime", ort.__version__, ort.get_available_providers())
for name in ("centerface", "platedet"):
    outputs = {}
    for provider in ("CUDAExecutionProvider", "CPUExecutionProvider"):
        session = ort.InferenceSession(f"/tmp/veil-models/{name}.onnx", providers=[provider])
        given = session.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in given.shape]
        pixels = np.random.default_rng(0).random(shape).astype(np.float16 if "16" in given.type else np.float32)
        outputs[provider] = session.run(None, {given.name: pixels})[0].astype(np.float32)
    print(name, "runs on", session.get_providers()[0], "and CUDA; largest difference",
          float(np.abs(outputs["CUDAExecutionProvider"] - outputs["CPUExecutionProvider"]).max()))
PY
"""

BENCH = """#!/bin/bash
# Second call, on the same warm machine: the other packages, then Veil on the clip and with its networks free
# (bench/host_ceiling.py: one stream end to end, and what the host allows), the trace, bench/gpu.py (its networks
# alone were measured on 4 December: --skip-models) and the engine on photos (bench/batching.py --photos-only).
set -u -o pipefail
here="$(dirname "$0")"
test -f /tmp/site/onnxruntime/__init__.py || { echo "a fresh machine: the first call's files are gone"; exit 3; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site2 "$here"/wheels/*.whl || exit 2
export PYTHONPATH=/tmp/site:/tmp/site2 CUDA_MODULE_LOADING=LAZY PYTHONUNBUFFERED=1
clip=$(ls "$here"/clips/*.mp4 | head -1)
timeout "${CEILING_S:-100}" python3 bench/host_ceiling.py --clip "$clip" --device cuda --model-dir /tmp/veil-models \\
    --rounds 1 2>&1 | grep -v W:onnx | tee "$OUT/ceiling.log"
timeout "${TRACE_S:-150}" python3 bench/gpu_trace.py --clip "$clip" --model-dir /tmp/veil-models \\
    --limit-s "${TRACE_LIMIT_S:-140}" 2>&1 | grep -v W:onnx | tee "$OUT/trace.log"
timeout "${GPU_S:-300}" python3 bench/gpu.py --clips "$here/clips" --model-dir /tmp/veil-models --cpu --skip-models \\
    --json "$OUT/gpu.json" 2>&1 | grep -v W:onnx | tee "$OUT/gpu.log"
timeout "${BATCH_S:-100}" python3 bench/batching.py --device cuda --photos-only --eval-root "$here/eval" \\
    --model-dir /tmp/veil-models 2>&1 | grep -v W:onnx | tee "$OUT/batching.log"
"""


def write_script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def repository_bytes() -> int:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.split(b"\0")
    return sum((REPO / name.decode()).stat().st_size for name in listed if name and (REPO / name.decode()).is_file())


def part_bytes(part: Path) -> int:
    return sum(p.stat().st_size for p in part.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="a folder git ignores, inside the repository (.dev)")
    parser.add_argument("--clips", type=Path, required=True, help="clips from bench/gpu.py --render")
    parser.add_argument("--ort-version", default="1.31.1")
    parser.add_argument("--sm", type=int, default=90, help="the GPU's architecture: 90 for the H100 and H200")
    parser.add_argument("--eval-root", type=Path, default=REPO / ".." / "shared" / "eval")
    parser.add_argument("--photos", type=int, default=8)
    args = parser.parse_args()
    first, second = args.out / "a", args.out / "b"
    for part in (first, second):
        shutil.rmtree(part, ignore_errors=True)
    (first / "models").mkdir(parents=True)
    (second / "wheels").mkdir(parents=True)
    with tempfile.TemporaryDirectory() as scratch:
        pack_onnxruntime(args.ort_version, args.sm, first, Path(scratch))
    for model in ("centerface.onnx", "platedet.onnx"):
        shutil.copy(default_model_dir() / model, first / "models" / model)
    write_script(first / "setup.sh", SETUP)
    for name in WHEELS:
        download(f"{name}=={importlib.metadata.version(name)}", second / "wheels")
    shutil.copytree(args.clips, second / "clips", ignore=shutil.ignore_patterns("*.partial"))
    pack_photos(args.eval_root, second / "eval", args.photos)
    write_script(second / "bench.sh", BENCH)
    repository = repository_bytes()
    for part in (first, second):
        total = repository + part_bytes(part)
        verdict = "fits" if total <= PART_LIMIT else "TOO LARGE"
        print(f"{part}: {part_bytes(part) / 2**20:.1f} MiB + the repository {repository / 2**20:.1f} MiB: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
