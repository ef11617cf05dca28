"""The leaderboard zip and a local scorer with the leaderboard's semantics.

Zip layout (docs/course.md sections 8 and 11): one top-level folder, :data:`ZIP_FOLDER` (``results/``), holding
``00000.png ... 00399.png``, the 512x512 RGB SR outputs named like the test LQ files.

Scoring: RGB PSNR on 0-255 over the whole image (no border crop, no Y channel), per image, averaged
over images; images are matched by file name. An SR image identical to its GT has PSNR ``inf``; the
mean of values holding ``inf`` is ``inf`` (reported as such, never silently capped).
"""

from __future__ import annotations

import math
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from PIL import Image
from torch import nn

from facesr.atomic import atomic_write
from facesr.data.check import name_list
from facesr.data.datasets import TestDataset
from facesr.data.images import list_images, read_image
from facesr.errors import FacesrError
from facesr.inference.predict import png_name
from facesr.metrics import psnr
from facesr.models import check_param_budget

ZIP_FOLDER = "results"
SR_SIZE = (512, 512)  # width, height of every submitted image


def _images(folder: Path) -> dict[str, Path]:
    """{file name: path} of the images in ``folder`` (list_images leaves hidden files, e.g. partial writes, out)."""
    return {p.name: p for p in list_images(folder)}


