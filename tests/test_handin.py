"""The course hand-in: the machine table, the leaderboard zip, the hand-in bundle and its refusals, its Readme.

(The real-world LQ grid and predictions are tested in test_report.py.)

Runs are built by hand (a tiny MSRResNet kit checkpoint, CSV logs, run_info.json): no training.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from facesr.cli import build_parser, main
from facesr.config import get_config, parse_overrides
from facesr.data.images import list_images, read_image, write_png
from facesr.errors import FacesrError
from facesr.inference.predict import load_generator
from facesr.models import MSRResNet, RRDBNet, count_parameters, param_limit
from facesr.report import make_handin
from facesr.report.readme import train_command
from facesr.report.tables import machine_table, save_table
from facesr.training.distributed import Ranks
from facesr.training.run_info import machine_info, start_session, update_session
from facesr.weights.checkpoints import save_checkpoint


def _cpu_run_info(iters: int = 20, seconds: float = 36.0) -> dict:
    """run_info.json as the trainer writes it on this machine's CPU (its own functions, no training)."""
    info = start_session(None, machine_info(torch.device("cpu"), Ranks(), None), 0)
    return update_session(info, iters, seconds)


def _make_run(run_dir: Path, net: torch.nn.Module | None = None, run_info: dict | None = None, **config) -> Path:
    """A run folder as the trainer leaves it: best.pt (kit checkpoint dict), config.json, log.csv, val.csv,
    run_info.json; the generator is a 1-block MSRResNet unless ``net`` (with ``config``) says otherwise."""
    torch.manual_seed(0)
    args = config.pop("generator_args", {"mid_channels": 8, "num_blocks": 1})
    generator = config.pop("generator", "msrresnet")
    net = net if net is not None else MSRResNet(**args)
    cfg = get_config("srgan", quick=True, iters=20, generator=generator, generator_args=args, **config).to_dict()
    cfg["name"] = run_dir.name
    run_dir.mkdir(parents=True)
    state = {"net_g": net.state_dict(), "net_g_ema": net.state_dict(), "iter": 20, "config": cfg}
    save_checkpoint(state, run_dir / "best.pt")
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=2))
    pd.DataFrame({"iter": [10, 20], "lr": 2e-4, "l_pix": [0.08, 0.05]}).to_csv(run_dir / "log.csv", index=False)
    pd.DataFrame({"iter": [10, 20], "psnr": [20.123456, 21.654321], "ssim": [0.5, 0.6]}).to_csv(
        run_dir / "val.csv", index=False)  # fmt: skip
    (run_dir / "run_info.json").write_text(json.dumps(run_info or _cpu_run_info()))
    return run_dir


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    return _make_run(tmp_path / "runs" / "srgan")


@pytest.fixture()
def figures(tmp_path: Path) -> Path:
    """A figures folder as notebook 06 leaves it for the quick 2022 runs: two files recorded in its manifest, one
    file that is not (put there by hand)."""
    from facesr.report.manifest import record

    folder = tmp_path / "figures"
    folder.mkdir()
    write_png(folder / "06_psnr_curves.png", np.zeros((8, 8, 3), np.uint8))
    pd.DataFrame({"run": ["bicubic", "srgan"], "images": [3, 3], "psnr": [22.0, 21.987654321],
                  "psnr_hflip": [np.nan, 22.123456789], "images_x8": [np.nan, 1],
                  "psnr_x8": [np.nan, 22.5]}).to_csv(folder / "psnr_table.csv", index=False)  # fmt: skip
    record(folder, [folder / "06_psnr_curves.png", folder / "psnr_table.csv"], notebook="06_results_and_report",
           edition=2022, mode="quick", runs=["srgan"])
    (folder / "notes.txt").write_text("not a figure")
    write_png(folder / "01_train_gt.png", np.zeros((8, 8, 3), np.uint8))  # not in the manifest: not the student's
    return folder


def _names(zip_path: Path) -> set[str]:
    with zipfile.ZipFile(zip_path) as zf:
        return set(zf.namelist())


# ----------------------------------------------------------------------------- machine table


