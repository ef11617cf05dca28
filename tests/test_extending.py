"""Extending the kit from outside the library: a toy network and a toy loss term, registered by this test module
alone (nothing in lib/ names them), go through the registry, the configs, ``params``, quick mode, the trainer
and log.csv; and the loss terms a run trains on are the columns it logs."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facesr.cli import main
from facesr.errors import FacesrError
from facesr.losses import LossTerm, register_loss_term, unregister_loss_term
from facesr.models import GeneratorRecord, count_parameters, register_generator, unregister_generator

LIB = Path(__file__).resolve().parents[1] / "lib" / "facesr"


class ToyNet(nn.Module):
    """Two convolutions and a pixel shuffle over a bilinear skip: the smallest x4 net that learns."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, channels, 3, padding=1)
        self.up = nn.Conv2d(channels, 3 * 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
        return F.pixel_shuffle(self.up(torch.relu(self.body(x))), 4) + skip


class EdgeLoss(nn.Module):
    """L1 between the horizontal differences of sr and gt, times its weight."""

    def __init__(self, loss_weight: float) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * (sr.diff(dim=-1) - gt.diff(dim=-1)).abs().mean()


TOY_PARAMS = count_parameters(ToyNet(8))
TOY = GeneratorRecord(name="toynet", build=ToyNet, title="ToyNet", label=lambda a: f"ToyNet {a['channels']}",
                      defaults={"channels": 8}, quick={"iters": 6, "lr": 1e-3}, channels_last=True, fp16=False,
                      sizes={TOY_PARAMS: {"channels": 8}}, train_settings={"lr": 5e-4})
EDGE = LossTerm("l_edge", "edge_weight", lambda cfg, weight, context: EdgeLoss(weight))


@pytest.fixture
def toys():
    """The toy network and loss term registered for one test, removed after it."""
    register_generator(TOY)
    register_loss_term(EDGE)
    yield
    unregister_generator("toynet")
    unregister_loss_term("l_edge")


@pytest.fixture(scope="module")
def tiny_root(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 training faces and 1 val pair of the sample data: a few iterations and one validation cost little."""
    from facesr.data.sample import copy_data_subset

    counts = {"train/GT": 4, "val/LQ": 1, "val/GT": 1, "test/LQ": 1}
    return copy_data_subset(sample_root, tmp_path_factory.mktemp("tiny") / "data", counts)


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_nothing_in_lib_names_the_toys() -> None:
    for path in LIB.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "toynet" not in text.lower() and "l_edge" not in text, path


def test_a_registered_network_is_an_in_budget_config_params_lists(toys: None) -> None:
    from facesr.config import get_config, in_budget_names
    from facesr.report.style import model_color, model_label

    for year in (2022, 2024):
        assert in_budget_names(year)[-1] == "toynet"
        cfg = get_config("toynet", quick=False, edition=year)
        assert (cfg.generator, cfg.generator_args, cfg.lr, cfg.allow_fp16) == ("toynet", {"channels": 8}, 5e-4, False)
        assert f"{TOY_PARAMS:,} parameters" in cfg.why and "toynet_l2" in cfg.why
        finish = get_config("toynet_l2", quick=False, edition=year)
        assert (finish.init, finish.pixel_loss, finish.lr) == ("toynet", "l2", 5e-5)
    quick = get_config("toynet", quick=True)
    assert (quick.iters, quick.lr) == (6, 1e-3) and "the network is the config's" in str(quick)
    code, out = _run("params", "--edition", "2022")
    line = next(line for line in out.splitlines() if line.startswith("ToyNet 8 (toynet config)"))
    assert code == 0 and f"{TOY_PARAMS:,}  yes (" in line
    assert model_label("toynet_l2") == "ToyNet + MSE finish" and model_color("toynet") != model_color("toynet_l2")
    with pytest.raises(FacesrError, match="a generator named 'toynet' is registered already"):
        register_generator(GeneratorRecord(name="toynet", build=ToyNet, title="Other"))


def test_train_quick_trains_the_toy_network_and_logs_the_toy_term(toys: None, tiny_root: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    args = ["train", "toynet", "--quick", "--data", str(tiny_root), "--runs", str(tmp_path), "--iters", "2",
            "--set", "batch_size=2", "--set", "log_every=1", "--set", "loss_weights.edge_weight=0.5"]
    code, out = _run(*args)
    assert code == 0, out
    run = tmp_path / "toynet"
    config = json.loads((run / "config.json").read_text())
    assert (config["generator"], config["loss_weights"]) == ("toynet", {"edge_weight": 0.5})
    log = pd.read_csv(run / "log.csv")
    assert list(log.columns[2:4]) == ["l_pix", "l_edge"] and list(log["iter"]) == [1, 2]
    assert np.isfinite(log[["l_pix", "l_edge"]].to_numpy()).all() and (log["l_edge"] > 0).all()
    # the weight is compared on resume like any field that changes what is trained
    changed = [a.replace("edge_weight=0.5", "edge_weight=0.7") for a in args]
    assert _run(*changed[:8], "4", *changed[9:])[0] == 2
    assert "loss_weights: {'edge_weight': 0.5} -> {'edge_weight': 0.7}" in capsys.readouterr().err


def test_loss_weights_name_a_registered_term(toys: None) -> None:
    from facesr.config import get_config

    assert get_config("srgan", quick=False, loss_weights={"edge_weight": 0.1}).loss_weights == {"edge_weight": 0.1}
    with pytest.raises(FacesrError, match=r"^loss_weights\.fft_weight: no loss term has this weight; registered: "
                                          r"edge_weight$"):
        get_config("srgan", loss_weights={"fft_weight": 0.1})
    with pytest.raises(FacesrError, match=r"^loss_weights\.edge_weight=-1 must be a number >= 0$"):
        get_config("srgan", loss_weights={"edge_weight": -1})
    with pytest.raises(FacesrError, match="the log name\\(s\\) l_pix are another term's"):
        register_loss_term(LossTerm("l_pix2", "x_weight", EDGE.build, discriminator_terms=("l_pix",)))


def test_a_non_gan_run_logs_every_term_it_trains_on(tiny_root: Path, tmp_path: Path) -> None:
    """The perceptual term of a run without a discriminator is trained on and logged (quick mode's random VGG)."""
    from facesr.config import get_config
    from facesr.training import read_run_logs, train
    from facesr.training.step import build_nets

    cfg = get_config("srgan", quick=True, iters=2, log_every=1, batch_size=1, perceptual_weight=0.1,
                     perceptual_layers={"8": 1.0}, generator_args={"mid_channels": 8, "num_blocks": 1})
    assert build_nets(cfg, torch.device("cpu")).loss_names() == ("l_pix", "l_percep")
    log = read_run_logs(train(cfg, data_root=tiny_root, runs_dir=tmp_path))[0]
    assert list(log.columns[2:4]) == ["l_pix", "l_percep"] and (log["l_percep"] > 0).all()


def test_the_record_picks_memory_format_and_amp(toys: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from facesr.config import get_config
    from facesr.training.step import amp_dtype_for, uses_channels_last

    cuda, cpu = torch.device("cuda"), torch.device("cpu")  # only compared, never used
    for generator, layout in (("toynet", True), ("swinir", False), ("rcan", True)):
        cfg = get_config("srgan", quick=False, generator=generator, generator_args={})
        assert uses_channels_last(cfg, cuda) is layout and not uses_channels_last(cfg, cpu)
    toy, rcan = (get_config("srgan", quick=False, generator=g, generator_args={}) for g in ("toynet", "rcan"))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # a T4: no bf16
    assert amp_dtype_for(toy, cuda) is None and amp_dtype_for(rcan, cuda) is torch.float16  # the toy: fp16=False
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert amp_dtype_for(toy, cuda) is amp_dtype_for(rcan, cuda) is torch.bfloat16


# ------------------------------------------------------------------------------ a degradation setting per run
def test_a_second_order_setting_trains_and_reaches_the_workers_draws(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    """``--set second_order.jpeg_range=[80,95]``: a quick 2024 run trains with it, config.json keeps it, the draws
    the workers make from the run's config stay in 80-95 (the course's 50-95 do not), and a resume with another
    value is refused."""
    from facesr.config.train_config import TrainConfig
    from facesr.data.sample import smoke_sample_data
    from facesr.training.step import train_dataset

    data, runs = smoke_sample_data(tmp_path / "data", edition=2024), tmp_path / "runs"
    args = ["train", "srgan", "--quick", "--edition", "2024", "--data", str(data), "--runs", str(runs), "--iters", "1",
            "--set", "batch_size=1", "--set", "generator_args.num_block=1", "--set", "generator_args.num_feat=8",
            "--set", "second_order.jpeg_range=[80,95]"]
    assert main(args) == 0
    config = json.loads((runs / "srgan" / "config.json").read_text())
    assert config["second_order"] == {"jpeg_range": [80, 95]}
    cfg = TrainConfig.from_dict(config)

    def first_jpeg(cfg: TrainConfig) -> np.ndarray:  # each sample's draws as a DataLoader worker makes them
        dataset = train_dataset(cfg, data / "train" / "GT", on_device=True)
        return np.array([float(dataset[(i % len(dataset), (cfg.seed, 1, i))]["params"]["jpeg1_quality"])
                         for i in range(48)])

    drawn = first_jpeg(cfg)
    assert drawn.min() >= 80 and drawn.max() <= 95
    assert first_jpeg(TrainConfig.from_dict({**config, "second_order": {}})).min() < 80  # the course's range
    capsys.readouterr()
    assert main([*args[:-1], "second_order.jpeg_range=[70,95]"]) == 2
    assert "second_order: {'jpeg_range': [80, 95]} -> {'jpeg_range': [70, 95]}" in capsys.readouterr().err


@pytest.mark.parametrize(("year", "section", "message"), [
    (2024, {"second_order": {"jpeg_rang": [80, 95]}},
     "second_order.jpeg_rang: not a setting of the second_order degradation; did you mean jpeg_range or jpeg_range2?"),
    (2024, {"second_order": {"jpeg_range": [80, 200]}}, "second_order.jpeg_range=(80.0, 200.0): use qualities in [1, 100]"),
    (2024, {"second_order": {"jpeg_range": "high"}}, "second_order.jpeg_range='high' is not a list like [50.0, 95.0]"),
    (2024, {"second_order": {"jpeg_range": [80]}}, "second_order.jpeg_range=[80]: give 2 values, e.g. [50.0, 95.0]"),
    (2024, {"second_order": {"sinc_prob": True}}, "second_order.sinc_prob=True is not a float"),
    (2024, {"second_order": {"gt_usm": False}}, "second_order.gt_usm: not a setting of the second_order degradation "
                                                "(gt_usm is a config field of its own: set gt_usm)"),
    (2022, {"second_order": {"jpeg_range": [80, 95]}}, "second_order.jpeg_range: this run trains on the course "
                                                       "degradation (its edition's), which second_order.* does not set"),
    (2022, {"course": {"sigma_range": [3, 1]}}, "course.sigma_range=(3.0, 1.0): low must not exceed high"),
], ids=["unknown", "range", "type", "length", "bool", "gt_usm", "other-edition", "course-range"])
def test_a_bad_degradation_setting_is_one_line_naming_it(year: int, section: dict, message: str) -> None:
    from facesr.config import get_config

    with pytest.raises(FacesrError) as err:
        get_config("srgan", quick=False, edition=year, **section)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_degradation_settings_from_the_cli_and_keywords() -> None:
    from facesr.config import get_config, parse_overrides
    from facesr.training.step import pair_recipe

    overrides = parse_overrides(["second_order.jpeg_range=[80,95]", "second_order.sinc_prob=0"])
    assert overrides == {"second_order": {"jpeg_range": [80, 95], "sinc_prob": 0}}
    cfg = get_config("srgan", quick=True, edition=2024, **overrides, gt_usm=False)
    recipe = pair_recipe(cfg, on_device=False)
    assert (recipe.second_order.jpeg_range, recipe.second_order.sinc_prob, recipe.second_order.gt_usm) == (
        (80.0, 95.0), 0.0, False)
    course = pair_recipe(get_config("srgan", edition=2022, course={"jpeg_quality_range": [60, 95]}), True).course
    assert course.jpeg_quality_range == (60.0, 95.0) and course.kernel_size == 41  # the rest stays the course's
