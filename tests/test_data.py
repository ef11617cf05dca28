"""facesr.data: image I/O (images), the data-set checker (check) and the three data sets (datasets)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from facesr.cli import main
from facesr.data.check import check_dataset, find_data_root, real_world_dir
from facesr.data.datasets import TestDataset, TrainDataset, ValDataset, size_text
from facesr.data.images import list_images, read_image, write_png
from facesr.errors import FacesrError


def _snapshot(root: Path) -> list[tuple[str, int, int]]:
    """Every path under root with size and mtime: any write or new file changes it."""
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


@pytest.fixture()
def data_copy(sample_root: Path, tmp_path: Path) -> Path:
    """A private copy of the sample data that a test may break."""
    return Path(shutil.copytree(sample_root, tmp_path / "data"))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _make_odd_files(folder: Path) -> None:
    """Turn 00002-00004 into RGBA, gray and 16-bit versions of themselves (still 512x512)."""
    rgb = read_image(folder / "00002.png")
    cv2.imwrite(str(folder / "00002.png"), np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 7, np.uint8)]))
    cv2.imwrite(str(folder / "00003.png"), read_image(folder / "00003.png")[:, :, 1])
    cv2.imwrite(
        str(folder / "00004.png"), read_image(folder / "00004.png")[:, :, ::-1].astype(np.uint16) * 257
    )


# ------------------------------------------------------------------------------------------ image files


def test_read_write_roundtrip_keeps_rgb_order(tmp_path: Path) -> None:
    img = np.zeros((6, 5, 3), np.uint8)
    img[..., 0] = 200  # red
    path = write_png(tmp_path / "a" / "b" / "x.png", img)  # creates the parent folders
    assert np.array_equal(read_image(path), img)
    assert cv2.imread(str(path))[0, 0].tolist() == [0, 0, 200]  # stored as a normal PNG (BGR on disk)
    with pytest.raises(ValueError, match="float32"):
        write_png(tmp_path / "f.png", img.astype(np.float32))


def test_read_image_conversions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    gray = rgb[:, :, 0]
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    cv2.imwrite(str(tmp_path / "rgba.png"), np.dstack([rgb[:, :, ::-1], np.zeros_like(gray)]))
    assert np.array_equal(read_image(tmp_path / "gray.png"), np.dstack([gray] * 3))
    # Alpha is dropped, not composited: a fully transparent pixel keeps its colour.
    assert np.array_equal(read_image(tmp_path / "rgba.png"), rgb)
    values = np.array([[0, 128, 129, 385, 386, 257 * 100, 65535, 257 * 254 + 129]], np.uint16)
    expected = np.round(values / 257).astype(np.uint8)
    assert expected.tolist() == [[0, 0, 1, 1, 2, 100, 255, 255]]
    cv2.imwrite(str(tmp_path / "g16.png"), values)
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.dstack([values] * 3))
    for name in ("g16.png", "rgb16.png"):
        out = read_image(tmp_path / name)
        assert out.dtype == np.uint8 and out.shape == (1, 8, 3)
        assert np.array_equal(out[..., 2], expected)


def test_read_image_corrupt_or_missing_names_the_file(tmp_path: Path) -> None:
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    write_png(tmp_path / "bad.png", img)
    _truncate(tmp_path / "bad.png")
    cv2.imwrite(str(tmp_path / "bad.jpg"), img)
    _truncate(tmp_path / "bad.jpg")
    for name in ("bad.png", "bad.jpg", "missing.png"):
        with pytest.raises(FacesrError, match=name):
            read_image(tmp_path / name)


def test_list_images_sorted_filtered(tmp_path: Path) -> None:
    for name in ("b.png", "a.JPG", "c.webp", "d.tif", "e.bmp", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.webp", "d.tif", "e.bmp"]
    with pytest.raises(FacesrError, match="nowhere"):
        list_images(tmp_path / "nowhere")


def test_find_data_root(sample_root: Path, tmp_path: Path) -> None:
    assert find_data_root(sample_root) == sample_root
    nested = tmp_path / "unpacked"
    shutil.copytree(sample_root, nested / "FFHQ")
    assert find_data_root(nested) == nested / "FFHQ"  # archive unpacked one level too deep
    (tmp_path / "partial" / "train" / "GT").mkdir(parents=True)
    with pytest.raises(FacesrError, match=r"missing folder\(s\) val/LQ, val/GT; .*sample-data"):
        find_data_root(tmp_path / "partial")  # test/LQ is not needed to train
    shutil.rmtree(nested / "FFHQ" / "test" / "LQ")
    assert find_data_root(nested) == nested / "FFHQ"
    with pytest.raises(FacesrError, match="does not exist"):
        find_data_root(tmp_path / "nothing")


# --------------------------------------------------------------------------------------------- checker


def test_check_dataset_ok_on_sample_data(sample_root: Path, capsys: pytest.CaptureFixture) -> None:
    before = _snapshot(sample_root)
    report = check_dataset(sample_root, edition=2022)
    subset = ("image counts differ from the 2022 edition's (train/GT 24 of 4000, val/LQ 8 of 400, val/GT 8 of 400, "
              "test/LQ 8 of 400): a subset, fine for trying things out")
    assert report.ok and not report.errors and report.warnings == [subset]
    assert report.counts == {"train/GT": 24, "val/LQ": 8, "val/GT": 8, "test/LQ": 8, "test_real": 5}
    assert report.sizes["train/GT"] == {(512, 512): 24} and report.sizes["test/LQ"] == {(128, 128): 8}
    assert report.sizes["test_real"] == {(53, 37): 1, (45, 61): 1, (83, 97): 1, (71, 45): 1, (101, 129): 1}
    text = str(report)
    assert "train/GT" in text and text.splitlines()[-1].startswith("verdict: OK")
    real_line = next(line for line in text.splitlines() if line.strip().startswith("test_real"))
    assert "5 images" in real_line and "37x53" in real_line and "no GT" in real_line
    assert main(["check-data", str(sample_root)]) == 0
    assert "verdict: OK" in capsys.readouterr().out
    assert _snapshot(sample_root) == before


@pytest.mark.parametrize(("test_lq", "full_decode"), [("missing", False), ("empty", True)])
def test_check_dataset_reports_every_problem_at_once(
    data_copy: Path, test_lq: str, full_decode: bool, capsys
) -> None:
    gt = data_copy / "train" / "GT"
    _truncate(gt / "00000.png")
    damaged = bytearray((gt / "00005.png").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one damaged byte inside the image data
    (gt / "00005.png").write_bytes(bytes(damaged))
    write_png(gt / "00001.png", np.zeros((300, 300, 3), np.uint8))
    _make_odd_files(gt)
    (data_copy / "val" / "GT" / "00007.png").rename(data_copy / "val" / "GT" / "00099.png")
    write_png(data_copy / "val" / "LQ" / "00000.png", np.zeros((100, 100, 3), np.uint8))
    shutil.rmtree(data_copy / "test" / "LQ")
    if test_lq == "empty":
        (data_copy / "test" / "LQ").mkdir()
    report = check_dataset(data_copy, full_decode=full_decode)
    errors, warns = "\n".join(report.errors), "\n".join(report.warnings)
    assert "train/GT: 2 corrupt or unreadable file(s): 00000.png, 00005.png" in errors
    assert "train/GT: 1 image(s) are not 512x512 (first: 00001.png is 300x300)" in errors
    assert "val/LQ: 1 image(s) are not 128x128 (first: 00000.png is 100x100)" in errors
    assert "not a quarter of their GT (first: 00000.png, LQ 100x100, GT 512x512)" in errors
    assert "LQ file(s) without a GT of the same name: 00007.png" in errors
    assert "GT file(s) without an LQ of the same name: 00099.png" in errors
    if test_lq == "missing":  # training does not need it: a warning naming what does
        assert "missing folder test/LQ" in warns and "the hand-in need it" in warns
    else:
        assert "folder test/LQ is empty" in errors
    n_errors, n_warnings = (6, 5) if test_lq == "missing" else (7, 4)
    assert len(report.errors) == n_errors
    assert "1 alpha image(s) will be converted to 8-bit RGB: 00002.png" in warns
    assert "1 gray image(s) will be converted to 8-bit RGB: 00003.png" in warns
    assert "1 16-bit image(s) will be converted to 8-bit RGB: 00004.png" in warns
    assert report.counts["train/GT"] == 24 and report.counts["test/LQ"] == 0
    assert str(report).splitlines()[-1].startswith(f"verdict: FAILED: {n_errors} error(s), {n_warnings} warning(s)")
    before = _snapshot(data_copy)
    assert main(["check-data", str(data_copy)]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert _snapshot(data_copy) == before


def test_test_real_is_optional_reported_and_checked(data_copy: Path, tmp_path: Path) -> None:
    assert real_world_dir(data_copy) == data_copy / "test_real"
    nested = tmp_path / "unpacked"
    shutil.copytree(data_copy, nested / "FFHQ")
    assert real_world_dir(nested) == nested / "FFHQ" / "test_real"  # archive unpacked one level too deep
    shutil.rmtree(data_copy / "test_real")
    assert real_world_dir(data_copy) is None
    report = check_dataset(data_copy)  # absent: never a problem, one line says so
    assert report.ok and "test_real" not in str(report.warnings) and "test_real" not in report.counts
    assert "test_real" in str(report) and "not present" in str(report)
    (data_copy / "test_real").mkdir()
    report = check_dataset(data_copy)
    assert report.ok and report.counts["test_real"] == 0 and "test_real is empty" in "\n".join(report.warnings)
    write_png(data_copy / "test_real" / "a.png", np.zeros((53, 37, 3), np.uint8))  # any size is fine
    write_png(data_copy / "test_real" / "b.png", np.zeros((301, 220, 3), np.uint8))
    (data_copy / "test_real" / "c.png").write_bytes(b"not a png")
    report = check_dataset(data_copy)
    assert report.errors == ["test_real: 1 corrupt or unreadable file(s): c.png"]
    assert report.sizes["test_real"] == {(53, 37): 1, (301, 220): 1}
    (data_copy / "test_real" / "c.png").unlink()
    real = TestDataset(data_copy / "test_real")  # what predict reads: images of any size
    assert real.names == ["a.png", "b.png"] and real[1]["lq"].shape == (3, 301, 220)


def test_test_real_with_one_lq_level_inside_is_found(data_copy: Path) -> None:
    """Some copies of the data hold the real-world images in test_real/LQ/: found, checked and shown the same."""
    from facesr.report.steps import predict_real_world

    real = data_copy / "test_real"
    names = sorted(p.name for p in real.glob("*.png"))
    (real / "LQ").mkdir()
    for name in names:
        (real / name).rename(real / "LQ" / name)
    assert real_world_dir(data_copy) == real / "LQ"
    report = check_dataset(data_copy)
    assert report.ok and report.counts["test_real"] == len(names)
    net = torch.nn.Upsample(scale_factor=4)  # any x4 network: what matters is where the images are found
    paths = predict_real_world(net, data_copy, data_copy.parent / "run")
    assert sorted(p.name for p in paths) == names


def test_check_data_of_an_edition_2024_layout(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The 2024 data: six real-world faces 01.png-06.png, the BasicSR meta_info list; differences are warnings."""
    from facesr.data.sample import make_sample_data

    root = make_sample_data(tmp_path / "data", edition=2024)
    assert sorted(p.name for p in (root / "test_real").iterdir()) == [f"0{i}.png" for i in range(1, 7)]
    listed = [f"{i:05d}.png (512,512,3)" for i in range(24)]
    (root / "meta_info_FFHQ5000sub_GT.txt").write_text("\n".join(listed) + "\n")
    report = check_dataset(root, edition=2024)
    assert report.ok and report.counts["test_real"] == 6 and report.sizes["test_real"] == {(128, 128): 6}
    assert len(report.warnings) == 1 and "2024 edition's (train/GT 24 of 5000" in report.warnings[0]
    (root / "meta_info_FFHQ5000sub_GT.txt").write_text("\n".join([*listed, "04999.png (512,512,3)"]) + "\n")
    (root / "test_real" / "06.png").rename(root / "test_real" / "07.png")
    assert main(["check-data", str(root), "--edition", "2024"]) == 1
    out = capsys.readouterr().out
    assert "meta_info_FFHQ5000sub_GT.txt lists 25 GT files, 1 of them missing from train/GT: 04999.png" in out
    assert "test_real: the 2024 edition names them 01.png-06.png" in out
    report = check_dataset(root, edition=2022)  # the 2022 edition has no list and five real-world images
    assert report.ok and "test_real: 6 images, the 2022 edition released 5" in report.warnings
    (root / "meta_info_FFHQ5000sub_GT.txt").unlink()
    (root / "meta_info_FFHQ6000sub_GT.txt").write_text("\n".join(listed) + "\n")
    report = check_dataset(root, edition=2025)
    assert report.ok and any("2025 course yml still points at meta_info_FFHQ5000sub_GT.txt" in w
                             for w in report.warnings)


