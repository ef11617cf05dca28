"""The course data layout, finding a data root and the data-set checker (``python -m facesr check-data``).

Layout under a data root (the course's ``data/FFHQ/``): ``train/GT`` (4000 GT, 512x512), ``val/LQ`` +
``val/GT`` (400 pairs, LQ 128x128), ``test/LQ`` (400 LQ); files ``00000.png``, ``00001.png``, ...
Optionally ``test_real/``: the real-world LQ images released with the test set (any size, no GT), flat or with
one ``LQ/`` level inside. Training and validation need ``train/GT`` and ``val/`` only; ``test/LQ`` only the test
predictions, the leaderboard zip and the hand-in (:func:`test_lq_dir`).
File I/O is :mod:`facesr.data.images`; nothing in this module ever writes into a data folder.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facesr.data.images import HOW_TO_GET_DATA, IMAGE_EXTENSIONS, list_images, probe_image
from facesr.editions import REAL_WORLD_FOLDER, real_world_folder
from facesr.errors import FacesrError

LAYOUT = ("train/GT", "val/LQ", "val/GT", "test/LQ")
TRAIN_VAL = ("train/GT", "val/LQ", "val/GT")  # what training and validation need; test/LQ only predictions do
TEST_LQ = "test/LQ"
REAL_WORLD = REAL_WORLD_FOLDER  # optional: the report shows predictions on these, the leaderboard never scores them
SCALE = 4
GT_SIZE = 512
LQ_SIZE = GT_SIZE // SCALE


def name_list(files: Sequence[Path | str], limit: int = 5) -> str:
    """``"00001.png, 00002.png and 3 more"``: the first ``limit`` file names of ``files`` (paths or names)."""
    shown = ", ".join(getattr(p, "name", str(p)) for p in files[:limit])
    return shown + (f" and {len(files) - limit} more" if len(files) > limit else "")


def find_data_root(path: str | os.PathLike, needs: Sequence[str] = TRAIN_VAL) -> Path:
    """The data root at ``path`` (or its single sub-folder in the course layout); FacesrError if none.

    Args:
        path: The data root, or the folder holding it.
        needs: The folders the caller reads (default: ``train/GT`` and ``val/``, what training needs).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FacesrError(f"data root {root} does not exist; {HOW_TO_GET_DATA}")
    missing = [sub for sub in needs if not (root / sub).is_dir()]
    if not missing:
        return root
    # An archive unpacked one level too deep (root/FFHQ/train/...) is still found.
    inner = [d for d in sorted(root.iterdir()) if d.is_dir() and all((d / s).is_dir() for s in needs)]
    if len(inner) == 1:
        return inner[0]
    raise FacesrError(
        f"{root} is not a data root: missing folder(s) {', '.join(missing)}; {HOW_TO_GET_DATA}"
    )


def test_lq_dir(data_root: str | os.PathLike) -> Path:
    """The data root's ``test/LQ`` (test predictions, the leaderboard zip and the hand-in need it); FacesrError
    naming it when it is missing."""
    root = Path(data_root).expanduser()
    with contextlib.suppress(FacesrError):
        root = find_data_root(root, needs=(TEST_LQ,))
    if not (root / TEST_LQ).is_dir():
        raise FacesrError(f"{root} has no {TEST_LQ}: the test predictions, the leaderboard zip and the hand-in need "
                          "the course's test LQ images there (training and validation do not)")
    return root / TEST_LQ


