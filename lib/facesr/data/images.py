"""Image files: listing, decoding to uint8 RGB, writing PNG, and cheap PNG header and integrity checks.

Reading converts gray, RGBA and 16-bit files to 8-bit RGB and says so; a corrupt file is a FacesrError
that names it. Only :func:`write_png` writes, where it is told to.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from facesr.atomic import atomic_write_bytes
from facesr.errors import FacesrError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
HOW_TO_GET_DATA = (
    "run `python -m facesr sample-data data/sample` for the small bundled set, or unpack the course's "
    "FFHQ archive (from the Colab notebook) so that the root holds train/GT, val/LQ, val/GT and test/LQ"
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder`` (extensions in IMAGE_EXTENSIONS, hidden files skipped), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FacesrError(f"image folder {folder} does not exist; check the path ({HOW_TO_GET_DATA})")
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: p.name)


def _decode(path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """Decode one file to uint8 HxWx3 RGB; also say what had to be converted ("gray", "alpha", "16-bit")."""
    try:
        buf = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode also handles non-ASCII paths
    except OSError as exc:
        raise FacesrError(f"cannot read {path}: {exc.strerror or exc}; check that the file exists") from exc
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    # OpenCV quietly decodes some truncated JPEGs (grey bottom rows); a JPEG must end with its EOI marker.
    truncated_jpeg = path.suffix.lower() in (".jpg", ".jpeg") and bytes(buf[-4096:]).rfind(b"\xff\xd9") < 0
    if img is None or truncated_jpeg:
        raise FacesrError(
            f"{path} is corrupt or truncated (it cannot be decoded); replace it with a good copy"
        )
    notes: list[str] = []
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) * 2 + 257) // 514).astype(np.uint8)  # round(x / 257), no ties exist
        notes.append("16-bit")
    elif img.dtype != np.uint8:
        raise FacesrError(f"{path} has {img.dtype} pixels; convert it to an 8-bit RGB PNG")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
        notes.append("gray")
    elif img.shape[2] == 4:
        img = img[:, :, 2::-1]  # BGRA -> RGB: the alpha channel is dropped, not composited
        notes.append("alpha")
    elif img.shape[2] == 3:
        img = img[:, :, ::-1]
    else:
        raise FacesrError(f"{path} has {img.shape[2]} channels; convert it to an 8-bit RGB PNG")
    return np.ascontiguousarray(img), tuple(notes)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as uint8 HxWx3 RGB (gray, RGBA and 16-bit files converted; corrupt -> FacesrError)."""
    return _decode(Path(path))[0]


def chw_tensor(img: np.ndarray) -> torch.Tensor:
    """An HxWx3 float image -> a contiguous (3, H, W) tensor (what the data sets and the pairs hand over)."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def write_png(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Write a uint8 HxWx3 RGB array as PNG atomically (:mod:`facesr.atomic`: never half a file), creating the
    parent folders. Returns the path."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise ValueError(f"write_png expects a uint8 HxWx3 RGB array, got {got}")
    path = Path(path)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[:, :, ::-1]))
    if not ok:
        raise FacesrError(f"could not encode {path} as PNG")
    return atomic_write_bytes(path, buf.tobytes())


def _header(path: Path) -> tuple[int, int, tuple[str, ...]]:
    """(height, width, conversion notes) from a PNG's IHDR chunk without decoding; other formats are decoded."""
    try:
        with open(path, "rb") as f:
            head = f.read(33)
    except OSError as exc:
        raise FacesrError(f"cannot read {path}: {exc.strerror or exc}; check that the file exists") from exc
    if head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR" or len(head) < 26:
        if path.suffix.lower() == ".png":
            raise FacesrError(f"{path} is corrupt or not a PNG; replace it with a good copy")
        img, notes = _decode(path)
        return img.shape[0], img.shape[1], notes
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    return height, width, _png_notes(depth, colour)


def _png_notes(depth: int, colour: int) -> tuple[str, ...]:
    """What reading converts, from the IHDR bit depth and colour type (0 gray, 4 gray+alpha, 6 RGBA)."""
    return ("16-bit",) * (depth == 16) + ("gray",) * (colour in (0, 4)) + ("alpha",) * (colour in (4, 6))


def _warn_conversions(files: Sequence[Path], notes: Sequence[tuple[str, ...]], what: str) -> None:
    """One warning per data set: how many files get converted, naming the first."""
    converted = [(f, n) for f, n in zip(files, notes, strict=True) if n]
    if converted:
        first, kinds = converted[0]
        warnings.warn(
            f"{what}: {len(converted)} of {len(files)} images are not 8-bit RGB (first: {first.name}, "
            f"{'/'.join(kinds)}); they are converted when loaded (gray -> RGB, alpha dropped, 16-bit scaled "
            "to 8-bit). `python -m facesr check-data ROOT` lists them all.",
            UserWarning,
            stacklevel=4,
        )


def _png_integrity(path: Path) -> tuple[int, int, tuple[str, ...]] | str:
    """Walk a PNG's chunks and check every CRC: catches truncation and damaged bytes ~20x faster than a decode."""
    bad = f"{path} is corrupt or truncated (damaged PNG data); replace it with a good copy"
    try:
        data = memoryview(path.read_bytes())
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if bytes(data[:8]) != _PNG_SIGNATURE:
        return f"{path} is not a PNG file (wrong signature); replace it with a good copy"
    pos, ihdr, has_idat = 8, None, False
    while True:
        if pos + 12 > len(data):
            return bad
        length, kind = int.from_bytes(data[pos : pos + 4], "big"), bytes(data[pos + 4 : pos + 8])
        end = pos + 12 + length
        if end > len(data) or zlib.crc32(data[pos + 4 : end - 4]) != int.from_bytes(
            data[end - 4 : end], "big"
        ):
            return bad
        if kind == b"IHDR":
            ihdr = bytes(data[pos + 8 : pos + 8 + 13])
        has_idat |= kind == b"IDAT"
        if kind == b"IEND":
            break
        pos = end
    if ihdr is None or not has_idat:
        return bad
    width, height, depth, colour = struct.unpack(">IIBB", ihdr[:10])
    return height, width, _png_notes(depth, colour)


def probe_image(path: Path, full_decode: bool) -> tuple[int, int, tuple[str, ...]] | str:
    """(height, width, notes) of a file that is intact, else the error message."""
    if path.suffix.lower() == ".png" and not full_decode:
        return _png_integrity(path)
    try:
        img, notes = _decode(path)
    except FacesrError as exc:
        return str(exc)
    return img.shape[0], img.shape[1], notes


def scan_headers(files: Sequence[Path], what: str) -> list[tuple[int, int, tuple[str, ...]]]:
    """Headers of every file (cheap for PNG), with one conversion warning for the whole set."""
    headers = [_header(p) for p in files]
    _warn_conversions(files, [n for _, _, n in headers], what)
    return headers
