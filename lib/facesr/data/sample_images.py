"""The images of the sample data set, made offline from photos that ship with scikit-image and matplotlib.

Two real faces (scikit-image's ``astronaut``, matplotlib's ``grace_hopper``) aligned the way FFHQ aligns
faces, crops of other bundled photos, and real-world-like LQ faces (the same two faces, not aligned, cut,
blurred, noisy and JPEG'd). :mod:`facesr.data.sample` lays them out as a data root of an edition.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facesr.data.check import GT_SIZE
from facesr.errors import FacesrError

SEED = 2022
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
    ("grace_hopper", 14.0, 3.6, (0.3, 0.6), (77, 89), 1.1, 5.0, 45),
]
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


def load_source(name: str) -> np.ndarray:
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


def to_size(img: np.ndarray, size: int = GT_SIZE) -> np.ndarray:
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
    return to_size(square)


@dataclass
class SampleImage:
    img: np.ndarray
    origin: str


def photo_crops(sources: dict[str, np.ndarray], n: int, rng: np.random.Generator, start: int) -> list[SampleImage]:
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
        items.append(SampleImage(to_size(np.ascontiguousarray(crop)), f"{_ORIGIN[name]}: {how}"))
    return items


def aligned_faces(sources: dict[str, np.ndarray], split: str) -> list[SampleImage]:
    items = []
    for name, zoom, shift, flip in FACE_RECIPES[split]:
        img = align_face(sources[name], FACES[name], zoom=zoom, shift=shift)
        img = np.ascontiguousarray(img[:, ::-1]) if flip else img
        how = f"FFHQ-style face alignment, zoom {zoom}, shift {shift}{', flipped' if flip else ''}"
        items.append(SampleImage(img, f"{_ORIGIN[name]}: {how}"))
    return items


def real_world_image(sources: dict[str, np.ndarray], index: int, size: int | None = None) -> SampleImage:
    """One real-world-like LQ: a rotated, off-centre crop of a face, area-downscaled, blurred, noisy, JPEG'd.

    Args:
        sources: The bundled photos (:func:`load_source`).
        index: Which of :data:`REAL_RECIPES`.
        size: A square side for every image (the editions that released square images); None: the recipe's
            odd size.
    """
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
    w, h = (size, size) if size else (w, h)
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
    return SampleImage(img, f"{_ORIGIN[name]}: {how}")