def test_check_dataset_missing_root(tmp_path: Path) -> None:
    report = check_dataset(tmp_path / "nope")
    assert not report.ok and "does not exist" in report.errors[0] and "FAILED" in str(report)


# -------------------------------------------------------------------------------------------- datasets


def _assert_item(item: dict, lq_size: int | None, gt_size: int) -> None:
    assert item["gt"].shape == (3, gt_size, gt_size) and item["gt"].dtype == torch.float32
    assert float(item["gt"].min()) >= 0.0 and float(item["gt"].max()) <= 1.0
    if lq_size is None:
        assert "lq" not in item
    else:
        assert item["lq"].shape == (3, lq_size, lq_size) and item["lq"].dtype == torch.float32
        assert float(item["lq"].min()) >= -1e-6 and float(item["lq"].max()) <= 1.0 + 1e-6


def test_train_dataset_shapes_and_determinism(sample_root: Path) -> None:
    before = _snapshot(sample_root)
    full = TrainDataset(sample_root / "train" / "GT")
    assert len(full) == 24
    item = full[3]
    _assert_item(item, 128, 512)
    assert item["name"] == "00003.png"
    _assert_item(TrainDataset(sample_root, gt_patch=128)[5], 32, 128)  # a data root works too
    draws = TrainDataset(sample_root, degrade=False, gt_patch=96)[5]  # the GPU path's: full GT and its draws
    _assert_item(draws, None, 512)
    assert draws["params"].shape == (9,) and draws["crop"].tolist() == [c - c % 4 for c in draws["crop"].tolist()]
    # int index -> rng((seed, index)); the same key gives the same item in a new instance.
    again = TrainDataset(sample_root / "train" / "GT")[(3, (0, 3))]
    assert torch.equal(item["lq"], again["lq"]) and torch.equal(item["gt"], again["gt"])
    a, b = full[(3, 1234)], full[(3, 1234)]
    assert torch.equal(a["lq"], b["lq"])
    assert not torch.equal(a["lq"], full[(3, 1235)]["lq"])
    assert not torch.equal(item["lq"], TrainDataset(sample_root, seed=1)[3]["lq"])
    with pytest.raises(IndexError):
        full[24]
    with pytest.raises(FacesrError, match="gt_patch"):
        TrainDataset(sample_root, gt_patch=130)
    assert _snapshot(sample_root) == before


