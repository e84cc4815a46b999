"""Publishing a re-rendered item: its result and companions into output/, the sidecar last; and taking the
item out of review/ or spotcheck/ afterwards."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipeline.qc import SIDECAR_SUFFIX, QCReport

from daemon.config.settings import FolderSettings
from daemon.fsutil import fsync_dir, write_atomic
from daemon.publish.outputs import candidate_names
from daemon.review.rework.document import ReworkError
from daemon.review.rework.items import Item


def _output_name(item: Item, folder: FolderSettings) -> str:
    """The item's name in output, unless another input's result holds it: then the next deterministic
    candidate (``<stem>.<8 hex of the original's sha256><suffix>``, as the service names a newcomer)."""
    for candidate in candidate_names(item.name, item.id):
        final = folder.output / candidate
        sidecar = final.with_name(final.name + SIDECAR_SUFFIX)
        if sidecar.exists():
            try:
                if QCReport.from_json(sidecar.read_bytes()).input.sha256 == item.id:
                    return candidate  # this item's own earlier result (a spot check, a rework): replaced
            except (OSError, ValueError):
                pass
            continue
        if not os.path.lexists(final):
            return candidate
    raise ReworkError(f"no free output name for item {item.id[:12]}...")


def publish(item: Item, folder: FolderSettings, staged: Path, report: QCReport) -> str:
    """Place the result and its companions in output, then the sidecar last; returns the published name.

    The item's own earlier result under that name (a spot check, or a rework of a clean result) is replaced:
    each file is written whole under a temporary name and renamed over the old one, so readers never see
    half a file. Another input's result is never touched."""
    name = _output_name(item, folder)
    final = folder.output / name
    final.parent.mkdir(parents=True, exist_ok=True)
    renamed = {n: final.name + n[len(staged.name):] if n.startswith(staged.name) else n for n in report.companions}
    _replace(staged, final)
    for old, new in renamed.items():
        _replace(staged.with_name(old), final.with_name(new))
    output = report.output.model_copy(update={"name": name}) if report.output else None
    final_report = report.model_copy(update={"companions": list(renamed.values()), "output": output})
    write_atomic(final.with_name(final.name + SIDECAR_SUFFIX), final_report.to_json().encode())
    return name


def _replace(src: Path, final: Path) -> None:
    tmp = final.with_name(f".{final.name}.rework-tmp")
    shutil.copyfile(src, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(final)
    fsync_dir(final.parent)


def remove_from_review(item: Item) -> None:
    """Take the item out of review/ (or spotcheck/): the sidecar first, so a half-removed item is no item."""
    for path in [item.sidecar, *item.files()[:-1]]:
        path.unlink(missing_ok=True)
    contact = item.output_path.with_name(item.output_path.name + ".contact.jpg")
    contact.unlink(missing_ok=True)
    fsync_dir(item.sidecar.parent)
