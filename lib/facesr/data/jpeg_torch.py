"""JPEG round trips of a torch batch on its own device: libjpeg's baseline codec and DiffJPEG's float codec.

Neither reads a value back to the host, so a CUDA batch never waits on a copy (docs/course.md sections 3
and 4).

- :func:`jpeg_libjpeg` reproduces what ``cv2.imencode(".jpg")`` + ``cv2.imdecode`` do with libjpeg-turbo's
  defaults (baseline, 4:2:0, integer "islow" DCT both ways, integer colour conversion, libjpeg's
  quality-scaled integer tables, its reciprocal quantisation, its box-with-bias chroma downsampling and
  its "fancy" triangle upsampling), with the course's RGB array handed over as if it were BGR. It is
  integer arithmetic throughout, so it equals OpenCV's result bit for bit on every device.
- :func:`jpeg_torch` is the float codec the 2024/2025 course ran (BasicSR's ``DiffJPEG(differentiable=False)``):
  float colour conversion and DCT, unrounded tables scaled by a per-sample float quality, round half to
  even, 2x2 chroma averages repeated back, no rounding of the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from facesr.errors import FacesrError

# The example tables of the JPEG standard (Annex K.1, K.2), natural order: row = vertical frequency.
LUMA_TABLE = np.array(
    [[16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
     [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
     [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=np.int64,
)  # fmt: skip
CHROMA_TABLE = np.full((8, 8), 99, dtype=np.int64)
CHROMA_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]

# libjpeg's fixed-point constants: colour conversion in 16 bits, the islow DCT in 13 bits (FIX(x) rounds x * 2^bits).
_SCALEBITS, _CONST_BITS, _PASS1_BITS = 16, 13, 2


def _fix(x: float, bits: int = _SCALEBITS) -> int:
    return int(x * (1 << bits) + 0.5)


_C = {name: _fix(v, _CONST_BITS) for name, v in {
    "0_298631336": 0.298631336, "0_390180644": 0.390180644, "0_541196100": 0.541196100, "0_765366865": 0.765366865,
    "0_899976223": 0.899976223, "1_175875602": 1.175875602, "1_501321110": 1.501321110, "1_847759065": 1.847759065,
    "1_961570560": 1.961570560, "2_053119869": 2.053119869, "2_562915447": 2.562915447, "3_072711026": 3.072711026,
}.items()}  # fmt: skip


def libjpeg_tables(quality: int) -> tuple[np.ndarray, np.ndarray]:
    """libjpeg's (luma, chroma) quantisation tables for ``quality`` (``jpeg_set_quality(..., force_baseline=TRUE)``).

    Quality q in 1-100 (clamped) gives the percentage ``5000 // q`` below 50 and ``200 - 2 q`` from 50 on;
    each entry is ``(base * percentage + 50) // 100`` clipped to [1, 255]. int64 (8, 8), natural order.

    Args:
        quality: the JPEG quality as OpenCV's ``IMWRITE_JPEG_QUALITY`` takes it.
    """
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return tuple(np.clip((t * scale + 50) // 100, 1, 255) for t in (LUMA_TABLE, CHROMA_TABLE))


@lru_cache(maxsize=256)
def _reciprocals(quality: int) -> np.ndarray:
    """(2, 4, 8, 8) int64: per table, libjpeg-turbo's (quantval, reciprocal, correction, shift) for islow.

    libjpeg-turbo divides the DCT output (scaled by 8) by ``8 q`` as ``((|t| + c) * f) >> r`` with f, c, r from
    its ``compute_reciprocal`` (a rounded reciprocal and a correction that keeps the result rounded).
    """
    out = np.zeros((2, 4, 8, 8), dtype=np.int64)
    for i, table in enumerate(libjpeg_tables(quality)):
        for (v, u), qval in np.ndenumerate(table):
            d = int(qval) << 3
            r = 16 + d.bit_length() - 1
            f, rem = divmod(1 << r, d)
            c = d // 2
            if rem == 0:  # power of two
                f, r = f >> 1, r - 1
            elif rem <= d // 2:
                c += 1
            else:
                f += 1
            out[i, :, v, u] = (qval, f, c, r)
    return out


@lru_cache(maxsize=16)
def _all_reciprocals(device: torch.device) -> torch.Tensor:
    """(100, 2, 4, 8, 8) int32: :func:`_reciprocals` of qualities 1-100 on ``device``, uploaded once, so that a
    batch picks its tables there by quality (an index on the device) instead of copying them up each time."""
    table = np.stack([_reciprocals(q) for q in range(1, 101)]).astype(np.int32)
    return torch.from_numpy(table).to(device)


def _quality_index(quality: Sequence[int] | torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    """Row of :func:`_all_reciprocals` per image (quality clamped to 1-100, as libjpeg does), on ``device``:
    device ops on a quality tensor already there; host qualities make one small copy."""
    on_device = torch.is_tensor(quality) and quality.device == device
    count = quality.numel() if on_device else len(quality.tolist() if torch.is_tensor(quality) else quality)
    if count != n:
        raise FacesrError(f"jpeg_libjpeg: {count} qualities for {n} images")
    if on_device:
        return quality.reshape(-1).round().long().clamp(1, 100) - 1
    qualities = [min(max(int(q), 1), 100) - 1 for q in (quality.tolist() if torch.is_tensor(quality) else quality)]
    return torch.tensor(qualities, dtype=torch.long).to(device, non_blocking=True)


def _descale(x: torch.Tensor, n: int) -> torch.Tensor:
    """libjpeg's DESCALE: ``(x + 2^(n-1)) >> n``, an arithmetic shift."""
    return (x + (1 << (n - 1))) >> n


