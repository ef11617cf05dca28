"""facesr.inference.submission: the leaderboard zip (layout, refusals) and the local scorer; their CLI commands."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from facesr.cli import main
from facesr.data.images import list_images, read_image, write_png
from facesr.errors import FacesrError
from facesr.inference.predict import evaluate, predict
from facesr.inference.submission import ZIP_FOLDER, package_submission, score
from facesr.models import MSRResNet, RRDBNet, count_parameters, param_limit


def _tiny_net() -> MSRResNet:
    torch.manual_seed(0)
    return MSRResNet(mid_channels=16, num_blocks=2).eval()


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny nets on a shared 2-core machine run far faster on one thread than two contending ones."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _save_mmedit(net: nn.Module, path: Path) -> Path:
    torch.save({"meta": {}, "state_dict": {f"generator.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


@pytest.fixture(scope="module")
def predicted(mini_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SR folders of a tiny random net for test/LQ and val/LQ (read-only by convention)."""
    base = tmp_path_factory.mktemp("predicted")
    net = _tiny_net()
    predict(net, mini_root / "test" / "LQ", base / "test", device="cpu")
    predict(net, mini_root / "val" / "LQ", base / "val", device="cpu")
    return {"test": base / "test", "val": base / "val"}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- package_submission


def test_zip_layout(mini_root: Path, predicted: dict[str, Path], tmp_path: Path) -> None:
    lq_dir = mini_root / "test" / "LQ"
    zip_path = package_submission(predicted["test"], tmp_path / "sub" / "submission.zip", _tiny_net(), lq_dir)
    assert zip_path == tmp_path / "sub" / "submission.zip"
    assert [p.name for p in zip_path.parent.iterdir()] == ["submission.zip"]  # no temporary file left
    names = [p.stem + ".png" for p in list_images(lq_dir)]
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.namelist() == [f"{ZIP_FOLDER}/{n}" for n in names]
        for n in names:
            data = zf.read(f"{ZIP_FOLDER}/{n}")
            assert data == (predicted["test"] / n).read_bytes()
            with Image.open(io.BytesIO(data)) as img:
                assert (img.format, img.mode, img.size) == ("PNG", "RGB", (512, 512))


def test_zip_refuses_over_budget_generators(
    mini_root: Path, predicted: dict[str, Path], tmp_path: Path
) -> None:
    lq_dir = mini_root / "test" / "LQ"
    with torch.device("meta"):  # exact parameter counts without allocating weights
        msr21, rrdb = MSRResNet(num_blocks=21), RRDBNet()
    for net in (msr21, rrdb):
        n = count_parameters(net)
        with pytest.raises(FacesrError) as info:
            package_submission(predicted["test"], tmp_path / "s.zip", net, lq_dir)
        assert f"{n:,}" in str(info.value) and f"{param_limit(2022):,}" in str(info.value)
    assert not (tmp_path / "s.zip").exists()
    with torch.device("meta"):
        assert count_parameters(MSRResNet(num_blocks=20)) <= param_limit(2022)


def test_zip_refuses_missing_extra_and_wrong_size(
    mini_root: Path, predicted: dict[str, Path], tmp_path: Path
) -> None:
    lq_dir, net, zip_path = mini_root / "test" / "LQ", _tiny_net(), tmp_path / "s.zip"
    names = [p.name for p in list_images(predicted["test"])]

    missing = _copy(predicted["test"], tmp_path / "missing")
    (missing / names[0]).unlink()
    (missing / names[2]).unlink()
    with pytest.raises(FacesrError, match=rf"2 of {len(names)} SR images missing.*{names[0]}, {names[2]}"):
        package_submission(missing, zip_path, net, lq_dir)

    extra = _copy(predicted["test"], tmp_path / "extra")
    write_png(extra / "99999.png", np.zeros((512, 512, 3), np.uint8))
    with pytest.raises(FacesrError, match=r"1 extra images.*99999\.png"):
        package_submission(extra, zip_path, net, lq_dir)

    small = _copy(predicted["test"], tmp_path / "small")
    write_png(small / names[1], np.zeros((256, 256, 3), np.uint8))
    with pytest.raises(FacesrError, match=rf"{names[1]} is a 256x256 RGB PNG"):
        package_submission(small, zip_path, net, lq_dir)

    gray = _copy(predicted["test"], tmp_path / "gray")
    Image.new("L", (512, 512)).save(gray / names[0])
    with pytest.raises(FacesrError, match=rf"{names[0]} is a 512x512 L PNG"):
        package_submission(gray, zip_path, net, lq_dir)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FacesrError, match="empty"):
        package_submission(predicted["test"], zip_path, net, empty)
    assert not zip_path.exists()


