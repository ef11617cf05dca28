"""Networks: shapes, MMEditing key names, init, parameter counts, budget check and ``facesr params``."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
import torch.nn.functional as F

from facesr.errors import FacesrError
from facesr.models import (
    GENERATORS,
    ModifiedVGG,
    MSRResNet,
    MSRResNetBasicSR,
    RRDBNet,
    build_generator,
    check_param_budget,
    count_parameters,
    describe_state_dict,
    generator_architecture,
    is_basicsr_msrresnet,
    param_limit,
    perceptual_vgg_params,
)
from facesr.report.budget import generator_label, parameter_table


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _meta(cls, **kwargs):
    # Full-size nets on the meta device: exact shapes and counts without the init cost.
    with torch.device("meta"):
        return cls(**kwargs)


# ---------------------------------------------------------------- parameter counts (full-size nets)


def test_required_parameter_counts() -> None:
    assert count_parameters(MSRResNet()) == 1_517_571
    assert count_parameters(MSRResNet(num_blocks=20)) == 1_812_995
    assert count_parameters(RRDBNet(3, 3, 64, 23, 32)) == 16_697_987
    assert count_parameters(ModifiedVGG(3, 64)) == 14_499_401


def test_vgg19_features_and_esrgan_total() -> None:
    from torchvision.models import vgg19

    with torch.device("meta"):
        vgg = vgg19(weights=None).features[:35]
    n_vgg = sum(p.numel() for p in vgg.parameters())
    assert n_vgg == 20_024_384
    total = count_parameters(_meta(RRDBNet)) + count_parameters(_meta(ModifiedVGG)) + n_vgg
    assert total == 51_221_772


def test_perceptual_vgg_params(monkeypatch: pytest.MonkeyPatch) -> None:
    import facesr.models.vgg_arch as vgg_arch

    def no_download() -> None:
        raise AssertionError("perceptual_vgg_params must not load weights")

    monkeypatch.setattr(vgg_arch, "load_imagenet_vgg19_state", no_download)
    assert perceptual_vgg_params() == 20_024_384
    total = count_parameters(_meta(RRDBNet)) + count_parameters(_meta(ModifiedVGG)) + perceptual_vgg_params()
    assert total == 51_221_772


def test_count_parameters_counts_as_the_handout() -> None:
    # sum(p.numel() for p in model.parameters()): frozen parameters count, buffers do not
    net = MSRResNet(num_blocks=1, mid_channels=8)
    n_all = sum(p.numel() for p in net.parameters())
    net.conv_first.weight.requires_grad_(False)
    assert count_parameters(net) == check_param_budget(net) == n_all
    net.register_buffer("not_a_parameter", torch.zeros(100))
    assert count_parameters(net) == n_all
    with torch.device("meta"):
        frozen_big = MSRResNet(num_blocks=21).requires_grad_(False)  # e.g. an EMA copy: still over the limit
    with pytest.raises(FacesrError, match="1,886,851 parameters"):
        check_param_budget(frozen_big)


def test_param_budget() -> None:
    assert param_limit(2022) == 1_821_085
    assert check_param_budget(MSRResNet(num_blocks=20)) == 1_812_995
    with pytest.raises(FacesrError) as err:
        check_param_budget(MSRResNet(num_blocks=21))
    assert "1,886,851" in str(err.value) and "1,821,085" in str(err.value)


# ---------------------------------------------------------------- key names


def test_msrresnet_key_names() -> None:
    keys = list(MSRResNet(num_blocks=2, mid_channels=8).state_dict())
    assert keys == [
        "conv_first.weight", "conv_first.bias",
        "trunk_net.0.conv1.weight", "trunk_net.0.conv1.bias", "trunk_net.0.conv2.weight", "trunk_net.0.conv2.bias",
        "trunk_net.1.conv1.weight", "trunk_net.1.conv1.bias", "trunk_net.1.conv2.weight", "trunk_net.1.conv2.bias",
        "upsample1.upsample_conv.weight", "upsample1.upsample_conv.bias",
        "upsample2.upsample_conv.weight", "upsample2.upsample_conv.bias",
        "conv_hr.weight", "conv_hr.bias", "conv_last.weight", "conv_last.bias",
    ]
    for scale, out_ch in ((2, 8 * 4), (3, 8 * 9)):
        sd = MSRResNet(num_blocks=1, mid_channels=8, upscale_factor=scale).state_dict()
        assert "upsample2.upsample_conv.weight" not in sd
        assert sd["upsample1.upsample_conv.weight"].shape == (out_ch, 8, 3, 3)


def test_rrdbnet_key_names() -> None:
    sd = RRDBNet(num_blocks=2, mid_channels=8, growth_channels=4).state_dict()
    top = sorted({k.split(".")[0] for k in sd})
    assert top == ["body", "conv_body", "conv_first", "conv_hr", "conv_last", "conv_up1", "conv_up2"]
    block = sorted(k[len("body.1."):] for k in sd if k.startswith("body.1."))
    assert block == sorted(f"rdb{r}.conv{c}.{p}" for r in (1, 2, 3) for c in range(1, 6) for p in ("weight", "bias"))
    assert not any(k.startswith("body.2.") for k in sd)
    # conv i takes mid + (i-1)*growth channels; conv5 returns mid channels
    assert sd["body.0.rdb1.conv3.weight"].shape == (4, 8 + 2 * 4, 3, 3)
    assert sd["body.0.rdb1.conv5.weight"].shape == (8, 8 + 4 * 4, 3, 3)


def test_modified_vgg_key_names() -> None:
    sd = _meta(ModifiedVGG).state_dict()
    modules = sorted({k.rsplit(".", 1)[0] for k in sd})
    expected = ["conv0_0", "conv0_1", "bn0_1", "linear1", "linear2"]
    expected += [f"{kind}{i}_{j}" for i in range(1, 5) for j in (0, 1) for kind in ("conv", "bn")]
    assert modules == sorted(expected)
    assert "conv0_1.bias" not in sd and "conv1_0.bias" not in sd and "conv0_0.bias" in sd
    assert sd["conv0_1.weight"].shape == (64, 64, 4, 4)
    assert sd["conv3_1.weight"].shape == (512, 512, 4, 4)
    assert sd["linear1.weight"].shape == (100, 512 * 4 * 4)


# ---------------------------------------------------------------- forward


def _reference_msrresnet(net: MSRResNet, x: torch.Tensor) -> torch.Tensor:
    """MSRResNet written out from the reference description (no activation after the pixel shuffles)."""
    sd = net.state_dict()

    def conv(name, t):
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    feat = F.leaky_relu(conv("conv_first", x), 0.1)
    for i in range(net.num_blocks):
        feat = feat + conv(f"trunk_net.{i}.conv2", F.relu(conv(f"trunk_net.{i}.conv1", feat)))
    feat = F.pixel_shuffle(conv("upsample1.upsample_conv", feat), 2)
    feat = F.pixel_shuffle(conv("upsample2.upsample_conv", feat), 2)
    out = conv("conv_last", F.leaky_relu(conv("conv_hr", feat), 0.1))
    return out + F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


def test_msrresnet_matches_reference_forward() -> None:
    net = MSRResNet(num_blocks=2, mid_channels=8).eval()
    for p in net.parameters():  # larger weights so every branch matters
        p.data.normal_(0, 0.2)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(net(x), _reference_msrresnet(net, x))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_msrresnet_shapes_and_bilinear_skip(scale: int) -> None:
    net = MSRResNet(num_blocks=1, mid_channels=8, upscale_factor=scale).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert net(x).shape == (1, 3, 16 * scale, 16 * scale)
        net.conv_last.weight.zero_()
        net.conv_last.bias.zero_()
        expected = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
        torch.testing.assert_close(net(x), expected)


def test_rrdbnet_shapes_x4_and_x2() -> None:
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert RRDBNet(num_blocks=1, mid_channels=8, growth_channels=4)(x).shape == (1, 3, 64, 64)
        net2 = RRDBNet(num_blocks=1, mid_channels=8, growth_channels=4, upscale_factor=2)
        assert net2.conv_first.weight.shape[1] == 12  # pixel-unshuffled input
        assert net2(x).shape == (1, 3, 32, 32)
        with pytest.raises(ValueError, match="even"):
            net2(torch.rand(1, 3, 15, 16))


def test_rrdbnet_residual_scaling() -> None:
    # A dense block returns 0.2 * conv5_out + x and an RRDB 0.2 * rdb3_out + x (ESRGAN residual scaling).
    net = RRDBNet(num_blocks=2, mid_channels=8, growth_channels=4).eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        feat = net.conv_first(x)
        block = net.body[0].rdb1
        expected = block.conv5(torch.cat([feat] + _dense_inputs(block, feat), 1)) * 0.2 + feat
        torch.testing.assert_close(block(feat), expected)
        rrdb = net.body[0]
        torch.testing.assert_close(rrdb(feat), rrdb.rdb3(rrdb.rdb2(rrdb.rdb1(feat))) * 0.2 + feat)


def _dense_inputs(block, x):
    outs = []
    for i in range(1, 5):
        outs.append(F.leaky_relu(getattr(block, f"conv{i}")(torch.cat([x] + outs, 1)), 0.2))
    return outs


def test_unsupported_upscale_factor() -> None:
    with pytest.raises(FacesrError, match="upscale_factor"):
        RRDBNet(num_blocks=1, mid_channels=8, upscale_factor=3)
    with pytest.raises(FacesrError, match="upscale_factor"):
        MSRResNet(num_blocks=1, mid_channels=8, upscale_factor=8)


def test_modified_vgg_forward_and_input_checks() -> None:
    net = ModifiedVGG(3, 8).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 128, 128)).shape == (2, 1)
    with pytest.raises(ValueError, match=r"\(1, 3, 64, 64\)"):
        net(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="uint8"):
        net(torch.zeros(1, 3, 128, 128, dtype=torch.uint8))
    with pytest.raises(ValueError, match="channels"):
        net(torch.rand(1, 1, 128, 128))
    with pytest.raises(ValueError, match="4-D"):
        net(torch.rand(3, 128, 128))


# ---------------------------------------------------------------- init


def _kaiming_std(weight: torch.Tensor) -> float:
    fan_in = weight.shape[1] * weight[0, 0].numel()
    return math.sqrt(2.0 / fan_in)


def _assert_std(weight: torch.Tensor, expected: float) -> None:
    assert weight.std().item() == pytest.approx(expected, rel=0.1)
    assert weight.mean().abs().item() < 0.1 * expected


def test_msrresnet_init() -> None:
    net = MSRResNet(num_blocks=2)
    for name in ("conv_first", "conv_hr", "conv_last", "trunk_net.0.conv1", "trunk_net.1.conv2"):
        w = net.get_submodule(name).weight
        _assert_std(w, 0.1 * _kaiming_std(w))
        assert torch.count_nonzero(net.get_submodule(name).bias) == 0
    for name in ("upsample1.upsample_conv", "upsample2.upsample_conv"):
        w = net.get_submodule(name).weight
        _assert_std(w, _kaiming_std(w))  # unscaled
        assert torch.count_nonzero(net.get_submodule(name).bias) == 0


def test_rrdbnet_init() -> None:
    net = RRDBNet(num_blocks=1)
    for name in ("conv_first", "conv_body", "conv_up1", "conv_hr", "body.0.rdb1.conv1", "body.0.rdb3.conv5"):
        w = net.get_submodule(name).weight
        _assert_std(w, 0.1 * _kaiming_std(w))
        assert torch.count_nonzero(net.get_submodule(name).bias) == 0


# ---------------------------------------------------------------- registry, description, table


def test_build_generator() -> None:
    from facesr.models import generator_records

    assert list(GENERATORS) == [r.name for r in generator_records()]  # swinir, rcan: test_zoo
    assert all(GENERATORS[r.name] is r.build for r in generator_records())
    net = build_generator("msrresnet", num_blocks=1, mid_channels=8)
    assert isinstance(net, MSRResNet) and net.num_blocks == 1
    assert isinstance(build_generator("RRDBNet", num_blocks=1, mid_channels=8, growth_channels=4), RRDBNet)
    with pytest.raises(FacesrError, match=f"unknown generator 'edsr'; known generators: {', '.join(GENERATORS)}"):
        build_generator("edsr")
    with pytest.raises(FacesrError, match="num_block"):
        build_generator("msrresnet", num_block=3)


def test_every_record_labels_its_net_and_counts_its_sizes() -> None:
    """A record's in-budget sizes are keyed by their true parameter counts (the configs trust them)."""
    from facesr.models import generator_records
    from facesr.models.sizing import inference_args

    for record in generator_records():
        assert record.describe({}) and GENERATORS[record.name] is record.build
        for n, args in record.sizes.items():
            try:
                with torch.device("meta"):
                    net = build_generator(record.name, **inference_args(record.name, args))  # SPAN: fused
            except FacesrError:  # a spandrel network without spandrel (test_zoo has it)
                continue
            assert count_parameters(net) == n, (record.name, args)
    assert generator_label("swinir", {}) == "SwinIR 84, 4x6, window 8"  # the record's defaults fill the label
    assert generator_label("rcan", {"n_resgroups": 4}) == "RCAN 64, 4 groups x 6 blocks"


