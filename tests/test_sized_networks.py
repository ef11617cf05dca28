"""The networks sized to each limit by ``size_to_budget`` (Omni-SR, SPAN, RealPLKSR, DAT-light, ATD-light): the
search, the official releases' state dicts, SPAN's fused form. Each trains on its real config path in
test_workers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facesr.editions import EDITIONS
from facesr.errors import FacesrError
from facesr.models import build_generator, count_generator, count_parameters, generator_record, size_to_budget

spandrel = pytest.importorskip("spandrel")

SIZED = ("omnisr", "span", "realplksr", "dat", "atd")


@pytest.mark.parametrize("arch", SIZED)
def test_size_to_budget_lands_within_two_percent_of_every_limit(arch: str, capsys: pytest.CaptureFixture) -> None:
    """For every edition: never over the limit, within 2 % of it, and the size the network's in-budget config has.
    Each search keeps the depth of the record's size (the full search over depths ran once to find them)."""
    from facesr.config import get_config

    record = generator_record(arch)
    for year, edition in EDITIONS.items():
        n, args = record.size_for(edition.param_limit)
        depth = {k: args[k] for d in record.knobs.depths for k in d}
        found, found_args = size_to_budget(arch, year, **depth)
        assert found <= edition.param_limit and found >= 0.98 * edition.param_limit, (arch, year, found)
        assert (found, found_args) == (n, args), (arch, year)
        assert get_config(arch, edition=year).generator_args == args and count_generator(arch, args) == n
    out = capsys.readouterr().out
    assert "fits" in out and "over" in out and "largest:" in out  # every candidate counted is printed


def test_size_to_budget_picks_the_best_depth() -> None:
    # RealPLKSR at its 2022 width: each depth counted once, 12 blocks the largest that fits
    found, args = size_to_budget("realplksr", 2022, verbose=False, dim=48)
    assert (found, args["n_blocks"]) == (1_797_504, 12)
    with pytest.raises(FacesrError, match="no size of RealPLKSR fits"):
        size_to_budget("realplksr", 2022, verbose=False, dim=256)
    with pytest.raises(FacesrError, match="has no size knobs"):
        size_to_budget("rcan", 2022)


def _releases() -> dict[str, tuple[object, dict]]:
    """spandrel's own class and the arguments of each official x4 lightweight release (random weights here)."""
    from spandrel.architectures.ATD import ATD
    from spandrel.architectures.DAT import DAT
    from spandrel.architectures.OmniSR import OmniSR
    from spandrel.architectures.PLKSR import RealPLKSR
    from spandrel.architectures.SPAN import SPAN

    return {
        "omnisr": (OmniSR, dict(num_feat=64, block_num=1, res_num=5, window_size=8, up_scale=4, pe=True)),
        "span": (SPAN, dict(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4)),
        "dat": (DAT, dict(img_size=64, embed_dim=60, split_size=[8, 32], depth=[18], num_heads=[6],
                          expansion_factor=2.0, resi_connection="3conv", upsampler="pixelshuffledirect", upscale=4)),
        "atd": (ATD, dict(img_size=64, embed_dim=48, depths=[6, 6, 6, 6], num_heads=[4, 4, 4, 4], window_size=16,
                          category_size=128, num_tokens=64, reducted_dim=8, convffn_kernel_size=7, mlp_ratio=1,
                          upscale=4, upsampler="pixelshuffledirect")),
        # no lightweight release: a small one of neosr's architecture
        "realplksr": (RealPLKSR, dict(dim=16, n_blocks=2, upscaling_factor=4)),
    }


@pytest.mark.parametrize("arch", SIZED)
def test_official_state_dicts_load_and_give_the_authors_outputs(arch: str, tmp_path: Path) -> None:
    """A state dict of each release's architecture, saved bare as the authors do, loads as load_generator reads
    files (read_generator) into the kit's class (SPAN fused) and gives spandrel's own outputs."""
    from facesr.weights.checkpoints import read_generator

    cls, args = _releases()[arch]
    torch.manual_seed(0)
    official = cls(**args).eval()
    torch.save(official.state_dict(), tmp_path / "release.pth")
    gen = read_generator(tmp_path / "release.pth")  # what load_generator returns, with its name and arguments
    assert gen.generator == arch and isinstance(gen.net, cls)
    x = torch.rand(1, 3, 24, 20)  # not a multiple of any window
    with torch.no_grad():
        torch.testing.assert_close(gen.net(x), official(x), rtol=0, atol=1e-5)
    if arch == "span":  # counted fused: the release's 48 channels
        assert gen.generator_args["fused"] and count_parameters(gen.net) == 426_288


