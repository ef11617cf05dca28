"""The 2024/2025 second-order degradation's settings and draws: every random choice of one sample, on the CPU.

:func:`sample_second_order_params` draws ONE sample's choices from a ``numpy.random.Generator`` (the kernels as
the course's dataset made them, every resize, noise, JPEG and order choice; docs/course.md section 4) and
returns a dict of fixed-shape CPU tensors (:data:`PARAM_KEYS`) that ``torch.utils.data.default_collate``
stacks; :func:`facesr.data.second_order.apply_second_order` applies a batch of them on any device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from facesr.data.degradations import BLUR_KINDS, blur_kernel, sinc_kernel
from facesr.errors import FacesrError

KERNEL_KINDS = (*BLUR_KINDS, "sinc")
KERNEL_SHAPE = ("sigma_x", "sigma_y", "angle", "beta", "omega")
RESIZE_KINDS = ("up", "down", "keep")
RESIZE_MODES = ("area", "bilinear", "bicubic")

@dataclass
class SecondOrderSettings:
    """Every value of the course's second-order degradation; the defaults are the course's (docs/course.md section 4).

    The ``*2`` fields are the second stage's. Ranges are ``(low, high)`` for a uniform draw; noise sigmas
    are in 0-255 units. ``resize_probs`` are the probabilities of up / down / keep; ``resize_range`` is
    (lowest down scale, highest up scale). ``scale`` is the SR factor: stage 2 resizes to ``H / scale * s``.
    """

    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    kernel_pad: int = 21
    kernel_kinds: tuple[str, ...] = BLUR_KINDS
    kernel_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    kernel_probs2: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob2: float = 0.1
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    betag_range2: tuple[float, float] = (0.5, 4.0)
    betap_range2: tuple[float, float] = (1.0, 2.0)
    final_sinc_prob: float = 0.8
    gt_usm: bool = True
    usm_weight: float = 0.5
    usm_radius: int = 50
    usm_threshold: float = 10.0
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.2, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 20.0)
    poisson_scale_range: tuple[float, float] = (0.05, 2.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (50.0, 95.0)
    second_blur_prob: float = 0.8
    resize_probs2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 15.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 1.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[float, float] = (70.0, 95.0)
    resize_mode_probs: tuple[float, float, float] = field(default=(1 / 3, 1 / 3, 1 / 3))
    final_sinc_first_prob: float = 0.5
    scale: int = 4

    def __post_init__(self) -> None:
        if any(k < 1 or k % 2 == 0 or k > self.kernel_pad for k in self.kernel_sizes) or self.kernel_pad % 2 == 0:
            raise FacesrError(
                f"SecondOrderSettings.kernel_sizes={self.kernel_sizes}: use odd sizes <= kernel_pad (odd)"
            )
        unknown = [k for k in self.kernel_kinds if k not in BLUR_KINDS]
        if unknown:
            raise FacesrError(f"SecondOrderSettings.kernel_kinds={self.kernel_kinds}: use names from {BLUR_KINDS}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_probs") or f.name.endswith("_probs2"):
                n = len(self.kernel_kinds) if f.name.startswith("kernel") else 3
                if len(value) != n or min(value) < 0 or abs(sum(value) - 1) > 1e-6:
                    raise FacesrError(f"SecondOrderSettings.{f.name}={value}: give {n} probabilities summing to 1")
            elif f.name.endswith("_prob") or f.name.endswith("_prob2"):
                if not 0 <= value <= 1:
                    raise FacesrError(f"SecondOrderSettings.{f.name}={value}: use a probability in [0, 1]")
            elif isinstance(value, tuple) and len(value) == 2 and value[0] > value[1]:
                raise FacesrError(f"SecondOrderSettings.{f.name}={value}: low must not exceed high")
        for name in ("resize_range", "resize_range2"):
            low, high = getattr(self, name)
            if not 0 < low <= 1 <= high:
                raise FacesrError(f"SecondOrderSettings.{name}={(low, high)}: use 0 < down scale <= 1 <= up scale")
        for name in ("jpeg_range", "jpeg_range2"):
            low, high = getattr(self, name)
            if not 1 <= low <= high <= 100:
                raise FacesrError(f"SecondOrderSettings.{name}={(low, high)}: use qualities in [1, 100]")
        if self.scale < 1:
            raise FacesrError(f"SecondOrderSettings.scale={self.scale}: use a positive integer")

# ------------------------------------------------------------------------------------------ the draw (CPU)

#: The keys of one sample's params and their dtypes. The three kernels are (kernel_pad, kernel_pad), 21x21
#: for the course; ``kernel1_shape`` and ``kernel2_shape`` are (5,) (:data:`KERNEL_SHAPE`, what made the
#: kernel); everything else is 0-d. default_collate puts a batch dimension first.
PARAM_KEYS: dict[str, torch.dtype] = {
    "kernel1": torch.float32, "kernel1_kind": torch.int64, "kernel1_size": torch.int64, "kernel1_shape": torch.float64,
    "kernel2": torch.float32, "kernel2_kind": torch.int64, "kernel2_size": torch.int64, "kernel2_shape": torch.float64,
    "sinc_kernel": torch.float32, "final_sinc": torch.bool, "sinc_size": torch.int64, "sinc_omega": torch.float64,
    "resize1_kind": torch.int64, "resize1_scale": torch.float64, "resize1_mode": torch.int64,
    "noise1_gaussian": torch.bool, "noise1_sigma": torch.float64, "noise1_scale": torch.float64,
    "noise1_gray": torch.bool, "jpeg1_quality": torch.float32, "blur2": torch.bool,
    "resize2_kind": torch.int64, "resize2_scale": torch.float64, "resize2_mode": torch.int64,
    "noise2_gaussian": torch.bool, "noise2_sigma": torch.float64, "noise2_scale": torch.float64,
    "noise2_gray": torch.bool, "final_sinc_first": torch.bool, "final_mode": torch.int64,
    "jpeg2_quality": torch.float32,
}  # fmt: skip


def kernel_from_shape(kind: str, size: int, shape: Sequence[float], pad_to: int = 21) -> np.ndarray:
    """A blur or sinc kernel from its :data:`KERNEL_SHAPE` values, zero-padded to ``pad_to`` (float32).

    Args:
        kind: one of :data:`KERNEL_KINDS`.
        size: kernel side (odd, at most ``pad_to``).
        shape: (sigma_x, sigma_y, angle, beta, omega); the kind uses what it needs (beta: generalized and
            plateau kinds; omega: sinc).
        pad_to: side after zero padding.
    """
    if kind not in KERNEL_KINDS or size > pad_to:
        raise FacesrError(f"kernel_from_shape: kind {kind!r} (use one of {KERNEL_KINDS}), size {size} <= {pad_to}")
    sigma_x, sigma_y, angle, beta, omega = (float(v) for v in shape)
    if kind == "sinc":
        return sinc_kernel(size, omega, pad_to=pad_to)
    needs_beta = kind.startswith(("generalized", "plateau"))
    kernel = blur_kernel(kind, size, sigma_x, sigma_y, angle, beta if needs_beta else None)
    return np.pad(kernel, (pad_to - size) // 2)


def _draw_kernel(
    rng: np.random.Generator, s: SecondOrderSettings, stage: int
) -> tuple[np.ndarray, int, int, list[float]]:
    """One blur kernel as the course's dataset draws it -> (kernel padded to kernel_pad, kind code, size, shape)."""
    suffix = "2" if stage == 2 else ""
    size = int(s.kernel_sizes[rng.integers(len(s.kernel_sizes))])
    if rng.random() < getattr(s, f"sinc_prob{suffix}"):
        omega = rng.uniform(np.pi / 3, np.pi) if size < 13 else rng.uniform(np.pi / 5, np.pi)
        kind, shape = "sinc", [0.0, 0.0, 0.0, 0.0, omega]
    else:
        probs = np.asarray(getattr(s, f"kernel_probs{suffix}"), dtype=np.float64)
        kind = s.kernel_kinds[int(rng.choice(len(probs), p=probs / probs.sum()))]
        sigma_range = getattr(s, f"blur_sigma{suffix}")
        sigma_x = rng.uniform(*sigma_range)
        sigma_y, angle = sigma_x, 0.0
        if "aniso" in kind:
            sigma_y, angle = rng.uniform(*sigma_range), rng.uniform(-np.pi, np.pi)
        beta = 0.0
        if kind.startswith(("generalized", "plateau")):
            low, high = getattr(s, f"{'betag' if kind.startswith('generalized') else 'betap'}_range{suffix}")
            beta = rng.uniform(low, 1) if rng.random() < 0.5 else rng.uniform(1, high)
        shape = [sigma_x, sigma_y, angle, beta, 0.0]
    return kernel_from_shape(kind, size, shape, s.kernel_pad), KERNEL_KINDS.index(kind), size, shape