def test_describe_state_dict() -> None:
    assert describe_state_dict(_meta(RRDBNet).state_dict()) == "RRDBNet, 23 blocks, 64 channels"
    assert describe_state_dict(_meta(MSRResNet).state_dict()) == "MSRResNet, 16 blocks, 64 channels"
    assert describe_state_dict(_meta(ModifiedVGG).state_dict()) == "ModifiedVGG, 64 channels"
    assert describe_state_dict(_meta(MSRResNet, upscale_factor=3).state_dict()).endswith(", x3")
    assert describe_state_dict(_meta(RRDBNet, upscale_factor=2).state_dict()).endswith(", x2")
    assert describe_state_dict({"foo.weight": torch.zeros(1)}) == "unknown network"


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("msrresnet", dict(in_channels=3, out_channels=3, mid_channels=8, num_blocks=3, upscale_factor=4)),
        ("msrresnet", dict(in_channels=3, out_channels=3, mid_channels=8, num_blocks=2, upscale_factor=3)),
        ("msrresnet", dict(in_channels=1, out_channels=1, mid_channels=8, num_blocks=1, upscale_factor=2)),
        ("rrdbnet", dict(in_channels=3, out_channels=3, mid_channels=8, num_blocks=2, growth_channels=4,
                         upscale_factor=4)),
        ("rrdbnet", dict(in_channels=3, out_channels=3, mid_channels=8, num_blocks=1, growth_channels=6,
                         upscale_factor=2)),
    ],
)
def test_generator_architecture_rebuilds_the_network(name: str, kwargs: dict) -> None:
    sd = build_generator(name, **kwargs).state_dict()
    assert generator_architecture(sd) == (name, kwargs)


