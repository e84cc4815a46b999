"""Veil's processing library: detect, track and mask faces and licence plates in files and arrays.

It knows nothing about services: ``process_file(src, dst, params, engine, name=...)`` works in a REPL.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# Official onnxruntime builds (1.29+) collect telemetry on Linux too and queue it for upload to Microsoft
# (a device id and an event store under ~/.cache/Microsoft). No network at run time: switched off before
# anything loads onnxruntime. The variable is read by the library, and inherited by worker processes.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

try:
    __version__ = version("veil")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
