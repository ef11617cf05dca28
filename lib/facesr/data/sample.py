"""A small sample data set in the course layout, built offline from images bundled with the dependencies.

It is NOT FFHQ: two real faces (scikit-image's ``astronaut``, matplotlib's ``grace_hopper``) aligned the way
FFHQ aligns faces, plus crops of other bundled photos. It exists for smoke tests and demos only.
Its ``test_real/`` stands in for the course's real-world LQ images: the same two faces, not aligned, cut
at odd sizes and degraded by a fixed blur, noise and JPEG.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facesr.data.check import GT_SIZE
from facesr.data.images import write_png
from facesr.errors import FacesrError

SEED = 2022
_MARKER = "facesr sample data"
# Bump when the images change (sources, recipes, degradation): older copies are then rebuilt.
SAMPLE_VERSION = 2
_VERSION_LINE = f"Sample set version {SAMPLE_VERSION}."

# Hand-measured landmarks (x, y) in the original images: left eye, right eye, mouth centre.
FACES = {
    "astronaut": ((202.5, 101.0), (246.0, 104.0), (222.5, 142.5)),
    "grace_hopper": ((220.0, 188.0), (307.0, 185.0), (265.0, 275.0)),
}
# Face recipes per split: (source, zoom relative to the FFHQ crop, shift in crop units, horizontal flip).
FACE_RECIPES = {
    "train": [("astronaut", 1.0, (0.0, 0.0), False), ("grace_hopper", 1.0, (0.0, 0.0), False),
              ("astronaut", 1.4, (0.05, 0.0), True), ("grace_hopper", 1.3, (-0.05, 0.02), True)],
    "val": [("astronaut", 1.2, (-0.06, 0.04), True), ("grace_hopper", 1.15, (0.06, -0.03), False)],
    "test": [("astronaut", 1.7, (0.0, 0.08), False), ("grace_hopper", 1.55, (0.0, 0.06), True)],
}  # fmt: skip
# Random photo crops per split, after its faces: (how many, index in PHOTOS of the first source photo).
PHOTO_CROPS = {"train": (20, 0), "val": (6, 3), "test": (6, 6)}
# Real-world-like LQ faces (test_real/): (source, rotation in degrees, crop width in eye distances,
# crop centre shift from the eyes in eye distances (x, y), LQ size (width, height), blur sigma in LQ
# pixels, noise sigma /255, JPEG quality). Odd sizes and aspect ratios on purpose: real photos have them.
REAL_RECIPES = [
    ("astronaut", -12.0, 3.2, (0.1, 0.5), (37, 53), 1.0, 4.0, 55),
    ("grace_hopper", 9.0, 4.0, (-0.4, 0.5), (61, 45), 0.7, 2.0, 70),
    ("astronaut", 5.0, 5.5, (0.8, 1.0), (97, 83), 1.2, 6.0, 40),
    ("grace_hopper", -20.0, 2.8, (0.1, 0.3), (45, 71), 0.9, 8.0, 50),
    ("astronaut", 0.0, 4.5, (-0.6, 0.4), (129, 101), 1.5, 3.0, 35),
]
# Images per folder (train/GT, val pairs, test/LQ): the faces plus the crops of each split; then test_real.
COUNTS = {("train/GT" if split == "train" else split): len(FACE_RECIPES[split]) + n
          for split, (n, _) in PHOTO_CROPS.items()}  # fmt: skip
COUNTS["test_real"] = len(REAL_RECIPES)
PHOTOS = ("chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
          "motorcycle", "astronaut", "grace_hopper")  # fmt: skip
_ORIGIN = {
    "astronaut": "scikit-image `skimage.data.astronaut()` (NASA portrait of Eileen Collins, public domain)",
    "grace_hopper": "matplotlib sample data `grace_hopper.jpg` (portrait of Grace Hopper, public domain)",
    "chelsea": "scikit-image `skimage.data.chelsea()` (a cat)",
    "coffee": "scikit-image `skimage.data.coffee()` (a cup of coffee)",
    "rocket": "scikit-image `skimage.data.rocket()` (a rocket launch)",
    "immunohistochemistry": "scikit-image `skimage.data.immunohistochemistry()` (microscopy)",
    "hubble_deep_field": "scikit-image `skimage.data.hubble_deep_field()` (Hubble deep field)",
    "retina": "scikit-image `skimage.data.retina()` (human retina)",
    "motorcycle": "scikit-image `skimage.data.stereo_motorcycle()[0]` (a motorcycle)",
}


def _load_source(name: str) -> np.ndarray:
    """One bundled uint8 RGB image; these ship inside the installed packages, nothing is downloaded."""
    if name == "grace_hopper":
        from matplotlib import cbook

        from facesr.data.images import read_image

        return read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    import skimage.data

    try:
        img = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    except Exception as exc:  # a scikit-image build without its bundled images would try to download
        raise FacesrError(f"scikit-image's bundled image {name!r} cannot be loaded offline ({exc})") from exc
    return np.ascontiguousarray(img[:, :, :3])


def _to_size(img: np.ndarray, size: int = GT_SIZE) -> np.ndarray:
    """Square image -> size x size: area when shrinking, Lanczos when enlarging (clipped to uint8)."""
    interp = cv2.INTER_AREA if img.shape[0] >= size else cv2.INTER_LANCZOS4
    return np.clip(cv2.resize(img, (size, size), interpolation=interp), 0, 255).astype(np.uint8)


def align_face(img: np.ndarray, landmarks, zoom: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """FFHQ-style alignment (the ffhq-dataset recipe): an oriented square around eyes and mouth -> 512x512.

    The square's half side is max(2 * eye distance, 1.8 * eye-to-mouth distance), centred a tenth of the
    eye-to-mouth vector below the eyes (eyes end up at about 47% height), times ``zoom``.
    """
    left_eye, right_eye, mouth = (np.asarray(p, dtype=np.float64) for p in landmarks)
    eye_avg = (left_eye + right_eye) / 2
    eye_to_eye, eye_to_mouth = right_eye - left_eye, mouth - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) * zoom
    y = np.flipud(x) * [-1, 1]
    half = np.hypot(*x)
    c = eye_avg + eye_to_mouth * 0.1 + np.asarray(shift) * 2 * half
    side = int(round(2 * half))
    src = np.float32([c - x - y, c + x - y, c - x + y])  # top-left, top-right, bottom-left
    dst = np.float32([[0, 0], [side, 0], [0, side]])
    # Rotate and crop at (nearly) native scale first, then resize with a proper filter.
    square = cv2.warpAffine(img, cv2.getAffineTransform(src, dst), (side, side), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
    return _to_size(square)


@dataclass
class _Item:
    img: np.ndarray
    origin: str


def _photo_crops(sources: dict[str, np.ndarray], n: int, rng: np.random.Generator, start: int) -> list[_Item]:
    """``n`` random square crops (35-100% of the short side), each maybe flipped, resized to 512."""
    items = []
    for i in range(n):
        name = PHOTOS[(start + i) % len(PHOTOS)]
        img = sources[name]
        h, w = img.shape[:2]
        side = int(rng.uniform(0.35, 1.0) * min(h, w))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        flip = bool(rng.random() < 0.5)
        crop = img[top : top + side, left : left + side]
        crop = crop[:, ::-1] if flip else crop
        how = f"square crop {side} px at x={left}, y={top}{', flipped' if flip else ''}, resized to 512"
        items.append(_Item(_to_size(np.ascontiguousarray(crop)), f"{_ORIGIN[name]}: {how}"))
    return items


def _faces(sources: dict[str, np.ndarray], split: str) -> list[_Item]:
    items = []
    for name, zoom, shift, flip in FACE_RECIPES[split]:
        img = align_face(sources[name], FACES[name], zoom=zoom, shift=shift)
        img = np.ascontiguousarray(img[:, ::-1]) if flip else img
        how = f"FFHQ-style face alignment, zoom {zoom}, shift {shift}{', flipped' if flip else ''}"
        items.append(_Item(img, f"{_ORIGIN[name]}: {how}"))
    return items


def _real_world(sources: dict[str, np.ndarray], index: int) -> _Item:
    """One test_real LQ: a rotated, off-centre crop of a face, area-downscaled, blurred, noisy, JPEG'd."""
    from facesr.data.degradations import (
        add_gaussian_noise,
        blur,
        blur_kernel,
        jpeg_compress,
        resize,
        to_float,
        to_uint8,
    )

    name, angle, width, shift, (w, h), sigma, noise, quality = REAL_RECIPES[index]
    left_eye, right_eye, _ = (np.asarray(p, dtype=np.float64) for p in FACES[name])
    eye_dist = float(np.hypot(*(right_eye - left_eye)))
    centre = (left_eye + right_eye) / 2 + np.asarray(shift) * eye_dist
    crop_w = width * eye_dist
    crop_h = crop_w * h / w
    # Rotate about the crop centre at native scale, then move that centre to the middle of the crop.
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0)
    matrix[:, 2] += (crop_w / 2 - centre[0], crop_h / 2 - centre[1])
    crop = cv2.warpAffine(sources[name], matrix, (int(round(crop_w)), int(round(crop_h))), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
    img = resize(to_float(crop), (h, w), "area")
    img = blur(img, blur_kernel("iso", 2 * int(np.ceil(3 * sigma)) + 1, sigma))
    img = add_gaussian_noise(img, noise, np.random.default_rng((SEED, 3, index)))
    img = to_uint8(jpeg_compress(img, quality))
    how = (f"not aligned: rotated {angle:+.0f} deg, crop {width} eye distances wide, {w}x{h}, blur sigma {sigma}, "
           f"noise {noise}/255, JPEG quality {quality}")  # fmt: skip
    return _Item(img, f"{_ORIGIN[name]}: {how}")


def _lq(gt: np.ndarray, split_id: int, index: int) -> np.ndarray:
    """The course degradation under a fixed seed, saved as 8-bit like the course's LQ files."""
    from facesr.data.degradations import degrade, to_float, to_uint8

    return to_uint8(degrade(to_float(gt), np.random.default_rng((SEED, split_id, index))))


def _own_files() -> list[str]:
    """Every relative path make_sample_data writes."""
    files = ["README.md"]
    files += [f"train/GT/{i:05d}.png" for i in range(COUNTS["train/GT"])]
    files += [f"val/{k}/{i:05d}.png" for k in ("LQ", "GT") for i in range(COUNTS["val"])]
    files += [f"test/LQ/{i:05d}.png" for i in range(COUNTS["test"])]
    files += [f"test_real/{i:05d}.png" for i in range(COUNTS["test_real"])]
    return files


def make_sample_data(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the sample set (24 train GT, 8 val pairs, 8 test LQ, 5 real-world LQ, README.md) into ``out``.

    Returns ``out``.

    A non-empty ``out`` is refused unless ``overwrite`` (which replaces only the files this function writes).
    """
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise FacesrError(f"{out} is a file; give a folder for the sample data")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FacesrError(f"{out} is not empty; choose an empty folder or pass overwrite=True (--overwrite)")
    sources = {name: _load_source(name) for name in PHOTOS}
    splits = {}
    for split_id, (split, (n, start)) in enumerate(PHOTO_CROPS.items()):
        crops = _photo_crops(sources, n, np.random.default_rng((SEED, split_id)), start)
        splits[split] = _faces(sources, split) + crops
    readme = [
        "# facesr sample data (NOT FFHQ)",
        "",
        f"This is the {_MARKER} written by `facesr.data.sample.make_sample_data`, for smoke tests and demos:",
        "these are not FFHQ faces and scores on them say nothing about the course task.",
        "Made offline from images that ship inside scikit-image and matplotlib: two real faces aligned and",
        "cropped the way FFHQ faces are, then crops, flips and resizes of other bundled photos.",
        "GT is 512x512; val/LQ and test/LQ are 128x128, made from their GT by `facesr.data.degradations.degrade`",
        f"(the course pipeline) under fixed seeds ({SEED}, split, index) and saved as 8-bit PNG.",
        "test/GT is not included, as in the course. test_real/ holds real-world-like LQ images of the two faces",
        "(not aligned, odd sizes, blurred, noisy, JPEG-compressed, no GT), standing in for the course's.",
        f"{_VERSION_LINE} `ensure_sample_data` rebuilds a copy whose version differs from the kit's.",
        "",
        "| file | source |",
        "|---|---|",
    ]
    for split_id, (split, items) in enumerate(splits.items()):
        for i, item in enumerate(items):
            if split == "train":
                write_png(out / "train/GT" / f"{i:05d}.png", item.img)
                readme.append(f"| train/GT/{i:05d}.png | {item.origin} |")
                continue
            write_png(out / split / "LQ" / f"{i:05d}.png", _lq(item.img, split_id, i))
            if split == "val":
                write_png(out / "val/GT" / f"{i:05d}.png", item.img)
                readme.append(f"| val/GT/{i:05d}.png | {item.origin} |")
            else:
                readme.append(f"| test/LQ/{i:05d}.png | LQ of: {item.origin} |")
    for i in range(COUNTS["test_real"]):
        item = _real_world(sources, i)
        write_png(out / "test_real" / f"{i:05d}.png", item.img)
        readme.append(f"| test_real/{i:05d}.png | {item.origin} |")
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


def smoke_sample_data(out: str | os.PathLike) -> Path:
    """The first :data:`SMOKE_COUNTS` images of each folder of the sample set, copied to ``out`` (a data root)."""
    return copy_data_subset(ensure_sample_data(), out, SMOKE_COUNTS)


def default_sample_root() -> Path:
    """The repository's ``data/sample``; ``~/.cache/facesr/sample`` when the package is installed elsewhere."""
    package = Path(__file__).resolve().parents[1]  # lib/facesr: this module is lib/facesr/data/sample.py
    repo = package.parents[1]
    if package.parent.name == "lib" and (repo / "pyproject.toml").is_file():
        return repo / "data" / "sample"
    return Path.home() / ".cache" / "facesr" / "sample"


def _is_current(root: Path) -> bool:
    """Every file of the set is there and the README carries this kit's sample version."""
    if not all((root / f).is_file() for f in _own_files()):
        return False
    return _VERSION_LINE in (root / "README.md").read_text(encoding="utf-8", errors="replace")


def ensure_sample_data(root: str | os.PathLike | None = None) -> Path:
    """The sample set at ``root`` (default :func:`default_sample_root`), built there if it is missing.

    An incomplete or outdated copy that this kit wrote is rebuilt in place (other files in it are kept);
    a non-empty folder of something else is an error.
    Building goes to a temporary sibling folder renamed into place, so parallel callers never see half a set.
    """
    root = Path(root).expanduser() if root is not None else default_sample_root()
    if _is_current(root):
        return root
    if root.is_dir() and any(root.iterdir()):
        readme = root / "README.md"
        if not (readme.is_file() and _MARKER in readme.read_text(encoding="utf-8", errors="replace")):
            raise FacesrError(f"{root} is not empty and holds no facesr sample data; pass another folder")
        return make_sample_data(root, overwrite=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        make_sample_data(tmp / "data")
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        try:
            os.replace(tmp / "data", root)
        except OSError:
            if not _is_current(root):  # lost a race only if the other builder succeeded
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
