"""The report's sections, in the order of the handout (docs/course.md section 11), filled from the run.

The handout asks for the model, the loss functions, training curves of the loss, the outputs of the
real-world LQ images, the validation PSNR, the number of parameters and the training machine; an
introduction comes first and a conclusion last. Every number and picture is the kit's; a :class:`FillIn`
box stands only where the student's own analysis goes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from facesr.editions import Edition
from facesr.report.document import (
    Block,
    Document,
    FigureBlock,
    FillIn,
    Heading,
    Missing,
    Paragraph,
    TableBlock,
)
from facesr.report.methods import loss_blocks, network_text, training_text
from facesr.report.style import model_label
from facesr.report.table_views import TableView

# docs/course.md section 11: what the report must show, in the handout's order.
HANDOUT_SECTIONS = ("Model", "Loss functions", "Training curves", "Real-world results", "Validation PSNR",
                    "Parameters", "Training machine")  # fmt: skip
CAPTIONS = {
    "06_loss_curves": "Training loss terms against iterations (log scale, shared by all panels), one panel per model "
                      "with the stages that continue it drawn after it, each run in its colour.",
    "06_psnr_curves": "Validation PSNR against iterations, each run in its colour; an MSE finish or a GAN fine-tune "
                      "is drawn after the run it starts from; dashed: bicubic $\\times4$. Right: the runs within "
                      "1 dB of the best.",
    "06_real_world": "The real-world LQ images released with the test set (no ground truth) and their $\\times4$ "
                     "outputs; each row is labelled with the file and the LQ size.",
    "06_qualitative": "Validation face {face}: LQ input, bicubic $\\times4$, the models and the ground truth, with "
                      "each output's PSNR; the rows below zoom into the boxes drawn on the faces.",
}  # fmt: skip
MAKES = {  # what makes a missing figure or table
    "06_loss_curves": "notebook 06, section 1", "06_psnr_curves": "notebook 06, section 2",
    "06_real_world": "notebook 06, section 7, with the real-world LQ images in `test_real/` of the data root",
    "06_qualitative": "notebook 06, section 6",
}  # fmt: skip


@dataclass
class ReportFacts:
    """What the report says, gathered from the run folder and the figures folder (see :mod:`facesr.report.skeleton`).

    Args:
        edition: the run's edition.
        run: the submitted run's name.
        stages: ``[(run name, config.json)]``: the submitted run, after its first stage for an MSE finish.
        tta: the self-ensemble of the submission (None: plain).
        submission: the submission table (:func:`facesr.report.submission_table.submission_table`).
        views: ``{table stem: report view}`` of the tables to show.
        figures: ``{stem: "full" or "column"}`` of the figures in the report folder (their printed width).
        author: the author line.
    """

    edition: Edition
    run: str
    stages: list[tuple[str, Mapping[str, object]]]
    tta: str | None
    submission: pd.DataFrame
    views: dict[str, TableView]
    figures: dict[str, str]
    author: str
    real_world_count: int | None = None
    missing: list[str] = field(default_factory=list)


def _figure(facts: ReportFacts, stem: str, label: str, caption_key: str | None = None, **fmt: object) -> Block:
    key = caption_key or stem
    if stem in facts.figures:
        return FigureBlock(stem, CAPTIONS[key].format(**fmt), label, facts.figures[stem])
    facts.missing.append(f"figures/{stem}.pdf")
    return Missing(f"`{stem}.pdf` was not made: run {MAKES[key]}, then this report again.")


def _table(facts: ReportFacts, stem: str, label: str, caption: str) -> Block:
    if stem in facts.views:
        return TableBlock(stem, caption, label, facts.views[stem])
    facts.missing.append(f"tables/{stem}.tex")
    return Missing(f"`{stem}.csv` was not made: run notebook 06 (its tables), then this report again.")


def _row(facts: ReportFacts, role: str) -> pd.Series | None:
    rows = facts.submission[facts.submission["role"] == role]
    return rows.iloc[0] if not rows.empty else None


def _score(row: pd.Series, tta: str | None) -> float:
    value = row.get(f"psnr_{tta}") if tta else None
    return float(value) if value is not None and pd.notna(value) else float(row["psnr"])


def _intro(facts: ReportFacts) -> list[Block]:
    ed, degradation = facts.edition, facts.edition.degradation
    how = ("the second-order degradation of Real-ESRGAN [@wang2021realesrgan] (two rounds of blur, resizing, "
           "noise and JPEG compression, then a sinc filter)" if degradation == "second_order" else
           "the course's degradation (blur, $\\times4$ downscaling, noise and JPEG compression)")  # fmt: skip
    return [Heading("Introduction"), Paragraph(
        f"The task of the {ed.year} edition of the project is blind $\\times4$ super-resolution of faces: "
        f"restoring 512x512 faces from 128x128 LQ images, scored by PSNR on {ed.test_images} test faces, with "
        f"generators of at most {ed.param_limit:,} parameters ({ed.limit_rule}). The data are a subset of FFHQ "
        f"[@karras2019ffhq]: {ed.train_images} training faces, from which training pairs are made on the fly "
        f"with {how}, and {ed.val_pairs} validation pairs."),
        FillIn("your approach and your main result, in two or three sentences")]


def _model(facts: ReportFacts) -> list[Block]:
    name, cfg = facts.stages[-1]
    sub = _row(facts, "submitted")
    params = int(sub["params"]) if sub is not None and pd.notna(sub["params"]) else None
    count = (f" It has {params:,} parameters, {100 * params / facts.edition.param_limit:.1f} % of the "
             f"{facts.edition.param_limit:,} allowed.") if params is not None else ""  # fmt: skip
    blocks: list[Block] = [Heading("Model"), Paragraph(
        f"We submit `{name}` ({model_label(name)}). "
        + network_text(str(cfg.get("generator")), dict(cfg.get("generator_args") or {})) + count)]  # type: ignore[arg-type]
    for i, (stage, stage_cfg) in enumerate(facts.stages):
        label = ("first" if i == 0 else "second") if len(facts.stages) > 1 else None
        blocks.append(Paragraph(training_text(stage_cfg, label, stage if label else None)))
    blocks.append(FillIn("why this network and these settings; what you tried that did not work"))
    return blocks


def _losses(facts: ReportFacts) -> list[Block]:
    cfg = facts.stages[-1][1]
    sharpened = facts.edition.degradation == "second_order" and cfg.get("gt_usm") and cfg.get("usm_target")
    target = "the unsharp-masked ground-truth face (the course's target)" if sharpened else "the ground-truth face"
    return [Heading("Loss functions"), *loss_blocks(facts.stages, target),
            FillIn("why these losses, and what they do to PSNR and to the look of the faces")]


def _curves(facts: ReportFacts) -> list[Block]:
    return [Heading("Training curves"),
            Paragraph("@fig:loss shows the loss terms of every run and @fig:psnr the validation PSNR during "
                      "training, measured on the whole validation images as the leaderboard does (RGB, 0-255)."),
            _figure(facts, "06_loss_curves", "fig:loss"), _figure(facts, "06_psnr_curves", "fig:psnr"),
            FillIn("what the curves show: convergence, the gap to the baseline, the effect of each stage")]


def _real_world(facts: ReportFacts) -> list[Block]:
    n = f"{facts.real_world_count} " if facts.real_world_count else ""
    return [Heading("Real-world results"),
            Paragraph(f"@fig:real shows the {n}real-world LQ images released with the test set and their outputs; "
                      "they have no ground truth, so no PSNR."),
            _figure(facts, "06_real_world", "fig:real"),
            FillIn("how the outputs of the real-world images look, compared with bicubic and the baseline")]


def _psnr_sentence(facts: ReportFacts) -> str:
    sub, base, floor = _row(facts, "submitted"), _row(facts, "baseline"), _row(facts, "floor")
    if sub is None:
        return ""
    tta = facts.tta
    plain = f"{float(sub['psnr']):.4f} dB on the validation set"
    text = f"The submitted model reaches {plain}" + (
        f" and {_score(sub, tta):.4f} dB with the {tta} self-ensemble it was submitted with" if tta else "")
    gains = []
    for row, what in ((floor, "bicubic"), (base, "the baseline")):
        if row is not None and row["run"] != sub["run"] and math.isfinite(_score(row, tta)):
            gains.append(f"{_score(sub, tta) - _score(row, tta):+.4f} dB over {what}")
    text += (f" ({', '.join(gains)})" if gains else "") + " (@tab:submission)."
    expected, year = str(sub.get("expected_test_psnr") or ""), facts.edition.year
    if expected[:1].isdigit():  # a range, not "no published pairs"
        text += (f" Going by the val-to-test offsets of the {year} results published with both scores (and of the "
                 f"CodaLab scores we recorded, if any), its test PSNR is expected at {expected} dB.")
    elif expected:
        text += f" The {year} edition published no result with both a val and a test PSNR to expect a test PSNR from."
    return text


def _psnr(facts: ReportFacts, qualitative: Sequence[str]) -> list[Block]:
    blocks: list[Block] = [Heading("Validation PSNR"), Paragraph(
        _psnr_sentence(facts) + " @tab:psnr compares every model, scored like the leaderboard (RGB, 0-255, whole "
        "image), plainly and with self-ensembles (hflip: the input and its mirror image; x8: flips and "
        "rotations); the best value of each column is bold. @fig:face shows one validation face.")]
    blocks.append(_table(facts, "submission_table", "tab:submission",
                         "The submission against bicubic and the baseline: validation PSNR (dB), parameters, GPU and "
                         "training hours."))  # fmt: skip
    blocks.append(_table(facts, "psnr_table", "tab:psnr", "Validation PSNR and SSIM of every model at its best "
                                                          "checkpoint."))  # fmt: skip
    first = qualitative[0] if qualitative else "06_qualitative_0"  # one face: five pages hold one grid
    blocks.append(_figure(facts, first, "fig:face", "06_qualitative", face=first.rsplit("_", 1)[-1]))
    if len(qualitative) > 1:
        others = ", ".join(f"`{stem}.pdf`" for stem in qualitative[1:])
        blocks.append(Paragraph(f"More faces are in {others} of the figures folder."))
    blocks.append(FillIn("compare the models: where the submitted one gains, where it still fails (see the crops)"))
    return blocks


def _parameters(facts: ReportFacts) -> list[Block]:
    sub = _row(facts, "submitted")
    text = f"The {facts.edition.year} limit is {facts.edition.param_limit:,} generator parameters ({facts.edition.limit_rule}), "
    text += "counted as the handout counts them, frozen ones included (@tab:params)."
    if sub is not None and pd.notna(sub["params"]):
        text += f" The submitted generator has {int(sub['params']):,} ({float(sub['percent_of_limit']):.1f} %)."
    return [Heading("Parameters"), Paragraph(text),
            _table(facts, "param_table", "tab:params", "Parameters of each network against the limit.")]


def _machine(facts: ReportFacts) -> list[Block]:
    sub = _row(facts, "submitted")
    text = ("@tab:machine lists where the runs of @tab:submission trained, as their run folders recorded it "
            "(`machine_table.csv` of the figures folder has every run).")
    if sub is not None and sub["gpu"]:
        hours = f" for {float(sub['hours']):.2f} hours" if pd.notna(sub["hours"]) else ""
        text = f"The submitted model trained on {sub['gpu']}{hours}. " + text
    return [Heading("Training machine"), Paragraph(text),
            _table(facts, "machine_table", "tab:machine", "Training machine, iterations and hours of each run.")]


def report_document(facts: ReportFacts, title: str | None = None) -> Document:
    """The report as blocks: introduction, the handout's sections in its order, conclusion."""
    qualitative = sorted(f for f in facts.figures if f.startswith("06_qualitative_"))
    blocks = [*_intro(facts), *_model(facts), *_losses(facts), *_curves(facts), *_real_world(facts),
              *_psnr(facts, qualitative), *_parameters(facts), *_machine(facts), Heading("Conclusion"),
              FillIn("what worked, what did not, and what you would try next")]  # fmt: skip
    name = model_label(facts.run)
    return Document(title or f"Blind x4 Face Super-Resolution with {name}", facts.author, blocks)
