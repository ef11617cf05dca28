"""The course hand-in: real-world LQ grid and predictions, the machine table, the hand-in bundle and its refusals.

Runs are built by hand (a tiny MSRResNet kit checkpoint, CSV logs, run_info.json): no training.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import zipfile
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from PIL import Image  # noqa: E402

from facesr.checkpoints import save_checkpoint  # noqa: E402
from facesr.cli import build_parser, main  # noqa: E402
from facesr.config import get_config, parse_overrides  # noqa: E402
from facesr.errors import FacesrError  # noqa: E402
from facesr.images import list_images, read_image, write_png  # noqa: E402
from facesr.infer import load_generator, predict  # noqa: E402
from facesr.models import PARAM_LIMIT, MSRResNet, RRDBNet, count_parameters  # noqa: E402
from facesr.report import make_handin  # noqa: E402
from facesr.report.figures import plot_real_world, real_world_images  # noqa: E402
from facesr.report.readme import train_command  # noqa: E402
from facesr.report.steps import predict_real_world, show_real_world  # noqa: E402
from facesr.report.style import model_color  # noqa: E402
from facesr.report.tables import machine_table, save_table  # noqa: E402
from facesr.training.distributed import Ranks  # noqa: E402
from facesr.training.run_folder import machine_info, start_session, update_session  # noqa: E402

ODD_SIZES = [(53, 37), (31, 45)]  # (height, width) of the real-world LQ images of these tests


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


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
    folder = tmp_path / "figures"
    folder.mkdir()
    write_png(folder / "06_psnr_curves.png", np.zeros((8, 8, 3), np.uint8))
    pd.DataFrame({"run": ["bicubic", "srgan"], "images": [3, 3], "psnr": [22.0, 21.987654321],
                  "psnr_hflip": [np.nan, 22.123456789]}).to_csv(folder / "psnr_table.csv", index=False)  # fmt: skip
    (folder / "notes.txt").write_text("not a figure")
    return folder


@pytest.fixture()
def real_root(mini_root: Path, tmp_path: Path) -> Path:
    """mini_root plus a test_real/ of two real-world LQ images of odd sizes."""
    root = Path(shutil.copytree(mini_root, tmp_path / "data"))
    rng = np.random.default_rng(1)
    for i, (h, w) in enumerate(ODD_SIZES):
        write_png(root / "test_real" / f"{i:05d}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return root


def _names(zip_path: Path) -> set[str]:
    with zipfile.ZipFile(zip_path) as zf:
        return set(zf.namelist())


# ----------------------------------------------------------------------------- real-world LQ


def test_predict_and_grid_on_real_world_images_of_odd_sizes(real_root: Path, run: Path, tmp_path: Path) -> None:
    net = load_generator(run)
    paths = predict(net, real_root / "test_real", tmp_path / "sr")
    assert [read_image(p).shape for p in paths] == [(4 * h, 4 * w, 3) for h, w in ODD_SIZES]
    grid = real_world_images({"srgan": run, "my_run": MSRResNet(mid_channels=8, num_blocks=1)}, real_root)
    assert list(grid) == ["00000.png", "00001.png"]
    for name, (h, w) in zip(grid, ODD_SIZES, strict=True):
        assert list(grid[name]) == ["lq", "bicubic", "srgan", "my_run"]
        assert grid[name]["lq"].shape == (h, w, 3)
        assert {img.shape for key, img in grid[name].items() if key != "lq"} == {(4 * h, 4 * w, 3)}
    assert np.array_equal(grid["00000.png"]["srgan"], read_image(paths[0]))  # the same output predict writes
    fig = plot_real_world(grid)
    assert len(fig.axes) == 2 * 4 and fig._suptitle.get_text().startswith("Real-world LQ")
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert titles == ["LQ 37x53", "Bicubic 148x212", "SRGAN (MSRResNet-16) 148x212", "my_run 148x212"]
    assert [to_hex(ax.title.get_color()) for ax in fig.axes[:4]] == [model_color(k) for k in grid["00000.png"]]
    assert [fig.axes[4 * i].get_ylabel() for i in range(2)] == ["00000.png", "00001.png"]
    saved = show_real_world({"srgan": net}, real_root, tmp_path / "fig")
    assert saved is not None and (tmp_path / "fig" / "06_real_world.png").is_file()
    written = predict_real_world(net, real_root, run)
    assert [p.relative_to(run).as_posix() for p in written] == ["test_real_predictions/00000.png",
                                                                "test_real_predictions/00001.png"]  # fmt: skip


def test_real_world_steps_without_test_real(mini_root: Path, run: Path, tmp_path: Path, capsys) -> None:
    assert show_real_world({"srgan": run}, mini_root, tmp_path / "fig") is None
    assert predict_real_world(load_generator(run), mini_root, run) == []
    out = capsys.readouterr().out
    assert out.count("no test_real/ in") == 2
    assert not (tmp_path / "fig").exists() and not (run / "test_real_predictions").exists()
    with pytest.raises(FacesrError, match="no real-world LQ images in .*test_real"):
        real_world_images({"srgan": run}, mini_root)
    empty = plot_real_world({})
    assert any("no real-world LQ images" in t.get_text() for ax in empty.axes for t in ax.texts)


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
    assert expected <= names and "figures/notes.txt" not in names
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
    assert f"trainable parameters {n:,} (course limit {PARAM_LIMIT:,})" in readme
    assert "best val PSNR        21.6543 dB (SSIM 0.6000) at iteration 20" in readme  # 4 decimals
    assert "plain 21.9877, hflip 22.1235 dB on 3 val images" in readme
    assert "training machine     CPU (" in readme and f"torch {torch.__version__}" in readme
    from importlib.metadata import version

    for dist in ("torch", "numpy", "pandas", "scikit-image"):
        assert f"  {dist} {version(dist)}\n" in readme
    assert "spandrel" not in readme  # only a spandrel generator brings it in
    for arcname in expected - {"Readme.txt"}:
        assert f"  {arcname} " in readme  # every file is described
    assert "python -m facesr train srgan --quick --iters 20 --set generator_args.mid_channels=8" in readme
    assert "python -m facesr handin checkpoints/srgan --out handin.zip" in readme
    # the second bundle reuses the run's leaderboard zip, and names the student
    again = make_handin(run, tmp_path / "named.zip", matric="A0123456X", codalab="face_fan", figures_dir=figures)
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
    assert f"{n:,}" in str(info.value) and f"{PARAM_LIMIT:,}" in str(info.value) and n > PARAM_LIMIT
    assert not (tmp_path / "handin.zip").exists() and not (big / "test_predictions").exists()


def test_handin_refuses_missing_predictions_it_cannot_make(run: Path, figures: Path, tmp_path: Path) -> None:
    no_test = tmp_path / "no_test"
    (no_test / "val" / "LQ").mkdir(parents=True)
    with pytest.raises(FacesrError, match=r"no test predictions .* no test/LQ to make them; pass --data ROOT") as info:
        make_handin(run, tmp_path / "handin.zip", data_root=no_test, figures_dir=figures)
    assert "\n" not in str(info.value)
    # the run's own config points at the sample data's default folder, which need not exist either: same refusal
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "data_root": str(tmp_path / "gone")}))
    with pytest.raises(FacesrError, match="no test/LQ to make them"):
        make_handin(run, tmp_path / "handin.zip", figures_dir=figures)
    assert not (tmp_path / "handin.zip").exists() and not (run / "test_predictions").exists()
    assert not (run / "submission.zip").exists()


def test_handin_never_overwrites_partial_predictions(run: Path, mini_root: Path, figures: Path, tmp_path: Path) -> None:
    (run / "test_predictions").mkdir()
    write_png(run / "test_predictions" / "00000.png", np.full((512, 512, 3), 7, np.uint8))
    with pytest.raises(FacesrError, match="2 of 3 SR images missing"):
        make_handin(run, tmp_path / "handin.zip", data_root=mini_root, figures_dir=figures)
    assert (read_image(run / "test_predictions" / "00000.png") == 7).all()
    assert len(list_images(run / "test_predictions")) == 1 and not (tmp_path / "handin.zip").exists()


def test_handin_refuses_missing_run_files_and_figures(run: Path, mini_root: Path, figures: Path, tmp_path: Path) -> None:
    with pytest.raises(FacesrError, match="figures folder .*nowhere not found"):
        make_handin(run, tmp_path / "a.zip", data_root=mini_root, figures_dir=tmp_path / "nowhere")
    with pytest.raises(FacesrError, match="not a run folder with best.pt or latest.pt"):
        make_handin(tmp_path / "runs" / "missing", tmp_path / "a.zip", figures_dir=figures)
    (run / "val.csv").unlink()
    with pytest.raises(FacesrError, match="has no val.csv"):
        make_handin(run, tmp_path / "a.zip", data_root=mini_root, figures_dir=figures)
    assert not (tmp_path / "a.zip").exists()


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
    args = build_parser().parse_args(words[3:])
    again = get_config(args.config, quick=args.quick, **parse_overrides(args.set),
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
