"""facesr.data.sample: the bundled sample set in the course layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import facesr
from facesr.cli import main
from facesr.data.images import list_images, read_image
from facesr.data.sample import (
    COUNTS,
    SAMPLE_VERSION,
    SEED,
    default_sample_root,
    ensure_sample_data,
    make_sample_data,
    real_world_names,
)
from facesr.errors import FacesrError

EXPECTED = {"train/GT": (24, 512), "val/LQ": (8, 128), "val/GT": (8, 512), "test/LQ": (8, 128)}
REAL_SIZES = [(53, 37), (45, 61), (83, 97), (71, 45), (101, 129)]  # test_real/ (height, width): odd, not square


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_sizes_and_readme(sample_root: Path) -> None:
    for sub, (count, size) in EXPECTED.items():
        files = list_images(sample_root / sub)
        assert [p.name for p in files] == [f"{i:05d}.png" for i in range(count)]
        for p in files:
            raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)  # 8-bit, 3 channels on disk
            assert raw.dtype == np.uint8 and raw.shape == (size, size, 3), p
    assert not (sample_root / "test" / "GT").exists()
    readme = (sample_root / "README.md").read_text()
    assert "NOT FFHQ" in readme and "smoke tests" in readme
    for sub, count in (*((sub, EXPECTED[sub][0]) for sub in ("train/GT", "val/GT", "test/LQ")), ("test_real", 5)):
        for i in range(count):
            assert f"| {sub}/{i:05d}.png |" in readme
    # The two real faces come first.
    assert "astronaut" in readme.split("| train/GT/00000.png |")[1].splitlines()[0]
    assert "grace_hopper" in readme.split("| train/GT/00001.png |")[1].splitlines()[0]


def test_counts_match_the_layout() -> None:
    assert list(COUNTS) == ["train/GT", "val", "test"]
    assert [COUNTS[k] for k in COUNTS] == [EXPECTED[sub][0] for sub in ("train/GT", "val/GT", "test/LQ")]
    assert real_world_names(2022) == [f"{i:05d}.png" for i in range(5)]
    assert real_world_names(2023) == [f"00{i}.png" for i in range(1, 7)]
    assert real_world_names(2024) == [f"0{i}.png" for i in range(1, 7)]
    assert len(real_world_names(2025)) == 6


def test_real_world_lq_are_odd_sized_degraded_faces(sample_root: Path) -> None:
    files = list_images(sample_root / "test_real")
    assert [p.name for p in files] == [f"{i:05d}.png" for i in range(5)]
    assert [read_image(p).shape[:2] for p in files] == REAL_SIZES
    readme = (sample_root / "README.md").read_text()
    for p in files:
        line = readme.split(f"| test_real/{p.name} |")[1].splitlines()[0]
        assert "not aligned" in line and "JPEG quality" in line and ("astronaut" in line or "grace_hopper" in line)
        img = read_image(p).astype(np.float64)
        # degraded, yet a photo: JPEG blocks and noise leave no flat or saturated image
        assert 20 < img.mean() < 235 and img.std() > 10, p
    # not aligned like the val faces: no test_real image is a resize of a val LQ
    val = [read_image(p) for p in list_images(sample_root / "val" / "LQ")]
    for p in files:
        img = read_image(p)
        resized = [cv2.resize(v, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_AREA) for v in val]
        assert min(float(np.abs(r.astype(float) - img).mean()) for r in resized) > 10, p


def test_val_gt_distinct_from_train(sample_root: Path) -> None:
    train = [read_image(p).astype(np.float32) for p in list_images(sample_root / "train" / "GT")]
    for p in list_images(sample_root / "val" / "GT"):
        val = read_image(p).astype(np.float32)
        assert min(float(np.abs(val - t).mean()) for t in train) > 5.0, p


def test_val_lq_is_the_course_degradation_of_val_gt(sample_root: Path) -> None:
    from facesr.data.degradations import degrade

    for i in (0, 5):
        gt = read_image(sample_root / "val" / "GT" / f"{i:05d}.png").astype(np.float32) / 255.0
        lq = degrade(gt, np.random.default_rng((SEED, 1, i)))
        expected = np.clip(np.rint(lq * 255.0), 0, 255).astype(np.uint8)
        assert np.array_equal(read_image(sample_root / "val" / "LQ" / f"{i:05d}.png"), expected)


def test_deterministic_and_ensure(sample_root: Path, tmp_path: Path) -> None:
    built = ensure_sample_data(tmp_path / "sample")  # missing -> built (via a temporary sibling)
    assert _files(built) == _files(sample_root)  # two builds are byte-identical
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample"]  # no temporary folder left behind
    stamp = (built / "train" / "GT" / "00000.png").stat().st_mtime_ns
    assert ensure_sample_data(built) == built  # complete -> left alone
    assert (built / "train" / "GT" / "00000.png").stat().st_mtime_ns == stamp
    (built / "val" / "LQ" / "00003.png").unlink()
    ensure_sample_data(built)  # incomplete copy of ours -> completed
    assert _files(built) == _files(sample_root)
    for p in (built / "test_real").iterdir():  # a version-1 copy has no test_real/: rebuilt with it
        p.unlink()
    (built / "test_real").rmdir()
    ensure_sample_data(built)
    assert _files(built) == _files(sample_root)
    readme = built / "README.md"
    readme.write_text(readme.read_text().replace(f"version {SAMPLE_VERSION}.", "version 0."))
    (built / "val" / "GT" / "00002.png").write_bytes(b"made by an older kit")
    (built / "notes.txt").write_text("mine")
    ensure_sample_data(built)  # outdated copy of ours -> rebuilt, other files kept
    assert (built / "notes.txt").read_text() == "mine"
    (built / "notes.txt").unlink()
    assert _files(built) == _files(sample_root)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("mine")
    with pytest.raises(FacesrError, match="not empty"):
        ensure_sample_data(foreign)
    assert (foreign / "thesis.txt").read_text() == "mine"


def test_refuses_non_empty_folder_and_overwrite_keeps_other_files(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(FacesrError, match="not empty.*overwrite"):
        make_sample_data(out)
    assert main(["sample-data", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    (out / "train" / "GT").mkdir(parents=True)
    (out / "train" / "GT" / "00000.png").write_bytes(b"stale")
    assert main(["sample-data", str(out), "--overwrite"]) == 0
    assert (out / "keep.txt").read_text() == "user file"
    assert read_image(out / "train" / "GT" / "00000.png").shape == (512, 512, 3)
    assert len(list_images(out / "train" / "GT")) == 24
    with pytest.raises(FacesrError, match="is a file"):
        make_sample_data(out / "keep.txt")


def test_default_sample_root_is_the_repo_data_folder() -> None:
    repo = Path(facesr.__file__).resolve().parents[2]
    assert default_sample_root() == repo / "data" / "sample"
