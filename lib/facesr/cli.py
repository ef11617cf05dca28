"""Command line of the kit: ``python -m facesr COMMAND ...``.

Every command is a thin wrapper over a library function that the notebooks and the tests call too.
A :class:`facesr.FacesrError` becomes one ``error: ...`` line on stderr and exit code 2; a training run
stopped by Ctrl-C or SIGTERM exits 130 or 143 after its one ``stopped at iteration N`` line.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from facesr.errors import FacesrError


def _cmd_params(args: argparse.Namespace) -> int:
    from facesr.editions import edition_year, get_edition
    from facesr.models import check_param_budget
    from facesr.report.budget import parameter_table

    edition = edition_year(args.edition, "--edition") if args.edition is not None else None
    if args.run_or_ckpt is None:
        print(parameter_table(edition))
        return 0
    from facesr.models import describe_state_dict
    from facesr.weights.checkpoints import checkpoint_file, read_generator

    gen = read_generator(checkpoint_file(args.run_or_ckpt), trust=args.trust_checkpoint)
    ed = get_edition(edition if edition is not None else gen.edition)  # --edition, else the run's, else default
    n = check_param_budget(gen.net, ed)  # FacesrError with the count, the limit and the excess
    what = gen.generator or describe_state_dict(gen.net.state_dict())
    print(f"{gen.path}: {what}, {n:,} parameters, within the {ed.year} limit of {ed.param_limit:,} "
          f"({100 * n / ed.param_limit:.1f} %)")
    return 0


def _cmd_editions(args: argparse.Namespace) -> int:
    from facesr.editions import EDITIONS, editions_table, get_edition, results_table

    if args.edition is None:
        print(editions_table())
        years = list(EDITIONS)
    else:
        years = [get_edition(args.edition).year]
        print(get_edition(args.edition).summary())
    for year in years:
        print(f"\n{results_table(year)}")
    return 0


def _cmd_check_data(args: argparse.Namespace) -> int:
    from facesr.data.check import check_dataset

    report = check_dataset(args.root, edition=args.edition)
    print(report)
    return 1 if report.errors else 0


def _cmd_sample_data(args: argparse.Namespace) -> int:
    from facesr.data.sample import make_sample_data

    root = make_sample_data(args.out, overwrite=args.overwrite, edition=args.edition)
    print(f"sample data written to {root}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from facesr.config import get_config, parse_overrides
    from facesr.data.sample import ensure_quick_data
    from facesr.training import train

    overrides = parse_overrides(args.set)
    if args.iters is not None:
        overrides["iters"] = args.iters
    edition = args.edition if args.edition is not None else _resumed_edition(args)
    cfg = get_config(args.config, quick=args.quick or None, edition=edition, **overrides)  # quick None: FACESR_QUICK
    train(
        cfg,
        data_root=args.data or ensure_quick_data(cfg.data_root, cfg.edition),  # quick mode's sample data, built once
        runs_dir=args.runs,  # default: the config's, checkpoints/quick in quick mode
        name=args.name,
        init=args.init,
        allow_config_change=args.allow_config_change,
        trust=args.trust_checkpoint,
    )
    return 0


def _generator(args: argparse.Namespace) -> tuple[object, object]:
    """(generator file, edition) of RUN_OR_CKPT: --edition, else the run's own, else the default."""
    from facesr.editions import choose_edition
    from facesr.weights.checkpoints import checkpoint_file, read_generator

    gen = read_generator(checkpoint_file(args.run_or_ckpt), trust=args.trust_checkpoint)
    return gen, choose_edition(args.edition, gen.edition, what=str(gen.path))


def _resumed_edition(args: argparse.Namespace) -> int | None:
    """The edition of the run folder ``train`` would resume (its config.json), so a resumed run keeps its
    edition without --edition; None for a fresh run."""
    from pathlib import Path

    from facesr.config import get_config
    from facesr.editions import run_edition

    runs = Path(args.runs or get_config(args.config, quick=args.quick or None).runs_dir).expanduser()
    return run_edition(runs / (args.name or args.config))