def test_zip_never_overwritten_without_permission(
    mini_root: Path, predicted: dict[str, Path], tmp_path: Path
) -> None:
    lq_dir, net = mini_root / "test" / "LQ", _tiny_net()
    zip_path = tmp_path / "s.zip"
    zip_path.write_bytes(b"an earlier submission")
    with pytest.raises(FacesrError, match="--overwrite"):
        package_submission(predicted["test"], zip_path, net, lq_dir)
    assert zip_path.read_bytes() == b"an earlier submission"
    package_submission(predicted["test"], zip_path, net, lq_dir, overwrite=True)
    assert zipfile.is_zipfile(zip_path)


# ----------------------------------------------------------------------------- score


def _psnr_reference(sr_dir: Path, gt_dir: Path) -> list[float]:
    out = []
    for gt_path in list_images(gt_dir):
        diff = read_image(sr_dir / gt_path.name).astype(np.float64) - read_image(gt_path)
        out.append(10 * np.log10(255.0**2 / np.mean(diff**2)))
    return out


def test_score_folder_and_zip(mini_root: Path, predicted: dict[str, Path], tmp_path: Path) -> None:
    gt_dir, lq_dir = mini_root / "val" / "GT", mini_root / "val" / "LQ"
    result = score(predicted["val"], gt_dir)
    expected = _psnr_reference(predicted["val"], gt_dir)
    assert result.count == len(expected) == 3
    assert list(result.per_image) == [p.name for p in list_images(gt_dir)]
    assert list(result.per_image.values()) == pytest.approx(expected)
    assert result.mean_psnr == pytest.approx(np.mean(expected))
    assert str(result) == f"mean PSNR {np.mean(expected):.4f} dB over 3 images"
    ranked = sorted(zip(expected, result.per_image, strict=True), key=lambda t: t[0])
    assert result.ranked() == [(name, pytest.approx(v)) for v, name in ranked]
    worst, best = result.summary().splitlines()[1:]
    assert worst == f"  worst: {', '.join(f'{n} {v:.4f} dB' for v, n in ranked)}"
    assert best == f"  best:  {', '.join(f'{n} {v:.4f} dB' for v, n in ranked[::-1])}"
    assert result.summary(n=1).splitlines()[1] == f"  worst: {ranked[0][1]} {ranked[0][0]:.4f} dB"
    table = evaluate(predicted["val"], mini_root)  # the same numbers as evaluate
    assert table["psnr"].iloc[-1] == pytest.approx(result.mean_psnr)

    zip_path = package_submission(predicted["val"], tmp_path / "val.zip", _tiny_net(), lq_dir)
    assert score(zip_path, gt_dir).per_image == result.per_image


def test_score_identical_is_inf(mini_root: Path, tmp_path: Path) -> None:
    gt_dir = mini_root / "val" / "GT"
    same = _copy(gt_dir, tmp_path / "same")
    result = score(same, gt_dir)
    assert all(np.isinf(v) for v in result.per_image.values()) and np.isinf(result.mean_psnr)
    assert str(result).startswith("mean PSNR inf dB over 3 images")
    # one image off: the mean stays inf (documented: inf is reported, never capped)
    img = read_image(same / "00000.png")
    img[0, 0] ^= 1
    write_png(same / "00000.png", img)
    result = score(same, gt_dir)
    assert np.isfinite(result.per_image["00000.png"]) and np.isinf(result.mean_psnr)


