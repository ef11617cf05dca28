"""The one atomic write of the kit: checkpoints, run_info.json, logs, submissions, the hand-in bundle, predictions;
and the one write in place (:func:`write_in_place`), for Drive, where a file renamed over another sends that one to
the Trash.

A file is written to a temp file in its own folder under a name no other process uses
(``.<name>.<random>.tmp``), flushed and fsynced, renamed over the target with ``os.replace`` (atomic on POSIX,
Drive's FUSE mount included), and then the folder is fsynced so that the rename itself survives a crash. A
reader, or the next run after a kill or a full disk, finds the old file or the new one, never a torn one;
a failure removes the temp file and leaves the old file as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".tmp"


def temp_pattern(name: str) -> str:
    """The glob of the temp files an interrupted write of the file ``name`` can leave (for clean-up)."""
    return f".{name}.*{TEMP_SUFFIX}"


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible on Windows, where it is skipped.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write`` on a binary temp file beside ``path``, then put it in place atomically; returns ``path``.

    Args:
        path: The file to write (its folder is created).
        write: Writes the content into the open file (it may seek: zip files do).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON to ``path``."""
    return atomic_write_text(path, json.dumps(obj, indent=2))


def atomic_link(source: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Make ``path`` a hard link of ``source`` atomically (a temp link renamed over it); False where the file
    system has no hard links (Drive, some FUSE mounts): the caller then writes a copy."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()  # the unique name is reserved; the link takes it
        os.link(source, tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    _fsync_dir(path.parent)
    return True


def write_in_place(source: str | os.PathLike, target: str | os.PathLike) -> dict:
    """Copy ``source``'s bytes into ``target`` in place (the same file, no rename), fsynced; return ``{"size",
    "sha256"}`` of what was written. A hard-linked ``target`` is unlinked first: writing through it would change the
    other name's file too.

    Not atomic: a crash leaves a torn ``target``, so the caller must be able to tell (the checksums of
    :mod:`facesr.training.checkpoint_files`). It is for Google Drive, where the atomic write's rename sends the
    replaced file to the Trash while a write in place only makes a new revision.
    """
    import hashlib

    source, target = Path(source), Path(target)
    if target.exists() and target.stat().st_nlink > 1:
        target.unlink()
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(target, "r+b" if target.exists() else "wb") as dst:
        while chunk := src.read(16 << 20):
            dst.write(chunk)
            digest.update(chunk)
        dst.truncate()
        dst.flush()
        os.fsync(dst.fileno())
    return {"size": source.stat().st_size, "sha256": digest.hexdigest()}