def real_world_dir(root: str | os.PathLike) -> Path | None:
    """The data root's optional ``test_real/`` folder (real-world LQ, any size, no GT; flat or with one ``LQ/``
    level inside: :func:`facesr.editions.real_world_folder`); None when it has none."""
    root = Path(root).expanduser()
    for needs in (TRAIN_VAL, ("val/LQ",), (REAL_WORLD,)):  # a folder holding test_real alone is fine too
        with contextlib.suppress(FacesrError):
            root = find_data_root(root, needs=needs)
            break
    return real_world_folder(root)


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found; ``str(report)`` is the printable report."""

    root: Path
    edition: int = 2022
    counts: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, dict[tuple[int, int], int]] = field(default_factory=dict)  # (height, width) -> count
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        lines = [f"data check of {self.root} against the {self.edition} edition"]
        for sub in LAYOUT:
            sizes = self.sizes.get(sub, {})
            shown = ", ".join(
                f"{w}x{h}" + (f" ({n})" if len(sizes) > 1 else "")
                for (h, w), n in Counter(sizes).most_common(3)
            )
            lines.append(f"  {sub:<9} {self.counts.get(sub, 0):>5} images  {shown}")
        if REAL_WORLD in self.counts:
            sizes = Counter(self.sizes.get(REAL_WORLD, {}))
            shown = ", ".join(f"{w}x{h}" for (h, w), _ in sizes.most_common(4))
            more = f" and {len(sizes) - 4} more sizes" if len(sizes) > 4 else ""
            lines.append(f"  {REAL_WORLD:<9} {self.counts[REAL_WORLD]:>5} images  {shown}{more} (real-world LQ, no GT)")
        else:
            lines.append(f"  {REAL_WORLD:<9}     - (optional real-world LQ folder, not present)")
        for title, items in (("errors", self.errors), ("warnings", self.warnings)):
            if items:
                lines.append(f"{title}:")
                lines += [f"  - {item}" for item in items]
        if self.errors:
            verdict = (
                f"FAILED: {len(self.errors)} error(s), {len(self.warnings)} warning(s); fix the errors above"
            )
        else:
            verdict = "OK" + (
                f" with {len(self.warnings)} warning(s)" if self.warnings else ": no problems found"
            )
        lines.append(f"verdict: {verdict}")
        return "\n".join(lines)


def check_dataset(root: str | os.PathLike, full_decode: bool = False, edition: int | str | None = None) -> DatasetReport:
    """Check a data root in the course layout and report every problem at once (never raises on bad data).

    PNG files are checked chunk by chunk (every CRC, so truncated or damaged files are found) without
    decoding them, which keeps 4800 files to seconds; ``full_decode=True`` decodes every file instead,
    as other formats always are. What differs from the edition's data (image counts, the real-world folder,
    a BasicSR ``meta_info`` list) is a warning, never an error: a subset is fine for trying things out.

    Args:
        root: The data root.
        full_decode: Decode every file instead of checking PNG chunks.
        edition: The course edition whose data to compare with (None: ``FACESR_EDITION``, else 2022).
    """
    from facesr.editions import get_edition

    ed = get_edition(edition)
    report = DatasetReport(Path(root).expanduser(), edition=ed.year)
    if not report.root.is_dir():
        report.errors.append(f"data root {report.root} does not exist; {HOW_TO_GET_DATA}")
        return report
    files: dict[str, list[Path]] = {}
    for sub in LAYOUT:
        folder = report.root / sub
        report.counts[sub] = 0
        if not folder.is_dir() and sub == TEST_LQ:  # training works without it; the predictions need it
            report.warnings.append(f"missing folder {sub} ({folder}): training and validation work, the test "
                                   "predictions, the leaderboard zip and the hand-in need it")
            continue
        if not folder.is_dir():
            report.errors.append(f"missing folder {sub} ({folder}); {HOW_TO_GET_DATA}")
            continue
        files[sub] = list_images(folder)
        report.counts[sub] = len(files[sub])
        other = [
            p
            for p in folder.iterdir()
            if not p.name.startswith(".") and p.suffix.lower() not in IMAGE_EXTENSIONS
        ]
        if other:
            report.warnings.append(f"{sub}: {len(other)} non-image entries ignored ({name_list(sorted(other))})")
        if not files[sub]:
            report.errors.append(f"folder {sub} is empty; it must hold the {sub.split('/')[1]} images")
    real = real_world_folder(report.root)
    if real is not None:  # optional: reported when present, never an error when absent
        files[REAL_WORLD] = list_images(real)
        report.counts[REAL_WORLD] = len(files[REAL_WORLD])
        if not files[REAL_WORLD]:
            report.warnings.append(f"{REAL_WORLD} is empty; put the real-world LQ images there or remove it")
    everything = [p for sub in files for p in files[sub]]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # cv2/zlib run outside the GIL
        results = pool.map(lambda p: probe_image(p, full_decode), everything)
        probed = dict(zip(everything, results, strict=True))
    for sub, paths in files.items():
        expected = GT_SIZE if sub.endswith("GT") else LQ_SIZE if sub != REAL_WORLD else None  # any size
        sizes: Counter[tuple[int, int]] = Counter()
        corrupt, wrong, converted = [], [], {"gray": [], "alpha": [], "16-bit": []}
        for p in paths:
            result = probed[p]
            if isinstance(result, str):
                corrupt.append(p)
                continue
            h, w, notes = result
            sizes[(h, w)] += 1
            if expected and (h, w) != (expected, expected):
                wrong.append((p, h, w))
            for note in notes:
                converted[note].append(p)
        report.sizes[sub] = dict(sizes)
        if corrupt:
            report.errors.append(f"{sub}: {len(corrupt)} corrupt or unreadable file(s): {name_list(corrupt)}")
        if wrong:
            p, h, w = wrong[0]
            report.errors.append(
                f"{sub}: {len(wrong)} image(s) are not {expected}x{expected} (first: {p.name} is {w}x{h})"
            )
        for kind, bad in converted.items():
            if bad:
                report.warnings.append(
                    f"{sub}: {len(bad)} {kind} image(s) will be converted to 8-bit RGB: {name_list(bad)}"
                )
    if "val/LQ" in files and "val/GT" in files:
        _check_pairs(report, files["val/LQ"], files["val/GT"], probed)
    _compare_with_edition(report, files, ed)
    return report


def _compare_with_edition(report: DatasetReport, files: dict[str, list[Path]], ed: Any) -> None:
    """Warnings for what differs from the edition's data: counts, real-world images, the meta_info list."""
    expected = {"train/GT": ed.train_images, "val/LQ": ed.val_pairs, "val/GT": ed.val_pairs, "test/LQ": ed.test_images}
    differ = {sub: (len(files[sub]), n) for sub, n in expected.items() if files.get(sub) and len(files[sub]) != n}
    if differ:
        subset = all(found < n for found, n in differ.values())
        report.warnings.append(f"image counts differ from the {ed.year} edition's ("
                               + ", ".join(f"{sub} {found} of {n}" for sub, (found, n) in differ.items()) + ")"
                               + (": a subset, fine for trying things out" if subset else ""))
    real, found = ed.real_world, files.get(REAL_WORLD)
    if found:
        if len(found) != real.count:
            report.warnings.append(f"{REAL_WORLD}: {len(found)} images, the {ed.year} edition released {real.count}")
        if real.files and sorted(p.name for p in found) != sorted(real.files):
            report.warnings.append(f"{REAL_WORLD}: the {ed.year} edition names them {real.files[0]}-{real.files[-1]}; "
                                   f"found {name_list(found)}")
        sizes = report.sizes.get(REAL_WORLD, {})
        if real.size and any(hw != (real.size, real.size) for hw in sizes):
            report.warnings.append(f"{REAL_WORLD}: the {ed.year} edition's images are {real.size}x{real.size}")
    _check_meta_info(report, files.get("train/GT", []), ed)


