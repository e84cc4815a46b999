"""The graphs kept on disk between processes: built once per key, rebuilt where a copy is damaged, written
whole, and never in the way where the folder cannot be used."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipeline.detect.graph_cache import UNUSED_DAYS, cache_folder, cached, key_of


class Builds:
    """A ``build`` that counts its calls."""

    def __init__(self, data: bytes) -> None:
        self.data, self.calls = data, 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.data


def test_a_graph_is_built_once_and_read_back_by_the_next_caller(tmp_path):
    build = Builds(b"graph one")
    assert cached("k1", build, tmp_path) == b"graph one"
    assert cached("k1", Builds(b"never built"), tmp_path) == b"graph one"
    assert build.calls == 1
    assert cached("k2", Builds(b"graph two"), tmp_path) == b"graph two"  # another key, another graph
    assert len(list(tmp_path.glob("*.onnx"))) == 2
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


@pytest.mark.parametrize("damage", ["flipped", "torn", "empty"])
def test_a_damaged_copy_is_built_again_and_replaced(tmp_path, damage):
    cached("k", Builds(b"the graph's bytes"), tmp_path)
    (kept,) = tmp_path.glob("k-*.onnx")
    data = kept.read_bytes()
    kept.write_bytes({"flipped": bytes([data[0] ^ 1]) + data[1:], "torn": data[:5], "empty": b""}[damage])
    build = Builds(b"the graph's bytes")
    assert cached("k", build, tmp_path) == b"the graph's bytes"
    assert build.calls == 1
    assert [p.read_bytes() for p in tmp_path.glob("k-*.onnx")] == [b"the graph's bytes"]


def test_a_folder_that_cannot_be_made_costs_only_the_time(tmp_path):
    blocked = tmp_path / "a file"
    blocked.write_bytes(b"")  # a file where the folder should be (root may write anywhere: this stops it too)
    build = Builds(b"graph")
    assert cached("k", build, blocked / "graphs") == b"graph"
    assert cached("k", build, blocked / "graphs") == b"graph"
    assert build.calls == 2


def test_files_unused_for_a_month_and_temporary_files_of_killed_writers_go_when_the_next_is_written(tmp_path):
    cached("old", Builds(b"old graph"), tmp_path)
    cached("recent", Builds(b"recent graph"), tmp_path)
    (old,) = tmp_path.glob("old-*.onnx")
    long_ago = time.time() - (UNUSED_DAYS + 1) * 86400
    os.utime(old, (long_ago, long_ago))
    torn, fresh = tmp_path / ".killed.part", tmp_path / ".writing.part"
    torn.write_bytes(b"half")
    os.utime(torn, (time.time() - 7200, time.time() - 7200))
    fresh.write_bytes(b"being written")
    cached("new", Builds(b"new graph"), tmp_path)
    names = {p.name.split("-")[0] for p in tmp_path.glob("*.onnx")}
    assert names == {"recent", "new"}
    assert not torn.exists() and fresh.exists()  # another process may be writing this one now


def test_reading_a_graph_counts_as_using_it(tmp_path):
    cached("k", Builds(b"graph"), tmp_path)
    (kept,) = tmp_path.glob("k-*.onnx")
    long_ago = time.time() - (UNUSED_DAYS + 1) * 86400
    os.utime(kept, (long_ago, long_ago))
    cached("k", Builds(b"not built"), tmp_path)
    assert kept.stat().st_mtime > long_ago + 86400


def test_the_folder_is_systemds_cache_directory_else_the_users_cache():
    assert cache_folder({"CACHE_DIRECTORY": "/var/cache/veil", "HOME": "/home/u"}) == Path("/var/cache/veil/graphs")
    assert cache_folder({"CACHE_DIRECTORY": "/var/cache/veil:/var/cache/other"}) == Path("/var/cache/veil/graphs")
    assert cache_folder({"XDG_CACHE_HOME": "/x", "HOME": "/home/u"}) == Path("/x/veil/graphs")
    assert cache_folder({"HOME": "/home/u"}) == Path("/home/u/.cache/veil/graphs")


def test_keys_tell_every_part_apart():
    assert key_of("ab", "c") != key_of("a", "bc")
    assert key_of("a", b"b") == key_of("a", "b")
    assert key_of("a") != key_of("a", "")
    assert len(key_of("x")) == 32
