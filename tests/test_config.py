"""Named configs, quick mode, overrides (keyword and --set), the table and the dict round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from facesr.config import CONFIGS, TrainConfig, config_table, get_config, parse_overrides
from facesr.errors import FacesrError
from facesr.quick_mode import QUICK_WARMUP_SHARE


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


IN_BUDGET = {"msrresnet20": 1_812_995, "swinir": 1_766_292, "rcan": 1_786_531}


def _count(cfg) -> int:
    import torch

    from facesr.models import build_generator, count_parameters

    with torch.device("meta"):
        return count_parameters(build_generator(cfg.generator, **cfg.generator_args))


@pytest.mark.parametrize("name", list(IN_BUDGET))
def test_in_budget_configs_fit_share_the_recipe_and_say_why(name: str) -> None:
    pytest.importorskip("spandrel")
    from facesr.models import PARAM_LIMIT

    cfg = get_config(name, quick=False)
    assert _count(cfg) == IN_BUDGET[name] <= PARAM_LIMIT
    assert (cfg.scheduler, cfg.iters, cfg.warmup_iters, cfg.ema_decay, cfg.eta_min) == (
        "cosine", 300_000, 5000, 0.999, 1e-7)
    assert (cfg.pixel_loss, cfg.init, cfg.amp) == ("l1", None, True)
    for word in ("1,821,085", "EMA", "warm-up", "cosine", f"{IN_BUDGET[name]:,}", "GiB", "16 GB T4", f"{name}_l2"):
        assert word in cfg.why, word
    assert "why:" in config_table(cfg)


def test_the_kit_classes_default_to_the_config_args() -> None:
    pytest.importorskip("spandrel")
    import torch

    from facesr.config import RCAN_ARGS, SWINIR_ARGS
    from facesr.models import build_generator

    with torch.device("meta"):
        for name, args in (("swinir", SWINIR_ARGS), ("rcan", RCAN_ARGS)):
            assert get_config(name, quick=False).generator_args == args
            hp = build_generator(name).hyperparameters  # spandrel records the arguments it was built with
            assert {k: hp[k] for k in args} == args


def test_each_network_s_own_settings() -> None:
    m20, swinir, rcan = (get_config(n, quick=False) for n in IN_BUDGET)
    assert (m20.batch_size, m20.gt_patch, m20.lr, m20.grad_clip, m20.allow_fp16) == (8, None, 2e-4, 0.0, True)
    assert (rcan.batch_size, rcan.gt_patch, rcan.lr, rcan.grad_clip, rcan.allow_fp16) == (8, None, 1e-4, 0.0, True)
    # SwinIR: LQ patch 64 (full images need ~17 GiB), clipped gradients, never fp16; masks precomputed for 64
    assert (swinir.batch_size, swinir.gt_patch, swinir.lr, swinir.grad_clip, swinir.allow_fp16) == (
        8, 256, 2e-4, 1.0, False)
    assert swinir.generator_args["img_size"] == swinir.gt_patch // 4
    assert {k: swinir.generator_args[k] for k in ("window_size", "upsampler", "mlp_ratio", "resi_connection")} == {
        "window_size": 8, "upsampler": "pixelshuffledirect", "mlp_ratio": 2.0, "resi_connection": "1conv"}
    for word in ("1e-4", "fp16"):
        assert word in rcan.why
    for word in ("1,634,826", "fp16 overflows", "17 GiB", "clipping"):
        assert word in swinir.why


@pytest.mark.parametrize("name", list(IN_BUDGET))
def test_mse_finish_starts_from_the_first_stage(name: str) -> None:
    first, finish = get_config(name, quick=False), get_config(f"{name}_l2", quick=False)
    assert (finish.init, finish.pixel_loss, finish.lr) == (name, "l2", first.lr / 10)
    assert finish.iters == 30_000 < first.iters and finish.scheduler == "cosine" and finish.warmup_iters > 0
    same = ("generator", "generator_args", "batch_size", "gt_patch", "grad_clip", "allow_fp16", "ema_decay")
    assert all(getattr(finish, k) == getattr(first, k) for k in same)
    assert name in finish.why and "l2" in finish.why
    quick = get_config(f"{name}_l2", quick=True)  # the quick finish loads the quick first stage
    assert quick.generator_args == get_config(name, quick=True).generator_args


def test_warmup_follows_iters_unless_given() -> None:
    assert get_config("swinir", quick=False, iters=30_000).warmup_iters == 500
    assert get_config("swinir", quick=False, iters=30_000, warmup_iters=100).warmup_iters == 100
    quick = get_config("swinir", quick=True, smoke=False)
    assert quick.warmup_iters == round(quick.iters * QUICK_WARMUP_SHARE) > 0
    assert get_config("swinir", quick=True, smoke=False, iters=quick.iters * 2).warmup_iters == 2 * quick.warmup_iters
    assert get_config("swinir", quick=True, iters=1).warmup_iters == 0  # validation wants warmup < iters
    assert get_config("srgan", quick=False).warmup_iters == 0  # the course's schedule has none
    with pytest.raises(FacesrError, match=f"warmup_iters={quick.iters}"):
        get_config("swinir", quick=True, smoke=False, warmup_iters=quick.iters)


@pytest.mark.parametrize("smoke", [False, True], ids=["quick", "smoke"])
def test_quick_mode_shrinks_every_config(monkeypatch: pytest.MonkeyPatch, smoke: bool) -> None:
    from facesr.data.sample import default_sample_root

    monkeypatch.delenv("FACESR_QUICK", raising=False)
    for name in CONFIGS:
        full, quick = get_config(name, quick=False), get_config(name, quick=True, smoke=smoke)
        assert quick.quick and quick.iters <= (4 if smoke else 600) and quick.batch_size <= 4
        assert quick.gt_patch == (128 if full.is_gan else 64)  # crops; the discriminator needs 128
        assert quick.val_every <= quick.iters and quick.vgg_weights == "random" and quick.num_workers <= 1
        assert quick.data_root == str(default_sample_root())
        # one cosine period after a warm-up, squeezed into the quick run
        assert quick.scheduler == "cosine" and 0 < quick.warmup_iters < quick.iters
        if full.init and full.pixel_loss == "l2":  # an MSE finish: shorter than its first stage, lower lr
            first = get_config(full.init, quick=True, smoke=smoke)
            assert quick.iters <= first.iters and quick.lr < first.lr
        if full.generator == "rrdbnet":
            assert quick.generator_args["num_blocks"] < full.generator_args["num_blocks"]
        if full.generator == "swinir":  # shallower, masks precomputed for the quick LQ patch
            assert sum(quick.generator_args["depths"]) < sum(full.generator_args["depths"])
            assert quick.generator_args["img_size"] == quick.gt_patch // 4
        assert "QUICK MODE" in config_table(quick) and "2 CPU cores" in config_table(quick)


def test_smoke_mode_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACESR_SMOKE", "1")
    smoke = get_config("srgan", quick=True)
    assert smoke.iters <= 4 and smoke.val_every <= smoke.iters
    assert not get_config("srgan", quick=False).quick  # smoke only sizes quick mode
    assert get_config("srgan", quick=True, smoke=False).iters > smoke.iters  # an explicit argument wins
    monkeypatch.setenv("FACESR_SMOKE", "0")
    assert get_config("srgan", quick=True).iters == get_config("srgan", quick=True, smoke=False).iters


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
