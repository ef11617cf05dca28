"""Knowing where you stand: the test PSNR a val PSNR leads to expect (from each edition's published pairs), and
RUNS_DIR/submissions.csv, the log of every leaderboard zip the kit makes, with the CodaLab scores recorded."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from facesr.cli import main
from facesr.config import get_config
from facesr.data.images import write_png
from facesr.editions import ValTestPair, expected_test_range
from facesr.inference.predict import evaluation_summary, load_generator
from facesr.inference.submissions import (
    file_sha256,
    read_submissions,
    record_score,
    record_submission,
    submissions_path,
)
from facesr.models import MSRResNet
from facesr.weights.checkpoints import save_checkpoint

# ----------------------------------------------------------------------------- the expected test range


@pytest.mark.parametrize(("year", "pairs", "low", "high"), [
    (2022, 3, 28.7299 - 28.8984, 28.8475 - 29.0122),  # every 2022 pair lost about 0.17 dB on test
    (2023, 2, 29.4399 - 29.7315, 29.49933 - 29.7899),
    (2024, 5, 0.07, 26.51798 - 26.3272),  # 2024's test set scored higher than its val set
])  # fmt: skip
def test_expected_test_range_from_the_editions_published_pairs(year: int, pairs: int, low: float, high: float) -> None:
    expected = expected_test_range(year, 28.0)
    assert len(expected.pairs) == pairs and expected.own == 0
    assert expected.low == pytest.approx(28.0 + low) and expected.high == pytest.approx(28.0 + high)
    assert expected.range_text() == f"{28.0 + low:.4f}-{28.0 + high:.4f}"
    assert f"{pairs} published val/test pairs of {year}" in str(expected)
    assert all(p.label in "\n".join(expected.pairs_text()) for p in expected.pairs)
    mine = expected_test_range(year, 28.0, [ValTestPair("mine", 27.0, 27.5)])
    assert mine.high == pytest.approx(28.5) and mine.own == 1 and "and 1 of your own" in str(mine)


def test_expected_test_range_2025_has_no_published_pairs() -> None:
    expected = expected_test_range(2025, 27.0)
    assert expected.pairs == () and expected.low is None and expected.range_text() == "no published pairs"
    assert "2025 edition published no result with both a val and a test PSNR" in str(expected)
    mine = expected_test_range(2025, 27.0, [(26.9, 27.1)])
    assert mine.low == mine.high == pytest.approx(27.2) and mine.range_text() == "27.2000"
    assert expected_test_range(2022, None).range_text() == "no val PSNR"
    assert expected_test_range(2022, float("inf")).low is None


def test_evaluate_summary_shows_the_expected_test_psnr() -> None:
    table = pd.DataFrame({"name": ["a.png", "mean"], "psnr": [26.5, 26.5], "ssim": [0.8, 0.8],
                          "bicubic_psnr": [25.0, 25.0], "bicubic_ssim": [0.7, 0.7]})  # fmt: skip
    text = evaluation_summary(table, 2024)
    assert f"expected test PSNR {26.57:.4f}-{26.5 + 26.51798 - 26.3272:.4f} dB" in text


# ----------------------------------------------------------------------------- the submissions log


def _run(run_dir: Path) -> Path:
    """A run folder as the trainer leaves it (tiny MSRResNet best.pt at iteration 20, config.json, val.csv)."""
    torch.manual_seed(0)
    args = {"mid_channels": 8, "num_blocks": 1}
    cfg = get_config("srgan", quick=True, iters=20, generator_args=args).to_dict()
    run_dir.mkdir(parents=True)
    net = MSRResNet(**args)
    save_checkpoint({"net_g": net.state_dict(), "net_g_ema": net.state_dict(), "iter": 20, "config": cfg},
                    run_dir / "best.pt")  # fmt: skip
    (run_dir / "config.json").write_text(json.dumps(cfg))
    pd.DataFrame({"iter": [10, 20], "lr": 2e-4, "l_pix": [0.08, 0.05]}).to_csv(run_dir / "log.csv", index=False)
    pd.DataFrame({"iter": [10, 20], "psnr": [20.5, 21.654321], "ssim": [0.5, 0.6]}).to_csv(run_dir / "val.csv",
                                                                                         index=False)  # fmt: skip
    return run_dir


def test_every_zip_the_kit_makes_adds_one_row(mini_root: Path, tmp_path: Path, capsys) -> None:
    from facesr.report.steps import make_submission

    runs = tmp_path / "runs"
    run = _run(runs / "srgan")
    net = load_generator(run)
    table = pd.DataFrame({"run": ["bicubic", "srgan"], "images": [3, 3], "psnr": [22.0, 21.9],
                          "psnr_hflip": [np.nan, 22.123456]})  # fmt: skip
    zip_path = make_submission(net, mini_root, run, tta="hflip", psnr_table=table)  # notebooks 06 and 07
    assert "row 1 of" in capsys.readouterr().out
    make_submission(net, mini_root, run)  # plain, no table: val.csv at the checkpoint's iteration
    out = tmp_path / "zips" / "mine.zip"
    assert main(["predict", str(run), str(mini_root / "test" / "LQ"), str(tmp_path / "sr"), "--tta", "x8",
                 "--zip", str(out)]) == 0  # fmt: skip
    assert "row 3 of" in capsys.readouterr().out
    rows = read_submissions(runs)
    assert [r["row"] for r in rows] == ["1", "2", "3"] and submissions_path(runs).is_file()
    assert [r["self_ensemble"] for r in rows] == ["hflip", "none", "x8"]
    assert [r["run"] for r in rows] == ["srgan"] * 3 and {r["iteration"] for r in rows} == {"20"}
    assert rows[0]["val_psnr"] == "22.1235" and rows[0]["val_psnr_from"] == "psnr table, hflip, 3 images"
    assert rows[1]["val_psnr"] == rows[2]["val_psnr"] == "21.6543" and "val.csv at iteration 20" in rows[1]["val_psnr_from"]
    assert rows[1]["expected_test"] == expected_test_range(2022, 21.6543).range_text()
    assert rows[2]["zip"] == str(out.resolve()) and rows[2]["sha256"] == file_sha256(out)
    assert rows[1]["zip"] == str(zip_path.resolve()) and rows[1]["sha256"] == file_sha256(zip_path)
    assert record_submission(out, run) == rows[2] and len(read_submissions(runs)) == 3  # the same bytes: one row


def test_scores_are_recorded_and_feed_the_expected_range(mini_root: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    run = _run(runs / "srgan")
    sr = tmp_path / "sr"
    assert main(["predict", str(run), str(mini_root / "test" / "LQ"), str(sr), "--zip", str(run / "a.zip")]) == 0
    assert main(["predict", str(run), str(mini_root / "test" / "LQ"), str(sr), "--tta", "hflip",
                 "--zip", str(run / "b.zip")]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["submissions", "--runs", str(runs), "--score", "1", "21.5"]) == 0
    assert main(["submissions", "--runs", str(runs), "--score", str(run / "b.zip"), "21.75"]) == 0
    out = capsys.readouterr().out
    assert "recorded: row 2" in out and "CodaLab 21.7500 dB" in out
    assert [r["codalab_psnr"] for r in read_submissions(runs)] == ["21.5000", "21.7500"]
    assert main(["submissions", "--runs", str(runs), "--score", "9", "21"]) == 2
    assert main(["submissions", "--runs", str(runs), "--score", "1", "good"]) == 2
    assert "is no row or zip of" in capsys.readouterr().err
    from facesr.inference.submissions import expected_test

    mine = expected_test(21.6543, 2022, runs)
    assert mine.own == 2 and mine.high == pytest.approx(21.75)  # row 2: val 21.6543, test 21.75
    assert mine.low == pytest.approx(21.6543 + 28.7299 - 28.8984)  # 2022's published pair with the lowest offset
    with pytest.raises(Exception, match="number"):
        record_score(runs, "1", "nan")


def test_a_recorded_score_changes_the_handin_readme(mini_root: Path, tmp_path: Path) -> None:
    from facesr.report import make_handin
    from facesr.report.steps import make_submission

    runs = tmp_path / "runs"
    run = _run(runs / "srgan")
    figures = tmp_path / "figures"
    write_png(figures / "06_psnr_curves.png", np.zeros((8, 8, 3), np.uint8))
    make_submission(load_generator(run), mini_root, run, tta="hflip")

    def readme(name: str) -> str:
        bundle = make_handin(run, tmp_path / name, data_root=mini_root, figures_dir=figures)
        with zipfile.ZipFile(bundle) as zf:
            return zf.read("Readme.txt").decode()

    before = readme("before.zip")
    sha = file_sha256(run / "submission.zip")
    assert "row 1 of submissions.csv" in before and "self-ensemble hflip" in before and sha in before
    assert "CodaLab score        not recorded yet" in before
    record_score(runs, run / "submission.zip", 21.4321)
    after = readme("after.zip")
    assert "CodaLab score        21.4321 dB" in after and "not recorded" not in after
