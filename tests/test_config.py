"""Named configs, quick mode, overrides (keyword and --set), the table and the dict round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from facesr.config import get_config, parse_overrides, validate_config
from facesr.config.named_configs import config_names
from facesr.config.quick_mode import QUICK_WARMUP_SHARE
from facesr.config.train_config import TrainConfig, config_table
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
    assert diff == {"name", "generator", "generator_args", "why"}
    assert "on a 16 GB T4 use batch_size 4" in esrgan["why"]  # as the 2024 one says
    assert "16 GB T4" in get_config("esrgan_gan", quick=False).why


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
    from facesr.models import count_generator

    return count_generator(cfg.generator, cfg.generator_args)  # on the meta device; SPAN counted fused


@pytest.mark.parametrize("name", list(IN_BUDGET))
def test_in_budget_configs_fit_share_the_recipe_and_say_why(name: str) -> None:
    pytest.importorskip("spandrel")
    from facesr.models import param_limit

    cfg = get_config(name, quick=False)
    assert _count(cfg) == IN_BUDGET[name] <= param_limit(2022)
    assert (cfg.scheduler, cfg.iters, cfg.warmup_iters, cfg.ema_decay, cfg.eta_min) == (
        "cosine", 300_000, 5000, 0.999, 1e-7)
    assert (cfg.pixel_loss, cfg.init, cfg.amp) == ("l1", None, True)
    for word in ("1,821,085", "EMA", "warm-up", "cosine", f"{IN_BUDGET[name]:,}", "GiB", "16 GB T4", f"{name}_l2"):
        assert word in cfg.why, word
    assert "why:" in config_table(cfg)


def test_the_kit_classes_default_to_the_config_args() -> None:
    pytest.importorskip("spandrel")
    import torch

    from facesr.models import build_generator, generator_record

    with torch.device("meta"):
        for name in ("swinir", "rcan"):
            args = generator_record(name).defaults
            assert get_config(name, quick=False).generator_args == args  # 2022's size is the classes' default
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
    for name in config_names(2022):
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
    assert get_config("esrgan", quick=False, edition=2022).generator_args["num_blocks"] == 23  # the named config is not modified
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


def test_quick_mode_of_an_unknown_generator_is_one_line() -> None:
    from facesr.config.quick_mode import shrink

    with pytest.raises(FacesrError, match=r"^unknown generator 'edsr'; known generators: msrresnet, "):
        shrink(dataclasses.replace(get_config("srgan", quick=False), generator="edsr"))


def test_schedule_follows_iters_unless_given() -> None:
    assert get_config("srgan", quick=False, iters=1000).periods == [500, 500]
    assert get_config("srgan", quick=False, iters=1000, periods=[900, 100]).periods == [900, 100]
    assert get_config("esrgan_gan", quick=False, iters=4000).milestones == [500, 1000, 2000, 3000]


def test_dict_round_trip_and_table() -> None:
    for name in config_names(2022):
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
    for name in config_names(2022):
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


# ---------------------------------------------------------------- editions

EDITION_YEARS = (2022, 2023, 2024, 2025)
# The generators of each edition's first-stage configs and their parameter counts (spandrel ones separately).
IN_BUDGET_150 = {"msrresnet20": 1_812_995, "msrresnet26": 2_256_131, "swinir": 2_251_758, "rcan": 2_270_075}


@pytest.fixture
def no_edition_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACESR_EDITION", raising=False)


@pytest.mark.parametrize("year", EDITION_YEARS)
def test_each_edition_s_configs_build_and_fit_its_limit(year: int, no_edition_env: None) -> None:
    import importlib.util

    from facesr.config.named_configs import REPORT_CONFIGS, config_names, in_budget_names
    from facesr.editions import get_edition
    from facesr.models import generator_record, generator_records

    limit = get_edition(year).param_limit
    names = config_names(year)
    expected = dict(IN_BUDGET) if year == 2022 else dict(IN_BUDGET_150)
    # every registered network with a size within the limit has an in-budget config, after the MSRResNets
    sized = [r.name for r in generator_records() if r.size_for(limit)]
    msr = [n for n in expected if n.startswith("msrresnet")]
    assert names == [*REPORT_CONFIGS, *msr, *sized, *(f"{n}_l2" for n in (*msr, *sized)),
                     *(f"{n}_kd" for n in (*msr, *sized))]
    assert in_budget_names(year) == [msr[-1], *sized] and {"swinir", "rcan"} <= set(sized)
    has_spandrel = importlib.util.find_spec("spandrel") is not None
    for name in names:
        cfg = get_config(name, quick=False, edition=year)
        assert cfg.edition == year and cfg.name == name
        if name.endswith(("_l2", "_kd")):  # the finish and the distillation train their first stage's network
            first = get_config(name[:-3], quick=False, edition=year)
            assert cfg.generator_args == first.generator_args
            if name.endswith("_kd"):  # and only add the teacher to it
                assert (cfg.teacher, cfg.distill_weight) == ("esrgan", 1.0) and "notebook 04" in cfg.why
                diff = {k for k, v in cfg.to_dict().items() if v != first.to_dict()[k]}
                assert diff == {"name", "teacher", "distill_weight", "why"}, diff
            continue
        if generator_record(cfg.generator).spandrel and cfg.generator != "rrdbnet" and not has_spandrel:
            continue
        n = _count(cfg)
        if name in REPORT_CONFIGS:
            assert n == (1_517_571 if cfg.generator.startswith("msrresnet") else 16_697_987)
        elif name in expected:  # the kit's own, with its words on memory
            assert n == expected[name] <= limit
            assert f"{n:,}" in cfg.why and "GiB" in cfg.why and f"{limit:,}" in cfg.why and "16 GB T4" in cfg.why
        else:  # a registered network: the size its record counts
            assert n == generator_record(cfg.generator).size_for(limit)[0] <= limit and f"{n:,}" in cfg.why
            if generator_record(cfg.generator).knobs:  # sized by size_to_budget: its cost and numerics in words
                assert all(w in cfg.why for w in ("size_to_budget", "GFLOP", "2 CPU cores", "bf16 autocast")), name


def test_msrresnet26_is_refused_for_2022_with_the_numbers(no_edition_env: None) -> None:
    with pytest.raises(FacesrError) as err:
        get_config("msrresnet26", quick=False)  # the default edition, 2022
    assert str(err.value) == (
        "config 'msrresnet26' (msrresnet {'mid_channels': 64, 'num_blocks': 26}) has 2,256,131 parameters, over the "
        "2022 limit of 1,821,085 (by 435,046); for 2022 use msrresnet20, or pick edition 2023, 2024, 2025")
    with pytest.raises(FacesrError, match="for 2022 use msrresnet20_l2, or pick edition 2023"):
        get_config("msrresnet26_l2", edition=2022)
    with pytest.raises(FacesrError, match=r"unknown config 'msrresnet27'.*known configs of the 2024 edition: srgan"):
        get_config("msrresnet27", edition=2024)
    with pytest.raises(FacesrError, match="edition=2021 is not a known edition; known editions: 2022, 2023"):
        get_config("srgan", edition=2021)
    assert get_config("msrresnet26", quick=False, edition="2023").generator_args["num_blocks"] == 26


def test_edition_from_argument_environment_and_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACESR_EDITION", raising=False)
    assert get_config("srgan", quick=False).edition == 2022
    monkeypatch.setenv("FACESR_EDITION", "2024")
    assert get_config("srgan", quick=False).generator == "msrresnet_basicsr"
    assert get_config("srgan", quick=False, edition=2022).generator == "msrresnet"  # an explicit edition wins
    assert get_config("srgan", quick=False, **parse_overrides(["edition=2023"])).edition == 2023  # --set edition=
    monkeypatch.setenv("FACESR_EDITION", "2030")
    with pytest.raises(FacesrError, match="FACESR_EDITION='2030' is not a known edition"):
        get_config("srgan")


def test_basicsr_editions_baseline_and_report_experiments(no_edition_env: None) -> None:
    for year in (2024, 2025):
        srgan = get_config("srgan", quick=False, edition=year)
        assert (srgan.generator, srgan.generator_args) == (
            "msrresnet_basicsr", {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 16, "upscale": 4})
        assert (srgan.pixel_loss, srgan.lr, tuple(srgan.betas), srgan.ema_decay, srgan.batch_size) == (
            "l1", 2e-4, (0.9, 0.99), 0.999, 8)
        assert (srgan.scheduler, srgan.periods, srgan.restart_weights, srgan.eta_min, srgan.iters) == (
            "cosine_restart", [150_000, 150_000], [1.0, 1.0], 1e-7, 300_000)
        assert (srgan.warmup_iters, srgan.gt_patch, srgan.gt_usm, srgan.usm_target) == (0, None, True, True)
        assert (srgan.val_every, srgan.checkpoint_every) == (5000, 5000)
        esrgan, gan = get_config("esrgan", quick=False, edition=year), get_config("esrgan_gan", quick=False, edition=year)
        diff = {k for k, v in esrgan.to_dict().items() if v != srgan.to_dict()[k]}
        assert diff == {"name", "generator", "generator_args", "why"}
        assert (gan.generator, gan.init, gan.gt_patch, gan.gan_weight, gan.pixel_weight) == (
            "rrdbnet", "esrgan", 128, 5e-3, 1e-2)
        assert (tuple(gan.betas), gan.ema_decay, gan.scheduler, gan.iters, gan.lr, gan.lr_d) == (
            (0.9, 0.99), 0.999, "multistep", 400_000, 1e-4, 1e-4)
        assert "U-Net discriminator" in gan.why and "isolates the network" in esrgan.why
        for name in ("msrresnet20", "msrresnet26", "swinir", "rcan"):
            cfg = get_config(name, quick=False, edition=year)
            assert (cfg.gt_usm, cfg.usm_target, tuple(cfg.betas), cfg.ema_decay) == (True, False, (0.9, 0.99), 0.999)
            assert "usm_target off" in cfg.why and "plain GT" in cfg.why
            assert get_config(f"{name}_l2", quick=False, edition=year).usm_target is False
        assert get_config("msrresnet26", quick=False, edition=year).generator == "msrresnet_basicsr"
    for year in (2022, 2023):  # the course editions: MMEditing's settings, the 2022 values
        for name in ("srgan", "esrgan", "esrgan_gan"):
            cfg, first = get_config(name, quick=False, edition=year).to_dict(), get_config(name, quick=False).to_dict()
            assert {k for k in cfg if cfg[k] != first[k]} == ({"edition"} if year == 2023 else set())
        assert get_config("msrresnet26", quick=False, edition=2023).generator == "msrresnet"
        assert all(get_config(n, quick=False, edition=year).usm_target for n in config_names_of(year))


def config_names_of(year: int) -> list[str]:
    from facesr.config.named_configs import config_names

    return config_names(year)


def test_edition_sizes_follow_the_2022_rules(no_edition_env: None) -> None:
    for year in (2023, 2024, 2025):
        swinir, rcan = get_config("swinir", quick=False, edition=year), get_config("rcan", quick=False, edition=year)
        assert {k: swinir.generator_args[k] for k in ("window_size", "upsampler", "mlp_ratio", "embed_dim")} == {
            "window_size": 8, "upsampler": "pixelshuffledirect", "mlp_ratio": 2.0, "embed_dim": 78}
        assert swinir.generator_args["depths"] == [6] * 6 == swinir.generator_args["num_heads"]
        assert (swinir.gt_patch, swinir.grad_clip, swinir.allow_fp16) == (256, 1.0, False)
        assert (rcan.generator_args["n_feats"], rcan.generator_args["n_resgroups"], rcan.lr) == (64, 4, 1e-4)


@pytest.mark.parametrize("year", [2023, 2024, 2025])
@pytest.mark.parametrize("smoke", [False, True], ids=["quick", "smoke"])
def test_quick_mode_shrinks_every_edition_s_configs(year: int, smoke: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from facesr.models import generator_record

    monkeypatch.delenv("FACESR_QUICK", raising=False)
    for name in config_names_of(year):
        full, quick = get_config(name, quick=False, edition=year), get_config(name, quick=True, smoke=smoke, edition=year)
        assert quick.quick and quick.edition == year and quick.batch_size <= 4
        assert quick.iters <= (4 if smoke else 600) and 0 < quick.warmup_iters < quick.iters
        assert (quick.gt_usm, quick.usm_target) == (full.gt_usm, full.usm_target)
        if full.generator == "msrresnet_basicsr":  # BasicSR's MSRResNet shrinks like MMEditing's
            assert quick.generator_args == full.generator_args
            assert generator_record("msrresnet_basicsr").quick == generator_record("msrresnet").quick
            assert smoke or (quick.iters, quick.lr) == (400, 2e-4) or full.init
        if full.generator == "swinir":  # 2 groups of 2 blocks at the configured width
            assert quick.generator_args["depths"] == [2, 2] and quick.generator_args["embed_dim"] == 78
        if full.generator == "rcan":
            assert (quick.generator_args["n_resgroups"], quick.generator_args["n_resblocks"]) == (2, 2)


def test_edition_in_config_json_and_on_resume(no_edition_env: None) -> None:
    from facesr.training.run_folder import NOT_COMPARED, config_differences

    for year in EDITION_YEARS:
        for name in config_names_of(year):
            cfg = get_config(name, quick=False, edition=year)
            assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    old = get_config("srgan", quick=False).to_dict()
    for key in ("edition", "gt_usm", "usm_target"):  # a config.json written before the editions
        del old[key]
    assert TrainConfig.from_dict(old) == get_config("srgan", quick=False)
    assert not {"edition", "gt_usm", "usm_target"} & NOT_COMPARED
    saved = get_config("srgan", quick=False, edition=2023).to_dict()
    assert config_differences(saved, get_config("srgan", quick=False, edition=2022)) == ["edition: 2023 -> 2022"]
    diff = config_differences(saved, get_config("srgan", quick=False, edition=2024))
    assert "edition: 2023 -> 2024" in diff and any(d.startswith("generator: 'msrresnet'") for d in diff)
    usm = get_config("msrresnet26", quick=False, edition=2024)
    assert config_differences(usm.to_dict(), get_config("msrresnet26", quick=False, edition=2024, usm_target=True)) == [
        "usm_target: False -> True"]
    with pytest.raises(FacesrError, match="edition=2030 is not a known edition"):
        validate_config(TrainConfig.from_dict({**saved, "edition": 2030}))
    table = config_table(get_config("srgan", quick=False, edition=2023)).splitlines()
    assert any(line.split() == ["edition", "2023"] for line in table)  # the padding follows the longest field name