def test_train_dataset_flip_and_crop_are_paired(sample_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import facesr.data.degradations

    # A degradation-free stand-in (plain area resize) makes LQ/GT alignment checkable pixel by pixel.
    def area(gt: np.ndarray, rng: np.random.Generator, settings=None) -> np.ndarray:
        return cv2.resize(gt, (128, 128), interpolation=cv2.INTER_AREA)

    monkeypatch.setattr(facesr.data.degradations, "degrade", area)
    gt_full = read_image(sample_root / "train" / "GT" / "00002.png").astype(np.float32) / 255.0
    lq_full = area(gt_full, None)
    flipped_seen = set()
    with_flip, without_flip = (
        TrainDataset(sample_root, gt_patch=64),
        TrainDataset(sample_root, gt_patch=64, flip=False),
    )
    gt_only = TrainDataset(sample_root, gt_patch=64, degrade=False)
    for seed in range(8):
        item, plain = with_flip[(2, seed)], without_flip[(2, seed)]
        is_flipped = not torch.equal(item["gt"], plain["gt"])
        flipped_seen.add(is_flipped)
        gt, lq = item["gt"].numpy().transpose(1, 2, 0), item["lq"].numpy().transpose(1, 2, 0)
        if is_flipped:  # both flipped together, nothing else changed
            assert torch.equal(item["gt"], plain["gt"].flip(-1)) and torch.equal(
                item["lq"], plain["lq"].flip(-1)
            )
            gt, lq = gt[:, ::-1], lq[:, ::-1]
        # Find the crop: the GT patch at (top, left), offsets multiples of 4; the LQ patch at (top/4, left/4).
        starts = gt_full[: 512 - 64 + 1 : 4, : 512 - 64 + 1 : 4]
        hits = [
            (4 * t, 4 * le)
            for t, le in zip(*np.nonzero(np.all(starts == gt[0, 0], axis=-1)), strict=True)
            if np.array_equal(gt, gt_full[4 * t : 4 * t + 64, 4 * le : 4 * le + 64])
        ]
        assert len(hits) == 1
        t, le = hits[0]
        assert np.array_equal(lq, lq_full[t // 4 : t // 4 + 16, le // 4 : le // 4 + 16])
        # Crop and flip do not depend on whether the LQ is made here: the GPU path's draws say the same.
        draws = gt_only[(2, seed)]
        assert draws["crop"].tolist() == [t, le] and bool(draws["flip"]) == is_flipped
    assert flipped_seen == {True, False}


def test_train_dataset_cache_and_workers(sample_root: Path, capsys: pytest.CaptureFixture) -> None:
    before = _snapshot(sample_root)
    plain = TrainDataset(sample_root, gt_patch=128)
    cached = TrainDataset(sample_root, gt_patch=128, cache=True)
    assert "caching 24 GT images in RAM: about 18.9 MB" in capsys.readouterr().out
    assert size_text(4000 * 512 * 512 * 3) == "3.1 GB"
    keys = [(i, 100 + i) for i in (0, 5, 9, 23)]
    one = next(iter(DataLoader(cached, batch_size=4, sampler=keys, num_workers=0)))
    two = next(iter(DataLoader(cached, batch_size=4, sampler=keys, num_workers=2)))
    ref = torch.stack([plain[k]["lq"] for k in keys])
    assert torch.equal(one["lq"], ref) and torch.equal(two["lq"], ref) and torch.equal(one["gt"], two["gt"])
    assert list(two["name"]) == ["00000.png", "00005.png", "00009.png", "00023.png"]
    assert _snapshot(sample_root) == before


def test_train_dataset_warns_once_and_names_bad_files(data_copy: Path) -> None:
    gt = data_copy / "train" / "GT"
    _make_odd_files(gt)
    before = _snapshot(data_copy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = TrainDataset(gt, degrade=False)
        items = [ds[i] for i in range(len(ds))]
    msgs = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(msgs) == 1 and "3 of 24 images are not 8-bit RGB" in msgs[0] and "00002.png" in msgs[0]
    assert all(it["gt"].shape == (3, 512, 512) for it in items)
    gray = items[3]["gt"]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert _snapshot(data_copy) == before
    _truncate(gt / "00010.png")  # header intact, data cut: found when the item is read
    with pytest.raises(FacesrError, match="00010.png"), pytest.warns(UserWarning):
        TrainDataset(gt, degrade=False)[10]
    write_png(gt / "00011.png", np.zeros((256, 256, 3), np.uint8))
    with pytest.raises(FacesrError, match="00011.png is 256x256"), pytest.warns(UserWarning, match="3 of 24"):
        TrainDataset(gt)


def test_val_and_test_datasets(sample_root: Path, data_copy: Path) -> None:
    before = _snapshot(sample_root)
    val = ValDataset(sample_root)
    assert len(val) == 8 and val.names == [f"{i:05d}.png" for i in range(8)]
    item = val[2]
    assert (
        item["name"] == "00002.png"
        and item["lq"].shape == (3, 128, 128)
        and item["gt"].shape == (3, 512, 512)
    )
    assert torch.equal(
        item["gt"], torch.from_numpy(read_image(sample_root / "val/GT/00002.png")).permute(2, 0, 1) / 255.0
    )
    test = TestDataset(sample_root / "test" / "LQ")
    assert len(test) == 8 and test[7]["name"] == "00007.png" and set(test[7]) == {"lq", "name"}
    assert test[7]["lq"].shape == (3, 128, 128) and len(TestDataset(sample_root)) == 8
    assert _snapshot(sample_root) == before

    (data_copy / "val" / "GT" / "00007.png").rename(data_copy / "val" / "GT" / "00099.png")
    with pytest.raises(FacesrError, match=r"LQ without GT: 00007.png.*GT without LQ: 00099.png"):
        ValDataset(data_copy)
    (data_copy / "val" / "GT" / "00099.png").rename(data_copy / "val" / "GT" / "00007.png")
    write_png(data_copy / "val" / "LQ" / "00001.png", np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(FacesrError, match="00001.png is 100x100"):
        ValDataset(data_copy / "val")
    shutil.rmtree(data_copy / "test" / "LQ")
    (data_copy / "test" / "LQ").mkdir()
    with pytest.raises(FacesrError, match="holds no images"):
        TestDataset(data_copy / "test" / "LQ")