def _fdct_1d(d: list[torch.Tensor], first: bool) -> list[torch.Tensor]:
    """One pass of libjpeg's islow forward DCT (LL&M, 12 multiplies) on 8 int32 inputs."""
    tmp0, tmp7, tmp1, tmp6 = d[0] + d[7], d[0] - d[7], d[1] + d[6], d[1] - d[6]
    tmp2, tmp5, tmp3, tmp4 = d[2] + d[5], d[2] - d[5], d[3] + d[4], d[3] - d[4]
    tmp10, tmp13, tmp11, tmp12 = tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2
    shift = _CONST_BITS - _PASS1_BITS if first else _CONST_BITS + _PASS1_BITS
    out: list[torch.Tensor] = [None] * 8  # type: ignore[list-item]
    if first:
        out[0], out[4] = (tmp10 + tmp11) << _PASS1_BITS, (tmp10 - tmp11) << _PASS1_BITS
    else:
        out[0], out[4] = _descale(tmp10 + tmp11, _PASS1_BITS), _descale(tmp10 - tmp11, _PASS1_BITS)
    z1 = (tmp12 + tmp13) * _C["0_541196100"]
    out[2] = _descale(z1 + tmp13 * _C["0_765366865"], shift)
    out[6] = _descale(z1 - tmp12 * _C["1_847759065"], shift)
    z1, z2, z3, z4 = tmp4 + tmp7, tmp5 + tmp6, tmp4 + tmp6, tmp5 + tmp7
    z5 = (z3 + z4) * _C["1_175875602"]
    tmp4, tmp5 = tmp4 * _C["0_298631336"], tmp5 * _C["2_053119869"]
    tmp6, tmp7 = tmp6 * _C["3_072711026"], tmp7 * _C["1_501321110"]
    z1, z2 = z1 * -_C["0_899976223"], z2 * -_C["2_562915447"]
    z3, z4 = z3 * -_C["1_961570560"] + z5, z4 * -_C["0_390180644"] + z5
    out[7], out[5] = _descale(tmp4 + z1 + z3, shift), _descale(tmp5 + z2 + z4, shift)
    out[3], out[1] = _descale(tmp6 + z2 + z3, shift), _descale(tmp7 + z1 + z4, shift)
    return out


