"""The editions of the course project (2022, 2023, 2024, 2025): the one place their facts are written.

The same project (blind x4 face super-resolution on a mini FFHQ set, PSNR leaderboard, parameter cap) ran
four times with other rules: 2023 kept the course degradation but raised the limit to 2,276,356 parameters
and the training set to 5000 faces; 2024 and 2025 kept that limit and moved to Real-ESRGAN's second-order
degradation on BasicSR (docs/course.md sections 2, 3, 4 and 9). Every number a part of the kit needs about
an edition (limit, counts, real-world images, degradation, baseline, results to beat) is read from
:data:`EDITIONS`; the README's editions table is :func:`editions_table`.

The edition in use is :func:`get_edition`'s: an explicit year, else the environment variable
``FACESR_EDITION``, else 2022 (the edition the kit was written for). A run folder's ``config.json`` carries
the edition it was trained for (``TrainConfig.edition``).

Numbers of one edition are not comparable with another's: each had its own val and test images.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from facesr.errors import FacesrError

EDITION_ENV = "FACESR_EDITION"
DEFAULT_YEAR = 2022
DEGRADATIONS = ("course", "second_order")


@dataclass(frozen=True)
class RealWorld:
    """The real-world LQ images (no GT) released with an edition's test set, to show in the report.

    Args:
        count: Number of images.
        size: Side of the square LQ images in pixels; None where no source states it.
        folder: Folder name in the released data (``test_real`` in 2023); None where not known.
        files: File names; None where not known.
        note: What is and is not verified about them.
    """

    count: int
    size: int | None
    folder: str | None
    files: tuple[str, ...] | None
    note: str = ""


@dataclass(frozen=True)
class ReportedResult:
    """A published result of one edition (val and test PSNR in dB on that edition's images).

    Args:
        recipe: Network, loss and schedule as reported.
        params: Generator parameters; None where not reported.
        val_psnr: Best validation PSNR; None where not reported.
        test_psnr: Leaderboard (test) PSNR; None where not submitted or not reported.
    """

    recipe: str
    params: int | None
    val_psnr: float | None
    test_psnr: float | None


@dataclass(frozen=True)
class Edition:
    """The rules, data and published results of one edition (docs/course.md sections 1, 2 and 9).

    Args:
        year: The edition.
        param_limit: Most generator parameters a submission may have (``sum(p.numel() for p in
            model.parameters())``; a net with exactly this many is accepted).
        limit_rule: How the handout states the limit.
        train_images: Training GT images (512x512).
        val_pairs: Validation LQ/GT pairs.
        test_images: Test LQ images (128x128), scored on the leaderboard.
        real_world: The real-world LQ images released with the test set.
        degradation: ``"course"`` (the MMEditing pipeline of 2022) or ``"second_order"`` (Real-ESRGAN's).
        degradation_note: What differs from that pipeline's description, if anything.
        framework: The code base the course gave.
        baseline_network: The handout's baseline generator.
        baseline_config: The kit config that reproduces it (``get_config(baseline_config, edition=year)``).
        baseline_val_psnr: The handout's baseline validation PSNR; None where not published.
        baseline_note: How the handout states it.
        meta_info: The BasicSR meta_info file listing the training images; None without one.
        course_yml_meta_info: The meta_info file the course's training yml names, where it differs.
        codalab_competition: The CodaLab competition id; None where not known.
        top_test_psnr: The top test PSNR of the leaderboard; None where not known.
        reported: Every reported result of the edition; :attr:`best_in_budget` is picked from them.
    """

    year: int
    param_limit: int
    limit_rule: str
    train_images: int
    val_pairs: int
    test_images: int
    real_world: RealWorld
    degradation: str
    degradation_note: str
    framework: str
    baseline_network: str
    baseline_config: str
    baseline_val_psnr: float | None
    baseline_note: str
    meta_info: str | None
    course_yml_meta_info: str | None
    codalab_competition: int | None
    top_test_psnr: float | None
    reported: tuple[ReportedResult, ...]

    @property
    def best_in_budget(self) -> ReportedResult:
        """The best reported recipe with a known parameter count within the limit: the highest test PSNR,
        else (none submitted) the highest val PSNR."""
        fits = [r for r in self.reported if r.params is not None and r.params <= self.param_limit]
        return max(fits, key=lambda r: (r.test_psnr is not None, r.test_psnr or r.val_psnr or 0.0))

    @property
    def degradation_label(self) -> str:
        """``"course (MMEditing)"`` or ``"second order (Real-ESRGAN)"``, with the note when there is one."""
        label = {"course": "course (MMEditing)", "second_order": "second order (Real-ESRGAN)"}[self.degradation]
        return f"{label}; {self.degradation_note}" if self.degradation_note else label

    def summary(self) -> str:
        """The edition's facts as text lines (notebook 01 prints them)."""
        real = self.real_world
        size = f", {real.size}x{real.size}" if real.size else ", size not verified"
        where = f" in {real.folder}/" if real.folder else ""
        names = f" ({real.files[0]}-{real.files[-1]})" if real.files else ""
        best = self.best_in_budget
        lines = [
            f"Edition {self.year} ({self.framework})",
            f"  data: {self.train_images} training GT (512x512), {self.val_pairs} val pairs, {self.test_images} "
            f"test LQ (128x128), {real.count} real-world LQ{size}{where}{names}"
            + (f"; training list {self.meta_info}" if self.meta_info else ""),
            f"  parameter limit: {self.param_limit:,} ({self.limit_rule})",
            f"  degradation: {self.degradation_label}",
            f"  baseline: {self.baseline_network}, val "
            + (f"{self.baseline_val_psnr} dB ({self.baseline_note})" if self.baseline_val_psnr else self.baseline_note)
            + f"; kit config {self.baseline_config!r}",
            f"  best reported in-budget: {best.recipe}: {_db(best.val_psnr)} val, {_db(best.test_psnr)} test",
            f"  top of the leaderboard (test): {_db(self.top_test_psnr)}"
            + (f" (CodaLab competition {self.codalab_competition})" if self.codalab_competition else ""),
        ]
        return "\n".join(lines)


def _db(value: float | None) -> str:
    return f"{value} dB" if value is not None else "-"


_COURSE_YML_2025 = "meta_info_FFHQ5000sub_GT.txt"

EDITIONS: dict[int, Edition] = {
    2022: Edition(
        year=2022,
        param_limit=1_821_085,
        limit_rule="120 % of MSRResNet-16's 1,517,571",
        train_images=4000,
        val_pairs=400,
        test_images=400,
        real_world=RealWorld(count=5, size=None, folder=None, files=None,
                             note="released with the test set; size and names not stated in the handout"),
        degradation="course",
        degradation_note="",
        framework="MMEditing 0.x",
        baseline_network="MSRResNet-16 (MMEditing), 300k iterations",
        baseline_config="srgan",
        baseline_val_psnr=28.89,
        baseline_note="handout",
        meta_info=None,
        course_yml_meta_info=None,
        codalab_competition=None,
        top_test_psnr=None,
        reported=(
            ReportedResult("MSRResNet-20, Charbonnier, 2.75M iterations, rotation and colour jitter", 1_812_995,
                           29.0122, 28.8475),
            ReportedResult("MSRResNet-16, 1M iterations + low-lr fine-tune", 1_517_571, 28.9604, None),
            ReportedResult("MSRResNet-16, 400k iterations", 1_517_571, 28.9071, 28.7410),
            ReportedResult("MSRResNet-16, 300k iterations (the seed report)", 1_517_571, 28.8984, 28.7299),
            ReportedResult("RRDBNet 64/23/32, 300k iterations (over the limit)", 16_697_987, 29.1578, None),
        ),
    ),
    2023: Edition(
        year=2023,
        param_limit=2_276_356,
        limit_rule="150 % of MSRResNet-16's 1,517,571; the handout says \"fewer than\"",
        train_images=5000,
        val_pairs=400,
        test_images=400,
        real_world=RealWorld(count=6, size=128, folder="test_real", files=tuple(f"{i:03d}.png" for i in range(1, 7)),
                             note="six 128x128 faces, test_real/001.png-006.png in a student's copy of the data"),
        degradation="course",
        degradation_note="the MMEditing >= 1.0 config has no Quantize step before the last resize",
        framework="MMEditing (0.x and >= 1.0 configs)",
        baseline_network="MSRResNet-16 (MMEditing), 300k iterations",
        baseline_config="srgan",
        baseline_val_psnr=28.89,
        baseline_note="handout: \"around 28.89\"",
        meta_info=None,
        course_yml_meta_info=None,
        codalab_competition=11412,
        top_test_psnr=29.63118,
        reported=(
            ReportedResult("MSRResNet-24, PSNR loss, 500k iterations, cosine 5 x 100k", 2_108_419, 29.7899, 29.49933),
            ReportedResult("MSRResNet-24, L1, 150k iterations", 2_108_419, 29.7315, 29.4399),
            ReportedResult("MSRResNet-16, MSE, 300k iterations", 1_517_571, 29.6773, None),
        ),
    ),
    2024: Edition(
        year=2024,
        param_limit=2_276_356,
        limit_rule="150 % of MSRResNet-16's 1,517,571",
        train_images=5000,
        val_pairs=400,
        test_images=400,
        real_world=RealWorld(count=6, size=128, folder="test_real", files=tuple(f"{i:02d}.png" for i in range(1, 7)),
                             note="six 128x128 faces, test_real/01.png-06.png in a student's copy of the data"),
        degradation="second_order",
        degradation_note="",
        framework="Real-ESRGAN code on BasicSR",
        baseline_network="BasicSR MSRResNet-16, 300k iterations",
        baseline_config="srgan",
        baseline_val_psnr=26.33,
        baseline_note="handout: \"around 26.33\"; reproduced at 26.3272 val, 26.51798 test",
        meta_info="meta_info_FFHQ5000sub_GT.txt",
        course_yml_meta_info=None,
        codalab_competition=18233,
        top_test_psnr=26.83132,
        reported=(
            ReportedResult("MSRResNet-24, 300k iterations", 2_108_419, 26.5656, 26.65289),
            ReportedResult("MSRResNet-20, flips, 90-degree rotations, brightness/contrast jitter", 1_812_995,
                           26.5617, 26.63871),
            ReportedResult("SwinIR embed 78, 6x6, MSE, bf16, EMA 0.999, gradient clip 1", 2_251_758, 26.55, 26.62),
            ReportedResult("MSRResNet-16 without augmentation", 1_517_571, 26.5153, None),
            ReportedResult("EDSR-16", None, 26.42, None),
            ReportedResult("BasicSR MSRResNet-16, the baseline reproduced", 1_517_571, 26.3272, 26.51798),
            ReportedResult("SwinIR embed 78, 6x6, with a GAN loss", 2_251_758, 25.26, 25.33),
        ),
    ),
    2025: Edition(
        year=2025,
        param_limit=2_276_356,
        limit_rule="150 % of MSRResNet-16's 1,517,571",
        train_images=6000,
        val_pairs=400,
        test_images=400,
        real_world=RealWorld(count=6, size=None, folder=None, files=None,
                             note="size not verified (students' outputs were 2048x2048, i.e. 512x512 inputs at x4)"),
        degradation="second_order",
        degradation_note="same course files as 2024",
        framework="Real-ESRGAN code on BasicSR",
        baseline_network="BasicSR MSRResNet-16, 300k iterations",
        baseline_config="srgan",
        baseline_val_psnr=None,
        baseline_note="not published",
        meta_info="meta_info_FFHQ6000sub_GT.txt",
        course_yml_meta_info=_COURSE_YML_2025,
        codalab_competition=None,
        top_test_psnr=27.32311,
        reported=(
            ReportedResult(
                "SwinIR embed 60, 4x6, pixelshuffledirect, L1, 500k iterations, 256 patches, degradation without USM",
                929_628, None, 27.03877),
            ReportedResult("EDSR-16", None, None, 26.72067),
            ReportedResult("RCAN with 20 blocks", 1_824_595, None, 26.61),
        ),
    ),
}


def _known() -> str:
    return ", ".join(str(y) for y in EDITIONS)


def edition_year(value: int | str | Edition | None, source: str = "edition") -> int:
    """The year of ``value`` (a year, its text, an :class:`Edition`), checked; None is :func:`get_edition`'s.

    Args:
        value: What the caller was given.
        source: What error messages call it (``"edition"``, ``"--edition"``, the variable's name).
    """
    if isinstance(value, Edition):
        return value.year
    if value is None:
        return get_edition().year
    try:
        year = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        year = None
    if year not in EDITIONS:
        raise FacesrError(f"{source}={value!r} is not a known edition; known editions: {_known()}")
    return year


def get_edition(year: int | str | Edition | None = None) -> Edition:
    """The :class:`Edition` of ``year``; None: ``FACESR_EDITION`` if set, else 2022.

    Args:
        year: 2022, 2023, 2024 or 2025 (an int, its text or an Edition).

    Raises:
        FacesrError: one line naming the known editions, for an unknown year or ``FACESR_EDITION`` value.
    """
    if year is None:
        env = os.environ.get(EDITION_ENV, "").strip()
        return EDITIONS[edition_year(env, EDITION_ENV) if env else DEFAULT_YEAR]
    return EDITIONS[edition_year(year)]


def run_edition(run_dir: str | os.PathLike) -> int | None:
    """The edition a run folder's config.json records; None without one (a fresh run, a run of an older kit)."""
    try:
        edition = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8")).get("edition")
    except (OSError, ValueError, AttributeError):
        return None
    return edition if isinstance(edition, int) and edition in EDITIONS else None


def choose_edition(
    asked: int | str | Edition | None = None, recorded: int | str | None = None, what: str = "this run"
) -> Edition:
    """The edition that applies: the one a run folder or a file records (its config.json, its export metadata),
    else the one asked for (``--edition``, ``EDITION``, an argument), else :func:`get_edition`'s default.

    A run keeps the edition it was trained for: asking for another one is refused, not applied silently (its
    limit, degradation and data are that edition's).

    Args:
        asked: What the caller asked for, or None.
        recorded: What the run or file says, or None (a checkpoint of an older kit records none).
        what: The run or file, for the error message.

    Raises:
        FacesrError: ``asked`` and ``recorded`` are different editions.
    """
    if asked is not None and recorded is not None and edition_year(asked) != edition_year(recorded):
        raise FacesrError(
            f"{what} was trained for the {edition_year(recorded)} edition, not {edition_year(asked)}: leave the "
            f"edition out (EDITION, --edition) to use the run's own, or pick a run of the {edition_year(asked)} edition"
        )
    return get_edition(recorded if recorded is not None else asked)


# What a data root says about its edition (detect_edition): the layout's folders, as the course names them.
TRAIN_GT = "train/GT"
REAL_WORLD_FOLDER = "test_real"


def _files(folder: Path) -> list[str]:
    """Names of the regular, non-hidden files directly in ``folder`` (none when it is missing)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def real_world_folder(root: str | os.PathLike) -> Path | None:
    """The data root's real-world LQ folder: ``test_real/`` holding the images, or its one ``LQ/`` level inside
    (as some copies of the data have it); None without one."""
    folder = Path(root) / REAL_WORLD_FOLDER
    if _files(folder) or not (folder / "LQ").is_dir():
        return folder if folder.is_dir() else None
    return folder / "LQ"


def _layout_root(root: Path) -> Path:
    """``root``, or its single sub-folder in the course layout (an archive unpacked one level too deep)."""
    if (root / "train").is_dir() or (root / "val").is_dir() or (root / REAL_WORLD_FOLDER).is_dir():
        return root
    inner = [d for d in sorted(root.iterdir()) if d.is_dir() and ((d / "train").is_dir() or (d / "val").is_dir())]
    return inner[0] if len(inner) == 1 else root


def data_facts(data_root: str | os.PathLike) -> list[tuple[str, frozenset[int]]]:
    """What a data root's files say about its edition: ``[(the fact in words, the editions it fits)]``.

    Only facts that name at least one edition are listed: the number of training faces when it is one
    edition's exact count, a BasicSR ``meta_info`` list (in the root, ``train/`` or ``train/GT/``), and the
    real-world images (their file names where editions published them, else their count). A subset of the data
    or the kit's sample set says little; nothing is decoded, so this takes milliseconds.

    Args:
        data_root: A data root in the course layout (or the folder holding it).
    """
    root = Path(data_root).expanduser()
    if not root.is_dir():
        return []
    root = _layout_root(root)
    facts: list[tuple[str, frozenset[int]]] = []
    n_train = len(_files(root / TRAIN_GT))
    by_count = frozenset(y for y, ed in EDITIONS.items() if ed.train_images == n_train)
    if by_count:
        facts.append((f"{n_train} training faces in {TRAIN_GT}", by_count))
    for folder in (root, root / "train", root / TRAIN_GT):
        for name in _files(folder):
            fits = frozenset(y for y, ed in EDITIONS.items() if name in (ed.meta_info, ed.course_yml_meta_info))
            if fits:
                facts.append((f"the meta_info list {(folder / name).relative_to(root).as_posix()}", fits))
    real = real_world_folder(root)
    names = set(_files(real)) if real is not None else set()
    if names:
        where = real.relative_to(root).as_posix()
        fits = frozenset(y for y, ed in EDITIONS.items() if ed.real_world.files and names <= set(ed.real_world.files))
        if fits:
            facts.append((f"the real-world file names {where}/{min(names)}-{max(names)}", fits))
        else:  # names no edition published: the count of those that did not publish theirs
            fits = frozenset(y for y, ed in EDITIONS.items()
                             if not ed.real_world.files and ed.real_world.count == len(names))
            if fits:
                facts.append((f"{len(names)} real-world images in {where}/", fits))
    return facts


def detect_edition(data_root: str | os.PathLike) -> int | None:
    """The edition a data root belongs to, from its facts (:func:`data_facts`), or None where they do not decide
    (no fact, facts that fit several editions, or facts that contradict each other).

    Args:
        data_root: A data root in the course layout.
    """
    facts = data_facts(data_root)
    if not facts:
        return None
    fits = frozenset(EDITIONS)
    for _, editions in facts:
        fits &= editions
    return next(iter(fits)) if len(fits) == 1 else None


def describe_facts(facts: list[tuple[str, frozenset[int]]]) -> str:
    """``"the real-world file names test_real/01.png-06.png (2024)"``: the facts and the editions each fits."""
    return "; ".join(f"{text} ({', '.join(map(str, sorted(fits)))})" for text, fits in facts)


def editions_table() -> str:
    """The editions as a Markdown table (the README's): faces, limit, degradation, framework, scores."""
    lines = [
        "| edition | training faces | parameter limit | degradation | framework | baseline val | "
        "best reported in-budget test | top of the leaderboard (test) |",
        "|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for ed in EDITIONS.values():
        degradation = ed.degradation_label.split(";")[0]
        baseline = f"{ed.baseline_val_psnr}" if ed.baseline_val_psnr is not None else "not published"
        best = ed.best_in_budget.test_psnr
        lines.append(
            f"| {ed.year} | {ed.train_images} | {ed.param_limit:,} | {degradation} | {ed.framework} | {baseline} | "
            f"{best if best is not None else '-'} | {ed.top_test_psnr if ed.top_test_psnr is not None else '-'} |"
        )
    return "\n".join(lines)


def results_table(edition: int | Edition | None = None) -> str:
    """The reported results of one edition as a Markdown table (val and test PSNR, dB)."""
    ed = get_edition(edition)
    lines = [f"| {ed.year}: recipe | parameters | val PSNR | test PSNR |", "|---|---:|---:|---:|"]
    for r in ed.reported:
        params = f"{r.params:,}" if r.params is not None else "-"
        lines.append(f"| {r.recipe} | {params} | {_db(r.val_psnr).removesuffix(' dB')} "
                     f"| {_db(r.test_psnr).removesuffix(' dB')} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- val PSNR -> expected test PSNR


@dataclass(frozen=True)
class ValTestPair:
    """One result scored on both val and test (dB): a published one of the edition, or one of the student's own.

    Args:
        label: what it is (the recipe, or the student's submission).
        val_psnr: its val PSNR.
        test_psnr: its test (leaderboard) PSNR.
    """

    label: str
    val_psnr: float
    test_psnr: float

    @property
    def offset(self) -> float:
        """test minus val (dB)."""
        return self.test_psnr - self.val_psnr


@dataclass(frozen=True)
class ExpectedTest:
    """The test PSNR a val PSNR leads to expect: ``val_psnr`` plus the lowest to the highest val-to-test offset of
    ``pairs`` (None where there is no val PSNR or no pair). Same edition only: each had its own val and test images.

    Args:
        edition: the edition whose pairs were used.
        val_psnr: the val PSNR it was computed for (None: not known).
        low: the lowest expected test PSNR (dB).
        high: the highest expected test PSNR (dB).
        pairs: the val/test pairs used: the edition's published ones, then the student's own.
        own: how many of ``pairs`` are the student's own.
    """

    edition: int
    val_psnr: float | None
    low: float | None
    high: float | None
    pairs: tuple[ValTestPair, ...]
    own: int = 0

    def range_text(self) -> str:
        """``"28.8437-28.8475"``, ``"no published pairs"`` or ``"no val PSNR"``: the short form (a table cell)."""
        if self.val_psnr is None:
            return "no val PSNR"
        if self.low is None or self.high is None:
            return "no published pairs"
        return f"{self.low:.4f}" if self.low == self.high else f"{self.low:.4f}-{self.high:.4f}"

    def source_text(self) -> str:
        """How many pairs of which kind: ``"3 published val/test pairs of 2022 and 1 of your own"``."""
        published = len(self.pairs) - self.own
        if not published and not self.own:
            return f"the {self.edition} edition published no result with both a val and a test PSNR"
        mine = f"{self.own} of your own scored submission{'s' * (self.own != 1)}"
        if not published:
            return f"{mine} (the {self.edition} edition published none)"
        text = f"{published} published val/test pair{'s' * (published != 1)} of {self.edition}"
        return f"{text} and {mine}" if self.own else text

    def __str__(self) -> str:
        if self.low is None or self.high is None:
            return f"expected test PSNR: {self.range_text()} ({self.source_text()})"
        offsets = [p.offset for p in self.pairs]
        return (f"expected test PSNR {self.range_text()} dB (val {self.val_psnr:.4f} dB {min(offsets):+.4f} to "
                f"{max(offsets):+.4f} dB: the val-to-test offsets of {self.source_text()})")

    def pairs_text(self) -> list[str]:
        """One line per pair used: label, val, test and the offset."""
        return [f"{p.label}: val {p.val_psnr}, test {p.test_psnr} ({p.offset:+.4f} dB)" for p in self.pairs]


def published_pairs(edition: int | str | Edition | None = None) -> tuple[ValTestPair, ...]:
    """The edition's reported results with both a val and a test PSNR, as :class:`ValTestPair` s."""
    ed = get_edition(edition)
    return tuple(ValTestPair(r.recipe, r.val_psnr, r.test_psnr) for r in ed.reported
                 if r.val_psnr is not None and r.test_psnr is not None)


def expected_test_range(
    edition: int | str | Edition | None,
    val_psnr: float | None,
    own_pairs: Sequence[ValTestPair | tuple[float, float]] = (),
) -> ExpectedTest:
    """The test PSNR to expect from a val PSNR: the val PSNR plus the lowest to the highest val-to-test offset of
    the edition's published results (:func:`published_pairs`) and of the student's own scored submissions.

    A range, not a prediction: every pair is one network on one edition's val and test images (2022: about
    -0.17 dB for every pair; 2023: about -0.29; 2024: +0.07 to +0.19); "no published pairs" where the edition
    has none (2025 published no val PSNR beside a test PSNR) and the student has recorded none yet.

    Args:
        edition: whose val and test images (None: ``FACESR_EDITION``, else 2022).
        val_psnr: the val PSNR (dB; None, NaN or inf: not known).
        own_pairs: the student's own (val, test) scores of this edition: :class:`ValTestPair` s or ``(val, test)``.
    """
    ed = get_edition(edition)
    own = tuple(p if isinstance(p, ValTestPair) else ValTestPair(f"your submission {i + 1}", float(p[0]), float(p[1]))
                for i, p in enumerate(own_pairs))
    pairs = published_pairs(ed) + own
    known = val_psnr is not None and math.isfinite(val_psnr)  # NaN: not known; inf: an image identical to its GT
    if not known or not pairs:
        return ExpectedTest(ed.year, float(val_psnr) if known else None, None, None, pairs, len(own))
    offsets = [p.offset for p in pairs]
    return ExpectedTest(ed.year, float(val_psnr), float(val_psnr) + min(offsets), float(val_psnr) + max(offsets),
                        pairs, len(own))
