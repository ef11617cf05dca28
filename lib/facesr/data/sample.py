"""A small sample data set in the course layout of an edition, built offline from images bundled with the
dependencies (:mod:`facesr.data.sample_images`).

It is NOT FFHQ: two real faces aligned the way FFHQ aligns faces, plus crops of other bundled photos. It
exists for smoke tests and demos only. Each edition gets its own copy (``data/sample`` for 2022,
``data/sample-YYYY`` for the others): its val and test LQ are made by the edition's degradation (the course
degradation for 2022/2023, the second-order one for 2024/2025) under fixed seeds, and its ``test_real/``
stands in for the edition's real-world LQ images (2022: five of odd sizes; 2023-2025: six square ones under
the edition's file names).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from facesr.data.images import write_png
from facesr.data.sample_images import (
    FACE_RECIPES,
    PHOTO_CROPS,
    PHOTOS,
    REAL_RECIPES,
    SEED,
    aligned_faces,
    load_source,
    photo_crops,
    real_world_image,
)
from facesr.editions import Edition, get_edition
from facesr.errors import FacesrError

_MARKER = "facesr sample data"
# Bump when the images change (sources, recipes, degradation): older copies are then rebuilt.
SAMPLE_VERSION = 3
_VERSION_LINE = f"Sample set version {SAMPLE_VERSION}."
# Images per folder (train/GT, val pairs, test/LQ): the faces plus the crops of each split.
COUNTS = {("train/GT" if split == "train" else split): len(FACE_RECIPES[split]) + n
          for split, (n, _) in PHOTO_CROPS.items()}  # fmt: skip
# The 2025 real-world size is not published: students' 2048x2048 outputs say 512x512 inputs.
_UNSTATED_REAL_SIZE = 512


def _edition_line(ed: Edition) -> str:
    return f"Edition {ed.year}."


def real_world_names(edition: int | str | Edition | None = None) -> list[str]:
    """The file names of the sample set's ``test_real/`` for ``edition``: the edition's own where known."""
    ed = get_edition(edition)
    if ed.real_world.files:
        return list(ed.real_world.files)
    return [f"{i:05d}.png" for i in range(min(ed.real_world.count, len(REAL_RECIPES)))]


def _lq(gt: np.ndarray, split_id: int, index: int, ed: Edition) -> np.ndarray:
    """The edition's degradation of a GT under a fixed seed, saved as 8-bit like the course's LQ files."""
    from facesr.data.degradations import degrade, to_float, to_uint8

    if ed.degradation == "course":
        return to_uint8(degrade(to_float(gt), np.random.default_rng((SEED, split_id, index))))
    import torch

    from facesr.data.second_order import SecondOrderSettings, degrade_second_order
    from facesr.metrics import tensor_to_uint8

    gt_t = torch.from_numpy(to_float(gt).transpose(2, 0, 1).copy())[None]
    # shifted as a Python int: numpy 1.x has no uint64 >> int (it promotes the pair to float64)
    seed = int(np.random.SeedSequence([SEED, split_id, index]).generate_state(1, np.uint64)[0]) >> 1
    # the LQ of the plain GT: val and test score against it (the course sharpens the training GT only)
    lq, _ = degrade_second_order(gt_t, [torch.Generator().manual_seed(seed)], SecondOrderSettings(gt_usm=False))
    return tensor_to_uint8(lq[0])


def _own_files(ed: Edition) -> list[str]:
    """Every relative path make_sample_data writes for the edition."""
    files = ["README.md"]
    files += [f"train/GT/{i:05d}.png" for i in range(COUNTS["train/GT"])]
    files += [f"val/{k}/{i:05d}.png" for k in ("LQ", "GT") for i in range(COUNTS["val"])]
    files += [f"test/LQ/{i:05d}.png" for i in range(COUNTS["test"])]
    files += [f"test_real/{name}" for name in real_world_names(ed)]
    return files


def _readme_head(ed: Edition) -> list[str]:
    how = ("`facesr.data.degradations.degrade` (the course pipeline)" if ed.degradation == "course" else
           "`facesr.data.second_order.degrade_second_order` (Real-ESRGAN's second-order pipeline, of the plain GT)")
    real = ("odd sizes" if ed.year == 2022 else
            f"{ed.real_world.size or _UNSTATED_REAL_SIZE}x{ed.real_world.size or _UNSTATED_REAL_SIZE}")
    return [
        "# facesr sample data (NOT FFHQ)",
        "",
        f"This is the {_MARKER} of the {ed.year} edition, written by `facesr.data.sample.make_sample_data`, for",
        "smoke tests and demos: these are not FFHQ faces and scores on them say nothing about the course task.",
        "Made offline from images that ship inside scikit-image and matplotlib: two real faces aligned and",
        "cropped the way FFHQ faces are, then crops, flips and resizes of other bundled photos.",
        f"GT is 512x512; val/LQ and test/LQ are 128x128, made from their GT by {how}",
        f"under fixed seeds ({SEED}, split, index) and saved as 8-bit PNG.",
        "test/GT is not included, as in the course. test_real/ holds real-world-like LQ images of the two faces",
        f"(not aligned, {real}, blurred, noisy, JPEG-compressed, no GT), standing in for the edition's.",
        f"{_VERSION_LINE} {_edition_line(ed)} `ensure_sample_data` rebuilds a copy whose version differs.",
        "",
        "| file | source |",
        "|---|---|",
    ]


def make_sample_data(out: str | os.PathLike, overwrite: bool = False, edition: int | str | None = None) -> Path:
    """Write an edition's sample set (24 train GT, 8 val pairs, 8 test LQ, the real-world LQ, README.md) into ``out``.

    Returns ``out``. A non-empty ``out`` is refused unless ``overwrite`` (which replaces only the files this
    function writes).

    Args:
        out: The folder.
        overwrite: Replace the sample set's own files in a non-empty ``out``.
        edition: Whose degradation and real-world layout (None: ``FACESR_EDITION``, else 2022).
    """
    ed = get_edition(edition)
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise FacesrError(f"{out} is a file; give a folder for the sample data")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FacesrError(f"{out} is not empty; choose an empty folder or pass overwrite=True (--overwrite)")
    sources = {name: load_source(name) for name in PHOTOS}
    readme = _readme_head(ed)
    for split_id, (split, (n, start)) in enumerate(PHOTO_CROPS.items()):
        items = aligned_faces(sources, split) + photo_crops(sources, n, np.random.default_rng((SEED, split_id)), start)
        for i, item in enumerate(items):
            if split == "train":
                write_png(out / "train/GT" / f"{i:05d}.png", item.img)
                readme.append(f"| train/GT/{i:05d}.png | {item.origin} |")
                continue
            write_png(out / split / "LQ" / f"{i:05d}.png", _lq(item.img, split_id, i, ed))
            if split == "val":
                write_png(out / "val/GT" / f"{i:05d}.png", item.img)
                readme.append(f"| val/GT/{i:05d}.png | {item.origin} |")
            else:
                readme.append(f"| test/LQ/{i:05d}.png | LQ of: {item.origin} |")
    size = None if ed.year == 2022 else ed.real_world.size or _UNSTATED_REAL_SIZE
    for i, name in enumerate(real_world_names(ed)):
        item = real_world_image(sources, i, size)
        write_png(out / "test_real" / name, item.img)
        readme.append(f"| test_real/{name} | {item.origin} |")
    (out / "README.md").write_text("\n".join(readme) + "\n", encoding="utf-8")
    return out


# The tests' copy (smoke mode): the fewest files per folder that still exercise every notebook cell
# (a quick batch of 4 needs 4 training faces; 2 val pairs make a mean; x8 TTA scores the first one).
SMOKE_COUNTS = {"train/GT": 4, "val/LQ": 2, "val/GT": 2, "test/LQ": 2, "test_real": 2}


def copy_data_subset(src: str | os.PathLike, dst: str | os.PathLike, counts: dict[str, int]) -> Path:
    """Copy the first ``counts[folder]`` images (in name order) of each folder of data root ``src`` to ``dst``.

    Args:
        src: a data root in the course layout (paired val/LQ and val/GT names).
        dst: the new data root (created; files already there with the same names are replaced).
        counts: ``{"val/LQ": 2, "val/GT": 2, ...}``; a folder missing in ``src`` is an error.
    """
    from facesr.data.images import list_images

    src, dst = Path(src), Path(dst)
    for folder, n in counts.items():
        files = list_images(src / folder)[:n] if (src / folder).is_dir() else []
        if not files:
            raise FacesrError(f"no images in {src / folder} to copy; check the data root")
        (dst / folder).mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy2(path, dst / folder / path.name)
    return dst


def smoke_sample_data(out: str | os.PathLike, edition: int | str | None = None) -> Path:
    """The first :data:`SMOKE_COUNTS` images of each folder of an edition's sample set, copied to ``out``."""
    return copy_data_subset(ensure_sample_data(edition=edition), out, SMOKE_COUNTS)