def pulse_kernel(size: int = 21) -> np.ndarray:
    """The identity kernel (a centred 1 in zeros), float32: the final "sinc" of samples drawn without one.

    Args:
        size: kernel side (odd).
    """
    pulse = np.zeros((size, size), np.float32)
    pulse[size // 2, size // 2] = 1
    return pulse


def _draw_resize(
    rng: np.random.Generator, probs: tuple[float, ...], scale_range: tuple[float, float]
) -> tuple[int, float]:
    kind = int(rng.choice(3, p=np.asarray(probs) / np.sum(probs)))
    # both scales are drawn whatever the kind: every draw takes the same number of numbers from rng
    scale = (rng.uniform(1, scale_range[1]), rng.uniform(scale_range[0], 1), 1.0)[kind]
    return kind, float(scale)


def sample_second_order_params(
    rng: np.random.Generator, settings: SecondOrderSettings | None = None
) -> dict[str, torch.Tensor]:
    """Draw one sample's second-order degradation on the CPU from ``rng``.

    The kernels come from the course's formulas (:func:`facesr.data.degradations.blur_kernel`,
    :func:`~facesr.data.degradations.sinc_kernel`), zero-padded to ``kernel_pad``; the final sinc is a
    pulse (identity) when not drawn. Every other choice is a 0-d tensor; see :data:`PARAM_KEYS` for the keys,
    shapes and dtypes. Codes: kernel kinds index :data:`KERNEL_KINDS`, resize kinds :data:`RESIZE_KINDS`,
    modes :data:`RESIZE_MODES`. Noise sigmas are in 0-255 units (0 when the noise is Poisson), Poisson
    scales 0 when the noise is Gaussian.

    Args:
        rng: the sample's generator (in the trainer's worker: the one that drew the sample's crop and flip).
        settings: None for the course's values.
    """
    s = settings or SecondOrderSettings()
    modes = np.asarray(s.resize_mode_probs) / np.sum(s.resize_mode_probs)
    p: dict[str, object] = {}
    for stage in (1, 2):
        kernel, kind, size, shape = _draw_kernel(rng, s, stage)
        p[f"kernel{stage}"], p[f"kernel{stage}_kind"], p[f"kernel{stage}_size"] = kernel, kind, size
        p[f"kernel{stage}_shape"] = np.asarray(shape, dtype=np.float64)
    p["final_sinc"] = bool(rng.random() < s.final_sinc_prob)
    p["sinc_kernel"], p["sinc_size"], p["sinc_omega"] = pulse_kernel(s.kernel_pad), 1, 0.0
    if p["final_sinc"]:
        size = int(s.kernel_sizes[rng.integers(len(s.kernel_sizes))])
        p["sinc_omega"] = omega = rng.uniform(np.pi / 3, np.pi)
        p["sinc_kernel"], p["sinc_size"] = sinc_kernel(size, omega, pad_to=s.kernel_pad), size
    for stage, suffix in ((1, ""), (2, "2")):
        if stage == 2:
            p["blur2"] = bool(rng.random() < s.second_blur_prob)
        kind, scale = _draw_resize(rng, getattr(s, f"resize_probs{suffix}"), getattr(s, f"resize_range{suffix}"))
        p[f"resize{stage}_kind"], p[f"resize{stage}_scale"] = kind, scale
        p[f"resize{stage}_mode"] = int(rng.choice(3, p=modes))
        gaussian = bool(rng.random() < getattr(s, f"gaussian_noise_prob{suffix}"))
        p[f"noise{stage}_gaussian"] = gaussian
        p[f"noise{stage}_sigma"] = rng.uniform(*getattr(s, f"noise_range{suffix}")) if gaussian else 0.0
        p[f"noise{stage}_scale"] = 0.0 if gaussian else rng.uniform(*getattr(s, f"poisson_scale_range{suffix}"))
        p[f"noise{stage}_gray"] = bool(rng.random() < getattr(s, f"gray_noise_prob{suffix}"))
        if stage == 1:
            p["jpeg1_quality"] = rng.uniform(*s.jpeg_range)
    p["final_sinc_first"] = bool(rng.random() < s.final_sinc_first_prob)
    p["final_mode"] = int(rng.choice(3, p=modes))
    p["jpeg2_quality"] = rng.uniform(*s.jpeg_range2)
    out = {}
    for key, dtype in PARAM_KEYS.items():
        value = p[key]
        out[key] = torch.from_numpy(value) if isinstance(value, np.ndarray) else torch.tensor(value, dtype=dtype)
    return out


def describe_params(params: Mapping[str, torch.Tensor], index: int = 0) -> str:
    """One line that names sample ``index``'s choices (for figure titles and logs).

    Args:
        params: one sample's params or a collated batch of them.
        index: the sample of the batch.
    """
    p = params_of(batched_params(params), index)

    def noise(stage: int) -> str:
        gray = " gray" if bool(p[f"noise{stage}_gray"]) else ""
        if bool(p[f"noise{stage}_gaussian"]):
            return f"Gaussian{gray} {float(p[f'noise{stage}_sigma']):.1f}/255"
        return f"Poisson{gray} x{float(p[f'noise{stage}_scale']):.2f}"

    def resize(stage: int) -> str:
        return f"{RESIZE_KINDS[int(p[f'resize{stage}_kind'])]} x{float(p[f'resize{stage}_scale']):.2f} " \
               f"{RESIZE_MODES[int(p[f'resize{stage}_mode'])]}"  # fmt: skip

    k1, k2 = (f"{KERNEL_KINDS[int(p[f'kernel{i}_kind'])]} {int(p[f'kernel{i}_size'])}px" for i in (1, 2))
    sinc = f"sinc {int(p['sinc_size'])}px" if bool(p["final_sinc"]) else "no sinc"
    order = "resize+sinc, JPEG" if bool(p["final_sinc_first"]) else "JPEG, resize+sinc"
    return (
        f"1: {k1}, {resize(1)}, {noise(1)}, JPEG {float(p['jpeg1_quality']):.0f} | "
        f"2: {k2 if bool(p['blur2']) else 'no blur'}, {resize(2)}, {noise(2)} | "
        f"final: {order} ({sinc}, {RESIZE_MODES[int(p['final_mode'])]}), JPEG {float(p['jpeg2_quality']):.0f}"
    )


def params_of(params: Mapping[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    """Sample ``i``'s params of a batch of them."""
    return {key: params[key][i] for key in PARAM_KEYS}


def batched_params(params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch of params (as collated) or one sample's dict -> a batch, on the host."""
    missing = [key for key in PARAM_KEYS if key not in params]
    if missing:
        raise FacesrError(f"second-order params lack {', '.join(missing)}; make them with sample_second_order_params")
    one = params["kernel1"].ndim == 2
    return {key: (params[key][None] if one else params[key]).cpu() for key in PARAM_KEYS}
