"""Still images in and out: EXIF orientation applied, pixel modes normalised, metadata stripped.

Loading hands back two arrays: ``pixels`` in the form that will be saved (masked in place) and ``rgb``,
an 8-bit RGB view for the detectors. Saving builds a fresh image from the array, so no EXIF, XMP, GPS or
maker notes survive; only the ICC colour profile is carried over. HEIC/HEIF (phones' photos) is read and
written through pillow-heif, AVIF through Pillow's own plugin; of a HEIF file only the primary image is
read: its thumbnails, depth maps and auxiliary images (portrait mattes) are never decoded and never written.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.errors import InputError
from pipeline.media.jpeg_end import bytes_after_picture
from pipeline.params import OutputParams

# Our own explicit limit replaces Pillow's global one (checked before any pixel is decoded).
Image.MAX_IMAGE_PIXELS = None
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

FORMAT_BY_SUFFIX = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF",
    ".heic": "HEIF", ".heif": "HEIF", ".hif": "HEIF", ".avif": "AVIF",
}
SUPPORTED_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "HEIF", "AVIF"}  # GIF: single frame only
# A JPEG whose multi-picture data (MPF) holds secondary images: phones' HDR gain maps and depth maps, previews,
# a stereo camera's second view. Pillow calls it MPO. The primary image is the photo; the others are dropped.
_MULTI_PICTURE = "MPO"
# A motion photo (Google's format) flags in its XMP the short video appended after the still.
_MOTION_PHOTO = re.compile(rb"(MotionPhoto|MicroVideo)(=\"|>)1")
_ALPHA_FREE = {"JPEG", "BMP"}
_EIGHT_BIT = {"JPEG", "WEBP", "BMP", "HEIF", "AVIF"}  # 16-bit samples are reduced to 8 for these
_LOSSY_QUALITY = {"WEBP": "webp_quality", "HEIF": "heif_quality", "AVIF": "heif_quality"}
# The encoders' fastest settings. On a 2048x1536 photo at quality 90 (5 December, 2 cores): x265's fastest
# preset 0.42 s against 2.93 s for libheif's default, the same PSNR (43.4 dB), a file 7% larger; libaom at
# speed 10 0.14 s against 1.05 s at Pillow's default (6), 0.14 dB less, 3% larger.
_FAST_ENCODER: dict[str, dict] = {"HEIF": {"enc_params": {"preset": "ultrafast"}}, "AVIF": {"speed": 10}}


@dataclass
class LoadedImage:
    pixels: np.ndarray  # what gets masked and saved: uint8 or uint16; HxW, HxWx2 (LA), HxWx3, HxWx4
    mode: str  # Pillow mode of ``pixels``: L, LA, RGB, RGBA or I;16
    rgb: np.ndarray  # HxWx3 uint8 for detection
    format: str
    icc_profile: bytes | None
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


def load_image(path: Path, max_pixels: int) -> LoadedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(path)
    except UnidentifiedImageError:
        raise InputError("not a readable image (unrecognised or corrupt header)") from None
    except OSError as error:
        raise InputError(f"cannot read image: {error}") from error
    except Exception as error:  # Pillow's parsers raise KeyError, TypeError ... on damaged headers
        raise InputError(f"corrupt image header: {type(error).__name__}") from error
    with image:
        if image.format not in SUPPORTED_FORMATS | {_MULTI_PICTURE}:
            raise InputError(f"image format {image.format} is not supported "
                             "(JPEG, PNG, WebP, TIFF, BMP, GIF, HEIC/HEIF, AVIF)")
        width, height = image.size
        if width * height > max_pixels:
            raise InputError(f"image of {width}x{height} exceeds the pixel limit of {max_pixels} (decompression bomb?)")
        try:
            frames = getattr(image, "n_frames", 1)  # TIFF walks its pages here: damage shows up here too
        except Exception as error:  # KeyError, TypeError ... from damaged page headers
            raise InputError(f"corrupt image pages: {type(error).__name__}") from error
        if frames > 1 and image.format != _MULTI_PICTURE:
            # Masking one frame of many would publish the others unmasked: refuse the whole file.
            raise InputError(f"{image.format} with {frames} frames: animated and multi-page images are refused")
        icc = image.info.get("icc_profile")
        source_format = "JPEG" if image.format == _MULTI_PICTURE else image.format
        dropped = _dropped_parts(image, frames, path)
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
        except (OSError, ValueError, SyntaxError) as error:
            raise InputError(f"corrupt or truncated image data: {str(error).strip()}") from error
        except Exception as error:  # and other types from damaged data (found by fuzzing)
            raise InputError(f"corrupt image data: {type(error).__name__}") from error
        pixels, mode, notes = _normalise(image)
    return LoadedImage(pixels, mode, _detection_view(pixels, mode), source_format, icc, dropped + notes)


def _dropped_parts(image: Image.Image, frames: int, path: Path) -> list[str]:
    """Notes on what a file carries besides its picture that is never read nor published (the output is
    built from the picture's pixels alone), for the sidecar."""
    notes = []
    if image.format == _MULTI_PICTURE:
        notes.append(f"JPEG with {frames - 1} secondary image(s) in its multi-picture data (gain map, depth map, "
                     "preview): only the primary image is kept")
    xmp = image.info.get("xmp") or b""
    if _MOTION_PHOTO.search(xmp.encode() if isinstance(xmp, str) else xmp):
        notes.append("motion photo: the video it carries after the still is dropped, only the still is kept")
    elif image.format == "JPEG" and (extra := bytes_after_picture(path.read_bytes())):
        notes.append(f"{extra} bytes after the picture's end (an appended video, a maker's trailer) are dropped, "
                     "only the picture is kept")
    return notes


def _normalise(image: Image.Image) -> tuple[np.ndarray, str, list[str]]:
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.array(image), mode, []
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.array(image).astype(np.uint16), "I;16", []
    if mode == "I":
        data = np.array(image)
        if data.min() < 0 or data.max() > 65535:
            raise InputError("32-bit integer image with values outside 0..65535 is not supported")
        return data.astype(np.uint16), "I;16", ["32-bit integer samples stored as 16-bit"]
    if mode == "1":
        return np.array(image.convert("L")), "L", ["bilevel image saved as 8-bit grayscale"]
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        target = "RGBA" if has_alpha else "RGB"
        return np.array(image.convert(target)), target, [f"palette image saved as {target}"]
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return np.array(image.convert("RGB")), "RGB", [f"{mode} image converted to RGB"]
    raise InputError(f"pixel mode {mode} is not supported")


def _detection_view(pixels: np.ndarray, mode: str) -> np.ndarray:
    if mode == "I;16":
        low, high = np.percentile(pixels, (0.5, 99.5)) if pixels.size else (0, 1)
        scaled = np.clip((pixels.astype(np.float32) - low) * (255.0 / max(1.0, high - low)), 0, 255)
        gray = scaled.astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("L", "LA"):
        gray = pixels if mode == "L" else pixels[:, :, 0]
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def output_format(name: str, source_format: str) -> str:
    """The output keeps the input's file name, so its suffix decides the encoding."""
    return FORMAT_BY_SUFFIX.get(Path(name).suffix.lower(), source_format)


def save_image(loaded: LoadedImage, path: Path, target_format: str, params: OutputParams) -> list[str]:
    """Write the (masked) pixels as a fresh image. Returns notes about conversions made."""
    notes = []
    image = Image.fromarray(loaded.pixels)  # the mode follows from shape and dtype: L, LA, RGB, RGBA, I;16
    if target_format in _ALPHA_FREE and image.mode in ("LA", "RGBA"):
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
        notes.append(f"{target_format} has no alpha channel: transparency dropped")
    if target_format in _EIGHT_BIT and image.mode == "I;16":
        image = Image.fromarray((loaded.pixels >> 8).astype(np.uint8))
        notes.append(f"{target_format} cannot hold 16-bit samples: reduced to 8-bit")
    options: dict = {}
    if loaded.icc_profile and target_format in ("JPEG", "PNG", "WEBP", "TIFF", "HEIF", "AVIF"):
        options["icc_profile"] = loaded.icc_profile
    if target_format == "JPEG":
        options.update(quality=params.jpeg_quality, subsampling=0 if params.jpeg_quality >= 90 else 2)
    elif target_format in _LOSSY_QUALITY:
        options.update(quality=getattr(params, _LOSSY_QUALITY[target_format]))
    elif target_format == "TIFF":
        options.update(compression="tiff_lzw")
    options.update(_FAST_ENCODER.get(target_format, {}))
    image.save(path, format=target_format, **options)
    return notes