def default_sample_root(edition: int | str | Edition | None = None) -> Path:
    """The repository's ``data/sample`` (2022) or ``data/sample-YYYY``; under ``~/.cache/facesr`` when the package
    is installed elsewhere.

    Args:
        edition: Whose sample set (None: ``FACESR_EDITION``, else 2022).
    """
    ed = get_edition(edition)
    name = "sample" if ed.year == 2022 else f"sample-{ed.year}"
    package = Path(__file__).resolve().parents[1]  # lib/facesr: this module is lib/facesr/data/sample.py
    repo = package.parents[1]
    if package.parent.name == "lib" and (repo / "pyproject.toml").is_file():
        return repo / "data" / name
    return Path.home() / ".cache" / "facesr" / name


def _is_current(root: Path, ed: Edition) -> bool:
    """Every file of the edition's set is there and the README carries this kit's version and the edition."""
    if not all((root / f).is_file() for f in _own_files(ed)):
        return False
    text = (root / "README.md").read_text(encoding="utf-8", errors="replace")
    return _VERSION_LINE in text and _edition_line(ed) in text


def _remove_other_editions_files(root: Path, ed: Edition) -> None:
    """Files another edition's sample set wrote that this one does not (its test_real names): ours to remove."""
    from facesr.editions import EDITIONS

    keep = set(_own_files(ed))
    for other in EDITIONS.values():
        for rel in set(_own_files(other)) - keep:
            (root / rel).unlink(missing_ok=True)


