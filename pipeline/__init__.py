"""Veil's processing library: detect, track and mask faces and licence plates in files and arrays.

It knows nothing about services: ``process_file(src, dst, params, engine, name=...)`` works in a REPL.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("veil")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
