"""Routing and publishing one finished job: output/, review/ or failed/, then the original.

Order, each step durable before the next:
  1. pick final names (deterministic: the ingest-relative path) and record them in the job journal;
  2. copy the result and its companions (and the contact sheet) into place, never over an existing file;
  3. write the sidecar last: its presence, with the input's hash, marks the job done;
  4. archive, delete or keep the original (a failed input went to failed/ in step 2), then drop the job folder.

Idempotent: a job delivered twice (a restart, or a later multi-host backend) finds a sidecar with its own input
hash at its name and publishes nothing more. A different file already published under the same name keeps its
name; the newcomer gets the deterministic name ``<stem>.<first 8 hex of its sha256><suffix>`` (then ``-2``, ...).
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.qc import SIDECAR_SUFFIX, QCReport

from daemon.config.settings import FolderSettings
from daemon.fsutil import folder_within, fsync_dir, fsync_open_dir, move_file, publish_bytes, publish_file, same_content
from daemon.intake.jobs import ClaimArea, Job
from daemon.intake.kept import KeptLedger

CONTACT_SUFFIX = ".contact.jpg"
_MAX_CANDIDATES = 20
# A final name plus ".contact.jpg" or ".veil.json", inside a temporary name's affixes, stays under 255 bytes.
_MAX_NAME_BYTES = 200


@dataclass(frozen=True)
class Published:
    disposition: str
    name: str  # the published relative name
    duplicate: bool  # the same input had already been published: nothing new was written


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def name_too_long(rel: str) -> bool:
    return len(PurePosixPath(rel).name.encode()) > _MAX_NAME_BYTES


def sha256_or_none(path: Path) -> str | None:
    """The hash for a sidecar when the file may be gone or unreadable (the error says why, elsewhere)."""
    try:
        return sha256_file(path)
    except OSError:
        return None


def candidate_names(rel: str, sha256: str) -> list[str]:
    """Output names to try, in order. A name too long to carry its companions' suffixes is shortened and
    tagged with the hash from the first candidate on (a 255-byte limit holds for every name we create)."""
    path = PurePosixPath(rel)
    stem, suffix = path.name[: len(path.name) - len(path.suffix)] if path.suffix else path.name, path.suffix
    if len(suffix.encode()) > 16:
        stem, suffix = path.name, ""
    names = [str(path.with_name(_fit(stem, f".{sha256[:8]}{suffix}")))] if name_too_long(rel) else [rel]
    for i in range(1, _MAX_CANDIDATES):
        tag = sha256[:8] if i == 1 else f"{sha256[:8]}-{i}"
        names.append(str(path.with_name(_fit(stem, f".{tag}{suffix}"))))
    return names


def _fit(stem: str, tail: str) -> str:
    budget = _MAX_NAME_BYTES - len(tail.encode())
    return stem.encode()[:budget].decode(errors="ignore") + tail


def _root_for(folder: FolderSettings, disposition: str) -> Path:
    return {"done": folder.output, "review": folder.review_dir, "failed": folder.failed_dir}[disposition]


def _sidecar_sha(path: Path) -> str | None:
    try:
        return QCReport.from_json(path.read_bytes()).input.sha256
    except (OSError, ValueError):
        return None


def _staged_group(job: Job, report: QCReport) -> list[tuple[Path, str]]:
    """(staged file, name relative to the main output's folder) for every file to publish, main first."""
    if report.disposition == "failed":
        # The original goes to failed/ beside its error; if even that is gone, the sidecar says so alone.
        return [(job.input_path, job.input_path.name)] if job.input_path.exists() else []
    main = job.staged_output
    group = [(main, main.name)]
    for name in report.companions:
        group.append((job.staging / name, name))
    return group


def _rename_companion(name: str, old_main: str, new_main: str) -> str:
    return new_main + name[len(old_main):] if name.startswith(old_main) else name


def _choose_targets(job: Job, folder: FolderSettings, report: QCReport) -> dict[str, str] | None:
    """Final paths for the staged files plus "sidecar"; None when this input is already published."""
    root = _root_for(folder, report.disposition)
    sha = report.input.sha256 or ""
    group = _staged_group(job, report)
    main_name = group[0][1] if group else ""
    for candidate in candidate_names(job.record.rel, sha):
        final_main = root / candidate
        sidecar = final_main.with_name(final_main.name + SIDECAR_SUFFIX)
        if sidecar.exists():
            if sha and _sidecar_sha(sidecar) == sha:
                return None
            continue
        targets = {str(src): str(final_main.with_name(_rename_companion(n, main_name, final_main.name))) for src, n in group}
        if any(os.path.lexists(t) for t in targets.values()):
            continue  # taken by another file (or one still being published): keep looking
        targets["sidecar"] = str(sidecar)
        return targets
    raise FileExistsError(f"no free output name for job {job.id} after {_MAX_CANDIDATES} candidates")


def _place(targets: dict[str, str], movable: Path | None = None, tag: str | None = None) -> bool:
    """Copy the staged files to their targets; False if a target turned out to hold another file.

    ``movable`` (a failed input) may be moved instead when it cannot be read: the service may not link or
    copy a file that another user dropped with no read permission, but it must still reach failed/."""
    placed: list[Path] = []
    for src, final in targets.items():
        if src == "sidecar":
            continue
        src_path, final_path = Path(src), Path(final)
        if src_path == movable and not src_path.exists() and final_path.exists():
            continue  # moved there by an interrupted earlier try
        try:
            try:
                publish_file(src_path, final_path, tag=tag)
            except PermissionError:
                if src_path != movable:
                    raise
                _move_no_overwrite(src_path, final_path)
            placed.append(final_path)
        except FileExistsError:
            if same_content(src_path, final_path):
                continue  # our own copy from an interrupted earlier try
            for path in placed:  # lost a race for this name: undo only what this call wrote
                path.unlink(missing_ok=True)
            return False
    return True


def _move_no_overwrite(src: Path, final: Path) -> None:
    if os.path.lexists(final):
        raise FileExistsError(errno.EEXIST, "exists", str(final))
    os.rename(src, final)  # same filesystem only; across, the error keeps the job for a later try
    fsync_dir(final.parent)
    fsync_dir(src.parent)


def publish(job: Job, folder: FolderSettings, report: QCReport) -> Published:
    """Steps 1-3 for a job in state "processed"; leaves it in state "published"."""
    root = _root_for(folder, report.disposition)
    for _ in range(_MAX_CANDIDATES):
        if not job.record.targets:
            targets = _choose_targets(job, folder, report)
            if targets is None:
                job.record.state = "published"
                job.save()
                return Published(report.disposition, job.record.rel, duplicate=True)
            job.record.targets = targets
            job.save()
        if _place(job.record.targets, movable=job.input_path if report.disposition == "failed" else None, tag=job.id):
            break
        job.record.targets = {}
        job.save()
    else:
        raise FileExistsError(f"job {job.id}: every output name was taken while publishing")

    name = _published_name(job, root)
    sidecar = Path(job.record.targets["sidecar"])
    update: dict = {"job": job.id}  # the sidecar, the commit marker, names the job that wrote it
    if report.output is not None and report.disposition != "failed":
        update["output"] = report.output.model_copy(update={"name": name})
    final_report = report.model_copy(update=update)
    try:
        publish_bytes(final_report.to_json().encode(), sidecar, tag=job.id)
    except FileExistsError:
        if _sidecar_sha(sidecar) != report.input.sha256:
            raise
    job.record.state = "published"
    job.save()
    return Published(report.disposition, name, duplicate=False)


def _published_name(job: Job, root: Path) -> str:
    sidecar = Path(job.record.targets["sidecar"])
    return sidecar.with_name(sidecar.name[: -len(SIDECAR_SUFFIX)]).relative_to(root).as_posix()


def already_published(job: Job, folder: FolderSettings, report: QCReport) -> Published:
    """What ``publish`` returned for a job another process (a remote worker) published: no file is touched."""
    if not job.record.targets:  # it found this input published before: a duplicate
        return Published(report.disposition, job.record.rel, duplicate=True)
    return Published(report.disposition, _published_name(job, _root_for(folder, report.disposition)), duplicate=False)


def finalize(job: Job, area: ClaimArea, folder: FolderSettings, disposition: str) -> None:
    """Step 4: the original leaves Veil's hands, then the job folder goes."""
    payload = job.input_path
    if payload.exists():
        if disposition == "failed" or folder.on_success == "delete":
            payload.unlink()  # a failed input is already in failed/, beside its error sidecar
        elif folder.on_success == "keep" and _keep(payload, folder, job.record.rel):
            pass
        else:
            _archive(payload, folder.originals_dir, job.record.rel)
    area.finish(job)


def _keep(payload: Path, folder: FolderSettings, rel: str) -> bool:
    """Put the original back where it arrived, recorded as done first; False if a newcomer took the name, or
    its folder is now a symbolic link (it might lead out of the share)."""
    st = payload.stat()
    KeptLedger(folder.ingest).record(rel, st.st_size, st.st_mtime_ns)
    home = Path(rel)
    try:
        (folder.ingest / home.parent).mkdir(parents=True, exist_ok=True)
        with folder_within(folder.ingest, home.parent) as arrived_in:
            os.link(payload, home.name, dst_dir_fd=arrived_in)  # the same inode: size and mtime stay as recorded
            os.unlink(payload)
            fsync_open_dir(arrived_in)
    except FileExistsError:
        return False  # a new file arrived under this name meanwhile: archive ours instead
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return False
        raise
    return True


def _archive(payload: Path, originals: Path, rel: str) -> None:
    sha = None
    for index, provisional in enumerate(candidate_names(rel, "0" * 64)):
        candidate = provisional
        if index or name_too_long(rel):
            sha = sha or sha256_file(payload)
            candidate = candidate_names(rel, sha)[index]
        final = originals / candidate
        try:
            move_file(payload, final)
            return
        except FileExistsError:
            if same_content(payload, final):
                payload.unlink()  # already archived by an interrupted earlier try
                return
    raise FileExistsError(f"no free name in {originals} for an original")


def publish_spot_check(folder: FolderSettings, name: str) -> None:
    """Drift spot check: copy a published clean result and its sidecar to the folder's spotcheck/ (never over a file)."""
    for suffix in ("", SIDECAR_SUFFIX):
        src, dst = folder.output / (name + suffix), folder.spotcheck_dir / (name + suffix)
        try:
            publish_file(src, dst)
        except FileExistsError:
            if not same_content(src, dst):
                raise


def missing_results(job: Job, report: QCReport) -> list[str]:
    """Files a successful report promises that are not in staging (a pipeline fault: fail closed)."""
    if report.disposition == "failed":
        return []
    return [name for path, name in _staged_group(job, report) if not path.is_file()]