def test_machine_table_from_run_info(tmp_path: Path) -> None:
    cpu = _make_run(tmp_path / "srgan", run_info=_cpu_run_info(iters=20, seconds=36.0))
    t4 = {"device": "cuda", "gpu_name": "Tesla T4", "gpu_count": 1, "gpu_memory_gib": 14.7, "cpu": "x86_64, 2 cores"}
    a100 = {"device": "cuda", "gpu_name": "NVIDIA A100-SXM4-40GB", "gpu_count": 2, "world_size": 2, "cpu": "x86_64",
            "torch": "2.5.1+cu124", "cuda": "12.4", "cudnn": 90100, "amp_dtype": "bf16", "gpu_memory_gib": 39.4}
    cuda_info = {**a100, "iterations": 300000, "wall_hours": 12.3456, "iters_per_s": 6.75,
                 "sessions": [{"from_iter": 0, "to_iter": 100000, "seconds": 3e4, **t4},
                              {"from_iter": 100000, "to_iter": 300000, "seconds": 1.4e4, **a100}]}  # fmt: skip
    cuda = _make_run(tmp_path / "msrresnet20", run_info=cuda_info)
    old = _make_run(tmp_path / "esrgan")
    (old / "run_info.json").unlink()
    broken = _make_run(tmp_path / "esrgan_gan")
    (broken / "run_info.json").write_text("{not json")
    table = machine_table({"srgan": cpu, "msrresnet20": cuda, "esrgan": old, "esrgan_gan": broken})
    rows = table.set_index("run")
    assert rows.loc["srgan", "machine"].startswith("CPU (") and rows.loc["srgan", "gpus"] == 0
    assert rows.loc["srgan", "amp"] == "fp32" and rows.loc["srgan", "iterations"] == 20
    assert rows.loc["srgan", "torch"] == torch.__version__ and rows.loc["srgan", "iters_per_s"] == pytest.approx(20 / 36, abs=1e-4)
    assert rows.loc["msrresnet20", "machine"] == "2 x NVIDIA A100-SXM4-40GB (39.4 GiB); also 1 x Tesla T4 (14.7 GiB)"
    assert rows.loc["msrresnet20", "cuda"] == "12.4" and rows.loc["msrresnet20", "amp"] == "bf16"
    assert rows.loc["msrresnet20", "sessions"] == 2 and rows.loc["msrresnet20", "wall_hours"] == 12.3456
    assert "no run_info.json" in rows.loc["esrgan", "machine"] and pd.isna(rows.loc["esrgan", "iterations"])
    assert "unreadable" in rows.loc["esrgan_gan", "machine"] and "run_info.json" in rows.loc["esrgan_gan", "machine"]
    csv_path, md_path = save_table(table, tmp_path / "fig", "machine_table")
    md = md_path.read_text()
    assert re.search(r"\| +300,000 \| +12\.35 \| +6\.75 \|", md) and "CPU (" in md  # hours with 2 decimals
    assert pd.read_csv(csv_path)["wall_hours"].iloc[1] == 12.3456


# ----------------------------------------------------------------------------- hand-in bundle


