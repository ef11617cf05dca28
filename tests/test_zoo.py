"""spandrel networks in the kit: SwinIR and RCAN (shapes, keys, fixes, counts), detection, no spandrel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facesr.errors import FacesrError
from facesr.models import (
    GENERATORS,
    build_generator,
    check_param_budget,
    count_parameters,
    describe_state_dict,
    generator_architecture,
    param_limit,
)
from facesr.models.zoo import spandrel_architecture, spandrel_model

spandrel = pytest.importorskip("spandrel")
from spandrel.architectures.RCAN import RCAN as SpandrelRCAN  # noqa: E402
from spandrel.architectures.SwinIR import SwinIR as SpandrelSwinIR  # noqa: E402

# Small nets where the point is behaviour, not size.
TINY_SWINIR = dict(img_size=16, window_size=8, depths=[2], embed_dim=12, num_heads=[2])
TINY_RCAN = dict(n_resgroups=1, n_resblocks=1, n_feats=16, reduction=4)
PIP = "pip install 'spandrel>=0.4'"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _official_swinir(**kw) -> dict:
    """The full official SwinIR argument set of the kit's tiny SwinIR (spandrel's defaults differ)."""
    return dict(upscale=4, in_chans=3, img_range=1.0, mlp_ratio=2.0, upsampler="pixelshuffledirect",
                resi_connection="1conv", **{**TINY_SWINIR, **kw})


# ---------------------------------------------------------------- shapes, counts, keys


@pytest.mark.parametrize(("name", "kwargs"), [("swinir", TINY_SWINIR), ("rcan", TINY_RCAN)])
@pytest.mark.parametrize("size", [32, 128])
def test_x4_shapes(name: str, kwargs: dict, size: int) -> None:
    net = build_generator(name, **kwargs).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, size, size)).shape == (2, 3, 4 * size, 4 * size)


def test_in_budget_counts_on_the_meta_device() -> None:
    with torch.device("meta"):
        swinir, rcan = build_generator("swinir"), build_generator("rcan")
        swinir66 = build_generator("swinir", embed_dim=66, depths=[6] * 6, num_heads=[6] * 6)
    assert next(swinir.parameters()).device.type == "meta"
    assert count_parameters(swinir) == check_param_budget(swinir) == 1_766_292 <= param_limit(2022)
    assert count_parameters(rcan) == check_param_budget(rcan) == 1_786_531 <= param_limit(2022)
    assert count_parameters(swinir66) == 1_634_826
    # buffers are not parameters: the handout's count leaves out SwinIR's masks and position indices
    buffers = dict(swinir.named_buffers())
    assert "layers.0.residual_group.blocks.1.attn_mask" in buffers
    assert "layers.0.residual_group.blocks.0.attn.relative_position_index" in buffers
    assert not any("attn_mask" in n or "position_index" in n for n, _ in swinir.named_parameters())
    with torch.device("meta"), pytest.raises(FacesrError, match="1,821,085"):
        check_param_budget(build_generator("swinir", embed_dim=90))


def test_state_dicts_load_both_ways_with_official_keys() -> None:
    for kit, official in (
        (build_generator("swinir", **TINY_SWINIR), SpandrelSwinIR(**_official_swinir())),
        (build_generator("rcan", **TINY_RCAN), SpandrelRCAN(scale=4, **TINY_RCAN)),
    ):
        assert list(kit.state_dict()) == list(official.state_dict())  # no wrapper prefix, same order
        kit.load_state_dict(official.state_dict(), strict=True)
        official.load_state_dict(kit.state_dict(), strict=True)
        x = torch.rand(1, 3, 16, 16)
        with torch.no_grad():
            torch.testing.assert_close(kit.eval()(x), official.eval()(x.clone()))
    keys = set(build_generator("rcan", **TINY_RCAN).state_dict())
    assert {"sub_mean.weight", "head.0.weight", "body.0.body.0.body.3.conv_du.0.weight", "tail.0.0.weight",
            "tail.1.weight", "add_mean.bias"} <= keys
    keys = set(build_generator("swinir", **TINY_SWINIR).state_dict())
    assert {"conv_first.weight", "layers.0.residual_group.blocks.1.attn_mask", "conv_after_body.weight",
            "upsample.0.weight"} <= keys


def test_rgb_in_unit_range() -> None:
    # A net whose body adds nothing gives back the DIV2K mean shift exactly: [0, 1] in, [0, 1] out.
    net = build_generator("rcan", **TINY_RCAN).eval()
    with torch.no_grad():
        net.tail[1].weight.zero_()
        net.tail[1].bias.zero_()
        out = net(torch.rand(1, 3, 8, 8))
    torch.testing.assert_close(out, torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1).expand_as(out))
    swinir = build_generator("swinir", **TINY_SWINIR).eval()
    assert swinir.img_range == 1.0


# ---------------------------------------------------------------- what the kit's classes fix or keep


def test_rcan_leaves_the_input_alone_and_freezes_its_mean_shift() -> None:
    from facesr.config import get_config
    from facesr.training.step import build_nets, train_step

    cfg = get_config("rcan", quick=True, generator_args=TINY_RCAN)
    nets = build_nets(cfg, torch.device("cpu"))
    frozen = [p for m in (nets.net_g.sub_mean, nets.net_g.add_mean) for p in m.parameters()]
    assert sum(p.numel() for p in frozen) == 24 and not any(p.requires_grad for p in frozen)
    assert count_parameters(nets.net_g) == sum(p.numel() for p in nets.net_g.parameters())  # frozen counted
    assert count_parameters(nets.net_g_ema) == count_parameters(nets.net_g)  # an EMA copy counts the same
    before = [p.detach().clone() for p in frozen]
    lq, gt = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    lq_copy = lq.clone()
    train_step(nets, lq, gt, torch.amp.GradScaler("cuda", enabled=False))
    torch.testing.assert_close(lq, lq_copy, rtol=0, atol=0)
    for p, old in zip(frozen, before, strict=True):
        torch.testing.assert_close(p.detach(), old, rtol=0, atol=0)
    in_optimizer = {id(p) for group in nets.optimizer_g.param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in frozen}


def test_swinir_rebuilds_its_mask_for_other_sizes() -> None:
    small = build_generator("swinir", **TINY_SWINIR).eval()
    mask = small.layers[0].residual_group.blocks[1].attn_mask.clone()
    big = build_generator("swinir", **{**TINY_SWINIR, "img_size": 32}).eval()
    big.load_state_dict({k: v for k, v in small.state_dict().items() if "attn_mask" not in k}, strict=False)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(small(x), big(x))  # the rebuilt 32x32 mask is the one built for 32
    torch.testing.assert_close(small.layers[0].residual_group.blocks[1].attn_mask, mask)  # buffer untouched
    assert big.layers[0].residual_group.blocks[1].attn_mask.shape[0] == (32 // 8) ** 2 > mask.shape[0]


def test_swinir_channels_last_gives_the_same_output() -> None:
    net = build_generator("swinir", **TINY_SWINIR).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        plain = net(x)
        net = net.to(memory_format=torch.channels_last)
        torch.testing.assert_close(net(x.contiguous(memory_format=torch.channels_last)), plain)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(img_size=8, window_size=8), "img_size=8"),
    (dict(embed_dim=13), "embed_dim=13"),
    (dict(depths=[2, 2], num_heads=[2]), "one length"),
    (dict(upsampler="bicubic"), "upsampler='bicubic'"),
])
def test_swinir_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(FacesrError, match=match):
        build_generator("swinir", **{**TINY_SWINIR, **kwargs})
    with pytest.raises(FacesrError, match="bad arguments"):
        build_generator("rcan", n_resgroup=3)


@pytest.mark.parametrize(("name", "kwargs"), [("swinir", TINY_SWINIR), ("rcan", TINY_RCAN)])
def test_a_few_cpu_iterations_lower_the_loss(name: str, kwargs: dict) -> None:
    from facesr.config import get_config
    from facesr.training.step import build_nets, train_step

    cfg = get_config(name, quick=True, generator_args=kwargs, lr=2e-3)
    nets = build_nets(cfg, torch.device("cpu"))
    lq = torch.rand(2, 3, 16, 16)
    gt = F.interpolate(lq, scale_factor=4, mode="bicubic", align_corners=False)  # a learnable target
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    losses = [float(train_step(nets, lq, gt, scaler)["l_pix"]) for _ in range(25)]
    assert min(losses[-5:]) < 0.7 * losses[0], losses


# ---------------------------------------------------------------- spandrel_architecture / spandrel_model


def _compact(**kw) -> torch.nn.Module:
    from spandrel.architectures.Compact import Compact

    return Compact(**{"num_feat": 8, "num_conv": 2, "upscale": 4, **kw})


def test_spandrel_architecture_rebuilds_kit_generators() -> None:
    cases = (("swinir", TINY_SWINIR), ("rcan", TINY_RCAN), ("rcan", dict(TINY_RCAN, rgb_range=1)))
    for name, kwargs in cases:
        net = build_generator(name, **kwargs)
        found = spandrel_architecture(net.state_dict())
        assert found is not None and found[0] == name
        again = build_generator(found[0], **found[1])
        again.load_state_dict(net.state_dict(), strict=True)
        assert {k: found[1][k] for k in kwargs} == kwargs
    official = SpandrelSwinIR(**_official_swinir()).state_dict()
    assert spandrel_architecture(official) == ("swinir", _official_swinir())
    rrdb = build_generator("rrdbnet", num_blocks=1, mid_channels=8, growth_channels=4).state_dict()
    assert spandrel_architecture(rrdb) == generator_architecture(rrdb)


def test_spandrel_model_gives_working_rgb_sr_nets() -> None:
    rcan = build_generator("rcan", **TINY_RCAN).eval()
    net = spandrel_model(rcan.state_dict())
    assert type(net) is type(rcan) and not net.training  # the kit's class: the input is left alone
    wrapped = {"params_ema": {f"module.{k}": v for k, v in rcan.state_dict().items()}}  # as BasicSR saves
    assert type(spandrel_model(wrapped)) is type(rcan)
    compact = _compact()
    assert spandrel_architecture(compact.state_dict()) is None  # a spandrel arch the kit does not register
    other = spandrel_model(compact.state_dict())
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(other(x), compact.eval()(x))
        assert other(x).shape == (1, 3, 32, 32)
    assert describe_state_dict(compact.state_dict()) == "Compact (spandrel)"
    assert describe_state_dict(rcan.state_dict()) == "RCAN (spandrel)"


def test_spandrel_errors_are_one_line() -> None:
    plain = {"foo.weight": torch.zeros(2, 2), "foo.bias": torch.zeros(2)}
    assert spandrel_architecture(plain) is None
    with pytest.raises(FacesrError, match=r"recognises no architecture .*2 keys: foo.weight, foo.bias") as e:
        spandrel_model(plain)
    assert "\n" not in str(e.value)
    with pytest.raises(FacesrError, match=r"Compact \(Restoration, x1, 1 -> 1 channels\), not an RGB"):
        spandrel_model(_compact(num_in_ch=1, num_out_ch=1, upscale=1).state_dict())
    broken = build_generator("rcan", **TINY_RCAN).state_dict()
    broken["tail.1.weight"] = broken["tail.1.weight"][:2]  # detected as RCAN, does not build
    with pytest.raises(FacesrError, match="looks like RCAN but spandrel cannot build it"):
        spandrel_architecture(broken)


# ---------------------------------------------------------------- without spandrel


def test_missing_spandrel_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from facesr.report.budget import parameter_table

    monkeypatch.setitem(sys.modules, "spandrel", None)  # import spandrel now raises ImportError
    assert {"swinir", "rcan"} <= set(GENERATORS)
    for call in (lambda: build_generator("swinir"), lambda: build_generator("rcan"),
                 lambda: spandrel_architecture({}), lambda: spandrel_model({})):
        with pytest.raises(FacesrError, match=PIP) as err:
            call()
        assert "\n" not in str(err.value)
    msr = build_generator("msrresnet", num_blocks=1, mid_channels=8).state_dict()
    assert describe_state_dict(msr).startswith("MSRResNet")
    assert "needs spandrel" in parameter_table()


def test_too_old_spandrel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spandrel, "__version__", "0.3.4")
    with pytest.raises(FacesrError, match=r"spandrel 0.3.4 is too old .*spandrel>=0.4"):
        build_generator("rcan", **TINY_RCAN)


def test_import_needs_no_spandrel() -> None:
    code = (
        "import sys; sys.modules['spandrel'] = None\n"
        "import facesr.models, facesr.config\n"
        "from facesr.errors import FacesrError\n"
        "assert facesr.config.get_config('swinir', quick=False).generator in facesr.models.GENERATORS\n"
        "try:\n    facesr.models.build_generator('swinir')\nexcept FacesrError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert PIP in out


# ---------------------------------------------------------------- through the trainer


@pytest.fixture(scope="module")
def tiny_root(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample training GT, 2 val pairs and 2 test LQ: a quick run validates in seconds."""
    from facesr.data.sample import copy_data_subset

    counts = {"train/GT": 24, "val/LQ": 2, "val/GT": 2, "test/LQ": 2}
    return copy_data_subset(sample_root, tmp_path_factory.mktemp("zoo") / "data", counts)


