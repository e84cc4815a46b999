"""Files of review/ and spotcheck/ without following links: a link there could point at an original.

``confined`` says whether a path is itself no link and resolves inside its folder (for listing items);
``open_confined`` opens a regular file below its folder one component at a time with ``O_NOFOLLOW``, so a link
swapped in after the listing is refused too. The folder itself comes from the configuration and may be a link.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO must not hang us


class NotConfined(LookupError):
    """The path is a link, leaves its folder, or is not a regular file: as good as absent (a 404)."""


def confined(root: Path, path: Path) -> bool:
    """No link at ``path`` or between it and ``root``: its real path is ``root``'s real path joined with it."""
    try:
        rel = path.relative_to(root)
        return bool(rel.parts) and os.path.realpath(path) == os.path.join(os.path.realpath(root), rel)
    except (OSError, ValueError):
        return False


def _parts(root: Path, path: Path) -> tuple[str, ...]:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise NotConfined("outside its folder") from None
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise NotConfined("not a file of its folder")
    return parts


def open_confined(root: Path, path: Path) -> int:
    """A file descriptor of the regular file ``path`` below ``root``, no link followed below ``root``."""
    parts = _parts(root, path)
    try:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise NotConfined(f"cannot open its folder: {exc.strerror}") from None
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS, dir_fd=folder)
            os.close(folder)
            folder = inner
        fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=folder)
    except OSError as exc:
        raise NotConfined(f"cannot open: {exc.strerror}") from None
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotConfined("not a regular file")
    return fd


def read_confined(root: Path, path: Path, limit: int | None = None) -> bytes:
    """The bytes of ``path`` (at most ``limit``), opened as ``open_confined`` does."""
    with os.fdopen(open_confined(root, path), "rb") as handle:
        return handle.read() if limit is None else handle.read(limit)