def test_handin_bundle_contents(run: Path, mini_root: Path, figures: Path, tmp_path: Path) -> None:
    out = make_handin(run, tmp_path / "handin.zip", data_root=mini_root, figures_dir=figures)
    names = _names(out)
    expected = {"Readme.txt", "submission.zip", "srgan/config.json", "srgan/log.csv", "srgan/val.csv",
                "srgan/run_info.json", "srgan/best.pt", "figures/06_psnr_curves.png", "figures/psnr_table.csv"}
    assert expected <= names and "figures/notes.txt" not in names and "figures/01_train_gt.png" not in names
    assert {"code/lib/facesr/report/handin.py", "code/notebooks/06_results_and_report.ipynb",
            "code/requirements.txt"} <= names  # fmt: skip
    assert not any("__pycache__" in n for n in names)
    # missing test predictions were made (into the run folder) and zipped like the leaderboard wants
    assert len(list_images(run / "test_predictions")) == 3 and (run / "submission.zip").is_file()
    with zipfile.ZipFile(out) as zf:
        assert zf.read("srgan/best.pt") == (run / "best.pt").read_bytes()
        inner = zipfile.ZipFile(io.BytesIO(zf.read("submission.zip")))
        readme = zf.read("Readme.txt").decode()
    assert sorted(inner.namelist()) == [f"results/{i:05d}.png" for i in range(3)]
    assert Image.open(io.BytesIO(inner.read("results/00000.png"))).size == (512, 512)
    assert "Matriculation number: <FILL IN: your matriculation number>" in readme
    assert "CodaLab user name:    <FILL IN: your CodaLab user name>" in readme
    n = count_parameters(load_generator(run))
    assert f"  parameters           {n:,} (2022 limit {param_limit(2022):,}, every parameter counted)" in readme
    assert "trainable" not in readme  # the handout counts frozen parameters too
    assert "best val PSNR        21.6543 dB (SSIM 0.6000) at iteration 20" in readme  # 4 decimals
    assert "plain 21.9877, hflip 22.1235 dB on 3 val images; x8 22.5000 dB on the first 1 (" in readme
    assert "training machine     CPU (" in readme and f"torch {torch.__version__}" in readme
    from importlib.metadata import version

    for dist in ("torch", "numpy", "pandas", "scikit-image"):
        assert f"  {dist} {version(dist)}\n" in readme
    assert "spandrel" not in readme  # only a spandrel generator brings it in
    for arcname in expected - {"Readme.txt"}:
        assert f"  {arcname} " in readme  # every file is described
    assert "python -m facesr train srgan --edition 2022 --quick --iters 20 --set generator_args.mid_channels=8 " \
           "--set generator_args.num_blocks=1\n" in readme
    assert "python -m facesr handin checkpoints/quick/srgan --out handin.zip" in readme
    assert re.search(r"leaderboard zip      row \d+ of submissions.csv .*self-ensemble none, sha256", readme)  # the hand-in's
    assert re.search(r"figures/06_psnr_curves.png +report figure \(notebook 06\), made 20\d\d-", readme)
    missing = readme[readme.index("Missing (required"):readme.index("Third-party")]
    for item in ("training curves: notebook 06, section 1", "parameter table: notebook 06, section 4",
                 "machine table: notebook 06, section 5", "real-world predictions: put the real-world LQ images",
                 "the CodaLab screenshot: set SCREENSHOT in notebook 06 (CLI: --screenshot FILE)"):
        assert item in missing, item
    assert "val PSNR table" not in missing
    # the second bundle reuses the run's leaderboard zip (newer than best.pt, complete), and names the student
    again = make_handin(run, tmp_path / "named.zip", matric="A0123456X", codalab="face_fan", data_root=mini_root,
                        figures_dir=figures)  # fmt: skip
    with zipfile.ZipFile(again) as zf:
        readme = zf.read("Readme.txt").decode()
        assert zf.read("submission.zip") == (run / "submission.zip").read_bytes()
    assert "Matriculation number: A0123456X" in readme and "CodaLab user name:    face_fan" in readme
    assert "FILL IN" not in readme


