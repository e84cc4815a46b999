"""Fuzzing the parsers that face dropped files and operators: input sniffing, image loading, the sidecar model
and the configuration. Bounded (examples and a per-example deadline), so CI stays fast and never hangs.

The contract under test: hostile bytes give a clean, typed refusal (InputError, ValueError, ConfigError),
never another exception, a hang or a crash.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.errors import InputError
from pipeline.media.image import load_image
from pipeline.media.sniff import read_head, sniff
from pipeline.qc import QCReport

from daemon.config.settings import ConfigError, load_settings

FUZZ = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow], database=None)
MAX_PIXELS = 4_000_000


def _valid_images() -> list[bytes]:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    out = []
    for fmt, mode in (("JPEG", "RGB"), ("PNG", "RGBA"), ("GIF", "P"), ("TIFF", "RGB"), ("BMP", "RGB"), ("WEBP", "RGB"),
                      ("HEIF", "RGB"), ("AVIF", "RGB")):
        buffer = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buffer, format=fmt)
        out.append(buffer.getvalue())
    buffer = io.BytesIO()  # a JPEG with a secondary image (multi-picture data), as phones write gain maps
    Image.fromarray(pixels).save(buffer, format="MPO", save_all=True, append_images=[Image.fromarray(pixels[::2, ::2])])
    out.append(buffer.getvalue())
    return out


VALID = _valid_images()
MAGICS = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM", b"RIFF\0\0\0\0WEBP",
          b"\x1a\x45\xdf\xa3", b"\0\0\0\x18ftypisom", b"\0\0\x01\xba", b"\0\0\0\x1cftypheic", b"\0\0\0\x20ftypavif"]


@st.composite
def mutated_images(draw) -> bytes:
    """A valid image with bytes flipped, cut short, spliced or extended: what a broken copy looks like."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 8))):
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        data += draw(st.binary(max_size=64))
    return bytes(data)


hostile_bytes = st.one_of(
    st.binary(max_size=512),
    st.builds(lambda magic, tail: magic + tail, st.sampled_from(MAGICS), st.binary(max_size=512)),
    mutated_images(),
)


def _write(data: bytes) -> Path:
    handle = tempfile.NamedTemporaryFile(delete=False, suffix=".bin")
    with handle:
        handle.write(data)
    return Path(handle.name)


@FUZZ
@given(hostile_bytes)
def test_sniff_and_load_refuse_hostile_bytes_cleanly(data):
    path = _write(data)
    try:
        try:
            kind = sniff(path)
        except InputError:
            assert data == b""  # the only refusal sniffing makes for a regular file: an empty one
            return
        assert kind in ("image", "video", "unknown")
        if kind != "image":
            return
        try:
            loaded = load_image(path, MAX_PIXELS)
        except InputError as error:
            assert str(error)
            return
        height, width = loaded.pixels.shape[:2]
        assert loaded.rgb.shape == (height, width, 3) and loaded.rgb.dtype == np.uint8
        assert width * height <= MAX_PIXELS
    finally:
        path.unlink()


def test_sniff_refuses_non_regular_files_without_opening_them(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening a FIFO for reading with no writer would block forever
    link = tmp_path / "link.jpg"
    link.symlink_to("/etc/passwd")
    for path in (fifo, link):
        try:
            read_head(path)
        except InputError as error:
            assert "not a regular file" in str(error)
        else:
            raise AssertionError(f"{path.name} was read")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def _sample_report() -> dict:
    return json.loads(QCReport.model_validate({
        "veil_version": "1.0", "created_at": "2026-01-01T00:00:00Z", "input": {"name": "a.jpg", "sha256": "ab" * 32},
        "disposition": "done",
    }).to_json())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@st.composite
def mutated_reports(draw) -> bytes:
    report = _sample_report()
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(sorted(report) + ["extra"]))
        if draw(st.booleans()):
            report[key] = draw(json_values)
        else:
            report.pop(key, None)
    return json.dumps(report).encode()


@FUZZ
@given(st.one_of(st.binary(max_size=256), mutated_reports()))
def test_sidecar_parsing_refuses_hostile_json_cleanly(data):
    try:
        report = QCReport.from_json(data)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return
    # Whatever parses must serialise to a sidecar that reads back to the same sidecar (JSON has no NaN or
    # infinity: the first write turns them into null, so compare from there).
    text = report.to_json()
    assert QCReport.from_json(text).to_json() == text


toml_keys = st.sampled_from(["workers", "threads", "max_attempts", "settle_s", "mode", "devices", "instance",
                             "output", "ingest", "profile", "on_success", "classes", "threshold", "nonsense"])
toml_values = st.one_of(
    st.integers(-5, 100).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=10).map(json.dumps), st.just("[]"), st.just('["cpu", "cuda:x"]'), st.just("{}"),
)
toml_sections = st.sampled_from(["[service]", "[watch]", "[[folders]]", "[profiles.default.detector]",
                                 "[profiles.x.mask]", "[nonsense]", ""])


@st.composite
def hostile_toml(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        lines.append(draw(toml_sections))
        for _ in range(draw(st.integers(0, 3))):
            lines.append(f"{draw(toml_keys)} = {draw(toml_values)}")
    if draw(st.booleans()):
        lines.append(draw(st.text(max_size=40)))  # raw garbage, often not TOML at all
    return "\n".join(lines)


@FUZZ
@given(hostile_toml())
def test_configuration_refuses_hostile_files_with_a_config_error(text):
    path = _write(text.encode("utf-8", "surrogatepass"))
    try:
        try:
            settings_ = load_settings(path)
        except ConfigError as error:
            assert str(error)
            return
        assert settings_.service.workers >= 1 and settings_.folders
    finally:
        path.unlink()


def _valid_clip() -> bytes:
    import av

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        with av.open(str(path), "w", format="mp4") as container:
            stream = container.add_stream("mpeg4", rate=10)
            stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
            for i in range(5):
                frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), i * 40, dtype=np.uint8), format="rgb24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return path.read_bytes()


CLIP = _valid_clip()


@st.composite
def mutated_clips(draw) -> bytes:
    data = bytearray(CLIP)
    for _ in range(draw(st.integers(1, 12))):
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(8, len(data)))]
    return bytes(data)


@settings(FUZZ, max_examples=100)
@given(mutated_clips())
def test_video_probe_refuses_damaged_containers_cleanly(data):
    from pipeline.media.video import probe_video

    path = _write(data)
    try:
        try:
            info = probe_video(path)
        except InputError as error:
            assert str(error)
            return
        assert info.width > 0 and info.height > 0
    finally:
        path.unlink()
