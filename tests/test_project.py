"""A project's runs and data: the edition checked against the data before a fresh run trains, training without
test/LQ, quick runs apart from real ones of the same name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from facesr.config import get_config
from facesr.errors import FacesrError
from facesr.training import train


def _smoke_data(edition: int, folder: Path) -> Path:
    from facesr.data.sample import smoke_sample_data

    return smoke_sample_data(folder, edition=edition)


def test_a_fresh_run_whose_data_name_another_edition_is_refused_before_iteration_one(tmp_path: Path,
                                                                                    capsys) -> None:
    from facesr.cli import main

    data = _smoke_data(2024, tmp_path / "data")  # test_real/01.png, 02.png: the 2024 edition's names
    runs = tmp_path / "runs"
    with pytest.raises(FacesrError) as info:
        train(get_config("srgan", quick=True, edition=2022), data_root=data, runs_dir=runs)
    assert str(info.value).startswith(f"the data in {data} are the 2024 edition's (the real-world file names "
                                      "test_real/01.png-02.png (2024)), but srgan trains the 2022 edition's config")
    assert "set EDITION = 2024 in the notebook's settings cell (CLI: --edition 2024)" in str(info.value)
    assert not runs.exists()  # nothing written: refused before the run folder, before iteration 1
    assert main(["train", "srgan", "--quick", "--data", str(data), "--runs", str(runs)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--edition 2024" in err


def test_training_needs_no_test_lq_only_the_predictions_do(tmp_path: Path) -> None:
    from facesr.inference.predict import load_generator
    from facesr.report.steps import make_submission

    data = _smoke_data(2022, tmp_path / "data")
    shutil.rmtree(data / "test")
    run = train(get_config("srgan", quick=True, smoke=True, iters=2, gt_patch=32), data_root=data,
                runs_dir=tmp_path / "runs")
    assert (run / "latest.pt").is_file()
    with pytest.raises(FacesrError, match=r"has no test/LQ: the test predictions, the leaderboard zip and the hand-in"):
        make_submission(load_generator(run), data, run)
    # resuming it for another edition names the setting that continues it
    with pytest.raises(FacesrError, match=r"was trained for the 2022 edition \(edition: 2022 -> 2023\); set EDITION = "
                                          r"2022 in the notebook's settings cell \(CLI: --edition 2022\) to continue it"):
        train(get_config("srgan", quick=True, smoke=True, iters=4, gt_patch=32, edition=2023), data_root=data,
              runs_dir=tmp_path / "runs")


def test_a_quick_run_and_a_real_run_of_the_same_config_live_side_by_side(tmp_path: Path, monkeypatch) -> None:
    from facesr.colab.settings import resolve_settings

    assert get_config("srgan", quick=True).runs_dir == "checkpoints/quick"
    assert get_config("srgan", quick=False).runs_dir == "checkpoints"
    env = {"FACESR_DATA": str(tmp_path), "FACESR_EDITION": "2022"}
    real = resolve_settings(kit=tmp_path / "kit", env=env, quick=False).runs_dir
    quick = resolve_settings(kit=tmp_path / "kit", env=env, quick=True).runs_dir
    assert quick == real / "quick"
    data = _smoke_data(2022, tmp_path / "data")
    tiny = {"iters": 2, "batch_size": 2, "gt_patch": 32, "num_workers": 0, "val_every": 2, "checkpoint_every": 2,
            "log_every": 1}
    real_cfg = get_config("srgan", quick=False, **tiny)
    real_run = train(real_cfg, data_root=data, runs_dir=real)
    quick_run = train(get_config("srgan", quick=True, smoke=True, iters=2, gt_patch=32), data_root=data,
                      runs_dir=quick)
    assert real_run == real / "srgan" and quick_run == real / "quick" / "srgan"
    train(real_cfg, data_root=data, runs_dir=real)  # the real run resumes as itself: no "another config"
