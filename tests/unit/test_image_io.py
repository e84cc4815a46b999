"""Image input and output: orientation, pixel modes, limits, and metadata that must not survive."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from pipeline.errors import InputError
from pipeline.media.image import load_image, output_format, save_image
from pipeline.media.jpeg_end import picture_end
from pipeline.media.sniff import sniff
from pipeline.params import OutputParams

LIMIT = 50_000_000


def _exif_with_gps_and_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "CameraMaker"  # Make
    exif[0xA431] = "SERIAL-12345"  # BodySerialNumber
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}  # GPS IFD
    return exif


def test_exif_orientation_is_applied_before_detection(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left of the stored image
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=_exif_with_gps_and_orientation(6))  # 6: rotate 90 cw to display
    loaded = load_image(path, LIMIT)
    assert loaded.rgb.shape == (40, 20, 3)  # displayed upright: tall, not wide
    assert loaded.rgb[:10].mean() > 200  # the band is now on top


@pytest.mark.parametrize("suffix, image_format", [(".jpg", "JPEG"), (".heic", "HEIF"), (".avif", "AVIF")])
def test_output_has_no_exif_gps_xmp_or_serial_but_keeps_icc(tmp_path, suffix, image_format):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / f"in{suffix}"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(
        path, exif=_exif_with_gps_and_orientation(1), icc_profile=icc, xmp=b"<x:xmpmeta>secret place</x:xmpmeta>"
    )
    assert all(secret in path.read_bytes() for secret in (b"SERIAL-12345", b"CameraMaker", b"secret place"))
    loaded = load_image(path, LIMIT)
    assert loaded.format == image_format
    out = tmp_path / f"out{suffix}"
    save_image(loaded, out, output_format(out.name, loaded.format), OutputParams())
    data = out.read_bytes()
    with Image.open(out) as image:
        assert image.format == image_format
        assert not image.getexif()
        assert image.info.get("icc_profile") == icc
        assert "xmp" not in image.info
    for secret in (b"SERIAL-12345", b"CameraMaker", b"secret place", b"Exif\x00\x00"):
        assert secret not in data


@pytest.mark.parametrize("out_suffix", ["", ".heic", ".avif"])  # "": the input's own format
@pytest.mark.parametrize(
    "mode, saved_as",
    [("L", "L"), ("LA", "LA"), ("RGBA", "RGBA"), ("P", "RGB"), ("1", "L"), ("I;16", "I;16"), ("CMYK", "RGB")],
)
def test_pixel_modes_are_handled(tmp_path, mode, saved_as, out_suffix):
    suffix = ".jpg" if mode == "CMYK" else ".png"
    path = tmp_path / f"in{suffix}"
    Image.new(mode, (24, 16)).save(path)
    loaded = load_image(path, LIMIT)
    assert loaded.mode == saved_as
    assert loaded.rgb.shape == (16, 24, 3) and loaded.rgb.dtype == np.uint8
    out = tmp_path / f"out{out_suffix or suffix}"
    notes = save_image(loaded, out, output_format(out.name, loaded.format), OutputParams())
    with Image.open(out) as image:
        assert image.size == (24, 16)
    assert bool(notes) == (saved_as == "I;16" and out_suffix != "")  # HEIF and AVIF: 8-bit, said so


def test_a_jpeg_with_secondary_images_keeps_its_primary_upright_and_drops_the_rest(tmp_path):
    """Phones write HDR gain maps and depth maps as JPEG multi-picture data (Pillow's MPO): they show the
    scene too, so they must not survive; the photo itself is processed, upright, as a JPEG."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left of the stored image
    path = tmp_path / "phone.jpg"
    gain_map = Image.fromarray(pixels).convert("L").convert("RGB").resize((20, 10))
    Image.fromarray(pixels).save(path, format="MPO", save_all=True, append_images=[gain_map],
                                 exif=_exif_with_gps_and_orientation(6))
    with Image.open(path) as image:
        assert image.format == "MPO" and image.n_frames == 2
    loaded = load_image(path, LIMIT)
    assert loaded.format == "JPEG" and loaded.rgb.shape == (40, 20, 3) and loaded.rgb[:10].mean() > 200
    assert any("secondary image" in note for note in loaded.notes)
    out = tmp_path / "out.jpg"
    save_image(loaded, out, output_format(out.name, loaded.format), OutputParams())
    with Image.open(out) as image:
        assert image.format == "JPEG" and getattr(image, "n_frames", 1) == 1 and not image.getexif()
    assert b"MPF\x00" not in out.read_bytes()


@pytest.mark.parametrize("image_format", ["HEIF", "AVIF"])
def test_phone_formats_are_written_as_well_as_at_the_encoders_slower_defaults(tmp_path, image_format):
    """The encoders' fastest settings (what Veil writes HEIC and AVIF with) against their defaults, at the same
    quality, on a textured picture (a gradient with noise): the same fidelity to the input (within 0.5 dB),
    a file at most 15% larger."""
    rng = np.random.default_rng(3)
    ramp = np.linspace(0, 200, 256)[None, :, None] + np.linspace(0, 40, 192)[:, None, None]
    pixels = np.clip(ramp + rng.normal(0, 4, (192, 256, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "in.png"
    Image.fromarray(pixels).save(path)
    fast, default = tmp_path / "veil", tmp_path / "default"
    save_image(load_image(path, LIMIT), fast, image_format, OutputParams())
    Image.fromarray(pixels).save(default, format=image_format, quality=OutputParams().heif_quality)

    def psnr(out: Path) -> float:
        back = np.asarray(Image.open(out).convert("RGB"), dtype=np.float64)
        return float(10 * np.log10(255**2 / ((back - pixels) ** 2).mean()))

    assert psnr(default) > 35
    assert psnr(fast) >= psnr(default) - 0.5
    assert fast.stat().st_size <= 1.15 * default.stat().st_size


MOTION_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
              b'<rdf:Description xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" GCamera:MotionPhoto="1"'
              b' GCamera:MotionPhotoVersion="1"/></rdf:RDF></x:xmpmeta>')


@pytest.mark.parametrize("motion", [True, False])
def test_a_motion_photo_s_video_is_dropped_and_said_so(tmp_path, motion):
    """A phone's motion photo: a JPEG, then the short video of the scene appended after it. The video never
    reaches the output (built from the still's pixels); the sidecar says it was there."""
    path = tmp_path / "motion.jpg"
    xmp = MOTION_XMP if motion else MOTION_XMP.replace(b'MotionPhoto="1"', b'MotionPhoto="0"')
    Image.new("RGB", (32, 24), (10, 200, 30)).save(path, xmp=xmp)
    with path.open("ab") as handle:
        handle.write(b"\0\0\0\x18ftypmp42" + b"\0" * 64 + b"the video of the scene")
    assert sniff(path) == "image"
    loaded = load_image(path, LIMIT)
    assert any("motion photo" in note for note in loaded.notes) == motion
    assert any("after the picture's end" in note for note in loaded.notes) != motion  # one note, either way
    out = tmp_path / "out.jpg"
    save_image(loaded, out, "JPEG", OutputParams())
    assert b"ftyp" not in out.read_bytes() and b"the video of the scene" not in out.read_bytes()


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"restart_marker_blocks": 2}])
def test_only_data_after_a_jpeg_s_picture_is_noted(tmp_path, options):
    """A thumbnail-like JPEG inside a segment (its own end marker included), the scans of a progressive file,
    restart markers and a camera's zero padding are all part of the picture or nothing; a maker's trailer
    after it is noted."""
    rng = np.random.default_rng(5)
    inner = tmp_path / "thumbnail.jpg"
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(inner)
    path = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(
        path, quality=90, comment=inner.read_bytes(), **options)
    assert picture_end(path.read_bytes()) == path.stat().st_size
    with path.open("ab") as handle:
        handle.write(b"\0" * 300)
    assert not load_image(path, LIMIT).notes
    with path.open("ab") as handle:
        handle.write(b"MotionPhoto_Data" + bytes(range(1, 255)) * 4)
    [note] = load_image(path, LIMIT).notes
    assert note.startswith("1032 bytes after the picture's end")
    assert picture_end(path.read_bytes()[:-1400]) is None  # cut inside the picture: no end to find