def _cmd_predict(args: argparse.Namespace) -> int:
    from facesr.inference.predict import predict
    from facesr.inference.submission import check_zip_target, package_submission

    gen, edition = _generator(args)
    if args.zip:  # refuse an over-budget generator or an existing zip before spending time on predictions
        from facesr.models import check_param_budget

        check_param_budget(gen.net, edition)
        check_zip_target(args.zip, overwrite=args.overwrite)
    paths = predict(gen.net, args.lq_dir, args.out_dir, tta=args.tta)
    print(f"wrote {len(paths)} images to {args.out_dir}")
    if args.zip:
        from facesr.inference.submissions import describe_row, find_submission, run_folder_of

        run_dir = run_folder_of(args.run_or_ckpt)
        runs = args.runs or (run_dir.parent if run_dir else Path(args.zip).parent)  # where the log goes
        zip_path = package_submission(args.out_dir, args.zip, gen.net, args.lq_dir, overwrite=args.overwrite,
                                      edition=edition, source=args.run_or_ckpt, tta=args.tta, runs_dir=runs)
        print(f"submission zip: {zip_path}")
        print(describe_row(find_submission(runs, zip_path), runs))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from facesr.inference.predict import evaluate, evaluation_summary
    from facesr.models import count_parameters

    gen, edition = _generator(args)
    from facesr.inference.submissions import run_folder_of

    table = evaluate(gen.net, args.data, tta=args.tta)
    run_dir = run_folder_of(args.run_or_ckpt)  # its runs folder's submissions.csv adds the student's scored pairs
    print(evaluation_summary(table, edition, run_dir.parent if run_dir else None))
    n = count_parameters(gen.net)
    fits = "within" if n <= edition.param_limit else "OVER"
    print(f"  parameters        {n:,}, {fits} the {edition.year} limit of {edition.param_limit:,}")
    table.to_csv(args.csv, index=False)
    print(f"table written to {args.csv}")
    return 0


def _cmd_submissions(args: argparse.Namespace) -> int:
    from facesr.inference.submissions import describe_row, record_score, submissions_text

    if args.score:
        row = record_score(args.runs, *args.score)
        print(f"recorded: {describe_row(row, args.runs)}")
    print(submissions_text(args.runs))
    return 0


def _cmd_compare_degradation(args: argparse.Namespace) -> int:
    from facesr.report.degradation_match import show_degradation_match

    show_degradation_match(args.data, edition=args.edition, settings=args.set, limit=args.limit, draws=args.draws,
                           figures_dir=args.figures)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from facesr.editions import get_edition
    from facesr.models import count_parameters
    from facesr.weights.exports import export_generator
    from facesr.weights.formats import basicsr_network

    gen = export_generator(args.run_or_ckpt, args.out, overwrite=args.overwrite, trust=args.trust_checkpoint,
                           file_format=args.format)
    n, ed = count_parameters(gen.net), get_edition(gen.edition)  # the run's edition, else the default one
    fits = "within" if n <= ed.param_limit else "over"
    print(f"wrote {gen.path}: {gen.generator} {gen.generator_args}, {n:,} parameters "
          f"({fits} the {ed.param_limit:,} limit), edition {ed.year}")
    if args.format == "basicsr":
        print(f"BasicSR loads it with {basicsr_network(gen.generator, gen.generator_args)}"
              ".load_state_dict(torch.load(path)['params'], strict=True)")
    return 0


def _cmd_average(args: argparse.Namespace) -> int:
    from facesr.training.averaging import average_run

    average_run(args.run, last=args.last, iters=args.iters, out=args.out, data_root=args.data,
                overwrite=args.overwrite, trust=args.trust_checkpoint)
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from facesr.inference.submission import score

    result = score(args.sr, args.gt_dir)
    print(result.summary())
    return 0


