"""Phones' photos, HEIC, AVIF and JPEG with secondary images (an HDR gain map, a depth map: JPEG multi-picture
data, which shows the scene too), through `veil process` with no flag: every face and plate of real photos
masked, judged on the published pixels alone against the decoded input; each result keeps its name and
format, with no secondary image, and the camera's make, serial number and GPS position do not survive. A photo
stored on its side with the rotation that turns it upright (HEIF's `irot`, as phones write it) is masked
where a viewer shows its faces and plates, and published upright."""

from __future__ import annotations

import pillow_heif
import pytest
from PIL import Image, ImageOps

from pipeline.qc import QCReport

from tests.integration.pixel_check import Scene, assert_masked
from tests.integration.test_process_cli import veil

pytestmark = pytest.mark.usefixtures("models_installed")

SECRETS = (b"CameraMaker", b"SERIAL-12345")
pillow_heif.register_heif_opener()  # this test's own reader of HEIC, apart from Veil's


def camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0xA431] = "SERIAL-12345"  # BodySerialNumber
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}  # GPS IFD
    return exif


def save_as_phone(image: Image.Image, path, image_format: str) -> None:
    if image_format == "JPEG":  # with a gain-map-like secondary image: the scene again, small and grey
        gain_map = image.convert("L").convert("RGB").resize((image.width // 4, image.height // 4))
        image.save(path, format="MPO", save_all=True, append_images=[gain_map], quality=90, exif=camera_exif())
    else:
        image.save(path, quality=90, exif=camera_exif())


@pytest.mark.parametrize("suffix, image_format", [(".heic", "HEIF"), (".avif", "AVIF"), (".jpg", "JPEG")])
def test_phone_photos_are_masked_and_published_in_their_own_format(mixed_scenes, tmp_path, suffix, image_format):
    inputs = tmp_path / "in"
    inputs.mkdir()
    scenes = {}
    for scene in mixed_scenes[:3]:
        name = scene.path.stem + suffix
        with Image.open(scene.path) as image:
            save_as_phone(image.convert("RGB"), inputs / name, image_format)
        assert all(secret in (inputs / name).read_bytes() for secret in SECRETS)
        scenes[name] = Scene(inputs / name, scene.boxes)  # judged against the decoded input, as a viewer shows it

    # The check can fail in this format: the input decoded and encoded again, nothing masked, fails it.
    name, scene = next(iter(scenes.items()))
    copy = tmp_path / f"copy{suffix}"
    with Image.open(scene.path) as image:
        image.save(copy, format=image_format, quality=90)
    with pytest.raises(AssertionError, match="not masked"):
        assert_masked(scene, copy)

    result = veil("process", inputs, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr

    for name, scene in scenes.items():
        published = tmp_path / "out" / name
        report = QCReport.from_json((tmp_path / "out" / f"{name}.veil.json").read_text())
        assert report.counts["face"] >= 1 and report.counts["license_plate"] >= 1, report.counts
        assert any("secondary image" in note for note in report.output.notes) == (image_format == "JPEG")
        with Image.open(published) as image:
            assert image.format == image_format and not image.getexif() and getattr(image, "n_frames", 1) == 1
        assert not any(secret in published.read_bytes() for secret in SECRETS)
        assert_masked(scene, published)


@pytest.mark.parametrize("suffix, image_format", [(".heic", "HEIF"), (".avif", "AVIF")])
def test_a_photo_stored_on_its_side_is_masked_as_shown_and_published_upright(mixed_scenes, tmp_path, suffix,
                                                                              image_format):
    inputs = tmp_path / "in"
    inputs.mkdir()
    scenes = {}
    for scene in mixed_scenes[3:5]:
        name = scene.path.stem + suffix
        with Image.open(scene.path) as image:
            upright = image.convert("RGB")
        exif = camera_exif()
        exif[0x0112] = 6  # shown turned a quarter clockwise: the encoders write it as the item's rotation (irot)
        upright.transpose(Image.Transpose.ROTATE_90).save(inputs / name, quality=90, exif=exif.tobytes())
        assert b"irot" in (inputs / name).read_bytes()
        with Image.open(inputs / name) as stored:  # as a viewer shows it: upright again
            assert ImageOps.exif_transpose(stored).size == upright.size
        scenes[name] = Scene(scene.path, scene.boxes)  # judged against the upright original

    result = veil("process", inputs, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr

    for name, scene in scenes.items():
        published = tmp_path / "out" / name
        with Image.open(published) as image:  # upright, with nothing left that would turn it again
            assert image.format == image_format and not image.getexif() and b"irot" not in published.read_bytes()
        assert_masked(scene, published)
