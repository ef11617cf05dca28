"""Checkpoint loading/saving: every supported container round-tripped from the kit's own nets."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from facesr.errors import FacesrError
from facesr.models import ModifiedVGG, MSRResNet, MSRResNetBasicSR, RRDBNet
from facesr.weights.checkpoints import (
    extract_state_dict,
    load_checkpoint,
    load_weights,
    read_generator,
    save_checkpoint,
)
from facesr.weights.exports import export_basicsr, export_generator


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def small_msr() -> MSRResNet:
    return MSRResNet(num_blocks=2, mid_channels=8)


def small_rrdb() -> RRDBNet:
    return RRDBNet(num_blocks=2, mid_channels=8, growth_channels=4)


def small_d() -> ModifiedVGG:
    return ModifiedVGG(3, 4)


def assert_same(net: torch.nn.Module, sd: dict) -> None:
    got = net.state_dict()
    assert set(got) == set(sd)
    for k, v in sd.items():
        assert torch.equal(got[k], v), k


def fresh_sd(factory) -> dict:
    net = factory()
    for p in net.parameters():  # distinct from any freshly built net
        p.data.normal_()
    return {k: v.clone() for k, v in net.state_dict().items()}


# ---------------------------------------------------------------- kit's own checkpoints


def test_kit_checkpoint_roundtrip_and_ema_preference(tmp_path: Path) -> None:
    g, g_ema, d = fresh_sd(small_rrdb), fresh_sd(small_rrdb), fresh_sd(small_d)
    ckpt = {
        "net_g": g, "net_g_ema": g_ema, "net_d": d, "iter": 10,
        "best": {"metric": "psnr", "value": 25.0, "iter": 10},
        "rng": {"numpy": np.random.get_state(), "torch": torch.get_rng_state()},  # ndarray: numpy allow-list
        "config": {"name": "esrgan"}, "kit_version": "0.1.0",
    }
    path = save_checkpoint(ckpt, tmp_path / "runs" / "latest.pt")
    assert path == tmp_path / "runs" / "latest.pt"
    assert load_checkpoint(path)["iter"] == 10
    assert_same(load_weights(small_rrdb(), path), g_ema)
    assert_same(load_weights(small_rrdb(), path, prefer_ema=False), g)
    assert_same(load_weights(small_d(), path), d)
    # No EMA copy in the file: net_g is used even with prefer_ema.
    assert_same(load_weights(small_rrdb(), {"net_g": g, "net_g_ema": None}), g)
    with pytest.raises(FacesrError, match="no discriminator"):
        load_weights(small_d(), {"net_g": g})


# ---------------------------------------------------------------- foreign formats


def test_mmediting_checkpoint(tmp_path: Path) -> None:
    g, g_ema, d = fresh_sd(small_rrdb), fresh_sd(small_rrdb), fresh_sd(small_d)
    sd = {f"generator.{k}": v for k, v in g.items()}
    sd |= {f"generator_ema.{k}": v for k, v in g_ema.items()}
    sd |= {f"discriminator.{k}": v for k, v in d.items()}
    sd["perceptual_loss.vgg.vgg_layers.0.weight"] = torch.zeros(4, 3, 3, 3)
    path = tmp_path / "mmedit.pth"
    torch.save({"meta": {"mmedit_version": "0.16.0", "iter": 400000}, "state_dict": sd, "optimizer": {}}, path)
    assert_same(load_weights(small_rrdb(), path), g_ema)
    assert_same(load_weights(small_rrdb(), path, prefer_ema=False), g)
    assert_same(load_weights(small_d(), path), d)
    # Without an EMA copy (e.g. an MSRResNet run) the plain generator is taken.
    msr = fresh_sd(small_msr)
    plain = {"state_dict": {f"generator.{k}": v for k, v in msr.items()}}
    assert_same(load_weights(small_msr(), plain), msr)


def test_basicsr_checkpoint(tmp_path: Path) -> None:
    g, g_ema = fresh_sd(small_rrdb), fresh_sd(small_rrdb)
    path = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params": g, "params_ema": g_ema}, path)
    assert_same(load_weights(small_rrdb(), path), g_ema)
    assert_same(load_weights(small_rrdb(), path, prefer_ema=False), g)
    torch.save({"params": g}, path)
    assert_same(load_weights(small_rrdb(), path), g)


def _to_original_esrgan(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        k = re.sub(r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2.", k)
        for new, old in (("conv_body.", "trunk_conv."), ("conv_up1.", "upconv1."), ("conv_up2.", "upconv2."),
                         ("conv_hr.", "HRconv.")):
            if k.startswith(new):
                k = old + k[len(new):]
        out[k] = v
    return out


def _to_old_arch_esrgan(sd: dict, nb: int) -> dict:
    fixed = {"conv_first.": "model.0.", "conv_body.": f"model.1.sub.{nb}.", "conv_up1.": "model.3.",
             "conv_up2.": "model.6.", "conv_hr.": "model.8.", "conv_last.": "model.10."}
    out = {}
    for k, v in sd.items():
        m = re.match(r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(\w+)", k)
        if m:
            k = f"model.1.sub.{m.group(1)}.RDB{m.group(2)}.conv{m.group(3)}.0.{m.group(4)}"
        else:
            prefix = next(p for p in fixed if k.startswith(p))
            k = fixed[prefix] + k[len(prefix):]
        out[k] = v
    return out


def test_original_esrgan_names(tmp_path: Path) -> None:
    g = fresh_sd(small_rrdb)
    original = _to_original_esrgan(g)
    assert "RRDB_trunk.1.RDB3.conv5.weight" in original and "HRconv.bias" in original
    path = tmp_path / "RRDB_ESRGAN_x4.pth"
    torch.save(original, path)
    assert_same(load_weights(small_rrdb(), path), g)
    old = _to_old_arch_esrgan(g, nb=2)
    assert "model.1.sub.0.RDB1.conv1.0.weight" in old and "model.1.sub.2.weight" in old
    assert_same(load_weights(small_rrdb(), old), g)
    assert set(extract_state_dict(path)) == set(g)


def test_bare_and_module_prefixed_state_dicts(tmp_path: Path) -> None:
    g = fresh_sd(small_msr)
    path = tmp_path / "bare.pth"
    torch.save(g, path)
    assert_same(load_weights(small_msr(), path), g)
    torch.save({f"module.{k}": v for k, v in g.items()}, path)
    assert_same(load_weights(small_msr(), path), g)
    wrapped = {"params": {f"module.{k}": v for k, v in g.items()}}
    assert_same(load_weights(small_msr(), wrapped), g)


def test_loaded_net_gives_same_output(tmp_path: Path) -> None:
    src = small_msr().eval()
    path = save_checkpoint({"net_g": src.state_dict()}, tmp_path / "g.pt")
    dst = load_weights(small_msr(), path).eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x))


# ---------------------------------------------------------------- refusals


def test_wrong_architecture_is_described() -> None:
    with torch.device("meta"):  # full-size nets, no init cost; the check never reads values
        rrdb_sd = RRDBNet().state_dict()
        msr = MSRResNet()
    with pytest.raises(FacesrError) as err:
        load_weights(msr, {"params_ema": rrdb_sd})
    msg = str(err.value)
    assert "the file holds RRDBNet, 23 blocks, 64 channels" in msg
    assert "the net is MSRResNet, 16 blocks, 64 channels" in msg
    assert "missing keys: trunk_net.0.conv1.weight" in msg and "unexpected keys:" in msg
    assert "\n" not in msg


def test_shape_mismatch_is_reported() -> None:
    sd = fresh_sd(lambda: MSRResNet(num_blocks=2, mid_channels=16))
    with pytest.raises(FacesrError) as err:
        load_weights(small_msr(), sd)
    msg = str(err.value)
    assert "shape mismatches: conv_first.weight (16, 3, 3, 3) vs net (8, 3, 3, 3)" in msg
    assert "MSRResNet, 2 blocks, 16 channels" in msg and "MSRResNet, 2 blocks, 8 channels" in msg


def test_missing_block_is_reported() -> None:
    sd = fresh_sd(small_msr)
    del sd["trunk_net.1.conv2.bias"]
    with pytest.raises(FacesrError, match=r"missing keys: trunk_net\.1\.conv2\.bias"):
        load_weights(small_msr(), sd)


def test_basicsr_msrresnet_is_refused_with_reason(tmp_path: Path) -> None:
    ours = fresh_sd(small_msr)
    basicsr = {}
    for k, v in ours.items():
        k = k.replace("trunk_net.", "body.").replace("upsample1.upsample_conv.", "upconv1.")
        basicsr[k.replace("upsample2.upsample_conv.", "upconv2.")] = v
    path = tmp_path / "net_g_basicsr.pth"
    torch.save({"params": basicsr}, path)
    with pytest.raises(FacesrError) as err:
        load_weights(small_msr(), path)
    msg = str(err.value)
    assert "BasicSR MSRResNet" in msg and "LeakyReLU after each pixel shuffle" in msg
    assert "net_g_basicsr.pth" in msg
    assert msg.endswith(
        "holds a BasicSR MSRResNet (BasicSR MSRResNet, 2 blocks, 8 channels); its weights do not transfer: "
        "BasicSR's MSRResNet puts a LeakyReLU after each pixel shuffle (the kit's msrresnet follows MMEditing, "
        "which has none) and uses other key names; the net is MSRResNet, 2 blocks, 8 channels. Load it into "
        "build_generator('msrresnet_basicsr', **{'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 2, "
        "'upscale': 4}), or with load_generator, which builds that"
    )
    assert "\n" not in msg
    # the same file loads into BasicSR's network, which it names
    assert_same(load_weights(MSRResNetBasicSR(num_feat=8, num_block=2), path), basicsr)
    # and the other way round: MMEditing weights are refused by BasicSR's network, saying why
    with pytest.raises(FacesrError, match=r"holds an MMEditing MSRResNet \(MSRResNet, 2 blocks, 8 channels\); its "
                                          r"weights do not transfer into BasicSR's MSRResNet"):
        load_weights(MSRResNetBasicSR(num_feat=8, num_block=2), ours)


def test_source_names_and_bad_source_type(tmp_path: Path) -> None:
    empty = {"params": None}
    with pytest.raises(FacesrError, match="^the given checkpoint dict is a BasicSR checkpoint with empty"):
        load_weights(small_msr(), empty)
    with pytest.raises(FacesrError, match="^the given checkpoint dict is a BasicSR checkpoint with empty"):
        extract_state_dict(empty)
    with pytest.raises(FacesrError, match="^my file is a BasicSR checkpoint with empty"):
        extract_state_dict(empty, name="my file")
    path = tmp_path / "empty.pth"
    torch.save(empty, path)
    for fn in (lambda: load_weights(small_msr(), path), lambda: extract_state_dict(path)):
        with pytest.raises(FacesrError, match=f"^{re.escape(str(path))} is a BasicSR checkpoint"):
            fn()
    with pytest.raises(FacesrError, match="load_weights needs a checkpoint path or dict, got int"):
        load_weights(small_msr(), 3)


def test_net_is_described_only_on_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import facesr.models

    calls = []
    real = facesr.models.describe_state_dict

    def counting(sd):
        calls.append(len(sd))
        return real(sd)

    monkeypatch.setattr(facesr.models, "describe_state_dict", counting)
    g = fresh_sd(small_msr)
    assert_same(load_weights(small_msr(), g), g)
    assert calls == []
    with pytest.raises(FacesrError, match="the file holds RRDBNet.*the net is MSRResNet, 2 blocks, 8 channels"):
        load_weights(small_msr(), fresh_sd(small_rrdb))


def test_generator_file_into_discriminator() -> None:
    with pytest.raises(FacesrError, match="the file holds RRDBNet, 2 blocks, 8 channels.*ModifiedVGG"):
        load_weights(small_d(), {"params": fresh_sd(small_rrdb)})


def test_truncated_and_corrupt_files(tmp_path: Path) -> None:
    path = save_checkpoint({"net_g": fresh_sd(small_msr)}, tmp_path / "latest.pt")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(FacesrError, match="truncated.pt"):
        load_weights(small_msr(), truncated)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(FacesrError, match="garbage.pth"):
        load_checkpoint(garbage)
    with pytest.raises(FacesrError, match="missing.pth"):
        load_checkpoint(tmp_path / "missing.pth")
    not_dict = tmp_path / "list.pt"
    torch.save([1, 2], not_dict)
    with pytest.raises(FacesrError, match="list.pt"):
        load_checkpoint(not_dict)
    with pytest.raises(FacesrError, match="no recognisable weights"):
        load_weights(small_msr(), {"iter": 3})


# ---------------------------------------------------------------- atomic save


def test_save_checkpoint_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "latest.pt"
    save_checkpoint({"iter": 1}, path)
    save_checkpoint({"iter": 2}, path)
    assert load_checkpoint(path)["iter"] == 2
    # A failing save (unpicklable object) leaves the old file intact and no temp file behind.
    with pytest.raises(Exception):  # noqa: B017 - whatever pickle raises
        save_checkpoint({"iter": 3, "bad": lambda: None}, path)
    assert load_checkpoint(path)["iter"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]


def test_run_checkpoint_prefers_best_then_latest(tmp_path):
    from facesr.weights.checkpoints import run_checkpoint

    assert run_checkpoint(tmp_path) is None
    assert run_checkpoint(tmp_path / "missing") is None
    (tmp_path / "latest.pt").write_bytes(b"x")
    assert run_checkpoint(tmp_path) == tmp_path / "latest.pt"
    (tmp_path / "best.pt").write_bytes(b"x")
    assert run_checkpoint(tmp_path) == tmp_path / "best.pt"


# ---------------------------------------------------------------- BasicSR's MSRResNet files and BasicSR export

BASICSR_ARGS = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 2, "upscale": 4}


def small_basicsr() -> MSRResNetBasicSR:
    return MSRResNetBasicSR(**BASICSR_ARGS)


def _output(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.eval()(x)


@pytest.mark.parametrize("layout", ["params", "params_ema", "both", "bare"])
def test_basicsr_msrresnet_files_load_strictly(tmp_path: Path, layout: str) -> None:
    from facesr.inference.predict import load_generator

    g, g_ema = fresh_sd(small_basicsr), fresh_sd(small_basicsr)
    content = {"params": {"params": g}, "params_ema": {"params_ema": g_ema}, "both": {"params": g, "params_ema": g_ema},
               "bare": g}[layout]
    path = tmp_path / "net_g_300000.pth"
    torch.save(content, path)
    want = g if layout in ("params", "bare") else g_ema  # params_ema preferred, as BasicSR's inference does
    net = load_generator(path)
    assert isinstance(net, MSRResNetBasicSR) and not net.training
    assert_same(net, want)
    gen = read_generator(path)
    assert (gen.generator, gen.generator_args, gen.edition) == ("msrresnet_basicsr", BASICSR_ARGS, None)
    assert_same(load_weights(small_basicsr(), path), want)
    x = torch.rand(1, 3, 8, 8)
    reference = small_basicsr()
    reference.load_state_dict(want, strict=True)
    torch.testing.assert_close(_output(net, x), _output(reference, x), rtol=0, atol=0)
    broken = dict(want)
    del broken["body.1.conv2.bias"]
    with pytest.raises(FacesrError, match=r"missing keys: body\.1\.conv2\.bias"):
        load_weights(small_basicsr(), broken)


def _kit_run(tmp_path: Path, net: torch.nn.Module, generator: str, args: dict, edition: int = 2024) -> Path:
    run = tmp_path / "runs" / "srgan"
    ckpt = {"net_g": fresh_sd(lambda: net), "net_g_ema": net.state_dict(), "iter": 5,
            "config": {"name": "srgan", "generator": generator, "generator_args": args, "edition": edition}}
    save_checkpoint(ckpt, run / "latest.pt")
    return run


def test_export_basicsr_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from facesr.cli import main
    from facesr.inference.predict import load_generator

    net = small_basicsr()
    for p in net.parameters():
        p.data.normal_(0, 0.2)
    run = _kit_run(tmp_path, net, "msrresnet_basicsr", BASICSR_ARGS)
    out = tmp_path / "export" / "net_g.pth"
    assert main(["export", str(run), str(out), "--format", "basicsr"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: msrresnet_basicsr" in printed and "(within the 2,276,356 limit), edition 2024" in printed
    assert ("BasicSR loads it with MSRResNet(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=4)"
            ".load_state_dict(torch.load(path)['params'], strict=True)") in printed
    saved = torch.load(out, weights_only=True)
    assert list(saved) == ["params"] and list(saved["params"]) == list(net.state_dict())  # BasicSR's names
    fresh = small_basicsr()
    fresh.load_state_dict(saved["params"], strict=True)  # what BasicSR's code does
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(_output(load_generator(out), x), _output(net, x), rtol=0, atol=0)
    torch.testing.assert_close(_output(fresh, x), _output(net, x), rtol=0, atol=0)
    assert not list(out.parent.glob("*.tmp"))  # atomic write: no temp file left
    # an existing file is kept unless --overwrite; names and formats are checked before anything is loaded
    assert main(["export", str(run), str(out), "--format", "basicsr"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(run), str(out), "--format", "basicsr", "--overwrite"]) == 0
    assert main(["export", str(run), str(tmp_path / "g.safetensors"), "--format", "basicsr"]) == 2
    assert "export --format basicsr writes a BasicSR .pth file; give the file a .pth or .pt name" in \
        capsys.readouterr().err
    assert main(["export", str(run), str(tmp_path / "g.pth")]) == 2  # the default format is safetensors
    assert "give the file a .safetensors name" in capsys.readouterr().err
    pytest.importorskip("safetensors")
    assert main(["export", str(run), str(tmp_path / "g.safetensors")]) == 0
    torch.testing.assert_close(_output(load_generator(tmp_path / "g.safetensors"), x), _output(net, x))
    assert read_generator(tmp_path / "g.safetensors").edition == 2024  # the exported file keeps the run's edition
    assert read_generator(out).edition is None  # a BasicSR file has no room for it


def test_export_basicsr_rrdbnet_and_refusals(tmp_path: Path) -> None:
    rrdb = small_rrdb()
    rrdb_args = {"mid_channels": 8, "num_blocks": 2, "growth_channels": 4}
    out = export_generator(_kit_run(tmp_path / "a", rrdb, "rrdbnet", rrdb_args), tmp_path / "rrdb.pth",
                           file_format="basicsr")
    assert out.path == tmp_path / "rrdb.pth" and out.edition == 2024
    saved = torch.load(out.path, weights_only=True)
    assert list(saved) == ["params"] and set(saved["params"]) == set(rrdb.state_dict())  # BasicSR shares the names
    assert_same(load_weights(small_rrdb(), out.path), rrdb.state_dict())
    from facesr.weights.formats import basicsr_network

    assert basicsr_network("rrdbnet", rrdb_args) == (
        "RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, num_grow_ch=4, scale=4)")
    # the kit's MMEditing MSRResNet computes something else than BasicSR's: refused with one line, nothing written
    msr_run = _kit_run(tmp_path / "b", small_msr(), "msrresnet", {"mid_channels": 8, "num_blocks": 2}, 2022)
    with pytest.raises(FacesrError, match=r"^msrresnet cannot be written as a BasicSR file: the kit's msrresnet is "
                                          r"MMEditing's MSRResNet .*; export it as \.safetensors$") as err:
        export_generator(msr_run, tmp_path / "msr.pth", file_format="basicsr")
    assert "\n" not in str(err.value) and not (tmp_path / "msr.pth").exists()
    with pytest.raises(FacesrError, match="export format 'onnx' is unknown; use safetensors or basicsr"):
        export_generator(msr_run, tmp_path / "msr.onnx", file_format="onnx")
    with pytest.raises(FacesrError, match="does not fit"):  # weights that do not build the named net
        export_basicsr(small_basicsr(), tmp_path / "x.pth", "msrresnet_basicsr", {**BASICSR_ARGS, "num_block": 3})


def test_export_basicsr_spandrel_nets(tmp_path: Path) -> None:
    pytest.importorskip("spandrel")
    from spandrel.architectures.SwinIR import SwinIR as OfficialSwinIR

    from facesr.models import build_generator
    from facesr.weights.formats import basicsr_network

    args = {"depths": [2], "num_heads": [6], "embed_dim": 12, "img_size": 16}
    swinir = build_generator("swinir", **args)
    out = export_basicsr(swinir, tmp_path / "swinir.pth", "swinir", args)
    params = torch.load(out, weights_only=True)["params"]
    official = OfficialSwinIR(upscale=4, in_chans=3, img_size=16, window_size=8, img_range=1.0, depths=[2],
                              embed_dim=12, num_heads=[6], mlp_ratio=2.0, upsampler="pixelshuffledirect",
                              resi_connection="1conv")
    official.load_state_dict(params, strict=True)  # the official names, which BasicSR's SwinIR uses too
    assert "layers.0.residual_group.blocks.1.attn_mask" in params  # BasicSR registers it too: same img_size
    network = basicsr_network("swinir", args)
    assert network.startswith("SwinIR(upscale=4, in_chans=3, img_size=16, window_size=8, img_range=1.0, ")
    assert "embed_dim=12" in network and "upsampler='pixelshuffledirect'" in network
    rcan = build_generator("rcan", n_resgroups=1, n_resblocks=1, n_feats=16, reduction=4)
    with pytest.raises(FacesrError, match="BasicSR's RCAN names its layers differently"):
        export_basicsr(rcan, tmp_path / "rcan.pth", "rcan", {"n_resgroups": 1})
    assert not (tmp_path / "rcan.pth").exists()