def test_handin_refuses_an_existing_bundle(run: Path, mini_root: Path, figures: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "handin.zip"
    out.write_bytes(b"my earlier bundle")
    with pytest.raises(FacesrError, match="already exists; pass --overwrite"):
        make_handin(run, out, data_root=mini_root, figures_dir=figures)
    args = ["handin", str(run), "--out", str(out), "--data", str(mini_root), "--figures", str(figures)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and str(out) in err
    assert out.read_bytes() == b"my earlier bundle" and not (run / "test_predictions").exists()
    assert main([*args, "--overwrite", "--matric", "A1"]) == 0
    assert "Readme.txt" in _names(out) and "hand-in bundle:" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp file left
    with pytest.raises(FacesrError, match=r"should end in \.zip"):
        make_handin(run, tmp_path / "handin.tar", figures_dir=figures)


def test_handin_refuses_an_over_budget_run(mini_root: Path, figures: Path, tmp_path: Path) -> None:
    args = {"mid_channels": 64, "num_blocks": 3, "growth_channels": 32}
    big = _make_run(tmp_path / "runs" / "esrgan", net=RRDBNet(**args), generator="rrdbnet", generator_args=args)
    n = count_parameters(RRDBNet(**args))
    with pytest.raises(FacesrError, match="run esrgan cannot be handed in") as info:
        make_handin(big, tmp_path / "handin.zip", data_root=mini_root, figures_dir=figures)
    assert f"{n:,}" in str(info.value) and f"{param_limit(2022):,}" in str(info.value) and n > param_limit(2022)
    assert not (tmp_path / "handin.zip").exists() and not (big / "test_predictions").exists()


def test_the_same_net_is_refused_for_2022_and_handed_in_for_2024(mini_root: Path, figures: Path, tmp_path: Path,
                                                                   capsys) -> None:
    """MSRResNet-24 (2,108,419 parameters): over 2022's 1,821,085, within 2023-2025's 2,276,356; the run's own
    edition (config.json) wins over the default, an explicit edition over both."""
    from facesr.inference.submission import package_submission

    args = {"mid_channels": 64, "num_blocks": 24}
    run = _make_run(tmp_path / "runs" / "m24", net=MSRResNet(**args), generator_args=args, edition=2024)
    with pytest.raises(FacesrError, match="run m24 was trained for the 2024 edition, not 2022: leave the edition out"):
        make_handin(run, tmp_path / "h.zip", data_root=mini_root, figures_dir=figures, edition=2022)
    assert not (tmp_path / "h.zip").exists()
    out = make_handin(run, tmp_path / "h.zip", data_root=mini_root, figures_dir=figures)  # the run's own: 2024
    readme = zipfile.ZipFile(out).read("Readme.txt").decode()
    assert "for the 2024 edition of the course" in readme and "(2024 limit 2,276,356," in readme
    assert "second order (Real-ESRGAN) degradation" in readme
    assert "figures/" not in readme.replace("figures/psnr_table.csv)", "")  # the 2022 figures are not this run's
    assert ("python -m facesr train srgan --edition 2024 --name m24 --quick --iters 20 --set generator=msrresnet "
            "--set generator_args.mid_channels=64 --set generator_args.num_blocks=24\n") in readme
    # a 2024 in-budget run is its config and edition, nothing else (no --set for what the edition sets)
    assert train_command(get_config("msrresnet26", quick=False, edition=2024).to_dict()) == (
        "python -m facesr train msrresnet26 --edition 2024 --data data/FFHQ")
    preds = run / "test_predictions"
    with pytest.raises(FacesrError, match="2,108,419 parameters, over the course limit of 1,821,085"):
        package_submission(preds, tmp_path / "s.zip", MSRResNet(**args), mini_root / "test" / "LQ", edition=2022)
    for year in (2023, 2024, 2025):
        assert package_submission(preds, tmp_path / f"s{year}.zip", MSRResNet(**args), mini_root / "test" / "LQ",
                                  edition=year).is_file()
    assert main(["params", str(run)]) == 0 and "within the 2024 limit" in capsys.readouterr().out
    assert main(["params", str(run), "--edition", "2022"]) == 2 and "2022 edition" in capsys.readouterr().err


def test_unused_bundle_name_never_points_at_an_existing_bundle(tmp_path: Path) -> None:
    from facesr.report.handin import unused_bundle_name

    out = tmp_path / "srgan_handin.zip"
    assert unused_bundle_name(out) == out
    out.write_bytes(b"edited by the student")
    (tmp_path / "srgan_handin_2.zip").write_bytes(b"an earlier rerun")
    assert unused_bundle_name(out) == tmp_path / "srgan_handin_3.zip"
    assert out.read_bytes() == b"edited by the student"


def test_handin_refuses_missing_predictions_it_cannot_make(run: Path, figures: Path, tmp_path: Path) -> None:
    no_test = tmp_path / "no_test"
    (no_test / "val" / "LQ").mkdir(parents=True)
    with pytest.raises(FacesrError, match=r"no current test predictions .* no test/LQ to make them; pass --data ROOT") as info:
        make_handin(run, tmp_path / "handin.zip", data_root=no_test, figures_dir=figures)
    assert "\n" not in str(info.value)
    # the run's own config points at the sample data's default folder, which need not exist either: same refusal
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "data_root": str(tmp_path / "gone")}))
    with pytest.raises(FacesrError, match="no test/LQ to make them"):
        make_handin(run, tmp_path / "handin.zip", figures_dir=figures)
    assert not (tmp_path / "handin.zip").exists() and not (run / "test_predictions").exists()
    assert not (run / "submission.zip").exists()


