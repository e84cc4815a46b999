"""Clips ffmpeg renders for the media tests: its moving test pattern (testsrc2), where every frame differs from
the others."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def pattern(size: str) -> list[str]:
    """ffmpeg's input arguments for the pattern at ``size`` ("WxH"), 25 frames a second."""
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25"]


def pattern_clip(path: Path, size: str, frames: int, *encode: str) -> Path:
    """``frames`` of the pattern in H.264, yuv420p, with any further ``encode`` arguments."""
    ffmpeg(*pattern(size), "-frames:v", str(frames), "-pix_fmt", "yuv420p", "-c:v", "libx264", *encode, str(path))
    return path
