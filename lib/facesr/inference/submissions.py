"""The log of every leaderboard zip the kit makes: ``RUNS_DIR/submissions.csv``, one row per zip.

:func:`facesr.inference.submission.package_submission` (behind ``predict --zip``, notebooks 06 and 07 and the
hand-in) appends a row whenever it knows the run or checkpoint the zip came from: when it was made, the run,
the checkpoint and its iteration, the self-ensemble, the val PSNR it was chosen on (and where that number
comes from), the test PSNR to expect (:func:`facesr.editions.expected_test_range`), the zip's path and its
sha256. ``python -m facesr submissions --score ZIP_OR_ROW PSNR`` records the score CodaLab gave it; from then
on the expected test range uses the student's own val/test pairs too, and the hand-in's Readme names the row
of the submitted zip (found by its sha256, so a moved or renamed zip is still found) with its score.

The file is plain CSV (one header line, then the rows), rewritten whole through :mod:`facesr.atomic` on every
change, so a crash never leaves half a row. Rows are numbered once (``row``) and never renumbered.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import math
import os
from pathlib import Path

from facesr.atomic import atomic_write_text
from facesr.editions import ExpectedTest, ValTestPair, expected_test_range, get_edition
from facesr.errors import FacesrError

SUBMISSIONS_FILE = "submissions.csv"
COLUMNS = ("row", "time", "edition", "run", "checkpoint", "iteration", "self_ensemble", "val_psnr", "val_psnr_from",
           "expected_test", "zip", "sha256", "codalab_psnr")  # fmt: skip


def submissions_path(runs_dir: str | os.PathLike) -> Path:
    """``runs_dir/submissions.csv``."""
    return Path(runs_dir).expanduser() / SUBMISSIONS_FILE


def read_submissions(runs_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of ``runs_dir/submissions.csv`` as dicts of text (empty when there is none yet).

    Raises:
        FacesrError: the file exists but is not the kit's log (names it).
    """
    path = submissions_path(runs_dir)
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise FacesrError(f"{path} is unreadable ({err}); move it away to start a new log") from err
    if "row" not in header or "sha256" not in header:
        raise FacesrError(f"{path} is not a submissions log (columns {', '.join(header)}); move it away")
    return rows


