"""The manifest of a figures folder: every figure and table the kit saves there, and what it was made from.

A student's figures are made on several Colab runtimes, weeks apart, into one folder on Drive; the hand-in must
hold only the student's own, made for the submitted run's edition and mode. So every file the kit's save
functions write (:func:`facesr.report.style.save_figure`, :func:`facesr.report.tables.save_table`, whatever its
format) is recorded in ``manifest.json`` beside it with the notebook, the edition, quick or full mode, the data
root, the runs in view, the time, the kit's commit and the file's size and SHA-256. :func:`made_for` lists the files
whose record matches an edition and mode and whose bytes are still the recorded ones: a file put there by hand, a
copy of the demo's, or one made for another edition never qualifies.

What a record says comes from the notebook's settings cell (:func:`facesr.colab.settings.active_settings`) and from
the runs the report functions were shown (:func:`note_runs`); ``record(..., **context)`` can say it outright.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from facesr.atomic import atomic_write_json
from facesr.errors import FacesrError

MANIFEST = "manifest.json"
_RUNS: dict[str, None] = {}  # the runs this session's report functions have shown, in order


def note_runs(*names: str) -> None:
    """Remember runs the figures saved from now on are made from (find_runs and the notebook cells call it)."""
    _RUNS.update(dict.fromkeys(str(n) for n in names))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(figures_dir: str | os.PathLike) -> dict[str, dict]:
    """``{file name: its record}`` of a figures folder (``{}`` without a manifest); FacesrError if unreadable."""
    path = Path(figures_dir) / MANIFEST
    if not path.is_file():
        return {}
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FacesrError(f"{path} is unreadable ({err}); run the notebooks that make the figures again") from None
    return dict(files)


def _context() -> dict:
    """What the active settings say: the notebook, the edition, the mode, the data root."""
    from facesr.colab.settings import active_settings
    from facesr.training.run_info import kit_commit

    settings = active_settings()
    context = {"notebook": None, "edition": None, "mode": None, "data_root": None}
    if settings is not None:
        context.update(notebook=settings.notebook, edition=settings.edition,
                       mode="quick" if settings.quick else "full", data_root=str(settings.data_root))
    return {**context, "runs": list(_RUNS), "kit_commit": kit_commit()}


def record(figures_dir: str | os.PathLike, paths: Iterable[str | os.PathLike], **context: object) -> None:
    """Record files just saved into ``figures_dir`` in its manifest (the newest record of a name replaces the older).

    Args:
        figures_dir: The folder the files are in.
        paths: The files one save wrote (every format).
        **context: ``notebook``, ``edition``, ``mode`` ("quick"/"full"), ``data_root``, ``runs``: what to record
            instead of what the active settings and noted runs say.
    """
    folder = Path(figures_dir)
    files = read_manifest(folder)
    made = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    base = {**_context(), **context}
    for path in map(Path, paths):
        files[path.name] = {**base, "time": made, "size": path.stat().st_size, "sha256": _sha256(path)}
    atomic_write_json(folder / MANIFEST, {"files": files})


def made_for(figures_dir: str | os.PathLike, edition: int, quick: bool) -> list[tuple[Path, dict]]:
    """The files of ``figures_dir`` made for ``edition`` in quick or full mode: ``[(path, record)]`` by name, each
    still holding the bytes it was recorded with."""
    folder = Path(figures_dir)
    mode = "quick" if quick else "full"
    found = []
    for name, entry in sorted(read_manifest(folder).items()):
        path = folder / name
        if entry.get("edition") != edition or entry.get("mode") != mode or not path.is_file():
            continue
        if path.stat().st_size == entry.get("size") and _sha256(path) == entry.get("sha256"):
            found.append((path, entry))
    return found