def test_generator_architecture_of_other_networks_is_none() -> None:
    assert generator_architecture(_meta(ModifiedVGG).state_dict()) is None
    assert generator_architecture({"foo.weight": torch.zeros(1)}) is None
    no_upsampler = {k: v for k, v in _meta(MSRResNet).state_dict().items() if not k.startswith("upsample1.")}
    assert generator_architecture(no_upsampler) is None


def test_basicsr_msrresnet_predicate_and_description() -> None:
    t = torch.zeros(1)
    basicsr = {"conv_first.weight": torch.zeros(8, 3, 3, 3), "upconv1.weight": t, "upconv2.weight": t}
    for i in range(3):
        basicsr[f"body.{i}.conv1.weight"] = basicsr[f"body.{i}.conv2.weight"] = t
    assert is_basicsr_msrresnet(basicsr)
    assert describe_state_dict(basicsr) == "BasicSR MSRResNet, 3 blocks, 8 channels"
    no_up = {k: v for k, v in basicsr.items() if k != "upconv1.weight"}
    assert not is_basicsr_msrresnet(no_up) and describe_state_dict(no_up) == "unknown network"
    for factory in (MSRResNet, RRDBNet, ModifiedVGG):
        assert not is_basicsr_msrresnet(_meta(factory).state_dict())
    assert not is_basicsr_msrresnet({1: t, "upconv1.weight": t})  # non-string keys are skipped


