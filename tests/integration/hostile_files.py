"""Broken and odd files for the hostile-input tests: truncated and mislabelled files, decompression bombs, odd
dimensions and pixel formats, animated and multi-page images (phones' HEIC and AVIF among them), odd videos
(variable frame rate, rotated, audio only, damaged in the middle), odd names, and the whole batch that one
daemon takes at once."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pillow_heif
from PIL import Image

from tests.integration.serve_harness import write_video

W, H = 64, 48
pillow_heif.register_heif_opener()  # HEIC written here with the library Veil reads it with, not by Veil


def noise(seed: int, w: int = W, h: int = H, channels: int = 3) -> np.ndarray:
    shape = (h, w, channels) if channels > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


def jpeg_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(noise(seed)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def png_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(noise(seed)).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels but holds a few bytes: decoding it would need GBs."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    body = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def video_bytes(path: Path, *, seconds: float = 1.0, seed: int = 0) -> bytes:
    write_video(path, seconds=seconds, seed=seed)
    data = path.read_bytes()
    path.unlink()
    return data


def write_vfr(path: Path) -> None:
    pts = [0, 1, 2, 5, 6, 10, 11, 12, 20, 21]  # irregular gaps, in 1/30 s
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 30)
        for value in pts:
            frame = av.VideoFrame.from_ndarray(noise(value, 160, 120), format="rgb24")
            frame.pts, frame.time_base = value, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_rotated(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.set_display_rotation(90)
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(noise(index, 160, 120), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_audio_only(path: Path, container_format: str, codec: str) -> None:
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=44100)
        stream.layout = "mono"
        samples = (np.sin(np.arange(44100) / 20.0) * 0.3).astype(np.float32)
        for start in range(0, 44100, 1024):
            chunk = samples[start:start + 1024]
            if len(chunk) < 1024:
                break
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


LONG_NAME = "l" * 240 + ".jpg"  # 244 bytes: legal, but the sidecar's name would pass the 255-byte limit


def hostile_batch(tmp: Path) -> dict[str, tuple[set[str], str | None]]:
    """name -> (allowed dispositions, a phrase the error must contain); files written to ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    expect: dict[str, tuple[set[str], str | None]] = {}
    ok = {"done", "review"}

    def put(name: str, data: bytes, dispositions: set[str], error: str | None = None) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expect[name] = (dispositions, error)

    jpeg, png = jpeg_bytes(1), png_bytes(2)
    clip = video_bytes(tmp / "clip.part", seed=3)
    # Broken files.
    put("zero.jpg", b"", {"failed"}, "empty file")
    put("zero.mp4", b"", {"failed"}, "empty file")
    put("truncated.jpg", jpeg[: len(jpeg) // 2], {"failed"}, "truncated")
    put("truncated.png", png[: len(png) // 2], {"failed"}, None)
    put("truncated.mp4", clip[: len(clip) // 2], {"failed"}, None)
    put("png-named.mp4", png, ok)  # content decides, not the name: processed as the PNG it is
    put("text-named.jpg", b"hello, this is not an image\n" * 20, {"failed"}, "unrecognised content")
    # Dimensions and pixel formats.
    put("one-by-one.png", encoded(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), ok)
    put("very-wide.png", encoded(Image.fromarray(noise(4, 100_000, 1)), "PNG"), ok)
    put("bomb.png", png_bomb(100_000, 100_000), {"failed"}, "pixel limit")
    put("sixteen-bit.png", encoded(Image.fromarray((noise(5, channels=1).astype(np.uint16) * 257)), "PNG"), ok)
    put("cmyk.jpg", encoded(Image.fromarray(noise(6)).convert("CMYK"), "JPEG"), ok)
    put("alpha.png", encoded(Image.fromarray(noise(7, channels=4), "RGBA"), "PNG"), ok)
    put("palette.png", encoded(Image.fromarray(noise(8)).convert("P"), "PNG"), ok)
    frames = [Image.fromarray(noise(9 + i)).convert("P") for i in range(3)]
    put("animated.gif", encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100), {"failed"},
        "animated and multi-page images are refused")
    pages = [Image.fromarray(noise(12 + i)) for i in range(2)]
    put("multipage.tif", encoded(pages[0], "TIFF", save_all=True, append_images=pages[1:]), {"failed"},
        "animated and multi-page images are refused")
    # Phones' formats.
    heic = encoded(Image.fromarray(noise(14)), "HEIF", quality=80)
    put("phone.heic", heic, ok)
    put("truncated.heic", heic[: len(heic) // 2], {"failed"}, "truncated")
    put("burst.heic", encoded(pages[0], "HEIF", save_all=True, append_images=pages[1:]), {"failed"},
        "animated and multi-page images are refused")
    put("animated.avif", encoded(pages[0], "AVIF", save_all=True, append_images=pages[1:]), {"failed"},
        "animated and multi-page images are refused")
    put("gain-map.jpg", encoded(pages[0], "MPO", save_all=True, append_images=pages[1:]), ok)  # primary kept
    # Videos.
    write_audio_only(tmp / "audio-only.mp4", "mp4", "aac")
    expect["audio-only.mp4"] = ({"failed"}, "no video stream")
    write_audio_only(tmp / "no-video-stream.mkv", "matroska", "flac")
    expect["no-video-stream.mkv"] = ({"failed"}, "no video stream")
    write_vfr(tmp / "variable-rate.mp4")
    expect["variable-rate.mp4"] = (ok, None)
    write_rotated(tmp / "rotated.mp4")
    expect["rotated.mp4"] = (ok, None)
    damaged = bytearray(video_bytes(tmp / "damaged.part", seconds=2.0, seed=4))
    middle = len(damaged) // 2
    damaged[middle: middle + 2000] = np.random.default_rng(0).integers(0, 255, 2000, dtype=np.uint8).tobytes()
    # Damage the decoder conceals is flagged for review; never passed as a clean "done".
    put("damaged-middle.mp4", bytes(damaged), {"review", "failed"})
    # Names.
    put("visage-été-日本語.jpg", jpeg_bytes(20), ok)
    put("new\nline.jpg", jpeg_bytes(21), ok)
    put(LONG_NAME, jpeg_bytes(22), ok)
    put("collides.jpg", jpeg_bytes(23), ok)
    # A directory dropped whole keeps its structure.
    for rel in ("album/2024/a.jpg", "album/2024/b.jpg", "album/c.png"):
        put(rel, jpeg_bytes(len(rel)) if rel.endswith(".jpg") else png, ok)
    return expect
