"""The kit's side of Google Drive: its layout there, the runs link into it, the one-time data unpack from it.

Colab runtimes are recycled without warning, so everything of a project that must last lives in Drive, under
``MyDrive/facesr/``: the run folders (the kit's ``checkpoints/`` becomes a link to ``facesr/runs``), the figures
and tables (``facesr/figures/<edition>/``), the project's settings (``facesr/settings.json``, its edition) and
the data archive (``facesr/FFHQ.zip``). Reading thousands of small files from mounted Drive is slow, so the
archive is copied to local disk and unpacked there once. Every step is idempotent and never overwrites or loses
data; :func:`facesr.colab.setup_runtime` runs them after mounting Drive. ``FACESR_DRIVE=DIR`` (or
``setup_runtime(drive_root=DIR)``) makes any folder stand for ``MyDrive`` without mounting: that is how the tests,
and anyone, reproduce a Colab project on one machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from facesr.errors import FacesrError
from facesr.training.checkpoint_files import DRIVE_ENV  # a folder standing for MyDrive; the set-up sets it

DRIVE_ARCHIVE = "facesr/FFHQ.zip"  # relative to MyDrive
DRIVE_RUNS = "facesr/runs"  # relative to MyDrive; the kit's checkpoints/ becomes a link to it
DRIVE_FIGURES = "facesr/figures"  # relative to MyDrive; one folder per edition (quick mode: <edition>/quick)
DRIVE_SETTINGS = "facesr/settings.json"  # relative to MyDrive: the project's edition, stored once
RUNS_DIR = "checkpoints"  # the kit's run folders, relative to the kit (see DEVELOPERS.md)
LOCAL_CHECKPOINTS = "checkpoints-local"  # relative to the kit: iter_*.pt of runs on Drive, on the runtime's disk
DATA_NAME = "FFHQ"  # the archive is unpacked to <kit>/data/FFHQ
_TRACKED_IN_RUNS = {"README.md"}  # files the kit itself commits into checkpoints/


def drive_from_env(env: dict | None = None) -> Path | None:
    """The folder ``FACESR_DRIVE`` names (the one that stands for ``MyDrive``), or None."""
    value = (os.environ if env is None else env).get(DRIVE_ENV, "").strip()
    return Path(value).expanduser() if value else None


def link_runs(kit: Path, drive_runs: Path, runs_name: str = RUNS_DIR) -> Path:
    """Make ``kit/runs_name`` a link to ``drive_runs`` (created if missing); idempotent.

    Run folders already on local disk are never touched: FacesrError says how to move them.
    """
    drive_runs.mkdir(parents=True, exist_ok=True)
    link = kit / runs_name
    if link.is_symlink():
        if link.resolve() == drive_runs.resolve():
            return link
        link.unlink()  # a stale link only; the folder it pointed to is left alone
    elif link.is_dir():
        own = {p.name for p in link.iterdir()}
        if own - _TRACKED_IN_RUNS:
            raise FacesrError(
                f"{link} holds run folders on local disk ({', '.join(sorted(own - _TRACKED_IN_RUNS)[:3])}); "
                f"move them to {drive_runs} (e.g. mv {link}/* {drive_runs}/) and run the set-up again"
            )
        for name in own:  # only the kit's own README: keep a copy beside the runs, then swap in the link
            if not (drive_runs / name).exists():
                shutil.copy2(link / name, drive_runs / name)
            (link / name).unlink()
        link.rmdir()
    elif link.exists():
        raise FacesrError(f"{link} is a file, not a folder; rename it and run the set-up again")
    link.symlink_to(drive_runs, target_is_directory=True)
    return link


def _has_layout(folder: Path) -> bool:
    return (folder / "val" / "GT").is_dir() or (folder / "train" / "GT").is_dir()


def _locate_layout(folder: Path, depth: int = 3) -> Path | None:
    """The folder at or below ``folder`` that holds train/ or val/ (archives often wrap it once)."""
    if _has_layout(folder):
        return folder
    if depth == 0:
        return None
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("__MACOSX", "."))):
        found = _locate_layout(sub, depth - 1)
        if found is not None:
            return found
    return None


def unpack_data(archive: Path, data_dir: Path, name: str = DATA_NAME) -> Path:
    """Copy ``archive`` to local disk and unpack it to ``data_dir/name`` once; return that folder.

    Skips everything when ``data_dir/name`` already holds the course layout. Never writes into an
    existing non-empty folder: a half-finished unpack lives in a temporary folder until it is complete.
    """
    target = data_dir / name
    if _has_layout(target):
        return target
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FacesrError(
            f"{target} exists but holds no train/GT or val/GT; move it away and run the set-up again"
        )
    if not archive.is_file():
        raise FacesrError(
            f"no data archive at {archive}: upload the course's {archive.name} there "
            f"(or pass archive=... / --archive PATH)"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-unpack-", dir=data_dir))
    try:
        local = work / archive.name  # one big sequential read from Drive, then local random access
        print(f"copying {archive} ({archive.stat().st_size / 1e9:.2f} GB) to local disk, then unpacking (once)")
        shutil.copyfile(archive, local)
        shutil.unpack_archive(str(local), str(work / "content"))
        found = _locate_layout(work / "content")
        if found is None:
            raise FacesrError(f"{archive} holds no train/GT or val/GT folder; is it the course's data archive?")
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(found, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
