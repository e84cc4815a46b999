"""Items as the service leaves them for review: a masked result and sidecar in review/, the original archived.

Built with the real pipeline (process_file) so the review station and rework see real outputs, companions
and sidecars; the original goes to originals/ as ``on_success = "archive"`` puts it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.params import Params
from pipeline.qc import SIDECAR_SUFFIX
from pipeline.run import process_file

from daemon.config.settings import FolderSettings, Settings, load_settings
from daemon.publish.outputs import candidate_names


def settings_for(root: Path, params: Params | None = None, **folder: object) -> Settings:
    """One folder under ``root`` (ingest, output and siblings) with ``params`` as its profile, state in ``root/state``."""
    profiles = {"default": (params or Params()).model_dump(mode="json")}
    return load_settings(None, folders=[{"name": "cams", "ingest": root / "ingest", "output": root / "output", **folder}],
                         service={"instance": "test", "state_dir": root / "state"}, profiles=profiles,
                         drift={"enabled": False, "store_dir": root / "state"}, watch={"settle_s": 0})


def textured_image(path: Path, size=(320, 240), seed: int = 1) -> Path:
    """Sharp random texture: any blur over it changes pixels a lot, and no detector finds a face in it."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    Image.fromarray(np.kron(cells, np.ones((8, 8, 1), np.uint8))).save(path)
    return path


def textured_clip(path: Path, frames: int = 12, size=(128, 96), rate: int = 10) -> Path:
    import av

    rng = np.random.default_rng(2)
    cells = rng.integers(0, 256, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
    base = np.kron(cells, np.ones((16, 16, 1), np.uint8))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv444p"
        stream.options = {"crf": "10"}
        for index in range(frames):
            picture = np.roll(base, index * 2, axis=1)  # slow pan: every frame differs
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    return path


def put_in_review(folder: FolderSettings, src: Path, engine, params: Params = Params(), place: str = "review") -> str:
    """Process ``src`` into ``place`` as the service would, archive the original; returns the item's ID."""
    name = src.name
    root = getattr(folder, place)
    for path in (root, folder.originals, folder.output):
        path.mkdir(parents=True, exist_ok=True)
    report = process_file(src, root / name, params, engine, name=name)
    assert report.disposition != "failed", report.error
    report = report.model_copy(update={"disposition": "review",
                                       "review_reasons": report.review_reasons or ["test: put in review"]})
    (root / (name + SIDECAR_SUFFIX)).write_text(report.to_json())
    for candidate in candidate_names(name, report.input.sha256):  # archived as the service names it
        if not (folder.originals / candidate).exists():
            shutil.copy2(src, folder.originals / candidate)
            break
    return report.input.sha256