def test_alpha_is_dropped_with_a_note_when_the_name_says_jpeg(tmp_path):
    path = tmp_path / "in.png"
    Image.new("RGBA", (8, 8), (1, 2, 3, 4)).save(path)
    loaded = load_image(path, LIMIT)
    notes = save_image(loaded, tmp_path / "out.jpg", "JPEG", OutputParams())
    assert any("transparency dropped" in n for n in notes)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares huge dimensions but carries almost no data: a decompression bomb's header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a readable image"),
        (b"hello, I am text", "not a readable image"),
        (_png_header_only(100_000, 100_000), "exceeds the pixel limit"),
    ],
)
def test_bad_images_raise_a_clear_input_error(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_image(path, LIMIT)


@pytest.mark.parametrize("image_format", ["JPEG", "HEIF"])
def test_truncated_images_are_refused(tmp_path, image_format):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buffer, image_format)
    path = tmp_path / "cut"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_image(path, LIMIT)


@pytest.mark.parametrize("name", ["anim.gif", "anim.avif", "burst.heic"])
def test_animated_and_multi_image_files_are_refused_by_rule(tmp_path, name):
    path = tmp_path / name
    frames = [Image.new("RGB", (8, 8), (80 * i, 0, 0)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert sniff(path) == "image"
    with pytest.raises(InputError, match="3 frames"):
        load_image(path, LIMIT)


@pytest.mark.parametrize(
    "head, kind",
    [
        (b"\xff\xd8\xff\xe0" + b"\0" * 60, "image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 60, "image"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "image"),
        (b"RIFF\0\0\0\0AVI LIST", "video"),
        (b"\0\0\0\x18ftypmp42" + b"\0" * 20, "video"),
        (b"\0\0\0\x18ftypisom" + b"\0" * 20, "video"),
        (b"\0\0\0\x1cftypheic\0\0\0\0mif1heic", "image"),  # a phone's HEIC photo
        (b"\0\0\0\x1cftypmif1\0\0\0\0mif1heic", "image"),
        (b"\0\0\0\x20ftypavif\0\0\0\0avifmif1", "image"),
        (b"\x1a\x45\xdf\xa3" + b"\0" * 20, "video"),
        (b"just some text", "unknown"),
    ],
)
def test_sniff_decides_by_content_not_name(tmp_path, head, kind):
    path = tmp_path / "misleading.jpg"
    path.write_bytes(head)
    assert sniff(path) == kind


def test_sniff_refuses_links_and_fifos_without_opening_them(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "link.jpg").symlink_to("/etc/passwd")
    for name in ("fifo.jpg", "link.jpg"):
        with pytest.raises(InputError, match="not a regular file"):
            sniff(tmp_path / name)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        sniff(Path(tmp_path / "empty.jpg"))


def test_multi_page_tiff_is_refused_by_rule(tmp_path):
    path = tmp_path / "pages.tif"
    Image.new("RGB", (8, 8)).save(path, save_all=True, append_images=[Image.new("RGB", (8, 8), (9, 9, 9))])
    with pytest.raises(InputError, match="2 frames"):
        load_image(path, LIMIT)