def test_parameter_table_and_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from facesr.cli import main

    assert main(["params"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == parameter_table().strip()
    lines = {line.split("  ")[0].strip(): line for line in out.splitlines()}

    def row(prefix: str) -> str:
        return next(line for name, line in lines.items() if name.startswith(prefix))

    assert "1,517,571" in row("MSRResNet-16") and "yes" in row("MSRResNet-16")
    assert "1,812,995" in row("MSRResNet-20") and "yes" in row("MSRResNet-20")
    assert "1,886,851" in row("MSRResNet-21") and "NO" in row("MSRResNet-21")
    if importlib.util.find_spec("spandrel") is not None:
        assert "1,766,292" in row("SwinIR 84, 4x6") and "yes" in row("SwinIR 84, 4x6")
        assert "1,786,531" in row("RCAN 64, 3 groups x 6") and "yes" in row("RCAN 64, 3 groups x 6")
    assert "16,697,987" in row("RRDBNet") and "NO" in row("RRDBNet")
    assert "14,499,401" in row("ModifiedVGG") and "not a generator" in row("ModifiedVGG")
    assert "20,024,384" in row("VGG19") and "not a generator" in row("VGG19")
    assert "51,221,772" in row("ESRGAN total") and "not a generator" in row("ESRGAN total")
    assert "1,821,085" in out


# ---------------------------------------------------------------- limits per edition


class _Sized(torch.nn.Module):
    """A net of exactly ``n`` parameters."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(n, device="meta"))


def test_param_limit_per_edition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACESR_EDITION", raising=False)
    assert [param_limit(y) for y in (2022, 2023, 2024, 2025)] == [1_821_085, 2_276_356, 2_276_356, 2_276_356]
    assert param_limit() == 1_821_085
    net = _Sized(2_100_000)
    with pytest.raises(FacesrError) as err:
        check_param_budget(net, 2022)
    assert str(err.value) == ("_Sized has 2,100,000 parameters, over the course limit of 1,821,085 of the 2022 "
                              "edition (by 278,915); use fewer blocks or channels")
    with pytest.raises(FacesrError, match="1,821,085 of the 2022 edition"):
        check_param_budget(net)  # the default edition
    for year in (2023, 2024, 2025):
        assert check_param_budget(net, year) == 2_100_000
    monkeypatch.setenv("FACESR_EDITION", "2025")
    assert check_param_budget(net) == 2_100_000 and param_limit() == 2_276_356
    assert check_param_budget(_Sized(2_276_356), 2024) == 2_276_356  # the limit itself fits
    with pytest.raises(FacesrError, match=r"2,276,357 parameters, over the course limit of 2,276,356 of the 2024 "
                                          r"edition \(by 1\)"):
        check_param_budget(_Sized(2_276_357), 2024)
    with pytest.raises(FacesrError, match="known editions"):
        param_limit(2019)


@pytest.mark.parametrize("year", [2022, 2023, 2024, 2025])
def test_parameter_table_per_edition(year: int, capsys: pytest.CaptureFixture[str]) -> None:
    from facesr.cli import main

    assert main(["params", "--edition", str(year)]) == 0
    out = capsys.readouterr().out
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()[2:-1]}
    limit = "1,821,085" if year == 2022 else "2,276,356"
    assert f"fits the {year} limit of {limit}" in out.splitlines()[0]
    msr = "MSRResNet" if year < 2024 else "BasicSR MSRResNet"
    wanted = {f"{msr}-16 (srgan config, the course baseline)": ("1,517,571", "yes"),
              f"{msr}-20 (msrresnet20 config)": ("1,812,995", "yes"),
              "RRDBNet 64/23/32 (esrgan config)": ("16,697,987", "NO"),
              "ModifiedVGG(3, 64) (ESRGAN D)": ("14,499,401", "not a generator")}
    if year == 2022:
        wanted[f"{msr}-21"] = ("1,886,851", "NO (+65,766)")
        spandrel_rows = {"SwinIR 84, 4x6, window 8 (swinir config)": ("1,766,292", "yes (97.0 %)"),
                         "RCAN 64, 3 groups x 6 blocks (rcan config)": ("1,786,531", "yes (98.1 %)")}
    else:
        wanted[f"{msr}-26 (msrresnet26 config)"] = ("2,256,131", "yes (99.1 %)")
        wanted[f"{msr}-27"] = ("2,329,987", "NO (+53,631)")
        spandrel_rows = {"SwinIR 78, 6x6, window 8 (swinir config)": ("2,251,758", "yes (98.9 %)"),
                         "RCAN 64, 4 groups x 6 blocks (rcan config)": ("2,270,075", "yes (99.7 %)")}
    if importlib.util.find_spec("spandrel") is not None:
        wanted.update(spandrel_rows)
    for label, (count, fits) in wanted.items():
        assert count in rows[label] and fits in rows[label], label
    assert f"Edition {year}: the limit of {limit}" in out


def test_params_checks_a_run_against_its_edition(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from facesr.cli import main

    monkeypatch.delenv("FACESR_EDITION", raising=False)
    net = MSRResNet(num_blocks=24)  # 2,108,419 parameters: over 2022's limit, within 2023-2025's
    torch.save(net.state_dict(), tmp_path / "m24.pth")
    assert main(["params", str(tmp_path / "m24.pth")]) == 2  # the default edition, 2022
    err = capsys.readouterr().err
    assert "2,108,419 parameters, over the course limit of 1,821,085 of the 2022 edition (by 287,334)" in err
    for year in (2023, 2024, 2025):
        assert main(["params", str(tmp_path / "m24.pth"), "--edition", str(year)]) == 0
        assert f"msrresnet, 2,108,419 parameters, within the {year} limit of 2,276,356 (92.6 %)" in capsys.readouterr().out
    # a kit checkpoint carries its run's edition, which wins over the default
    ckpt = {"net_g": net.state_dict(), "iter": 1,
            "config": {"generator": "msrresnet", "generator_args": {"num_blocks": 24}, "edition": 2024}}
    torch.save(ckpt, tmp_path / "latest.pt")
    assert main(["params", str(tmp_path)]) == 0 and "within the 2024 limit" in capsys.readouterr().out
    assert main(["params", str(tmp_path), "--edition", "2022"]) == 2  # an explicit --edition wins
    assert main(["params", "--edition", "1999"]) == 2
    assert "--edition='1999' is not a known edition" in capsys.readouterr().err


# ---------------------------------------------------------------- BasicSR's MSRResNet


def _basicsr_forward(sd: dict, x: torch.Tensor, upscale: int = 4) -> torch.Tensor:
    """BasicSR's MSRResNet forward written out with functional ops on a state dict (an independent reference)."""

    def conv(name: str, t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    feat = F.leaky_relu(conv("conv_first", x), 0.1)
    out = feat
    for i in range(len({k.split(".")[1] for k in sd if k.startswith("body.")})):
        out = out + conv(f"body.{i}.conv2", F.relu(conv(f"body.{i}.conv1", out)))
    shuffle = 2 if upscale == 4 else upscale
    out = F.leaky_relu(F.pixel_shuffle(conv("upconv1", out), shuffle), 0.1)
    if upscale == 4:
        out = F.leaky_relu(F.pixel_shuffle(conv("upconv2", out), 2), 0.1)
    out = conv("conv_last", F.leaky_relu(conv("conv_hr", out), 0.1))
    return out + F.interpolate(x, scale_factor=upscale, mode="bilinear", align_corners=False)


def test_msrresnet_basicsr_count_keys_and_registry() -> None:
    with torch.device("meta"):
        net = build_generator("msrresnet_basicsr", num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4)
        assert count_parameters(net) == 1_517_571 == count_parameters(MSRResNet())
        assert count_parameters(build_generator("msrresnet_basicsr", num_block=26)) == 2_256_131
    assert isinstance(net, MSRResNetBasicSR)
    keys = list(MSRResNetBasicSR(num_feat=8, num_block=2).state_dict())
    assert keys == [
        "conv_first.weight", "conv_first.bias",
        "body.0.conv1.weight", "body.0.conv1.bias", "body.0.conv2.weight", "body.0.conv2.bias",
        "body.1.conv1.weight", "body.1.conv1.bias", "body.1.conv2.weight", "body.1.conv2.bias",
        "upconv1.weight", "upconv1.bias", "upconv2.weight", "upconv2.bias",
        "conv_hr.weight", "conv_hr.bias", "conv_last.weight", "conv_last.bias",
    ]
    for scale, channels in ((2, 8 * 4), (3, 8 * 9)):
        sd = MSRResNetBasicSR(num_feat=8, num_block=1, upscale=scale).state_dict()
        assert "upconv2.weight" not in sd and sd["upconv1.weight"].shape == (channels, 8, 3, 3)
    with pytest.raises(FacesrError, match="upscale=8 is not supported"):
        MSRResNetBasicSR(upscale=8)
    assert generator_label("msrresnet_basicsr", {"num_block": 26}) == "BasicSR MSRResNet-26"


@pytest.mark.parametrize("upscale", [4, 3, 2])
def test_msrresnet_basicsr_forward_is_basicsr_s(upscale: int) -> None:
    net = MSRResNetBasicSR(num_feat=8, num_block=2, upscale=upscale).eval()
    for p in net.parameters():  # weights large enough that every LeakyReLU sees negative inputs
        p.data.normal_(0, 0.3)
    x = torch.rand(2, 3, 12, 10)
    with torch.no_grad():
        got = net(x)
        want = _basicsr_forward(net.state_dict(), x, upscale)
        no_lrelu = MSRResNet(mid_channels=8, num_blocks=2, upscale_factor=upscale)  # MMEditing: none after shuffles
    assert got.shape == (2, 3, 12 * upscale, 10 * upscale)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, want - 0.01)  # a real comparison
    assert count_parameters(no_lrelu) == count_parameters(net)


def test_msrresnet_basicsr_init_scales_every_conv() -> None:
    net = MSRResNetBasicSR()  # 64 features, 16 blocks: enough weights for a tight estimate
    for name in ("conv_first", "upconv1", "upconv2", "conv_hr", "conv_last", "body.0.conv1", "body.15.conv2"):
        conv = net.get_submodule(name)
        fan_in = conv.weight[0].numel()
        assert conv.weight.std().item() == pytest.approx(0.1 * math.sqrt(2 / fan_in), rel=0.12 if name ==
                                                         "conv_first" or name == "conv_last" else 0.03), name
        assert torch.count_nonzero(conv.bias) == 0
    # MMEditing's MSRResNet leaves its upsampler convs unscaled: 10x the spread of BasicSR's
    mm = MSRResNet()
    ratio = mm.upsample1.upsample_conv.weight.std() / net.upconv1.weight.std()
    assert 9 < ratio.item() < 11


@pytest.mark.parametrize("upscale", [4, 3, 2])
def test_basicsr_msrresnet_architecture_and_description(upscale: int) -> None:
    sd = MSRResNetBasicSR(num_in_ch=3, num_out_ch=1, num_feat=8, num_block=3, upscale=upscale).state_dict()
    assert generator_architecture(sd) == (
        "msrresnet_basicsr", {"num_in_ch": 3, "num_out_ch": 1, "num_feat": 8, "num_block": 3, "upscale": upscale})
    suffix = {4: "", 3: ", x3", 2: ", x2"}[upscale]
    assert describe_state_dict(sd) == f"BasicSR MSRResNet, 3 blocks, 8 channels{suffix}"
    assert is_basicsr_msrresnet(sd) and not is_basicsr_msrresnet(MSRResNet(mid_channels=8).state_dict())