# Small versions of the in-budget networks: the point is the pipeline, not the size.
SMALL_IN_BUDGET = {"msrresnet20": dict(mid_channels=16, num_blocks=2), "swinir": dict(depths=[1], num_heads=[6]),
                   "rcan": dict(n_resgroups=1, n_resblocks=1)}  # fmt: skip


# slow: minutes of CPU for what, on the floors and Colab's versions (.ci/run), the demo's smoke run (notebook 07:
# SwinIR, its MSE finish, evaluate and predict with TTA) and the quick-mode tests of each network already check
@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMALL_IN_BUDGET))
def test_in_budget_config_end_to_end_in_quick_mode(name: str, tiny_root: Path, tmp_path: Path) -> None:
    """Train, the MSE finish from its EMA weights, evaluate and predict with every TTA mode."""
    from facesr.config import get_config
    from facesr.data.images import list_images, read_image
    from facesr.inference.predict import evaluate_variants, load_generator, predict
    from facesr.training import train

    small = {"batch_size": 2, "checkpoint_every": 3, "generator_args": SMALL_IN_BUDGET[name]}
    first = train(get_config(name, quick=True, iters=3, val_every=3, **small), data_root=tiny_root,
                  runs_dir=tmp_path, device="cpu")
    finish = train(get_config(f"{name}_l2", quick=True, iters=2, val_every=2, **small), data_root=tiny_root,
                   runs_dir=tmp_path, init=first, device="cpu")
    net = load_generator(finish)
    with torch.no_grad():
        assert net(torch.rand(1, 3, 128, 128)).shape == (1, 3, 512, 512)  # the val size (SwinIR: mask rebuilt)
    tables = evaluate_variants(net, tiny_root, ttas=(None, "hflip", "x8"))
    assert list(tables) == [None, "hflip", "x8"]
    assert all(len(t) == 3 and np.isfinite(t["psnr"]).all() for t in tables.values())
    lq = list_images(tiny_root / "test" / "LQ")
    for tta in (None, "hflip", "x8"):
        paths = predict(net, tiny_root / "test" / "LQ", tmp_path / f"pred_{tta}", tta=tta, device="cpu")
        assert [p.name for p in paths] == [p.name for p in lq]
        assert read_image(paths[0]).shape == (512, 512, 3)