def _cmd_handin(args: argparse.Namespace) -> int:
    from facesr.report import make_handin

    out = make_handin(args.run, args.out, matric=args.matric, codalab=args.codalab, data_root=args.data,
                      figures_dir=args.figures, overwrite=args.overwrite, trust_checkpoint=args.trust_checkpoint,
                      edition=args.edition, screenshot=args.screenshot)
    print(f"hand-in bundle: {out} (its Readme.txt lists every file)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from facesr.editions import edition_year
    from facesr.report.results_steps import make_report_figures
    from facesr.report.skeleton import print_report, run_figures_dir, write_report
    from facesr.report.tables import best_tta

    edition = edition_year(args.edition, "--edition") if args.edition is not None else None
    figures = Path(args.figures).expanduser() if args.figures else run_figures_dir(args.run, edition)
    faces = [f.strip() for f in args.faces.split(",") if f.strip()]
    make_report_figures(args.run, figures, args.data, args.models, faces, edition, args.trust_checkpoint)
    tta = None if args.tta == "none" else args.tta
    if args.tta is None and (figures / "psnr_table.csv").is_file():  # the ensemble that scored best on val
        tta = best_tta(pd.read_csv(figures / "psnr_table.csv"), Path(args.run).name)
    files = write_report(args.run, figures, out=args.out, edition=edition, tta=tta, author=args.author)
    print_report(files)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from facesr.demo import run_demo

    run_demo(out_dir=args.out, data_root=args.data, figures_dir=args.figures, smoke=args.smoke)
    return 0


# --tta alone is the x8 ensemble (as before hflip existed); --tta hflip the face-safe one.
_TTA_ARGS = ("--tta",)
_TTA_OPTIONS = {
    "nargs": "?", "const": "x8", "default": None, "choices": ("x8", "hflip"),
    "help": "self-ensemble: x8 (8 flips and rotations; the default of a bare --tta) or hflip (the input and its "
            "horizontal mirror: faces are aligned, so rotations show the net faces it never saw)",
}


# The course edition (facesr.editions): its limit, data, degradation and configs. A run folder's own edition
# (its config.json) wins over the default; an explicit --edition wins over both.
_EDITION_ARGS = ("--edition",)
_EDITION_OPTIONS = {
    "default": None, "metavar": "YEAR",
    "help": "the course edition: 2022, 2023, 2024 or 2025 (default: a run folder's own, else FACESR_EDITION, "
            "else 2022)",
}


# Every command that reads a checkpoint takes it; without it files load weights-only (no code runs).
_TRUST_ARGS = ("--trust-checkpoint",)
_TRUST_OPTIONS = {
    "action": "store_true",
    "help": "unpickle a checkpoint in full when a weights-only load refuses it: this RUNS CODE FROM THE FILE, "
            "so use it only for files from a source you trust",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m facesr", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = add("params", _cmd_params, "print the edition's networks against its parameter limit, or check one "
            "run or checkpoint against it (exit 2 if over)")
    p.add_argument("run_or_ckpt", nargs="?", default=None, metavar="RUN_OR_CKPT",
                   help="a run folder or weights file to check (default: print the edition's table)")
    p.add_argument(*_EDITION_ARGS, **_EDITION_OPTIONS)
    p.add_argument(*_TRUST_ARGS, **_TRUST_OPTIONS)

    p = add("editions", _cmd_editions, "the course's editions (limits, data, degradations, results to beat) as "
            "the README's Markdown tables, or one edition's facts")
    p.add_argument("--edition", default=None, metavar="YEAR", help="one edition: its facts and results")

    p = add("check-data", _cmd_check_data, "check a data root in the course layout; exit 1 on errors")
    p.add_argument("root", help="data root holding train/GT, val/LQ, val/GT, test/LQ")
    p.add_argument(*_EDITION_ARGS, **_EDITION_OPTIONS)

    p = add("sample-data", _cmd_sample_data, "write the bundled sample data set (not FFHQ) to OUT")
    p.add_argument("out", help="folder to create (course layout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing sample set in OUT")
    p.add_argument(*_EDITION_ARGS, **_EDITION_OPTIONS)

    p = add("train", _cmd_train, "train (or resume) a run from a named config")
    p.add_argument("config", help="a named config of the edition: srgan, esrgan, esrgan_gan, the in-budget ones and "
                                  "their _l2 MSE finishes (python -m facesr params --edition YEAR lists them)")
    p.add_argument("--data", default=None, help="data root (default: the config's data_root)")
    p.add_argument("--runs", default=None, help="folder of run folders (default: the config's runs_dir)")
    p.add_argument("--name", default=None, help="run folder name (default: the config name)")
    p.add_argument("--iters", type=int, default=None, help="total iterations (overrides the config)")
    p.add_argument("--quick", action="store_true", help="shrink to CPU size on the sample data")
    p.add_argument("--init", default=None, metavar="RUN_OR_CKPT", help="initialise the generator from a run or file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument(*_EDITION_ARGS, **_EDITION_OPTIONS)
    p.add_argument(
        "--allow-config-change", action="store_true", help="resume even if the config differs from the saved one"
    )
    p.add_argument(*_TRUST_ARGS, **_TRUST_OPTIONS)

    p = add("predict", _cmd_predict, "write one 512x512 SR PNG per LQ image")
    p.add_argument("run_or_ckpt", metavar="RUN_OR_CKPT")
    p.add_argument("lq_dir", metavar="LQ_DIR")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument(*_TTA_ARGS, **_TTA_OPTIONS)
    p.add_argument("--zip", default=None, metavar="FILE", help="also package the leaderboard zip (logged in "
                   "RUNS_DIR/submissions.csv)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing zip")
    p.add_argument("--runs", default=None, metavar="DIR", help="the folder whose submissions.csv logs the zip "
                   "(default: the run folder's parent, else the zip's folder)")
    p.add_argument(*_EDITION_ARGS, **_EDITION_OPTIONS)
    p.add_argument(*_TRUST_ARGS, **_TRUST_OPTIONS)

    p = add("evaluate", _cmd_evaluate, "PSNR/SSIM on the val set beside the bicubic baseline")
    p.add_argument("run_or_ckpt", metavar="RUN_OR_CKPT")
    p.add_argument("--data", default="data/FFHQ", help="data root (default: data/FFHQ)")
    p.add_argument(*_TTA_ARGS, **_TTA_OPTIONS)
    p.add_argument("--csv", default="evaluation.csv", help="where to write the table (default: evaluation.csv)")
    p.add_argument(*_EDITION_ARGS, **_EDITION_OPTIONS)
    p.add_argument(*_TRUST_ARGS, **_TRUST_OPTIONS)

    p = add("submissions", _cmd_submissions, "print RUNS_DIR/submissions.csv, the log of every leaderboard zip the "
            "kit made, or record the CodaLab score of one")
    p.add_argument("--runs", default="checkpoints", metavar="DIR", help="the folder of run folders (default: "
                   "checkpoints)")
    p.add_argument("--score", nargs=2, default=None, metavar=("ZIP_OR_ROW", "PSNR"),
                   help="record the PSNR CodaLab gave a logged zip (its path or row number)")

    p = add("compare-degradation", _cmd_compare_degradation, "statistics of the val LQ against training LQ made from "
            "the same val GT (bicubic PSNR, noise, blur, sharpness, JPEG blocks, colour shift) and their distances")
    p.add_argument("--data", default="data/FFHQ", metavar="ROOT", help="data root with val/LQ and val/GT "
                   "(default: data/FFHQ)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="change the training degradation as train --set does: course.<field> (2022/2023), "
                        "second_order.<field> or gt_usm (2024/2025), e.g. second_order.jpeg_range=[80,95]")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="the first N val pairs only")
    p.add_argument("--draws", type=int, default=4, metavar="K", help="training LQ per val GT (default: 4)")
    p.add_argument("--figures", default=None, metavar="DIR", help="save the histograms and the table there")
    p.add_argument(*_EDITION_ARGS, **_EDITION_OPTIONS)

    p = add("export", _cmd_export, "write a generator's EMA weights: .safetensors with the kit's architecture "
            "metadata, or a BasicSR .pth ({'params': ...}) that the 2024/2025 course code loads")
    p.add_argument("run_or_ckpt", metavar="RUN_OR_CKPT")
    p.add_argument("out", metavar="OUT", help="OUT.safetensors, or OUT.pth with --format basicsr")
    p.add_argument("--format", choices=("safetensors", "basicsr"), default="safetensors",
                   help="safetensors (default), or basicsr: BasicSR's names in {'params': ...} (msrresnet_basicsr, "
                        "rrdbnet and swinir nets)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument(*_TRUST_ARGS, **_TRUST_OPTIONS)

    p = add("average", _cmd_average, "average the EMA weights of a run's last kept checkpoints into a new run folder "
            "RUN_avg (evaluate, predict, export and handin take it like any run)")
    p.add_argument("run", metavar="RUN", help="the run folder (its iter_N.pt files)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--last", type=int, default=None, metavar="K", help="average the K newest kept checkpoints")
    which.add_argument("--iters", type=int, nargs="+", default=None, metavar="N", help="average these iterations")
    p.add_argument("--out", default=None, metavar="DIR", help="the new run folder (default: RUN_avg beside RUN)")
    p.add_argument("--data", default=None, metavar="ROOT",
                   help="data root whose val set scores the average into val.csv (default: the run's data_root)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing average in DIR")
    p.add_argument(*_TRUST_ARGS, **_TRUST_OPTIONS)

    p = add("score", _cmd_score, "score SR images (a folder or a submission zip) like the leaderboard")
    p.add_argument("sr", metavar="SR_DIR_OR_ZIP")
    p.add_argument("gt_dir", metavar="GT_DIR")

    p = add("handin", _cmd_handin, "write the course hand-in bundle of a run: leaderboard zip, logs, checkpoint, "
            "figures, code and Readme.txt")
    p.add_argument("run", metavar="RUN", help="the submitted run's folder")
    p.add_argument("--out", required=True, metavar="FILE.zip", help="the bundle to write")
    p.add_argument("--matric", default=None, metavar="ID", help="matriculation number for Readme.txt")
    p.add_argument("--codalab", default=None, metavar="NAME", help="CodaLab user name for Readme.txt")
    p.add_argument("--data", default=None, metavar="ROOT",
                   help="data root with test/LQ, to make missing test predictions (default: the run's config)")
    p.add_argument("--figures", default=None, metavar="DIR",
                   help="the report's figures (default: the project's for the run's edition and mode: "
                        "FACESR_DRIVE/facesr/figures/<edition>/, else the kit's figures/)")
    p.add_argument("--screenshot", default=None, metavar="FILE", help="the screenshot of your CodaLab score")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE.zip")
    p.add_argument(*_EDITION_ARGS, **_EDITION_OPTIONS)
    p.add_argument(*_TRUST_ARGS, **_TRUST_OPTIONS)

    p = add("report", _cmd_report, "write the report skeleton of a run (main.tex, references.bib, report.md, the "
            "Overleaf zip) beside the figures folder, from notebook 06's figures and tables")
    p.add_argument("run", metavar="RUN", help="the submitted run's folder")
    p.add_argument("--figures", default=None, metavar="DIR",
                   help="the figures folder (default: the project's for the run's edition and mode, as notebook 06 "
                        "and handin use it: on Drive with FACESR_DRIVE, else the kit's figures/)")
    p.add_argument("--out", default=None, metavar="DIR", help="the report folder (default: report/ beside --figures)")
    p.add_argument("--data", default=None, metavar="ROOT",
                   help="data root: also remake the face grids (and the PSNR table if missing) from it")
    p.add_argument("--models", default=None, metavar="LIST",
                   help="columns of the face grids, comma-separated (lq, bicubic, gt and run names; default: lq, "
                        "bicubic, the edition's baseline, RUN, gt)")
    p.add_argument("--faces", default="0,1", metavar="LIST", help="val faces of the qualitative grid (default: 0,1)")
    p.add_argument("--tta", choices=("none", "hflip", "x8"), default=None,
                   help="the self-ensemble the submission was made with (default: the best of the PSNR table)")
    p.add_argument("--author", default=None, metavar="TEXT", help="the author line (default: a blank to fill in)")
    p.add_argument(*_EDITION_ARGS, **_EDITION_OPTIONS)
    p.add_argument(*_TRUST_ARGS, **_TRUST_OPTIONS)

    p = add("demo", _cmd_demo, "the main job: notebooks 01-07 in quick mode on the sample data")
    p.add_argument("--out", default="demo_output", help="folder for the executed notebooks and runs")
    p.add_argument("--data", default=None, help="data root (default: sample data, built if missing)")
    p.add_argument("--figures", default=None,
                   help="folder for the figures and tables (default: the repo's docs/figures/, the README's)")
    p.add_argument("--smoke", action="store_true",
                   help="the tests' sizes: every cell runs in a few minutes, the numbers mean nothing")
    return parser


# How long a rank other than 0 waits before exiting on an error every rank raised (see main)
RANK_0_GRACE_S = 30.0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except FacesrError as err:
        rank = int(os.environ.get("RANK", "0") or 0)  # set by torchrun
        if rank == 0:
            print(f"error: {err}", file=sys.stderr)
        elif not getattr(err, "same_on_every_rank", False):
            print(f"error (rank {rank}): {err}", file=sys.stderr)
        else:  # rank 0 prints the errors every rank raises; torchrun stops every worker when one exits, so
            # this rank waits for rank 0 to print and exit (torchrun then stops it) instead of cutting it off
            time.sleep(RANK_0_GRACE_S)
        return 2
    except KeyboardInterrupt as err:
        # train's clean stop (facesr.training.stopping.TrainingStopped) has printed its line: exit 128 + signal,
        # 130 for SIGINT, 143 for SIGTERM, without a traceback
        signum = getattr(err, "signum", None)
        if signum is None:
            print("interrupted", file=sys.stderr)
        return 128 + int(signum or signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
