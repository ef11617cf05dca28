"""facesr.inference.predict: predict (names, sizes, atomic writes), x8 TTA, upscale, evaluate, load_generator, CLI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from facesr.cli import main
from facesr.data.images import list_images, read_image, write_png
from facesr.errors import FacesrError
from facesr.inference.predict import (
    evaluate,
    evaluate_variants,
    evaluation_summary,
    load_generator,
    png_name,
    predict,
    upscale,
)
from facesr.models import MSRResNet, RRDBNet
from facesr.weights.checkpoints import save_checkpoint


def _tiny_net(seed: int = 0) -> MSRResNet:
    torch.manual_seed(seed)
    return MSRResNet(mid_channels=16, num_blocks=2).eval()


@pytest.fixture(autouse=True)
def _one_torch_thread(request: pytest.FixtureRequest):
    """Tiny nets on a shared 2-core machine run far faster on one thread than two contending ones.

    Tests marked slow (a full-size MSRResNet-16) keep torch's default.
    """
    old = torch.get_num_threads()
    if request.node.get_closest_marker("slow") is None:
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _save_mmedit(net: nn.Module, path: Path) -> Path:
    """An MMEditing 0.x checkpoint: {'meta', 'state_dict' with 'generator.' keys}."""
    sd = {f"generator.{k}": v for k, v in net.state_dict().items()}
    torch.save({"meta": {"iter": 5}, "state_dict": sd}, path)
    return path


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Upsample4(nn.Module):
    """A x4 nearest upsampler: equivariant to flips and 90-degree rotations, so TTA must not change it."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))  # gives the module a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x * self.gain, scale_factor=4, mode="nearest")


# ----------------------------------------------------------------------------- predict


def test_predict_names_sizes_and_keeps_other_files(mini_root: Path, tmp_path: Path) -> None:
    lq_dir = mini_root / "test" / "LQ"
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    stale = list_images(lq_dir)[0].name
    write_png(out / stale, np.zeros((8, 8, 3), np.uint8))  # replaced by name
    net = _tiny_net().train()

    paths = predict(net, lq_dir, out, batch_size=2, device="cpu")  # 3 images: a partial last batch

    assert [p.name for p in paths] == [p.stem + ".png" for p in list_images(lq_dir)]
    assert all(p.parent == out for p in paths)
    for p in paths:
        img = read_image(p)
        assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(f.name for f in out.iterdir()) == sorted(
        [*(p.name for p in paths), "notes.txt"]
    )  # no tmp files
    assert net.training  # the caller's mode is given back

    # upscale shares the code path (batches of 2 above, one image here)
    first_lq = read_image(list_images(lq_dir)[0])
    assert np.array_equal(upscale(net, first_lq), read_image(paths[0]))