def test_make_submission_zips_the_runs_own_test_predictions(run: Path, mini_root: Path, tmp_path: Path, capsys) -> None:
    from facesr.report.steps import make_submission

    net = load_generator(run)
    zip_path = make_submission(net, mini_root, run, tta="hflip")
    assert zip_path == run / "submission.zip" and "3 test predictions in" in capsys.readouterr().out
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == [f"results/{i:05d}.png" for i in range(3)]
        assert zf.read("results/00001.png") == (run / "test_predictions" / "00001.png").read_bytes()
    hflip = read_image(run / "test_predictions" / "00000.png")
    make_submission(net, mini_root, run)  # again, plain: the step's own predictions and zip are replaced
    plain = read_image(run / "test_predictions" / "00000.png")
    assert not np.array_equal(plain, hflip) and zipfile.ZipFile(zip_path).read("results/00000.png") == (
        run / "test_predictions" / "00000.png").read_bytes()  # fmt: skip
    with torch.device("meta"):
        big = RRDBNet()  # only its size matters: refused before anything is predicted
    with pytest.raises(FacesrError, match=f"over the course limit of {param_limit(2022):,}"):
        make_submission(big, mini_root, tmp_path / "big")
    assert not (tmp_path / "big").exists()


def _age(*paths: Path, seconds: float = 3600) -> None:
    """Make files look ``seconds`` older than now (older than a checkpoint written just before)."""
    import os
    import time

    for path in paths:
        os.utime(path, (time.time() - seconds, time.time() - seconds))


def test_handin_remakes_a_leaderboard_zip_older_than_the_checkpoint(run: Path, mini_root: Path, figures: Path,
                                                                     tmp_path: Path) -> None:  # fmt: skip
    zip_path, preds = run / "submission.zip", run / "test_predictions"
    make_handin(run, tmp_path / "a.zip", data_root=mini_root, figures_dir=figures)
    made = zip_path.stat().st_mtime_ns
    make_handin(run, tmp_path / "b.zip", data_root=mini_root, figures_dir=figures)  # current: reused as it is
    assert zip_path.stat().st_mtime_ns == made
    # predictions and zip older than best.pt (training went on): both are made again from the new weights
    write_png(preds / "00000.png", np.full((512, 512, 3), 7, np.uint8))
    _age(zip_path, *preds.iterdir())
    make_handin(run, tmp_path / "c.zip", data_root=mini_root, figures_dir=figures)
    assert not (read_image(preds / "00000.png") == 7).all() and zip_path.stat().st_mtime_ns > made
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.read("results/00000.png") == (preds / "00000.png").read_bytes()
    # a stale zip beside current predictions is zipped again without predicting; an incomplete one too
    _age(zip_path)
    before = {p.name: p.stat().st_mtime_ns for p in preds.iterdir()}
    make_handin(run, tmp_path / "d.zip", data_root=mini_root, figures_dir=figures)
    assert {p.name: p.stat().st_mtime_ns for p in preds.iterdir()} == before and not _older(zip_path, run)
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.write(preds / "00000.png", "results/00000.png")
    make_handin(run, tmp_path / "e.zip", data_root=mini_root, figures_dir=figures)
    assert len(zipfile.ZipFile(zip_path).namelist()) == 3
    # stale, and no test/LQ to predict again: refused, nothing replaced
    _age(zip_path, *preds.iterdir())
    stale = zip_path.read_bytes()
    with pytest.raises(FacesrError, match="no current test predictions .* newer than its checkpoint"):
        make_handin(run, tmp_path / "f.zip", data_root=tmp_path / "no_test", figures_dir=figures)
    assert zip_path.read_bytes() == stale and not (tmp_path / "f.zip").exists()


