"""What the review station serves: masked pixels only (the published result, never the original), the
right frame of a video, and its track boxes."""

from __future__ import annotations

import http.client
import io
import json
import threading

import numpy as np
import pytest
from PIL import Image

from daemon.review.auth import Authenticator
from daemon.review.server import ReviewApp, ReviewServer

from tests.conftest import eval_set
from tests.integration.review_items import put_in_review, settings_for, textured_clip
from tests.integration.test_rework import FACES, frames_of, pixels

TOKEN = "server-test-token-0123456789abcdef"


@pytest.fixture()
def serve(tmp_path):
    servers = []

    def start(settings):
        httpd = ReviewServer(("127.0.0.1", 0), ReviewApp(settings, Authenticator(TOKEN), engines=None, audit=None))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return httpd.server_address[1]

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def get(port: int, path: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 200, body
    return body


def decoded(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)


@pytest.mark.parametrize("suffix", [".jpg", ".heic"])
def test_the_picture_served_is_the_masked_result_never_the_original(tmp_path, face_engine, serve, suffix):
    photo = eval_set("dlib_faces_voc") / "images" / "2008_001322.jpg"
    if suffix != photo.suffix:  # a phone's HEIC: browsers cannot show it, the page gets a JPEG of it
        with Image.open(photo) as image:
            image.save(tmp_path / f"phone{suffix}", quality=90)
        photo = tmp_path / f"phone{suffix}"
    settings = settings_for(tmp_path, FACES)
    item = put_in_review(settings.folders[0], photo, face_engine, FACES)
    port = serve(settings)
    [row] = json.loads(get(port, "/api/items"))["items"]
    assert row["id"] == item and row["place"] == "review" and row["reasons"]
    detail = json.loads(get(port, f"/api/item?folder=cams&id={item}"))
    faces = [d["box"] for d in detail["detections"] if d["masked"]]
    assert faces

    served = decoded(get(port, f"/api/image?folder=cams&id={item}"))
    masked = pixels(settings.folders[0].review / photo.name)
    original = pixels(photo)
    assert np.abs(served - masked).mean() < 3  # the masked result, re-encoded
    for x1, y1, x2, y2 in faces:
        face = (slice(int(y1), int(y2)), slice(int(x1), int(x2)))
        assert np.abs(served[face] - original[face]).mean() > 2 * np.abs(served[face] - masked[face]).mean()


def test_frame_n_of_the_masked_video_is_served_with_its_track_boxes(tmp_path, face_engine, serve):
    settings = settings_for(tmp_path, FACES)
    item = put_in_review(settings.folders[0], textured_clip(tmp_path / "clip.mp4"), face_engine, FACES)
    port = serve(settings)
    masked = frames_of(settings.folders[0].review / "clip.mp4")
    for n in (5, 2, 11):  # forwards, backwards (the reader starts again), the last frame
        served = decoded(get(port, f"/api/frame?folder=cams&id={item}&n={n}"))
        errors = [np.abs(served - frame).mean() for frame in masked]
        assert int(np.argmin(errors)) == n and errors[n] < 0.5 * sorted(errors)[1]  # JPEG aside, that frame
    boxes = json.loads(get(port, f"/api/boxes?folder=cams&id={item}&first=3&count=4"))["frames"]
    assert [row["f"] for row in boxes] == [3, 4, 5, 6]


def test_the_queue_comes_a_page_at_a_time_and_a_bad_query_is_refused(tmp_path, serve):
    port = serve(settings_for(tmp_path, FACES))
    queue = json.loads(get(port, "/api/items?sort=reason&page=1&per_page=10"))
    assert (queue["items"], queue["total"], queue["pages"], queue["sort"]) == ([], 0, 1, "reason")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/api/items?sort=name", headers={"Authorization": f"Bearer {TOKEN}"})
    response = connection.getresponse()
    assert response.status == 400 and "sort must be one of" in json.loads(response.read())["error"]
    connection.close()


def test_the_review_station_reads_heic_without_the_pipeline_loaded(tmp_path):
    """`veil review` is a process of its own: the page's picture module registers the HEIC reader itself."""
    import ast
    import subprocess
    import sys

    import pillow_heif

    pillow_heif.register_heif_opener()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(tmp_path / "result.heic")
    probe = ("import sys, daemon.review.media; from PIL import Image; assert 'pipeline.run' not in sys.modules; "
             f"print(Image.open({str(tmp_path / 'result.heic')!r}).convert('RGB').getpixel((5, 5)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    red, green, blue = ast.literal_eval(result.stdout)
    assert red > 150 and green < 80 and blue < 80
