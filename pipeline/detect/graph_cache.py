"""Rewritten model graphs kept on disk from one process to the next.

Rewriting the two default models for their sessions (quantizing them to int8 above all) took about 4 s of CPU
(2 cores), and every process that loads an engine paid it again: each service worker at its start and after
a restart or a model reload, each ``veil process`` and ``veil eval``. A graph depends only on what its key
names (``pipeline.detect.onnx``: the model file, the rewrites, their code, the library versions), so it is
kept under that key.

The folder: ``$CACHE_DIRECTORY`` (systemd's ``CacheDirectory=veil``: /var/cache/veil), else
``$XDG_CACHE_HOME/veil``, else ``~/.cache/veil``; files under ``graphs/``. A file's name holds its key and the
SHA-256 of its content: one that does not hash to its name (a torn or damaged file) is built again and
replaced. Files are written whole (a temporary file, flushed, renamed), so processes starting together
never read half of one. A folder that cannot be made, read or written costs only the time: the graph is built
in memory, as before. Removing the folder is always safe. Files unused for ``UNUSED_DAYS``, and temporary
files a killed process left, go when the next one is written.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

UNUSED_DAYS = 30
PART_HOURS = 1  # a temporary file this old was left by a process killed while writing it
_SUFFIX = ".onnx"


def cache_folder(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the graphs are kept (see the module's text)."""
    if environ.get("CACHE_DIRECTORY"):  # systemd may list several, separated by colons: the first is Veil's
        return Path(environ["CACHE_DIRECTORY"].split(":")[0]) / "graphs"
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]) / "veil" / "graphs"
    return Path(environ.get("HOME") or Path.home()) / ".cache" / "veil" / "graphs"


def key_of(*parts: str | bytes) -> str:
    """A key for ``cached`` made of everything a graph depends on."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little") + data)  # lengths first: ("ab", "c") != ("a", "bc")
    return digest.hexdigest()[:32]


def cached(key: str, build: Callable[[], bytes], folder: Path | None = None) -> bytes:
    """The bytes ``build`` makes for ``key``: from ``folder`` (``cache_folder()`` when None) where a sound copy
    is kept, else built now and kept for the next process."""
    folder = cache_folder() if folder is None else folder
    kept = _read(folder, key)
    if kept is not None:
        return kept
    data = build()
    _write(folder, key, data)
    return data


def _read(folder: Path, key: str) -> bytes | None:
    try:
        candidates = sorted(folder.glob(f"{key}-*{_SUFFIX}"))
    except OSError:
        return None
    for path in candidates:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if path.name == _name(key, data):
            _touch(path)
            return data
    return None


def _write(folder: Path, key: str, data: bytes) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(prefix=".", suffix=".part", dir=folder)
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        target = folder / _name(key, data)
        os.replace(temporary, target)
        for stale in folder.glob(f"{key}-*{_SUFFIX}"):  # a damaged copy this one replaces
            if stale != target:
                stale.unlink(missing_ok=True)
        _forget_unused(folder)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


def _name(key: str, data: bytes) -> str:
    return f"{key}-{hashlib.sha256(data).hexdigest()[:32]}{_SUFFIX}"


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # a folder it may read but not write: the file just ages
        pass


def _forget_unused(folder: Path) -> None:
    now = time.time()
    for pattern, age_s in ((f"*{_SUFFIX}", UNUSED_DAYS * 86400), (".*.part", PART_HOURS * 3600)):
        for path in folder.glob(pattern):
            try:
                if path.stat().st_mtime < now - age_s:
                    path.unlink()
            except OSError:
                continue