def ensure_sample_data(root: str | os.PathLike | None = None, edition: int | str | None = None) -> Path:
    """An edition's sample set at ``root`` (default :func:`default_sample_root`), built there if it is missing.

    An incomplete or outdated copy that this kit wrote (another version, another edition) is rebuilt in place
    (other files in it are kept); a non-empty folder of something else is an error. Building goes to a
    temporary sibling folder renamed into place, so parallel callers never see half a set.

    Args:
        root: The folder (None: :func:`default_sample_root` of the edition).
        edition: Whose sample set (None: ``FACESR_EDITION``, else 2022).
    """
    ed = get_edition(edition)
    root = Path(root).expanduser() if root is not None else default_sample_root(ed)
    if _is_current(root, ed):
        return root
    if root.is_dir() and any(root.iterdir()):
        readme = root / "README.md"
        if not (readme.is_file() and _MARKER in readme.read_text(encoding="utf-8", errors="replace")):
            raise FacesrError(f"{root} is not empty and holds no facesr sample data; pass another folder")
        _remove_other_editions_files(root, ed)
        return make_sample_data(root, overwrite=True, edition=ed.year)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        make_sample_data(tmp / "data", edition=ed.year)
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        try:
            os.replace(tmp / "data", root)
        except OSError:
            if not _is_current(root, ed):  # lost a race only if the other builder succeeded
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def ensure_quick_data(data_root: str | os.PathLike, edition: int | str | None = None) -> Path:
    """``data_root``, with the edition's sample set built there first when it is quick mode's own data root
    (:func:`default_sample_root`, what ``get_config(..., quick=True)`` names): the caller's step before
    :func:`facesr.training.train`, which takes a data root as it is (the CLI's ``train``, notebooks' settings).

    Args:
        data_root: The run's data root (``cfg.data_root``); any other folder is returned untouched.
        edition: The run's edition (``cfg.edition``).
    """
    path = Path(data_root).expanduser()
    if path.resolve() == default_sample_root(edition).resolve():
        return ensure_sample_data(path, edition)
    return path