def test_predict_interrupted_leaves_no_half_files(
    mini_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facesr.data.images
    from facesr.atomic import atomic_write

    names = [p.stem + ".png" for p in list_images(mini_root / "test" / "LQ")]
    out = tmp_path / "out"
    write_png(out / names[1], np.full((512, 512, 3), 7, np.uint8))  # an earlier result under that name
    calls = []

    def half_write(path: Path, data: bytes) -> Path:
        calls.append(path)

        def write(f) -> None:
            f.write(data[: len(data) // 2])
            if len(calls) == 2:  # the disk fills up / Ctrl-C in the middle of the second file
                raise KeyboardInterrupt
            f.write(data[len(data) // 2 :])

        return atomic_write(path, write)

    monkeypatch.setattr(facesr.data.images, "atomic_write_bytes", half_write)
    with pytest.raises(KeyboardInterrupt):
        predict(_tiny_net(), mini_root / "test" / "LQ", out, batch_size=1, device="cpu")
    assert sorted(p.name for p in out.iterdir()) == sorted(names[:2])  # no partial file
    assert read_image(out / names[0]).shape == (512, 512, 3)
    assert (read_image(out / names[1]) == 7).all()  # the earlier file is intact


def test_predict_refuses_bad_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FacesrError, match="empty"):
        predict(_tiny_net(), empty, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(FacesrError, match="nowhere"):
        predict(_tiny_net(), tmp_path / "nowhere", tmp_path / "out")
    lq = tmp_path / "lq"
    write_png(lq / "00000.png", np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(FacesrError, match="LQ folder"):
        predict(_tiny_net(), lq, lq)
    assert [p.name for p in lq.iterdir()] == ["00000.png"]


def test_upscale_checks_its_input() -> None:
    with pytest.raises(ValueError, match="float32"):
        upscale(_tiny_net(), np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(8, 8\)"):
        upscale(_tiny_net(), np.zeros((8, 8), np.uint8))


# ----------------------------------------------------------------------------- TTA


def test_tta_equals_plain_for_an_equivariant_net(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lq_dir = tmp_path / "lq"
    write_png(lq_dir / "a.png", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    write_png(lq_dir / "b.png", rng.integers(0, 256, (12, 20, 3), dtype=np.uint8))  # not square
    write_png(lq_dir / "c.png", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    net = Upsample4()
    plain = predict(net, lq_dir, tmp_path / "plain", device="cpu")  # one batch of two sizes
    tta = predict(net, lq_dir, tmp_path / "tta", tta=True, device="cpu")
    assert [p.name for p in plain] == [p.name for p in tta] == ["a.png", "b.png", "c.png"]
    for p, t in zip(plain, tta, strict=True):
        a, b = read_image(p).astype(int), read_image(t).astype(int)
        assert a.shape == b.shape == (4 * read_image(lq_dir / p.name).shape[0], a.shape[1], 3)
        assert np.abs(a - b).max() <= 1  # equal up to rounding of the float average
    lq = read_image(lq_dir / "b.png")
    assert np.array_equal(upscale(net, lq, tta=True), np.repeat(np.repeat(lq, 4, 0), 4, 1))


def test_tta_averages_the_eight_dihedral_outputs() -> None:
    """Reference computed independently with numpy flips/rotations on HWC arrays."""
    net = _tiny_net(seed=3)
    lq = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)

    def run(img: np.ndarray) -> np.ndarray:  # HxWx3 uint8 -> float HxWx3, unclamped
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            return net(x)[0].permute(1, 2, 0).numpy().astype(np.float64)

    outputs = []
    for flip in (False, True):
        for k in range(4):
            t = np.rot90(lq[:, ::-1] if flip else lq, k)
            back = np.rot90(run(t), -k)
            outputs.append(back[:, ::-1] if flip else back)
    expected = np.round(np.clip(np.mean(outputs, axis=0), 0, 1) * 255)
    got = upscale(net, lq, tta=True).astype(np.float64)
    assert np.abs(got - expected).max() <= 1
    assert np.mean(got == expected) > 0.99
    assert not np.array_equal(upscale(net, lq), upscale(net, lq, tta=True))  # a random net is not equivariant


class MirrorBias(nn.Module):
    """x4 nearest upsampling plus a left-right asymmetric ramp: not equivariant to the horizontal flip."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(x * self.gain, scale_factor=4, mode="nearest")
        return up + 0.2 * torch.linspace(0, 1, up.shape[-1])  # brighter towards the right edge


def test_hflip_tta_is_the_mean_of_the_input_and_its_mirror() -> None:
    lq = np.random.default_rng(2).integers(0, 256, (9, 13, 3), dtype=np.uint8)  # odd sizes
    plain_net = Upsample4()  # commutes with horizontal flips: hflip must not change it
    assert np.array_equal(upscale(plain_net, lq, tta="hflip"), upscale(plain_net, lq))
    net = MirrorBias()
    plain, hflip = upscale(net, lq).astype(float), upscale(net, lq, tta="hflip").astype(float)
    nearest = np.repeat(np.repeat(lq, 4, 0), 4, 1).astype(float) / 255
    expected = np.round(np.clip(nearest + 0.1, 0, 1) * 255)  # the ramp and its mirror average to 0.1
    assert np.abs(hflip - expected).max() <= 1 and not np.array_equal(plain, hflip)
    assert np.array_equal(upscale(net, lq, tta=True), upscale(net, lq, tta="x8"))
    with pytest.raises(FacesrError, match="'hflip' or 'x8'"):
        upscale(net, lq, tta="vflip")


@pytest.mark.slow
def test_tta_not_worse_on_a_trained_quick_run(quick_run: Path, mini_root: Path) -> None:
    net = load_generator(quick_run)
    tables = evaluate_variants(net, mini_root, ttas=(None, "hflip", "x8"))  # one pass: 8 forwards per image
    plain = tables[None]["psnr"]
    for tta in ("hflip", "x8"):
        ens = tables[tta]["psnr"]
        assert ens.iloc[-1] >= plain.iloc[-1] - 0.05, tta
        assert np.isfinite(ens).all() and not ens.equals(plain), tta


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_table_and_summary(mini_root: Path, tmp_path: Path) -> None:
    gt_names = [p.name for p in list_images(mini_root / "val" / "GT")]
    table = evaluate(_tiny_net(), mini_root)
    assert list(table.columns) == ["name", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim"]
    assert len(table) == len(gt_names) + 1
    assert list(table["name"]) == [*gt_names, "mean"]
    for col in table.columns[1:]:
        assert table[col].iloc[-1] == pytest.approx(table[col].iloc[:-1].mean())
    assert np.isfinite(table["psnr"]).all() and (table["bicubic_psnr"] > 15).all()
    text = evaluation_summary(table)
    assert "bicubic" in text and f"{table['psnr'].iloc[-1]:.4f}" in text

    # a folder of SR images identical to GT: PSNR inf per image and in the mean, SSIM 1
    sr_dir = tmp_path / "sr"
    shutil.copytree(mini_root / "val" / "GT", sr_dir)
    perfect = evaluate(sr_dir, mini_root)
    assert np.isinf(perfect["psnr"]).all() and perfect["ssim"].iloc[-1] == pytest.approx(1.0)
    assert np.allclose(perfect["bicubic_psnr"], table["bicubic_psnr"])
    assert "inf" in evaluation_summary(perfect)
    with pytest.raises(FacesrError, match="tta"):
        evaluate(sr_dir, mini_root, tta=True)
    (sr_dir / gt_names[2]).unlink()
    with pytest.raises(FacesrError, match=Path(gt_names[2]).stem):
        evaluate(sr_dir, mini_root)
    with pytest.raises(FacesrError, match="val"):
        evaluate(sr_dir, tmp_path)


def test_evaluate_variants_one_pass_gives_the_plain_hflip_and_x8_tables(mini_root: Path, tmp_path: Path) -> None:
    net = _tiny_net(seed=5)
    calls: list[int] = []
    net.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    every = evaluate_variants(net, mini_root)  # 3 val images: one batch
    assert list(every) == [None, "hflip", "x8"] and calls == [3] * 8  # plain and hflip reuse x8's passes
    calls.clear()
    separate = {tta: evaluate(net, mini_root, tta=tta) for tta in (None, "hflip", "x8")}
    assert calls == [3] * (1 + 2 + 8)
    for tta in (None, "hflip", "x8"):
        assert every[tta].equals(separate[tta])  # exactly the same numbers
    assert not every[None]["psnr"].equals(every["x8"]["psnr"])
    assert not every[None]["psnr"].equals(every["hflip"]["psnr"])
    # the spellings of the first TTA: keyed as given, each ensemble scored once
    old = evaluate_variants(net, mini_root, ttas=(False, True, None, "x8"))
    assert list(old) == [False, True] and old[False].equals(every[None]) and old[True].equals(every["x8"])
    assert evaluate_variants(net, mini_root, ttas=(False,))[False].equals(separate[None])
    with pytest.raises(FacesrError, match="hflip"):
        evaluate_variants(net, mini_root, ttas=("x4",))

    sr_dir = tmp_path / "sr"
    shutil.copytree(mini_root / "val" / "GT", sr_dir)
    assert np.isinf(evaluate_variants(sr_dir, mini_root, ttas=(False,))[False]["psnr"]).all()
    with pytest.raises(FacesrError, match="tta needs a network"):
        evaluate_variants(sr_dir, mini_root)
    with pytest.raises(FacesrError, match="ttas is empty"):
        evaluate_variants(net, mini_root, ttas=())


def test_png_name_and_predict_into_a_new_nested_folder(mini_root: Path, tmp_path: Path) -> None:
    assert png_name("00001.jpg") == "00001.png" and png_name("a.b.PNG") == "a.b.png"
    out = tmp_path / "new" / "nested"  # made by the PNG writer with the first image
    paths = predict(_tiny_net(), mini_root / "test" / "LQ", out, device="cpu")
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in paths] == [
        png_name(p.name) for p in list_images(mini_root / "test" / "LQ")
    ]


# ----------------------------------------------------------------------------- load_generator


def test_load_generator_from_kit_checkpoint_and_run_folder(tmp_path: Path) -> None:
    net_g, net_g_ema, net_best = _tiny_net(1), _tiny_net(2), _tiny_net(4)
    config = {"name": "t", "generator": "msrresnet", "generator_args": {"mid_channels": 16, "num_blocks": 2}}
    ckpt = {"net_g": net_g.state_dict(), "net_g_ema": net_g_ema.state_dict(), "iter": 10, "config": config}
    run = tmp_path / "run"
    save_checkpoint(ckpt, run / "latest.pt")

    loaded = load_generator(run / "latest.pt")
    assert isinstance(loaded, MSRResNet) and not loaded.training
    assert _same_weights(loaded, net_g_ema)  # EMA preferred
    assert next(loaded.parameters()).device.type == "cpu"
    assert _same_weights(load_generator(run), net_g_ema)  # only latest.pt so far

    save_checkpoint({**ckpt, "net_g_ema": net_best.state_dict()}, run / "best.pt")
    assert _same_weights(load_generator(run), net_best)  # best.pt wins over latest.pt


def test_load_generator_infers_foreign_architectures(tmp_path: Path) -> None:
    msr = MSRResNet(mid_channels=16, num_blocks=3)
    loaded = load_generator(_save_mmedit(msr, tmp_path / "mmedit.pth"))
    assert isinstance(loaded, MSRResNet) and len(loaded.trunk_net) == 3 and _same_weights(loaded, msr)

    rrdb = RRDBNet(mid_channels=8, num_blocks=2, growth_channels=4)
    torch.save({"params": rrdb.state_dict(), "params_ema": rrdb.state_dict()}, tmp_path / "basicsr.pth")
    loaded = load_generator(tmp_path / "basicsr.pth")
    assert isinstance(loaded, RRDBNet) and _same_weights(loaded, rrdb)

    # original ESRGAN release names (xinntao/ESRGAN)
    prefixes = {
        "conv_body.": "trunk_conv.",
        "conv_up1.": "upconv1.",
        "conv_up2.": "upconv2.",
        "conv_hr.": "HRconv.",
    }
    original = {}
    for key, value in rrdb.state_dict().items():
        key = re.sub(r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2.", key)
        for old, new in prefixes.items():
            key = new + key[len(old) :] if key.startswith(old) else key
        original[key] = value
    assert "RRDB_trunk.0.RDB1.conv1.weight" in original and "trunk_conv.weight" in original
    torch.save(original, tmp_path / "esrgan.pth")
    assert _same_weights(load_generator(tmp_path / "esrgan.pth"), rrdb)


def test_load_generator_refusals(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(FacesrError, match="garbage.pt"):
        load_generator(garbage)
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "unknown.pt")
    with pytest.raises(FacesrError, match="unknown.pt"):
        load_generator(tmp_path / "unknown.pt")
    with pytest.raises(FacesrError, match="missing.pt"):
        load_generator(tmp_path / "missing.pt")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(FacesrError, match="empty_run"):
        load_generator(tmp_path / "empty_run")


# ----------------------------------------------------------------------------- CLI


def test_cli_predict_and_evaluate(mini_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = _save_mmedit(_tiny_net(), tmp_path / "g.pth")
    lq_dir = mini_root / "test" / "LQ"
    out = tmp_path / "out"
    assert main(["predict", str(ckpt), str(lq_dir), str(out)]) == 0
    assert len(list_images(out)) == len(list_images(lq_dir))

    csv = tmp_path / "eval.csv"
    assert main(["evaluate", str(ckpt), "--data", str(mini_root), "--csv", str(csv)]) == 0
    assert "bicubic" in capsys.readouterr().out
    lines = csv.read_text().splitlines()
    assert lines[0] == "name,psnr,ssim,bicubic_psnr,bicubic_ssim" and lines[-1].startswith("mean,")

    # --tta hflip and a bare --tta (x8) give the tables of evaluate(tta=...)
    net = load_generator(ckpt)
    for argv, tta in ((["--tta", "hflip"], "hflip"), (["--tta"], "x8")):
        assert main(["evaluate", str(ckpt), "--data", str(mini_root), "--csv", str(csv), *argv]) == 0
        expected = evaluate(net, mini_root, tta=tta)
        assert pd.read_csv(csv)["psnr"].iloc[-1] == pytest.approx(expected["psnr"].iloc[-1], abs=1e-9)
    assert main(["predict", str(ckpt), str(lq_dir), str(tmp_path / "hflip"), "--tta", "hflip"]) == 0
    first = list_images(lq_dir)[0]
    assert np.array_equal(read_image(tmp_path / "hflip" / png_name(first.name)),
                          upscale(net, read_image(first), tta="hflip"))


def test_cli_bad_input_exit_code_2(mini_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = _save_mmedit(_tiny_net(), tmp_path / "g.pth")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.png").write_bytes(b"user data")

    assert main(["predict", str(ckpt), str(empty), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "empty" in err and len(err.strip().splitlines()) == 1

    garbage = tmp_path / "broken.pt"
    garbage.write_bytes(b"\x00\x01 truncated")
    assert main(["predict", str(garbage), str(mini_root / "test" / "LQ"), str(out)]) == 2
    assert "broken.pt" in capsys.readouterr().err
    assert main(["evaluate", str(garbage), "--data", str(mini_root)]) == 2
    assert [p.name for p in out.iterdir()] == ["keep.png"] and (out / "keep.png").read_bytes() == b"user data"
