"""Named configs, quick mode, overrides (keyword and --set), the table and the dict round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from facesr.config import CONFIGS, TrainConfig, config_table, get_config, parse_overrides
from facesr.errors import FacesrError


def test_srgan_is_the_course_baseline() -> None:
    cfg = get_config("srgan", quick=False)
    assert (cfg.generator, cfg.generator_args) == ("msrresnet", {"mid_channels": 64, "num_blocks": 16})
    assert (cfg.pixel_loss, cfg.pixel_weight, cfg.gan_weight, cfg.perceptual_weight) == ("l1", 1.0, 0.0, 0.0)
    assert (cfg.batch_size, cfg.gt_patch, cfg.lr, tuple(cfg.betas)) == (8, None, 2e-4, (0.9, 0.999))
    assert (cfg.scheduler, cfg.periods, cfg.restart_weights, cfg.eta_min) == (
        "cosine_restart", [150_000, 150_000], [1.0, 1.0], 1e-7)
    assert (cfg.iters, cfg.val_every, cfg.checkpoint_every, cfg.log_every) == (300_000, 5000, 5000, 100)
    assert (cfg.data_root, cfg.runs_dir, cfg.quick) == ("data/FFHQ", "checkpoints", False)


def test_esrgan_differs_from_srgan_only_in_the_generator() -> None:
    srgan, esrgan = get_config("srgan", quick=False).to_dict(), get_config("esrgan", quick=False).to_dict()
    assert esrgan["generator"] == "rrdbnet"
    assert esrgan["generator_args"] == {"mid_channels": 64, "num_blocks": 23, "growth_channels": 32}
    diff = {k for k in srgan if srgan[k] != esrgan[k]}
    assert diff == {"name", "generator", "generator_args"}


def test_esrgan_gan_is_the_reports_gan_recipe() -> None:
    cfg = get_config("esrgan_gan", quick=False)
    assert cfg.generator == "rrdbnet" and cfg.generator_args["num_blocks"] == 23
    assert (cfg.gan_weight, cfg.pixel_weight, cfg.pixel_loss) == (5e-3, 1e-2, "l1")
    assert (cfg.perceptual_layers, cfg.perceptual_weight) == ({"34": 1.0}, 1.0)
    assert (cfg.lr, cfg.lr_d, tuple(cfg.betas)) == (1e-4, 1e-4, (0.9, 0.999))
    assert (cfg.scheduler, cfg.milestones, cfg.gamma) == ("multistep", [50_000, 100_000, 200_000, 300_000], 0.5)
    assert (cfg.iters, cfg.gt_patch, cfg.init, cfg.vgg_weights) == (400_000, 128, "esrgan", "imagenet")
    assert cfg.is_gan and not get_config("esrgan", quick=False).is_gan


def test_msrresnet20_fits_the_budget_and_says_why() -> None:
    from facesr.models import PARAM_LIMIT, build_generator, count_parameters

    cfg = get_config("msrresnet20", quick=False)
    assert count_parameters(build_generator(cfg.generator, **cfg.generator_args)) == 1_812_995 <= PARAM_LIMIT
    assert cfg.ema_decay == 0.999 and cfg.iters > 300_000
    for word in ("1,821,085", "EMA", "Charbonnier", "iterations"):
        assert word in cfg.why
    assert "why:" in config_table(cfg)


def test_quick_mode_shrinks_every_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from facesr.sample_data import default_sample_root

    monkeypatch.delenv("FACESR_QUICK", raising=False)
    for name in CONFIGS:
        full, quick = get_config(name, quick=False), get_config(name, quick=True)
        assert quick.quick and quick.iters <= 100 and quick.batch_size <= 4 and quick.gt_patch == 128
        assert quick.val_every <= quick.iters and quick.vgg_weights == "random" and quick.num_workers <= 1
        assert quick.data_root == str(default_sample_root())
        # the schedule is squeezed into the quick run (no iterations left at eta_min)
        assert sum(quick.periods) == quick.iters if quick.periods else max(quick.milestones) < quick.iters
        if full.generator == "rrdbnet":
            assert quick.generator_args["num_blocks"] < full.generator_args["num_blocks"]
        assert "QUICK MODE" in config_table(quick) and "2 CPU cores" in config_table(quick)


def test_quick_mode_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACESR_QUICK", "1")
    assert get_config("srgan").quick
    assert not get_config("srgan", quick=False).quick  # an explicit argument wins
    monkeypatch.setenv("FACESR_QUICK", "0")
    assert not get_config("srgan").quick


def test_keyword_overrides_and_errors() -> None:
    cfg = get_config("esrgan", quick=False, batch_size=4, generator_args={"num_blocks": 8}, amp=False)
    assert cfg.batch_size == 4 and not cfg.amp
    assert cfg.generator_args == {"mid_channels": 64, "num_blocks": 8, "growth_channels": 32}  # merged
    assert CONFIGS["esrgan"].generator_args["num_blocks"] == 23  # the named config is not modified
    with pytest.raises(FacesrError, match="batch_size"):
        get_config("srgan", batch_sise=4)
    with pytest.raises(FacesrError, match="srgan, esrgan, esrgan_gan, msrresnet20"):
        get_config("srgna")
    with pytest.raises(FacesrError, match="gt_patch=128"):
        get_config("esrgan_gan", quick=False, gt_patch=None)
    with pytest.raises(FacesrError, match="batch_size"):
        get_config("srgan", batch_size="many")


def test_parse_overrides_uses_field_types() -> None:
    out = parse_overrides([
        "batch_size=4", "lr=1e-4", "amp=false", "gt_patch=none", "periods=[10, 20]", "betas=(0.5, 0.9)",
        "generator_args.num_blocks=20", "vgg_weights=/tmp/vgg19-dcbb9e9d.pth", "iters=1e5",
    ])
    assert out == {
        "batch_size": 4, "lr": 1e-4, "amp": False, "gt_patch": None, "periods": [10, 20], "betas": (0.5, 0.9),
        "generator_args": {"num_blocks": 20}, "vgg_weights": "/tmp/vgg19-dcbb9e9d.pth", "iters": 100_000,
    }
    assert isinstance(out["batch_size"], int) and isinstance(out["lr"], float)
    assert get_config("srgan", quick=False, **out).generator_args == {"mid_channels": 64, "num_blocks": 20}
    with pytest.raises(FacesrError, match="did you mean batch_size"):
        parse_overrides(["batchsize=4"])
    with pytest.raises(FacesrError, match="KEY=VALUE"):
        parse_overrides(["batch_size"])
    with pytest.raises(FacesrError, match="batch_size"):
        parse_overrides(["batch_size=2.5"])
    with pytest.raises(FacesrError, match="true/false"):
        parse_overrides(["amp=maybe"])


def test_schedule_follows_iters_unless_given() -> None:
    assert get_config("srgan", quick=False, iters=1000).periods == [500, 500]
    assert get_config("srgan", quick=False, iters=1000, periods=[900, 100]).periods == [900, 100]
    assert get_config("esrgan_gan", quick=False, iters=4000).milestones == [500, 1000, 2000, 3000]


def test_dict_round_trip_and_table() -> None:
    for name in CONFIGS:
        cfg = get_config(name, quick=False)
        text = json.dumps(cfg.to_dict())  # config.json must be plain JSON
        again = TrainConfig.from_dict(json.loads(text))
        assert again == cfg
        table = config_table(cfg)
        assert str(cfg) == table
        for f in dataclasses.fields(cfg):
            if f.name != "why":
                assert f.name in table
    with pytest.raises(FacesrError, match="unknown config field"):
        TrainConfig.from_dict({"batch": 8})


def test_returned_config_does_not_share_mutables_with_the_named_config() -> None:
    for name in CONFIGS:
        cfg = get_config(name, quick=False)
        before = get_config(name, quick=False)
        cfg.periods.append(1)
        cfg.restart_weights.append(1.0)
        cfg.milestones.append(1)
        cfg.perceptual_layers["99"] = 1.0
        cfg.generator_args["num_blocks"] = 1
        assert get_config(name, quick=False) == before


def test_pixel_loss_names_are_the_losses_module_names() -> None:
    from facesr.losses import PIXEL_LOSSES

    for kind in PIXEL_LOSSES:
        assert get_config("srgan", quick=False, pixel_loss=kind).pixel_loss == kind
    for bad in ("L1", "huber"):
        with pytest.raises(FacesrError, match="pixel_loss"):
            get_config("srgan", quick=False, pixel_loss=bad)
