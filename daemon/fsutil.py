"""Durable file operations: write to a temporary name, fsync, then link or rename into place.

``publish`` never overwrites: it links the finished temporary file to its final name, which fails if the name
exists. A reader of the destination folder therefore sees either nothing or a complete file.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsync_open_dir(fd)
    finally:
        os.close(fd)


def fsync_open_dir(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:  # some network filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise


@contextmanager
def folder_within(root: Path, rel: Path) -> Iterator[int]:
    """A handle on the folder ``rel`` inside ``root`` (an ingest folder), opened one name at a time, never
    through a symbolic link. A folder on the way swapped for a link would make a rename or link by path take a
    file from outside the share, or put one there; through this handle, a swap after the check moves nothing."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in rel.parts:
            try:
                inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as exc:  # a link gives ENOTDIR (O_DIRECTORY) or ELOOP (O_NOFOLLOW)
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and stat.S_ISLNK(os.lstat(name, dir_fd=fd).st_mode):
                    raise OSError(errno.ELOOP, "a folder on the path is a symbolic link") from None
                raise
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def _temp_name(final: Path, tag: str | None = None) -> Path:
    # A dot-name: Veil's own watchers ignore it, and so do most consumers of the destination folder.
    return final.with_name(f".{final.name}.{tag or uuid.uuid4().hex[:8]}.veil-tmp")


def _own_temp(final: Path, tag: str | None) -> Path:
    """With a tag (a job id), the temporary name is the same on every try: a try cut short by kill -9 left
    it behind, and it is ours to remove now instead of lying in the destination folder for ever."""
    tmp = _temp_name(final, tag)
    if tag:
        tmp.unlink(missing_ok=True)
    return tmp


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (for Veil's own state files, never for outputs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _link_no_overwrite(tmp: Path, final: Path) -> None:
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # No hard links here (some SMB mounts): check-then-rename, the best such a filesystem allows.
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, "exists", str(final)) from None
        os.rename(tmp, final)
        return
    os.unlink(tmp)


def publish_bytes(data: bytes, final: Path, tag: str | None = None) -> None:
    """Write ``data`` as ``final``, durably; FileExistsError if ``final`` exists (it is left untouched)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    _write_via_temp(final, tag, lambda handle: handle.write(data))


def _write_via_temp(final: Path, tag: str | None, write) -> None:
    """Write through a temporary name (``write(handle)``), fsync, link into place without overwriting."""
    tmp = _own_temp(final, tag)
    try:
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        _link_no_overwrite(tmp, final)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    fsync_dir(final.parent)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_file(src: Path, final: Path, tag: str | None = None) -> None:
    """Put ``src``'s content at ``final``, durably; FileExistsError if ``final`` exists (left untouched).

    On one filesystem this is a hard link (instant, even for a large video; ``src`` stays); otherwise a copy
    to a temporary name that is then linked into place.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    _fsync_file(src)  # the writer (the pipeline) need not have synced it
    try:
        os.link(src, final)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    else:
        fsync_dir(final.parent)
        return
    with open(src, "rb") as reader:
        _write_via_temp(final, tag, lambda writer: shutil.copyfileobj(reader, writer, 1 << 20))


def move_file(src: Path, final: Path) -> None:
    """Move ``src`` to ``final`` without overwriting: a rename on one filesystem, else a durable copy."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, final)
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            raise
        publish_file(src, final)
    fsync_dir(final.parent)
    os.unlink(src)
    fsync_dir(src.parent)


def same_content(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                ca, cb = fa.read(1 << 20), fb.read(1 << 20)
                if ca != cb:
                    return False
                if not ca:
                    return True
    except OSError:
        return False