def _write(runs_dir: str | os.PathLike, rows: list[dict]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = submissions_path(runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, out.getvalue())


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file, hex."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def own_pairs(runs_dir: str | os.PathLike | None, edition: int | str | None = None) -> tuple[ValTestPair, ...]:
    """The student's own val/test pairs: rows of the edition with a val PSNR and a recorded CodaLab score."""
    if runs_dir is None:
        return ()
    year = get_edition(edition).year
    pairs = []
    for row in read_submissions(runs_dir):
        val, test = _number(row.get("val_psnr")), _number(row.get("codalab_psnr"))
        if val is not None and test is not None and str(row.get("edition")) == str(year):
            pairs.append(ValTestPair(f"your row {row['row']} ({row.get('run') or 'no run'}, "
                                     f"{row.get('self_ensemble') or 'none'})", val, test))
    return tuple(pairs)


def expected_test(val_psnr: float | None, edition: int | str | None = None,
                  runs_dir: str | os.PathLike | None = None) -> ExpectedTest:
    """:func:`facesr.editions.expected_test_range` with the student's own scored rows of ``runs_dir``'s log.

    Args:
        val_psnr: the val PSNR (dB; None: not known).
        edition: whose val and test images (None: ``FACESR_EDITION``, else 2022).
        runs_dir: the folder of run folders holding ``submissions.csv`` (None: published pairs only).
    """
    return expected_test_range(edition, val_psnr, own_pairs(runs_dir, edition))


def run_folder_of(source: str | os.PathLike | None) -> Path | None:
    """The run folder of a run folder or of a checkpoint inside one (it holds config.json); None otherwise."""
    if source is None:
        return None
    path = Path(source).expanduser()
    folder = path if path.is_dir() else path.parent
    return folder if (folder / "config.json").is_file() else None


def _iteration(checkpoint: Path | None) -> int | None:
    """The iteration a kit checkpoint holds (None for other files and exports)."""
    from facesr.weights.checkpoints import load_checkpoint

    if checkpoint is None or checkpoint.suffix == ".safetensors":
        return None
    try:
        value = load_checkpoint(checkpoint).get("iter")
    except FacesrError:
        return None
    return value if isinstance(value, int) else None


def logged_val_psnr(run_dir: Path | None, iteration: int | None) -> float | None:
    """The val PSNR the run's ``val.csv`` logged at ``iteration`` (the EMA weights, no self-ensemble)."""
    from facesr.training import read_run_logs

    if run_dir is None or iteration is None:
        return None
    val = read_run_logs(run_dir)[1]
    if val.empty or "iter" not in val.columns or "psnr" not in val.columns:
        return None
    rows = val[val["iter"] == iteration]
    return float(rows["psnr"].iloc[-1]) if not rows.empty else None


def record_submission(
    zip_path: str | os.PathLike,
    source: str | os.PathLike | None = None,
    tta: bool | str | None = None,
    val_psnr: float | None = None,
    val_psnr_from: str = "",
    edition: int | str | None = None,
    runs_dir: str | os.PathLike | None = None,
) -> dict[str, str]:
    """Append the row of a leaderboard zip just written to ``RUNS_DIR/submissions.csv``; returns the row.

    A zip whose bytes are already logged (the same sha256) keeps its row: nothing is appended.

    Args:
        zip_path: the zip.
        source: the run folder or checkpoint its generator came from (its iteration and val.csv are read).
        tta: the self-ensemble of its predictions: None, "hflip" or "x8" (True: "x8").
        val_psnr: the val PSNR it was chosen on, with ``tta`` (None: the run's val.csv at the checkpoint's
            iteration, which has no self-ensemble).
        val_psnr_from: where ``val_psnr`` comes from, e.g. "psnr table, x8".
        edition: whose val and test images (None: ``FACESR_EDITION``, else 2022).
        runs_dir: the log's folder (None: the run folder's parent, else the zip's folder).
    """
    from facesr.inference.tta import tta_mode
    from facesr.weights.checkpoints import checkpoint_file

    tta = tta_mode(tta)
    run_dir = run_folder_of(source)
    checkpoint = checkpoint_file(source) if source is not None else None
    iteration = _iteration(checkpoint)
    if val_psnr is None:
        val_psnr = logged_val_psnr(run_dir, iteration)
        val_psnr_from = f"val.csv at iteration {iteration}, no self-ensemble" if val_psnr is not None else ""
    folder = Path(runs_dir) if runs_dir is not None else run_dir.parent if run_dir else Path(zip_path).parent
    year = get_edition(edition).year
    rows = read_submissions(folder)
    sha = file_sha256(zip_path)
    same = [r for r in rows if r.get("sha256") == sha]
    if same:  # the same bytes (e.g. the hand-in re-zipping the same predictions): the same submission, one row
        return same[-1]
    row = {
        "row": str(max((int(r["row"]) for r in rows if str(r.get("row", "")).isdigit()), default=0) + 1),
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "edition": str(year),
        "run": run_dir.name if run_dir else "",
        "checkpoint": str(checkpoint or ""),
        "iteration": "" if iteration is None else str(iteration),
        "self_ensemble": tta or "none",
        "val_psnr": "" if val_psnr is None else f"{val_psnr:.4f}",
        "val_psnr_from": val_psnr_from,
        "expected_test": expected_test(val_psnr, year, folder).range_text(),
        "zip": str(Path(zip_path).expanduser().resolve()),
        "sha256": sha,
        "codalab_psnr": "",
    }
    _write(folder, [*rows, row])
    return row


def find_submission(runs_dir: str | os.PathLike, zip_or_row: str | os.PathLike) -> dict[str, str] | None:
    """The row of a zip (by its sha256 when the file exists, else by its path) or of a row number; the latest
    row when several match (the same zip logged twice); None when none does."""
    rows = read_submissions(runs_dir)
    text = str(zip_or_row).strip()
    if text.isdigit():
        return next((r for r in rows if r.get("row") == text), None)
    path = Path(text).expanduser()
    if path.is_file():
        sha = file_sha256(path)
        found = [r for r in rows if r.get("sha256") == sha]
    else:
        found = [r for r in rows if r.get("zip") in (text, str(path.resolve()))]
    return found[-1] if found else None


def record_score(runs_dir: str | os.PathLike, zip_or_row: str | os.PathLike, psnr: float | str) -> dict[str, str]:
    """Record the CodaLab PSNR of a logged zip (its path or row number); returns the updated row.

    Raises:
        FacesrError: no such row, or a PSNR that is not a number.
    """
    score = _number(psnr)
    if score is None:
        raise FacesrError(f"--score {zip_or_row} {psnr}: the CodaLab PSNR must be a number in dB, e.g. 28.8475")
    row = find_submission(runs_dir, zip_or_row)
    if row is None:
        raise FacesrError(f"{zip_or_row} is no row or zip of {submissions_path(runs_dir)}; "
                          "`python -m facesr submissions` lists them")
    rows = read_submissions(runs_dir)
    for r in rows:
        if r["row"] == row["row"]:
            r["codalab_psnr"] = f"{score:.4f}"
            row = r
    _write(runs_dir, rows)
    return row


def submissions_text(runs_dir: str | os.PathLike) -> str:
    """The log as a printable table (the sha256 shortened), or one line saying it is empty."""
    rows = read_submissions(runs_dir)
    if not rows:
        return f"no submissions logged in {submissions_path(runs_dir)} yet: predict --zip, notebooks 06 and 07 log them"
    shown = ("row", "time", "run", "iteration", "self_ensemble", "val_psnr", "expected_test", "codalab_psnr", "sha256",
             "zip")  # fmt: skip
    table = [[*shown], *([r.get(c, "")[:12] if c == "sha256" else r.get(c, "") for c in shown] for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(shown))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table]
    return "\n".join([f"{submissions_path(runs_dir)}:", *lines])


def describe_row(row: dict[str, str], runs_dir: str | os.PathLike | None = None) -> str:
    """One line about a logged zip: its row, val PSNR, expected test range and CodaLab score."""
    val = f"val PSNR {row['val_psnr']} dB ({row.get('val_psnr_from') or 'given'})" if row.get("val_psnr") else \
        "no val PSNR known"
    score = f"CodaLab {row['codalab_psnr']} dB" if row.get("codalab_psnr") else \
        "CodaLab score not recorded (python -m facesr submissions --score ZIP_OR_ROW PSNR)"
    where = f" of {submissions_path(runs_dir)}" if runs_dir is not None else ""
    return f"row {row['row']}{where}: {val}; expected test {row.get('expected_test')}; {score}"