def _idct_1d(c: list[torch.Tensor], shift: int) -> list[torch.Tensor]:
    """One pass of libjpeg's islow inverse DCT on 8 int32 inputs (its all-zero-AC shortcuts give the same values)."""
    z1 = (c[2] + c[6]) * _C["0_541196100"]
    tmp2, tmp3 = z1 - c[6] * _C["1_847759065"], z1 + c[2] * _C["0_765366865"]
    tmp0, tmp1 = (c[0] + c[4]) << _CONST_BITS, (c[0] - c[4]) << _CONST_BITS
    tmp10, tmp13, tmp11, tmp12 = tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2
    tmp0, tmp1, tmp2, tmp3 = c[7], c[5], c[3], c[1]
    z1, z2, z3, z4 = tmp0 + tmp3, tmp1 + tmp2, tmp0 + tmp2, tmp1 + tmp3
    z5 = (z3 + z4) * _C["1_175875602"]
    tmp0, tmp1 = tmp0 * _C["0_298631336"], tmp1 * _C["2_053119869"]
    tmp2, tmp3 = tmp2 * _C["3_072711026"], tmp3 * _C["1_501321110"]
    z1, z2 = z1 * -_C["0_899976223"], z2 * -_C["2_562915447"]
    z3, z4 = z3 * -_C["1_961570560"] + z5, z4 * -_C["0_390180644"] + z5
    tmp0, tmp1, tmp2, tmp3 = tmp0 + z1 + z3, tmp1 + z2 + z4, tmp2 + z2 + z3, tmp3 + z1 + z4
    return [_descale(v, shift) for v in (tmp10 + tmp3, tmp11 + tmp2, tmp12 + tmp1, tmp13 + tmp0,
                                         tmp13 - tmp0, tmp12 - tmp1, tmp11 - tmp2, tmp10 - tmp3)]  # fmt: skip


def _islow_roundtrip(blocks: torch.Tensor, recip: torch.Tensor) -> torch.Tensor:
    """Level shift, forward DCT, quantise, dequantise, inverse DCT and range limit of (N, 8, 8) int32 blocks.

    ``recip``: (N, 4, 8, 8) int32, each block's (quantval, reciprocal, correction, shift).
    """
    x = torch.stack(_fdct_1d(list((blocks - 128).unbind(-1)), first=True), -1)  # pass 1 along each row
    coef = torch.stack(_fdct_1d(list(x.unbind(-2)), first=False), -2)  # natural order, scaled by 8
    qval, f, c, r = recip.unbind(1)
    mag = ((coef.abs() + c) * f) >> r
    deq = torch.where(coef < 0, -mag, mag) * qval
    x = torch.stack(_idct_1d(list(deq.unbind(-2)), _CONST_BITS - _PASS1_BITS), -2)  # pass 1 along each column
    x = torch.stack(_idct_1d(list(x.unbind(-1)), _CONST_BITS + _PASS1_BITS + 3), -1) & 1023
    # libjpeg's range-limit table, its wrap-around included
    return torch.where(x < 128, x + 128, torch.where(x < 512, 255, torch.where(x < 896, 0, x - 896)))


def _edge_index(n: int, size: int, device: torch.device) -> torch.Tensor:
    """Indices 0..size-1 clamped to n-1: replicate padding (or cropping) by ``index_select``."""
    return torch.arange(size, device=device).clamp_(max=n - 1)


def _fancy_upsample(c: torch.Tensor) -> torch.Tensor:
    """libjpeg's h2v2 "fancy" upsampling of (B, h, w) int32 chroma to (B, 2h, 2w): a 3/4, 1/4 triangle
    filter with replicated edges, integer rounding biases 8 and 7 alternating. Chroma at most 2 samples
    wide is replicated 2x2 instead, as libjpeg does."""
    if c.shape[-1] <= 2:
        return c.repeat_interleave(2, -2).repeat_interleave(2, -1)
    up = torch.cat([c[:, :1], c[:, :-1]], 1)
    down = torch.cat([c[:, 1:], c[:, -1:]], 1)
    colsum = torch.stack([3 * c + up, 3 * c + down], 2).flatten(1, 2)  # (B, 2h, w)
    left = torch.cat([colsum[..., :1], colsum[..., :-1]], -1)
    right = torch.cat([colsum[..., 1:], colsum[..., -1:]], -1)
    return torch.stack([(3 * colsum + left + 8) >> 4, (3 * colsum + right + 7) >> 4], -1).flatten(-2)


