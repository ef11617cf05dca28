"""Tests of facesr.data.degradations (numpy ops and pipeline) and facesr.data.degradations_torch (torch)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from facesr.data import degradations as D
from facesr.data import degradations_torch as DT
from facesr.data.degradations_torch import degrade_batch
from facesr.data.opencv_resize import resize_matrix, resize_taps, resize_torch
from facesr.errors import FacesrError


def _quadratic_form(size: int, sx: float, sy: float, angle: float) -> np.ndarray:
    """q = p^T S^-1 p on the grid, p = (column offset, row offset), S = R diag(sx^2, sy^2) R^T.

    Computed another way than the kit's (which inverts S): p turned back by the angle into the kernel's own
    axes, q = (u / sx)^2 + (v / sy)^2. Exact in float64 at every offset, where a pdf's log would underflow.
    """
    c, s = np.cos(angle), np.sin(angle)
    r = (size - 1) / 2
    rows, cols = np.mgrid[-r : r + 1, -r : r + 1]
    u, v = c * cols + s * rows, -s * cols + c * rows  # R^T p
    return (u / sx) ** 2 + (v / sy) ** 2


def _independent_kernel(size: int, sx: float, sy: float, angle: float) -> np.ndarray:
    """The normalised Gaussian exp(-q / 2) on the grid, from :func:`_quadratic_form`."""
    pdf = np.exp(-0.5 * _quadratic_form(size, sx, sy, angle))
    return pdf / pdf.sum()


@pytest.fixture(scope="module")
def gt() -> np.ndarray:
    from skimage import data

    return cv2.resize(data.astronaut(), (512, 512), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


@pytest.mark.parametrize(
    ("kind", "sx", "sy", "angle"),
    [("iso", 2.0, None, 0.0), ("iso", 0.3, 4.0, 1.0), ("aniso", 4.0, 1.0, 0.6), ("aniso", 0.7, 3.3, -2.5)],
)
def test_blur_kernel_matches_independent_formula(kind, sx, sy, angle):
    k = D.blur_kernel(kind, 41, sx, sy, angle)
    assert k.dtype == np.float32 and k.shape == (41, 41)
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    expected = _independent_kernel(41, sx, sx, 0.0) if kind == "iso" else _independent_kernel(41, sx, sy, angle)
    np.testing.assert_allclose(k, expected, rtol=1e-4, atol=1e-7)


def test_blur_kernel_axis_convention_and_errors():
    k = D.blur_kernel("aniso", 21, 4.0, 1.0, 0.0).astype(np.float64)
    offsets = np.arange(21) - 10
    var_cols = (k.sum(axis=0) * offsets**2).sum()  # spread along x = columns
    var_rows = (k.sum(axis=1) * offsets**2).sum()
    assert var_cols > 10 * var_rows
    # angle pi/2 swaps the axes
    np.testing.assert_allclose(D.blur_kernel("aniso", 21, 4.0, 1.0, np.pi / 2), k.T, atol=1e-7)
    with pytest.raises(FacesrError, match="kind"):
        D.blur_kernel("gauss", 21, 1.0)


@pytest.mark.parametrize(("sx", "sy", "angle"), [(1.5, 1.5, 0.0), (2.5, 0.8, 0.7), (0.6, 2.9, -2.2)])
def test_generalized_and_plateau_kernels_match_their_formulas(sx, sy, angle):
    q = _quadratic_form(21, sx, sy, angle)
    for beta in (0.5, 1.0, 1.7, 4.0):
        expected = np.exp(-0.5 * q**beta)
        np.testing.assert_allclose(D.blur_kernel("generalized_aniso", 21, sx, sy, angle, beta), expected / expected.sum(),
                                   rtol=2e-4, atol=1e-8)  # fmt: skip
    for beta in (1.0, 1.5, 2.0):
        expected = 1 / (q**beta + 1)
        np.testing.assert_allclose(D.blur_kernel("plateau_aniso", 21, sx, sy, angle, beta), expected / expected.sum(),
                                   rtol=2e-4, atol=1e-8)  # fmt: skip
    # beta 1: the generalized Gaussian is the Gaussian
    np.testing.assert_allclose(D.blur_kernel("generalized_aniso", 21, sx, sy, angle, 1.0),
                               D.blur_kernel("aniso", 21, sx, sy, angle), atol=1e-7)  # fmt: skip
    np.testing.assert_allclose(D.blur_kernel("generalized_iso", 21, sx, 9.0, 1.0, beta=1.0), D.blur_kernel("iso", 21, sx),
                               atol=1e-7)  # fmt: skip


def test_plateau_shape_and_kernel_kind_errors():
    k = D.blur_kernel("plateau_iso", 21, 2.0, beta=2.0).astype(np.float64)
    centre = k[10, 10]
    # on the x axis q = (x / sigma)^2: the kernel is centre / ((x/2)^(2 beta) + 1); flat top, heavy tail
    for x in range(11):
        assert k[10, 10 + x] == pytest.approx(centre / ((x / 2) ** 4 + 1), rel=1e-5)
    assert k[10, 11] > 0.9 * centre and k[10, 12] == pytest.approx(centre / 2, rel=1e-5)
    np.testing.assert_allclose(k, k.T, atol=1e-9)  # iso: sigma_y and angle are ignored
    np.testing.assert_array_equal(D.blur_kernel("plateau_iso", 21, 2.0, 0.5, 1.0, beta=2.0), k.astype(np.float32))
    assert D.blur_kernel("plateau_iso", 21, 2.0, beta=1.0)[10, 0] > D.blur_kernel("iso", 21, 2.0)[10, 0]
    for kind in ("generalized_iso", "plateau_aniso"):
        with pytest.raises(FacesrError, match="beta"):
            D.blur_kernel(kind, 21, 1.0)
    assert set(D.BLUR_KINDS) == {"iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"}


def _bessel_j1(x: np.ndarray) -> np.ndarray:
    """J1 from its integral form (1 / pi) int_0^pi cos(t - x sin t) dt, by the trapezoidal rule."""
    t = np.linspace(0, np.pi, 4001)
    y = np.cos(t[:, None] - np.ravel(x)[None] * np.sin(t[:, None]))
    integral = (y[:-1] + y[1:]).sum(axis=0) * (t[1] - t[0]) / 2  # numpy 1.x has no np.trapezoid, 2.x deprecates trapz
    return integral.reshape(np.shape(x)) / np.pi


@pytest.mark.parametrize(("size", "omega"), [(7, np.pi / 3), (13, 2.0), (21, np.pi / 5), (21, np.pi)])
def test_sinc_kernel_is_the_circular_low_pass_filter(size, omega):
    k = D.sinc_kernel(size, omega)
    assert k.dtype == np.float32 and k.shape == (size, size) and k.sum() == pytest.approx(1, abs=1e-5)
    r = (size - 1) / 2
    rows, cols = np.mgrid[-r : r + 1, -r : r + 1]
    radius = np.hypot(rows, cols)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = omega * _bessel_j1(omega * radius) / (2 * np.pi * radius)
    expected[size // 2, size // 2] = omega**2 / (4 * np.pi)
    np.testing.assert_allclose(k, expected / expected.sum(), rtol=1e-4, atol=1e-7)
    padded = D.sinc_kernel(size, omega, pad_to=21)
    pad = (21 - size) // 2
    assert padded.shape == (21, 21) and np.abs(padded).sum() == pytest.approx(np.abs(k).sum(), rel=1e-6)
    np.testing.assert_array_equal(padded[pad : pad + size, pad : pad + size], k)
    # a low-pass filter: the lower the cutoff, the wider the main lobe
    assert D.sinc_kernel(size, omega / 2)[size // 2, size // 2] < k[size // 2, size // 2]


def test_sinc_kernel_errors():
    for bad in ({"size": 8, "omega_c": 1.0}, {"size": 7, "omega_c": 4.0}, {"size": 7, "omega_c": 1.0, "pad_to": 20}):
        with pytest.raises(FacesrError, match="sinc_kernel"):
            D.sinc_kernel(**bad)


@pytest.mark.parametrize(
    "kernel",
    [
        D.blur_kernel("iso", 41, 3.0),
        D.blur_kernel("iso", 41, 0.25),
        D.blur_kernel("aniso", 41, 5.0, 0.4, 0.8),
        D.blur_kernel("aniso", 41, 2.0, 1.2, 0.0),
        D.blur_kernel("aniso", 41, 1.0, 0.6, 2.0),
    ],
)
def test_blur_equals_filter2d(kernel):
    img = np.random.default_rng(0).random((96, 80, 3), dtype=np.float32)
    out = D.blur(img, kernel)
    assert out.shape == img.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101), atol=2e-6)


def test_single_ops_shapes_and_values():
    rng = np.random.default_rng(1)
    img = rng.random((64, 48, 3), dtype=np.float32)
    for name in ("bilinear", "area", "bicubic"):
        out = D.resize(img, (20, 30), name)
        assert out.shape == (20, 30, 3) and out.dtype == np.float32
    with pytest.raises(FacesrError, match="interpolation"):
        D.resize(img, 10, "nearest")
    noisy = D.add_gaussian_noise(np.zeros((200, 200, 3), np.float32), 25.0, np.random.default_rng(2))
    assert noisy.dtype == np.float32 and abs(noisy.std() - 25 / 255) < 0.003
    assert noisy.min() < 0  # not clipped
    np.testing.assert_array_equal(noisy, D.add_gaussian_noise(np.zeros_like(noisy), 25.0, np.random.default_rng(2)))
    q = D.quantize(img * 1.4 - 0.2)
    assert q.dtype == np.float32 and q.min() == 0 and q.max() == 1
    np.testing.assert_array_equal(q * 255, np.clip(np.round((img * 1.4 - 0.2) * 255), 0, 255))
    # round half to even, as np.round: 0.5/255 -> 0, 1.5/255 -> 2, 2.5/255 -> 2
    halves = np.array([0.5, 1.5, 2.5, 253.5], np.float32).reshape(1, 4, 1).repeat(3, axis=2) / np.float32(255)
    np.testing.assert_array_equal(D.to_uint8(halves)[0, :, 0], np.round(halves[0, :, 0] * 255))
    # JPEG: x255, round, saturate, OpenCV codec fed the RGB array as BGR, decode, /255
    img8 = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    _, buf = cv2.imencode(".jpg", img8, [int(cv2.IMWRITE_JPEG_QUALITY), 60])
    expected = cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float32) / 255
    out = D.jpeg_compress(img, 60)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_shared_uint8_float_conversions():
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        x = (rng.random((9, 7, 3)) * 1.4 - 0.2).astype(dtype)
        x[0, :4, 0] = np.array([0.5, 1.5, 2.5, 254.5], dtype) / dtype(255)  # ties: half to even
        expected = np.clip(np.round(x * dtype(255)), 0, 255).astype(np.uint8)  # in the input's precision
        np.testing.assert_array_equal(D.to_uint8(x), expected)
    img8 = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    assert D.to_uint8(img8) is img8  # uint8 passes through
    assert D.to_uint8(np.zeros((0, 4, 3), np.float32)).shape == (0, 4, 3)
    f = D.to_float(img8)
    assert f.dtype == np.float32 and f.flags.c_contiguous
    np.testing.assert_array_equal(f, img8.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(D.to_uint8(f), img8)
    assert D.to_float(f) is f  # float32 passes through
    assert D.to_float(f.astype(np.float64)).dtype == np.float32
    assert D.to_float(img8[:, ::-1]).flags.c_contiguous
    # the JPEG helper shared with degrade_batch: OpenCV's codec, uint8 in and out
    _, buf = cv2.imencode(".jpg", img8, [int(cv2.IMWRITE_JPEG_QUALITY), 80])
    np.testing.assert_array_equal(D.jpeg_roundtrip_uint8(img8, 80), cv2.imdecode(buf, cv2.IMREAD_COLOR))
    np.testing.assert_array_equal(D.jpeg_compress(f, 80), D.to_float(D.jpeg_roundtrip_uint8(img8, 80)))
    p = D.DegradationParams("aniso", 2.0, 1.0, 0.5, 0.5, "bicubic", 5.0, 75, "bilinear")
    np.testing.assert_array_equal(D.params_kernel(p), D.blur_kernel("aniso", 41, 2.0, 1.0, 0.5))


def test_settings_and_params():
    s = D.DegradationSettings()
    assert (s.kernel_size, s.iso_prob, s.sigma_range, s.scale_range) == (41, 0.5, (0.2, 5.0), (0.0625, 1.0))
    assert (s.noise_sigma_range, s.jpeg_quality_range, s.out_size, s.gt_size) == ((0, 25), (50, 95), 128, 512)
    p = D.sample_params(np.random.default_rng(0))
    assert p.kernel_kind in ("iso", "aniso") and isinstance(p.jpeg_quality, int) and 50 <= p.jpeg_quality <= 95
    assert "JPEG q=" in str(p)
    for bad in ({"kernel_size": 40}, {"resize_interpolations": ("nearest",), "resize_probs": (1.0,)},
                {"sigma_range": (3.0, 1.0)}, {"resize_probs": (0.5, 0.5, 0.5)}):  # fmt: skip
        with pytest.raises(FacesrError):
            D.DegradationSettings(**bad)
    many = [D.sample_params(np.random.default_rng(i)) for i in range(200)]
    assert {q.kernel_kind for q in many} == {"iso", "aniso"}
    assert {q.down_interpolation for q in many} == {"bilinear", "area", "bicubic"}
    assert all(q.sigma_x == q.sigma_y and q.angle == 0 for q in many if q.kernel_kind == "iso")


def test_degrade_shape_determinism_and_custom_settings(gt):
    lq, params = D.degrade(gt, np.random.default_rng(5), return_params=True)
    assert lq.shape == (128, 128, 3) and lq.dtype == np.float32 and isinstance(params, D.DegradationParams)
    assert lq.min() > -0.01 and lq.max() < 1.01
    np.testing.assert_array_equal(lq, D.degrade(gt, np.random.default_rng(5)))
    assert np.abs(lq - D.degrade(gt, np.random.default_rng(6))).mean() > 1e-3
    # a degenerate setting (no blur to speak of, no resize, no noise, best JPEG) stays close to plain area x4
    mild = D.DegradationSettings(sigma_range=(0.2, 0.2), scale_range=(1.0, 1.0), noise_sigma_range=(0, 0),
                                 jpeg_quality_range=(100, 100))  # fmt: skip
    plain = cv2.resize(gt, (128, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(D.degrade(gt, np.random.default_rng(0), mild) - plain).mean() < 0.01
    with pytest.raises(FacesrError, match="float"):
        D.degrade((gt * 255).astype(np.uint8), np.random.default_rng(0))


def test_degrade_matches_reference_per_seed(gt):
    kinds = set()
    for seed in range(8):
        lq, p = D.degrade(gt, np.random.default_rng(seed), return_params=True)
        kinds.add(p.kernel_kind)
        ref = D.degrade_reference(gt, np.random.default_rng(seed))
        assert ref.shape == lq.shape and ref.dtype == np.float32
        assert np.abs(lq - ref).mean() < 1e-4, (seed, str(p))
    assert kinds == {"iso", "aniso"}


@pytest.mark.parametrize("interpolation", ["bilinear", "area", "bicubic"])
def test_torch_resize_matrices_match_opencv(interpolation):
    img = np.random.default_rng(3).random((64, 80, 3), dtype=np.float32)
    x = torch.from_numpy(img).permute(2, 0, 1)
    for size in [(32, 40), (16, 20), (17, 23), (45, 61), (5, 7), (64, 80), (100, 130), (128, 160)]:
        expected = cv2.resize(img, size[::-1], interpolation=D.INTERPOLATIONS[interpolation])
        out = resize_torch(x, size, interpolation).permute(1, 2, 0).numpy()
        np.testing.assert_allclose(out, expected, atol=1e-5, err_msg=f"{interpolation} {size}")
        mh, mw = resize_matrix(64, size[0], interpolation), resize_matrix(80, size[1], interpolation)
        np.testing.assert_allclose(np.einsum("ij,cjk,lk->ilc", mh, x.numpy(), mw), expected, atol=1e-5)
    # area down is a convex box average: rows sum to 1
    np.testing.assert_allclose(resize_matrix(512, 300, "area").sum(axis=1), 1.0, atol=1e-6)


def test_jpeg_batch_codecs_match_opencv_course_convention():
    rng = np.random.default_rng(4)
    imgs = [cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), 2) for h, w in ((72, 96), (33, 17))]
    tensors = [torch.from_numpy(img).permute(2, 0, 1) for img in imgs]
    for codec in DT.JPEG_CODECS:
        outs = DT.jpeg_batch(tensors, [70, 55], codec)
        for out, img, q in zip(outs, imgs, (70, 55), strict=True):
            np.testing.assert_array_equal(out.permute(1, 2, 0).numpy(), D.jpeg_compress(img, q), err_msg=codec)
    # the path of a GPU batch: one copy down, the codecs in threads, one copy back
    img8 = [(t * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0) for t in tensors]
    for out, t, q in zip(DT.opencv_one_trip(img8, [70, 55]), img8, (70, 55), strict=True):
        np.testing.assert_array_equal(out.numpy(), D.jpeg_roundtrip_uint8(t.contiguous().numpy(), q))
    assert DT.default_jpeg_codec(torch.device("cpu")) == "opencv"
    assert DT.default_jpeg_codec(torch.device("cuda")) == ("torch" if DT.TORCH_JPEG_ON_CUDA else "opencv")
    with pytest.raises(FacesrError, match="codec"):
        DT.jpeg_batch(tensors, [70, 55], "nvjpeg")


def test_params_tensor_round_trip_and_apply_with_given_params(gt):
    params = [D.sample_params(np.random.default_rng(seed)) for seed in range(6)]
    table = DT.params_to_tensor(params)
    assert table.shape == (6, len(DT.PARAM_COLUMNS)) and table.dtype == torch.float64
    assert DT.params_from_tensor(table) == params and DT.params_from_tensor(table[2]) == [params[2]]
    assert torch.equal(DT.params_to_tensor(params[1]), table[1])
    # collating one row per sample gives the batch table
    assert torch.equal(torch.utils.data.default_collate([DT.params_to_tensor(p) for p in params]), table)
    batch = torch.from_numpy(gt[::4, ::4]).permute(2, 0, 1)[None].repeat(3, 1, 1, 1)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    lq, drawn = degrade_batch(batch, gens, return_params=True)
    # degrade_batch = draw from each generator, then apply: replaying the draws leaves each generator where its
    # noise starts, so applying the tensor form reproduces the LQ (here with the torch codec: bit-exact too)
    for g, s in zip(gens, (1, 2, 3), strict=True):
        DT.sample_params_torch(1, g.manual_seed(s))
    assert torch.equal(lq, DT.apply_degradation_batch(batch, DT.params_to_tensor(drawn), gens, jpeg="torch"))
    with pytest.raises(FacesrError, match="params_to_tensor"):
        DT.params_from_tensor(table[:, :5])
    with pytest.raises(FacesrError, match="parameter sets"):
        DT.apply_degradation_batch(batch, table, None)


def test_apply_degradation_batch_on_the_meta_device_reads_nothing_back():
    """With the torch JPEG the course degradation runs on a device without reading any value back."""
    gt = torch.rand(4, 3, 64, 64, device="meta")
    table = DT.params_to_tensor([D.sample_params(np.random.default_rng(seed)) for seed in range(4)])
    lq = DT.apply_degradation_batch(gt, table, jpeg="torch")
    assert lq.device.type == "meta" and lq.shape == (4, 3, 16, 16)
    assert resize_taps(64, 16, "area", "meta")[0] is resize_taps(64, 16, "area", torch.device("meta"))[0]
    with pytest.raises(NotImplementedError):
        DT.apply_degradation_batch(gt, table, jpeg="opencv")  # OpenCV needs the pixels on the host


def test_degrade_batch_shape_device_determinism(gt):
    batch = torch.from_numpy(gt).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    lq, params = degrade_batch(batch, torch.Generator().manual_seed(0), return_params=True)
    assert lq.shape == (2, 3, 128, 128) and lq.dtype == torch.float32 and lq.device == batch.device
    assert len(params) == 2 and all(isinstance(p, D.DegradationParams) for p in params)
    assert not torch.equal(lq[0], lq[1])  # each sample has its own parameters
    assert torch.equal(lq, degrade_batch(batch, torch.Generator().manual_seed(0)))
    assert not torch.equal(lq, degrade_batch(batch, torch.Generator().manual_seed(1)))
    assert not hasattr(D, "degrade_batch")  # the numpy module never imports the torch one
    with pytest.raises(FacesrError, match="B, 3, H, W"):
        degrade_batch(batch[0])


def test_degrade_batch_with_one_generator_per_sample(gt):
    """Sample i depends on its own generator only: the trainer's per-sample seeds make it independent of N ranks."""
    batch = torch.from_numpy(gt).permute(2, 0, 1)[None].repeat(3, 1, 1, 1)

    def gens(*seeds: int) -> list[torch.Generator]:
        return [torch.Generator().manual_seed(s) for s in seeds]

    lq = degrade_batch(batch, gens(4, 5, 6))
    alone = degrade_batch(batch[1:2], gens(5))
    assert torch.equal(lq[1], alone[0]) and not torch.equal(lq[0], lq[1])
    assert torch.equal(lq, degrade_batch(batch, gens(4, 5, 6)))
    with pytest.raises(FacesrError, match="2 generators for a batch of 3"):
        degrade_batch(batch, gens(1, 2))


@pytest.mark.slow
def test_small_distribution_check(one_torch_thread: None):
    """Mean bicubic PSNR of 40 random degradations per image near the course means (docs/course.md section 3)."""
    from skimage import data

    for name, ref in (("astronaut", 21.78), ("coffee", 24.46), ("chelsea", 28.46)):
        im = cv2.resize(getattr(data, name)(), (512, 512), interpolation=cv2.INTER_AREA)
        numpy_mean = D.bicubic_psnr_samples(im, 40, np.random.default_rng(7)).mean()
        assert abs(numpy_mean - ref) < 0.8, (name, numpy_mean)
        batch = torch.from_numpy(im).permute(2, 0, 1).float().div(255)[None].repeat(8, 1, 1, 1)
        gen = torch.Generator().manual_seed(7)
        lq = torch.cat([degrade_batch(batch, gen) for _ in range(5)])
        psnrs = [D.lq_bicubic_psnr(x.permute(1, 2, 0).numpy(), im) for x in lq]
        assert abs(np.mean(psnrs) - ref) < 0.8, (name, np.mean(psnrs))