def test_the_original_plksr_is_not_taken_for_realplksr() -> None:
    from spandrel.architectures.PLKSR import PLKSR

    from facesr.models.zoo import spandrel_architecture, spandrel_model

    sd = PLKSR(dim=16, n_blocks=2).state_dict()
    assert spandrel_architecture(sd) is None and type(spandrel_model(sd)).__name__ == "PLKSR"


def test_span_trains_with_its_branches_and_is_counted_submitted_and_exported_fused(tmp_path: Path,
                                                                                      mini_root: Path) -> None:
    import json
    import zipfile

    from facesr.config import get_config
    from facesr.inference.predict import load_generator
    from facesr.report import make_handin
    from facesr.report.handin import FUSED_FILE
    from facesr.weights.checkpoints import read_generator
    from facesr.weights.exports import export_generator

    args = {**generator_record("span").defaults, "feature_channels": 16}
    torch.manual_seed(0)
    net = build_generator("span", **args)
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert count_parameters(net) == count_generator("span", args, trained=True) > count_generator("span", args)
    assert all(".eval_conv." not in n for n, p in net.named_parameters() if p.requires_grad) and trainable
    net(torch.rand(2, 3, 16, 16)).mean().backward()  # the branches train
    run = tmp_path / "span"  # a run folder as the trainer leaves it
    run.mkdir()
    config = {**get_config("span", quick=True, generator_args=args).to_dict(), "name": "span"}
    torch.save({"net_g_ema": net.state_dict(), "net_g": net.state_dict(), "iter": 1, "config": config},
               run / "best.pt")
    (run / "config.json").write_text(json.dumps(config))
    (run / "log.csv").write_text("iter,lr,l_pix\n1,0.0002,0.1\n")
    (run / "val.csv").write_text("iter,psnr,ssim\n1,20.5,0.5\n")
    fused = load_generator(run)
    assert count_parameters(fused) == count_generator("span", args)
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), net.eval()(x), rtol=0, atol=1e-5)
    written = export_generator(run, tmp_path / "span.safetensors")
    again = read_generator(written.path)
    assert again.generator_args == {**args, "fused": True} and count_parameters(again.net) == count_parameters(fused)
    # the hand-in: the training checkpoint, and the fused generator the limit counts beside it
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "psnr_table.md").write_text("| model | psnr |\n")
    bundle = make_handin(run, tmp_path / "handin.zip", data_root=mini_root, figures_dir=figures)
    with zipfile.ZipFile(bundle) as zf:
        assert {"span/best.pt", f"span/{FUSED_FILE}"} <= set(zf.namelist())
        (tmp_path / "unzipped").mkdir()
        handed = read_generator(Path(zf.extract(f"span/{FUSED_FILE}", tmp_path / "unzipped")))
        readme = zf.read("Readme.txt").decode()
    assert count_parameters(handed.net) == count_parameters(fused) and f"{count_parameters(fused):,}" in readme


def test_dat_needs_two_samples_per_batch_to_train_and_is_not_averaged() -> None:
    from facesr.training.averaging import average_state_dicts

    net = build_generator("dat", embed_dim=48, depth=[2], num_heads=[6], img_size=16)
    net(torch.rand(2, 3, 16, 16))
    with pytest.raises(FacesrError, match="needs at least 2 samples per batch"):
        net(torch.rand(1, 3, 16, 16))
    # its attention's BatchNorm statistics: the average of two checkpoints is refused, with the reason
    with pytest.raises(FacesrError, match=r"BatchNorm running statistics \(.*running_mean, \.\.\.\): the mean"):
        average_state_dicts([net.state_dict(), net.state_dict()], name="a DAT run")


@pytest.mark.parametrize("year", [2022, 2024])
def test_the_cost_in_each_why_is_the_benchmarks(year: int, train_step_benchmark) -> None:
    """The GFLOP each in-budget config's why quotes (``STEP_COST``) are what benchmarks/train_step.py counts for
    its course step, so a resized network or a changed step cannot leave stale figures in the words."""
    from facesr.config import get_config
    from facesr.config.sized_networks import STEP_COST

    wide = EDITIONS[year].param_limit > 2_000_000
    for arch, cost in STEP_COST.items():
        name = {"msrresnet": "msrresnet26" if wide else "msrresnet20"}.get(arch, arch)
        cfg = get_config(name, quick=False, edition=year)
        gflop, seconds = cost[wide]
        assert round(train_step_benchmark.step_flops(cfg) / 1e9, 1) == gflop and seconds > 0, (name, year)
        assert f"{gflop:,.0f} GFLOP" in cfg.why or arch not in SIZED, name