def test_score_refusals(mini_root: Path, predicted: dict[str, Path], tmp_path: Path) -> None:
    gt_dir = mini_root / "val" / "GT"
    names = [p.name for p in list_images(gt_dir)]
    partial = _copy(predicted["val"], tmp_path / "partial")
    (partial / names[2]).unlink()
    write_png(partial / "extra_one.png", np.zeros((512, 512, 3), np.uint8))
    with pytest.raises(
        FacesrError, match=rf"missing in SR 1 \({names[2]}\).*extra in SR 1 \(extra_one\.png\)"
    ):
        score(partial, gt_dir)

    two_folders = tmp_path / "two.zip"
    with zipfile.ZipFile(two_folders, "w") as zf:
        for i, n in enumerate(names):
            zf.write(predicted["val"] / n, arcname=f"{'ab'[i % 2]}/{n}")
    with pytest.raises(FacesrError, match="exactly one folder"):
        score(two_folders, gt_dir)
    with pytest.raises(FacesrError, match="nothing_here"):
        score(tmp_path / "nothing_here", gt_dir)


# ----------------------------------------------------------------------------- CLI


def test_cli_predict_zip_and_score(mini_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = _save_mmedit(_tiny_net(), tmp_path / "g.pth")
    lq_dir, out, zip_path = mini_root / "val" / "LQ", tmp_path / "out", tmp_path / "sub.zip"
    assert main(["predict", str(ckpt), str(lq_dir), str(out), "--zip", str(zip_path)]) == 0
    assert zipfile.is_zipfile(zip_path)
    capsys.readouterr()
    assert main(["score", str(zip_path), str(mini_root / "val" / "GT")]) == 0
    printed = capsys.readouterr().out.splitlines()
    result = score(zip_path, mini_root / "val" / "GT")
    (worst, w_psnr), (best, b_psnr) = result.ranked()[0], result.ranked()[-1]
    assert printed[0] == f"mean PSNR {result.mean_psnr:.4f} dB over 3 images"  # 4 decimals: the third differs
    assert printed[1].startswith(f"  worst: {worst} {w_psnr:.4f} dB") and printed[2].startswith(f"  best:  {best} "
                                                                                             f"{b_psnr:.4f} dB")

    assert main(["evaluate", str(ckpt), "--data", str(mini_root), "--csv", str(tmp_path / "e.csv")]) == 0
    printed = capsys.readouterr().out
    table = evaluate(_tiny_net(), mini_root).set_index("name")
    images = table.drop(index="mean")
    assert f"model             {table.loc['mean', 'psnr']:9.4f}" in printed
    assert f"worst image: {images['psnr'].idxmin()} ({images['psnr'].min():.4f} dB)" in printed
    assert f"best image:  {images['psnr'].idxmax()} ({images['psnr'].max():.4f} dB)" in printed

    before = zip_path.read_bytes()
    assert main(["predict", str(ckpt), str(lq_dir), str(out), "--zip", str(zip_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert zip_path.read_bytes() == before
    assert main(["predict", str(ckpt), str(lq_dir), str(out), "--zip", str(zip_path), "--overwrite"]) == 0

    capsys.readouterr()
    assert main(["score", str(out), str(mini_root / "test" / "LQ")]) == 2  # 512x512 SR vs 128x128 "GT"
    assert capsys.readouterr().err.startswith("error:")


def test_cli_refuses_over_budget_net_before_predicting(
    mini_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ckpt = _save_mmedit(RRDBNet(mid_channels=64, num_blocks=3), tmp_path / "rrdb.pth")  # ~2.6M parameters
    out = tmp_path / "out"
    code = main(
        ["predict", str(ckpt), str(mini_root / "test" / "LQ"), str(out), "--zip", str(tmp_path / "s.zip")]
    )
    assert code == 2
    assert f"{param_limit(2022):,}" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "s.zip").exists()