def _to_planes(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One (3, H, W) image (integers 0-255) as libjpeg's encoder sees it before the DCT.

    Returns the luma plane replicated to whole 16x16 MCUs and the Cb, Cr planes: columns replicated to the
    MCU width and rows to an even count, 2x2 sums with bias 1, 2, 1, 2... along each row, then the last
    chroma row replicated to whole 8-row blocks. (Blocks past the image are dropped after decoding.)
    """
    _, h, w = img.shape
    dev = img.device
    x = img.to(torch.int32)
    red, green, blue = x[2], x[1], x[0]  # OpenCV reads the array as BGR
    half, offset = 1 << (_SCALEBITS - 1), 128 << _SCALEBITS
    y = (_fix(0.299) * red + _fix(0.587) * green + _fix(0.114) * blue + half) >> _SCALEBITS
    cb = (-_fix(0.16874) * red - _fix(0.33126) * green + _fix(0.5) * blue + offset + half - 1) >> _SCALEBITS
    cr = (_fix(0.5) * red - _fix(0.41869) * green - _fix(0.08131) * blue + offset + half - 1) >> _SCALEBITS
    hp, wp = -(-h // 16) * 16, -(-w // 16) * 16
    cols = _edge_index(w, wp, dev)
    y = y.index_select(0, _edge_index(h, hp, dev)).index_select(1, cols)
    full = torch.stack([cb, cr]).index_select(1, _edge_index(h, 2 * -(-h // 2), dev)).index_select(2, cols)
    bias = torch.arange(wp // 2, device=dev, dtype=torch.int32) % 2 + 1
    small = (full[:, 0::2, 0::2] + full[:, 0::2, 1::2] + full[:, 1::2, 0::2] + full[:, 1::2, 1::2] + bias) >> 2
    return y, small.index_select(1, _edge_index(-(-h // 2), hp // 2, dev))


def _from_planes(y: torch.Tensor, chroma: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """libjpeg's decoder after the inverse DCT: chroma upsampled, YCbCr to RGB in integers, channels back in
    the array's (BGR-as-seen) order -> (3, h, w) int32 in 0-255."""
    y = y[:h, :w]
    cb, cr = _fancy_upsample(chroma[:, : -(-h // 2), : -(-w // 2)])[:, :h, :w] - 128
    half = 1 << (_SCALEBITS - 1)
    red = y + ((_fix(1.402) * cr + half) >> _SCALEBITS)
    green = y + ((-_fix(0.34414) * cb + half - _fix(0.71414) * cr) >> _SCALEBITS)
    blue = y + ((_fix(1.772) * cb + half) >> _SCALEBITS)
    return torch.stack([blue, green, red]).clamp_(0, 255)


def _as_blocks(plane: torch.Tensor) -> torch.Tensor:
    """(..., H, W) with H, W multiples of 8 -> (N, 8, 8) in raster order of the blocks."""
    h, w = plane.shape[-2:]
    return plane.reshape(-1, h // 8, 8, w // 8, 8).transpose(-3, -2).reshape(-1, 8, 8)


def _from_blocks(blocks: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`_as_blocks`: blocks ((N, 8, 8) or (N, 64)) back to a plane of ``shape``."""
    h, w = shape[-2:]
    return blocks.reshape(-1, h // 8, w // 8, 8, 8).transpose(-3, -2).reshape(shape)


def jpeg_libjpeg_list(images: Sequence[torch.Tensor], quality: Sequence[int] | torch.Tensor) -> list[torch.Tensor]:
    """:func:`jpeg_libjpeg` of images of different sizes: every 8x8 block of every image goes through one
    DCT call, so a batch costs about as many kernel launches as one image.

    Args:
        images: (3, h, w) integer tensors (0-255) on one device; sizes may differ.
        quality: one integer quality (1-100) per image: on the host, or a tensor on the images' device (the
            training path: the batch's qualities, already there; nothing is copied up).
    """
    if not images:
        return []
    dev = images[0].device
    tables = _all_reciprocals(dev).index_select(0, _quality_index(quality, len(images), dev))  # (B, 2, 4, 8, 8)
    planes, blocks, table_ids = [], [], []
    for i, img in enumerate(images):
        if img.ndim != 3 or img.shape[0] != 3:
            raise FacesrError(f"jpeg_libjpeg: expected (3, H, W) images, got shape {tuple(img.shape)}")
        y, chroma = _to_planes(img)
        planes.append((y.shape, chroma.shape))
        for plane, table in ((y, 2 * i), (chroma, 2 * i + 1)):
            blocks.append(_as_blocks(plane))
            table_ids.append(torch.full((blocks[-1].shape[0],), table, dtype=torch.long, device=dev))
    recip = tables.flatten(0, 1).index_select(0, torch.cat(table_ids))
    out = _islow_roundtrip(torch.cat(blocks), recip).split([b.shape[0] for b in blocks])
    return [
        _from_planes(_from_blocks(out[2 * i], ys), _from_blocks(out[2 * i + 1], cs), *img.shape[-2:]).to(img.dtype)
        for i, (img, (ys, cs)) in enumerate(zip(images, planes, strict=True))
    ]


def jpeg_libjpeg(img8: torch.Tensor, quality: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """OpenCV's JPEG encode + decode (libjpeg-turbo defaults) of a (B, 3, H, W) uint8 batch, on its device.

    The array is handed to the codec as OpenCV receives the course's RGB array: as BGR, so libjpeg's "red"
    is channel 2. Bit-exact with ``cv2.imdecode(cv2.imencode(".jpg", hwc, [IMWRITE_JPEG_QUALITY, q])[1], 1)``.

    Args:
        img8: (B, 3, H, W) uint8 (any integer dtype with values in 0-255 works).
        quality: one integer quality (1-100) per sample, on the host (a list or a CPU tensor) or a tensor on
            the batch's device: it only selects tables, which are uploaded once per device.
    """
    if img8.ndim != 4 or img8.shape[1] != 3:
        raise FacesrError(f"jpeg_libjpeg: expected a (B, 3, H, W) uint8 batch, got shape {tuple(img8.shape)}")
    return torch.stack(jpeg_libjpeg_list(list(img8.unbind(0)), quality))


# ------------------------------------------------------------------------------------------------ DiffJPEG


@lru_cache(maxsize=16)
def _dct64(device: torch.device) -> torch.Tensor:
    """(64, 64) float32 on ``device``: the orthonormal 8x8 DCT-II of a row-major flattened block as one
    matrix (the Kronecker square of the 8-point DCT), so ``blocks @ M.T`` is the DCT and ``coef @ M`` its inverse."""
    u, x = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    mat = np.cos((2 * x + 1) * u * np.pi / 16) * np.where(u == 0, np.sqrt(1 / 8), 0.5)
    return torch.from_numpy(np.kron(mat, mat).astype(np.float32)).to(device, non_blocking=True)


@lru_cache(maxsize=16)
def _diffjpeg_tables(device: torch.device) -> torch.Tensor:
    """(2, 64) float32 luma and chroma tables, flattened as DiffJPEG indexes them: transposed (its table
    rows pair with horizontal frequencies)."""
    tables = np.stack([LUMA_TABLE.T, CHROMA_TABLE.T]).astype(np.float32).reshape(2, 64)
    return torch.from_numpy(tables).to(device, non_blocking=True)


@lru_cache(maxsize=16)
def _colour_matrices(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DiffJPEG's float RGB -> YCbCr and YCbCr -> RGB matrices and the (0, 128, 128) shift, on ``device``."""
    to_ycc = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
    to_rgb = [[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]]
    mats = (torch.tensor(to_ycc), torch.tensor(to_rgb), torch.tensor([0.0, 128.0, 128.0]).view(3, 1, 1))
    return tuple(m.to(device, non_blocking=True) for m in mats)


def jpeg_torch_list(images: Sequence[torch.Tensor], quality: torch.Tensor | float) -> list[torch.Tensor]:
    """:func:`jpeg_torch` of (3, h, w) float images of different sizes, every 8x8 block in one DCT product.

    Args:
        images: (3, h, w) float images in [0, 1] on one device; sizes may differ.
        quality: one float quality per image (a tensor, on any device; it is moved to the images' device),
            or one number for all.
    """
    if not images:
        return []
    dev = images[0].device
    q = torch.as_tensor(quality, dtype=torch.float32).to(dev, non_blocking=True).reshape(-1).expand(len(images))
    factor = torch.where(q < 50, 5000 / q, 200 - 2 * q) / 100
    tables, dct = _diffjpeg_tables(dev), _dct64(dev)
    to_ycc, to_rgb, shift = _colour_matrices(dev)
    blocks, shapes, steps = [], [], []
    for i, img in enumerate(images):
        if img.ndim != 3 or img.shape[0] != 3 or not img.is_floating_point():
            got = f"{img.dtype} {tuple(img.shape)}"
            raise FacesrError(f"jpeg_torch: expected float (3, H, W) images in [0, 1], got {got}")
        h, w = img.shape[-2:]
        x = F.pad(img.to(torch.float32) * 255, (0, -w % 16, 0, -h % 16))
        ycc = (to_ycc @ x.reshape(3, -1)).view(x.shape) + shift
        c = ycc[1:]  # 2x2 chroma means, summed in avg_pool2d's order
        chroma = (c[:, 0::2, 0::2] + c[:, 0::2, 1::2] + c[:, 1::2, 0::2] + c[:, 1::2, 1::2]) * 0.25
        for plane, table in ((ycc[0], tables[0]), (chroma, tables[1])):
            blocks.append(_as_blocks(plane).reshape(-1, 64))
            shapes.append(plane.shape)
            steps.append((table * factor[i]).expand(blocks[-1].shape[0], 64))
    step = torch.cat(steps)
    coef = (torch.cat(blocks) - 128) @ dct.T
    coef = torch.where(step > 0, torch.round(coef / step) * step, coef)  # quality 100: f = 0, nothing quantised
    out = (coef @ dct + 128).split([b.shape[0] for b in blocks])
    results = []
    for i, img in enumerate(images):
        y = _from_blocks(out[2 * i], shapes[2 * i])
        c, hc, wc = shapes[2 * i + 1]
        chroma = _from_blocks(out[2 * i + 1], shapes[2 * i + 1])[:, :, None, :, None].expand(c, hc, 2, wc, 2)
        ycc = torch.cat([y[None], chroma.reshape(c, 2 * hc, 2 * wc)]) - shift
        rgb = (to_rgb @ ycc.reshape(3, -1)).view(ycc.shape)
        results.append((rgb.clamp(0, 255) / 255)[:, : img.shape[-2], : img.shape[-1]])
    return results


def jpeg_torch(img: torch.Tensor, quality: torch.Tensor | float) -> torch.Tensor:
    """The course's float JPEG (BasicSR ``DiffJPEG(differentiable=False)``) of a (B, 3, H, W) batch in [0, 1].

    Steps (docs/course.md section 4): x 255; zero padding at the bottom and right to multiples of 16;
    float YCbCr (JFIF matrix, +128 on Cb and Cr); Cb and Cr averaged over 2x2; 8x8 blocks minus 128,
    orthonormal DCT; divided by the standard table times ``f = (5000 / q if q < 50 else 200 - 2 q) / 100``
    (float, not rounded or clipped; indexed transposed, as DiffJPEG does), rounded half to even; multiplied
    back, inverse DCT, +128; chroma repeated 2x2; back to RGB; clamped to [0, 255]; / 255; padding cropped.
    The output is not rounded to 8 bits. Nothing is read back to the host. At quality 100 (f = 0, where
    DiffJPEG divides by zero) nothing is quantised: the limit of the formula, only the chroma averaging is lost.

    Args:
        img: (B, 3, H, W) float batch in [0, 1] on any device.
        quality: one float quality per sample (a (B,) tensor, moved to ``img``'s device if it is not
            there), or one number for all.
    """
    if img.ndim != 4 or img.shape[1] != 3 or not img.is_floating_point():
        got = f"{img.dtype} {tuple(img.shape)}"
        raise FacesrError(f"jpeg_torch: expected a float (B, 3, H, W) batch in [0, 1], got {got}")
    return torch.stack(jpeg_torch_list(list(img.unbind(0)), quality))