def check_zip_target(zip_path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse an existing ``zip_path`` unless ``overwrite``; returns it as a Path."""
    zip_path = Path(zip_path)
    if zip_path.suffix.lower() != ".zip":
        raise FacesrError(f"submission file {zip_path} should end in .zip")
    if zip_path.exists() and not overwrite:
        raise FacesrError(
            f"{zip_path} already exists; pass --overwrite (overwrite=True) or choose another name"
        )
    if zip_path.is_dir():
        raise FacesrError(f"{zip_path} is a folder; choose a file name for the zip")
    return zip_path


def _check_image_file(path: Path) -> None:
    """FacesrError unless ``path`` is a 512x512 8-bit RGB PNG (reads the header only)."""
    try:
        with Image.open(path) as img:
            size, mode, fmt = img.size, img.mode, img.format
    except OSError as err:
        raise FacesrError(f"{path} is not a readable image ({err})") from err
    if fmt != "PNG" or mode != "RGB" or size != SR_SIZE:
        raise FacesrError(
            f"{path} is a {size[0]}x{size[1]} {mode} {fmt}; the leaderboard needs "
            f"{SR_SIZE[0]}x{SR_SIZE[1]} RGB PNG files"
        )


def package_submission(
    sr_dir: str | os.PathLike,
    zip_path: str | os.PathLike,
    net: nn.Module,
    lq_dir: str | os.PathLike,
    overwrite: bool = False,
    edition: int | None = None,
    source: str | os.PathLike | None = None,
    tta: bool | str | None = None,
    val_psnr: float | None = None,
    val_psnr_from: str = "",
    runs_dir: str | os.PathLike | None = None,
) -> Path:
    """Check the SR folder and the generator against the rules, write the leaderboard zip, and log it.

    The zip gets a row in ``RUNS_DIR/submissions.csv`` (:func:`facesr.inference.submissions.record_submission`)
    when ``source`` or ``runs_dir`` says where it belongs; every zip the kit makes says so.

    Args:
        sr_dir: folder of SR PNGs (from :func:`facesr.inference.predict.predict`).
        zip_path: the zip to write (``results/NNNNN.png`` inside); written atomically.
        net: the generator that made them; over the edition's parameter limit is refused.
        lq_dir: the test LQ folder the SR images must match one to one (by name, ``.png``).
        overwrite: replace an existing ``zip_path``.
        edition: whose limit applies (:func:`facesr.editions.get_edition`; None: ``FACESR_EDITION``, else 2022).
        source: the run folder or checkpoint of ``net`` (the log reads its iteration and val.csv).
        tta: the self-ensemble the SR images were made with (None, "hflip", "x8"), for the log.
        val_psnr: the val PSNR this zip was chosen on, with ``tta`` (None: the run's val.csv).
        val_psnr_from: where ``val_psnr`` comes from, for the log.
        runs_dir: the log's folder (None: the run folder's parent, else the zip's folder).

    Returns:
        ``zip_path``.
    """
    check_param_budget(net, edition)  # FacesrError stating the count, the edition and its limit
    zip_path = check_zip_target(zip_path, overwrite)
    lq_names = TestDataset(lq_dir).names  # FacesrError naming the folder when it is missing or empty
    sr_dir = Path(sr_dir)
    if not sr_dir.is_dir():
        raise FacesrError(f"SR folder {sr_dir} does not exist; run predict first")
    expected = sorted(png_name(n) for n in lq_names)  # the names predict writes
    found = _images(sr_dir)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing:
        raise FacesrError(
            f"{len(missing)} of {len(expected)} SR images missing in {sr_dir}: {name_list(missing)}; "
            f"run predict on {lq_dir} first"
        )
    if extra:
        raise FacesrError(
            f"{len(extra)} extra images in {sr_dir} with no LQ in {lq_dir}: {name_list(extra)}; "
            f"remove them or predict into an empty folder"
        )
    for name in expected:
        _check_image_file(found[name])


    def write(f: IO[bytes]) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:  # PNG data is already compressed
            for name in expected:
                zf.write(found[name], arcname=f"{ZIP_FOLDER}/{name}")

    atomic_write(zip_path, write)
    if source is not None or runs_dir is not None:
        from facesr.inference.submissions import record_submission

        record_submission(zip_path, source, tta, val_psnr, val_psnr_from, edition, runs_dir)
    return zip_path


@dataclass
class ScoreResult:
    """Leaderboard-style score: ``per_image`` maps file name -> RGB PSNR (dB, inf when identical)."""

    per_image: dict[str, float] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.per_image)

    @property
    def mean_psnr(self) -> float:
        values = list(self.per_image.values())
        return math.fsum(values) / len(values) if values else float("nan")

    def ranked(self) -> list[tuple[str, float]]:
        """``(file name, PSNR)`` from the worst image to the best (ties by name)."""
        return sorted(self.per_image.items(), key=lambda item: (item[1], item[0]))

    def __str__(self) -> str:
        # 4 decimals: the leaderboard shows 10, and submissions differ in the third
        text = f"mean PSNR {self.mean_psnr:.4f} dB over {self.count} images"
        identical = sum(math.isinf(v) for v in self.per_image.values())
        if identical:
            text += f" ({identical} identical to GT: PSNR inf)"
        return text

    def summary(self, n: int = 3) -> str:
        """The mean line, then the ``n`` worst and ``n`` best images with their PSNR (what ``score`` prints).

        Args:
            n: images listed at each end.
        """
        ranked = self.ranked()
        n = min(n, len(ranked))

        def listing(items: list[tuple[str, float]]) -> str:
            return ", ".join(f"{name} {value:.4f} dB" for name, value in items)

        return "\n".join([str(self), f"  worst: {listing(ranked[:n])}", f"  best:  {listing(ranked[::-1][:n])}"])


def _score_folder(sr_dir: Path, gt_dir: Path) -> ScoreResult:
    if not gt_dir.is_dir():
        raise FacesrError(f"GT folder {gt_dir} does not exist")
    gt, sr = _images(gt_dir), _images(sr_dir)
    if not gt:
        raise FacesrError(f"no images in {gt_dir}")
    missing, extra = sorted(set(gt) - set(sr)), sorted(set(sr) - set(gt))
    if missing or extra:
        raise FacesrError(
            f"SR and GT names differ: missing in SR {len(missing)} ({name_list(missing)}), "
            f"extra in SR {len(extra)} ({name_list(extra)})"
        )
    result = ScoreResult()
    for name in sorted(gt):
        sr_img, gt_img = read_image(sr[name]), read_image(gt[name])
        if sr_img.shape != gt_img.shape:
            raise FacesrError(
                f"{sr[name]} is {sr_img.shape[1]}x{sr_img.shape[0]} but its GT is {gt_img.shape[1]}x{gt_img.shape[0]}"
            )
        result.per_image[name] = psnr(sr_img, gt_img)
    return result


def score(sr_dir_or_zip: str | os.PathLike, gt_dir: str | os.PathLike) -> ScoreResult:
    """Score a folder of SR images or a submission zip (its single folder) against ``gt_dir``.

    Args:
        sr_dir_or_zip: a folder of SR images, or a zip holding one folder of them.
        gt_dir: the GT images, matched by file name.
    """
    source, gt_dir = Path(sr_dir_or_zip), Path(gt_dir)
    if source.is_dir():
        return _score_folder(source, gt_dir)
    if not source.is_file():
        raise FacesrError(f"{source} not found; pass a folder of SR images or a submission zip")
    if not zipfile.is_zipfile(source):
        raise FacesrError(f"{source} is neither a folder nor a zip file")
    with zipfile.ZipFile(source) as zf:
        members = [m for m in zf.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        tops = {m.filename.split("/", 1)[0] for m in members if "/" in m.filename}
        loose = [m.filename for m in members if "/" not in m.filename]
        if len(tops) != 1 or loose or any(m.filename.count("/") != 1 for m in members):
            raise FacesrError(
                f"{source} must hold exactly one folder of images (e.g. {ZIP_FOLDER}/00000.png); "
                f"found folders {sorted(tops)[:5]} and {len(loose)} files outside a folder"
            )
        with tempfile.TemporaryDirectory(prefix="facesr-score-") as tmp:
            zf.extractall(tmp, members=members)
            return _score_folder(Path(tmp) / tops.pop(), gt_dir)