def _older(path: Path, run: Path) -> bool:
    return path.stat().st_mtime_ns < (run / "best.pt").stat().st_mtime_ns


def test_handin_never_overwrites_partial_predictions(run: Path, mini_root: Path, figures: Path, tmp_path: Path) -> None:
    (run / "test_predictions").mkdir()
    write_png(run / "test_predictions" / "00000.png", np.full((512, 512, 3), 7, np.uint8))
    with pytest.raises(FacesrError, match="2 of 3 SR images missing"):
        make_handin(run, tmp_path / "handin.zip", data_root=mini_root, figures_dir=figures)
    assert (read_image(run / "test_predictions" / "00000.png") == 7).all()
    assert len(list_images(run / "test_predictions")) == 1 and not (tmp_path / "handin.zip").exists()


def test_handin_refuses_missing_run_files_and_lists_missing_figures(run: Path, mini_root: Path, figures: Path,
                                                                     tmp_path: Path, capsys) -> None:
    out = make_handin(run, tmp_path / "a.zip", data_root=mini_root, figures_dir=tmp_path / "nowhere")
    assert not [n for n in _names(out) if n.startswith("figures/")]
    printed = capsys.readouterr().out
    for item in ("training curves", "val PSNR table", "parameter table", "machine table", "the CodaLab screenshot"):
        assert f"missing from the bundle: {item}: " in printed
    with pytest.raises(FacesrError, match="screenshot .*shot.png not found"):
        make_handin(run, tmp_path / "b.zip", data_root=mini_root, screenshot=tmp_path / "shot.png")
    with pytest.raises(FacesrError, match="not a run folder with best.pt or latest.pt"):
        make_handin(tmp_path / "runs" / "missing", tmp_path / "d.zip", figures_dir=figures)
    (run / "val.csv").unlink()
    with pytest.raises(FacesrError, match="has no val.csv"):
        make_handin(run, tmp_path / "c.zip", data_root=mini_root, figures_dir=figures)
    assert not (tmp_path / "c.zip").exists()


@pytest.mark.parametrize(
    ("config", "quick", "overrides"),
    [
        ("srgan", True, {"iters": 20, "generator_args": {"mid_channels": 8, "num_blocks": 1}}),
        ("msrresnet20", False, {"name": "m20_l2", "pixel_loss": "l2", "periods": [1000, 2000], "lr": 1e-4}),
        ("esrgan_gan", False, {"init": "runs/esrgan", "perceptual_layers": {"22": 0.5, "34": 1.0}, "gt_patch": 128}),
    ],
)
def test_train_command_trains_the_same_config_again(config: str, quick: bool, overrides: dict) -> None:
    name = overrides.pop("name", config)
    cfg = get_config(config, quick=quick, **overrides)
    cfg.name = name
    command = train_command(cfg.to_dict())
    words = shlex.split(command)
    assert words[:5] == ["python", "-m", "facesr", "train", config]
    assert words[5:7] == ["--edition", "2022"]
    args = build_parser().parse_args(words[3:])
    again = get_config(args.config, quick=args.quick, edition=args.edition, **parse_overrides(args.set),
                       **({"iters": args.iters} if args.iters else {}), **({"init": args.init} if args.init else {}))
    location = ("name", "data_root", "runs_dir", "quick", "why")
    assert {k: v for k, v in again.to_dict().items() if k not in location} == {
        k: v for k, v in cfg.to_dict().items() if k not in location}
    assert (args.name or config) == name and args.quick == quick


def test_spandrel_is_listed_only_for_its_own_networks() -> None:
    from facesr.report.readme import library_versions, uses_spandrel

    class SpandrelNet(torch.nn.Module):  # stands in for a spandrel architecture (spandrel need not be installed)
        pass

    SpandrelNet.__module__ = "spandrel.architectures.SwinIR"

    class KitSwinIR(SpandrelNet):  # the kit's subclasses live in facesr.models
        pass

    wrapper = torch.nn.Sequential(KitSwinIR())
    assert uses_spandrel(wrapper) and not uses_spandrel(MSRResNet(mid_channels=8, num_blocks=1))
    plain = dict(library_versions())
    assert "spandrel" not in plain and {"torch", "numpy"} <= set(plain)
    assert set(dict(library_versions(uses_spandrel=True))) - set(plain) <= {"spandrel"}