def _check_meta_info(report: DatasetReport, train: list[Path], ed: Any) -> None:
    """Read the edition's BasicSR meta_info list when the data root has it (root, train/ or train/GT/).

    Each line names one GT file (its first word, as BasicSR reads it); a listed file that train/GT lacks is
    an error, since the course's own code would stop on it.
    """
    if not ed.meta_info:
        return
    names = [ed.meta_info] + ([ed.course_yml_meta_info] if ed.course_yml_meta_info else [])
    found = [folder / name for name in names for folder in (report.root, report.root / "train", report.root / "train/GT")
             if (folder / name).is_file()]
    if ed.course_yml_meta_info:
        report.warnings.append(f"the {ed.year} course yml still points at {ed.course_yml_meta_info}, not "
                               f"{ed.meta_info}; the kit trains on every image in train/GT")
    have = {p.name for p in train}
    for path in found:
        listed = [line.split()[0] for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                  if line.strip()]
        missing = [Path(name).name for name in listed if Path(name).name not in have]
        if missing:
            report.errors.append(f"{path.name} lists {len(listed)} GT files, {len(missing)} of them missing from "
                                 f"train/GT: {name_list(missing)}; copy them there or use the list of your data")


def unpaired(lq: Sequence[Path], gt: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(LQ files without a GT of the same name, GT files without an LQ of the same name), in input order."""
    gt_names, lq_names = {p.name for p in gt}, {p.name for p in lq}
    return [p for p in lq if p.name not in gt_names], [p for p in gt if p.name not in lq_names]


def not_x4(pairs: Iterable[tuple[Any, tuple, tuple]]) -> list[tuple[Any, tuple, tuple]]:
    """The ``(key, LQ header, GT header)`` triples whose GT (height, width) is not SCALE times the LQ's."""
    return [(key, q, g) for key, q, g in pairs if (g[0], g[1]) != (SCALE * q[0], SCALE * q[1])]


def _check_pairs(report: DatasetReport, lq: list[Path], gt: list[Path], probed: dict[Path, Any]) -> None:
    gt_by_name = {p.name: p for p in gt}
    no_gt, no_lq = unpaired(lq, gt)
    if no_gt:
        report.errors.append(f"val: {len(no_gt)} LQ file(s) without a GT of the same name: {name_list(no_gt)}")
    if no_lq:
        report.errors.append(f"val: {len(no_lq)} GT file(s) without an LQ of the same name: {name_list(no_lq)}")
    headers = ((p, probed[p], probed.get(gt_by_name.get(p.name))) for p in lq)
    not_quarter = not_x4((p, q, g) for p, q, g in headers if isinstance(q, tuple) and isinstance(g, tuple))
    if not_quarter:
        p, q, g = not_quarter[0]
        report.errors.append(
            f"val: {len(not_quarter)} LQ image(s) are not a quarter of their GT "
            f"(first: {p.name}, LQ {q[1]}x{q[0]}, GT {g[1]}x{g[0]})"
        )