def test_handin_bundles_only_the_students_own_figures_and_what_an_l2_finish_needs(
    run: Path, mini_root: Path, figures: Path, tmp_path: Path, capsys
) -> None:
    """Figures made for another edition or mode, changed since they were recorded, or never recorded stay out; an
    MSE finish brings its first stage's logs; the screenshot goes in; the zip's self-ensemble is named."""
    from facesr.report.manifest import read_manifest, record
    from facesr.report.steps import make_submission

    write_png(figures / "06_loss_curves.png", np.ones((8, 8, 3), np.uint8))
    record(figures, [figures / "06_loss_curves.png"], edition=2024, mode="quick", notebook="06")  # another edition
    write_png(figures / "param_table.csv", np.ones((8, 8, 3), np.uint8))
    record(figures, [figures / "param_table.csv"], edition=2022, mode="full", notebook="06")  # a full-size run's
    write_png(figures / "machine_table.csv", np.ones((8, 8, 3), np.uint8))
    record(figures, [figures / "machine_table.csv"], edition=2022, mode="quick", notebook="06")
    (figures / "machine_table.csv").write_bytes(b"changed since: no longer what the notebook made")
    assert set(read_manifest(figures)) == {"06_psnr_curves.png", "psnr_table.csv", "06_loss_curves.png",
                                           "param_table.csv", "machine_table.csv"}
    finish = _make_run(tmp_path / "runs" / "srgan_l2", init="srgan", pixel_loss="l2")
    make_submission(load_generator(finish), mini_root, finish, tta="hflip")
    shot = tmp_path / "Score.PNG"
    write_png(shot, np.zeros((4, 4, 3), np.uint8))
    capsys.readouterr()
    out = make_handin(finish, tmp_path / "h.zip", data_root=mini_root, figures_dir=figures, screenshot=shot)
    names = _names(out)
    assert {n for n in names if n.startswith("figures/")} == {"figures/06_psnr_curves.png", "figures/psnr_table.csv"}
    assert {"srgan/config.json", "srgan/log.csv", "srgan/val.csv", "srgan_l2/config.json", "srgan_l2/best.pt",
            "codalab_screenshot.png"} <= names and "srgan/best.pt" not in names
    readme = zipfile.ZipFile(out).read("Readme.txt").decode()
    assert "the first stage (srgan) of this MSE finish" in readme
    assert re.search(r"leaderboard zip      row \d+ of submissions.csv .*self-ensemble hflip, sha256", readme)
    assert "--zip checkpoints/quick/srgan_l2/submission.zip --tta hflip --edition 2022" in readme
    assert "CodaLab screenshot" not in readme[readme.index("Missing"):]
    printed = capsys.readouterr().out
    assert "missing from the bundle: training curves" in printed and "screenshot" not in printed


def test_notebook_06s_tables_refuse_an_explicit_other_edition_for_a_run(mini_root: Path, tmp_path: Path) -> None:
    """Notebook 06 passes its EDITION to the PSNR table, the zip and the hand-in: a run of another edition is
    refused, never scored against that edition's limit."""
    from facesr.report.steps import make_submission
    from facesr.report.tables import psnr_table

    run = _make_run(tmp_path / "runs" / "srgan", edition=2024)
    with pytest.raises(FacesrError, match="run srgan was trained for the 2024 edition, not 2022"):
        psnr_table({"srgan": run}, mini_root, tta=False, edition=2022)
    with pytest.raises(FacesrError, match="run srgan was trained for the 2024 edition, not 2022"):
        make_submission(load_generator(run), mini_root, run, edition=2022)
    table = psnr_table({"srgan": run}, mini_root, tta=False, edition=2024)
    assert bool(table.set_index("run").loc["srgan", "within_limit"])
