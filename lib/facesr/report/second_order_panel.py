"""The 2024/2025 degradation panel of notebook 02 (the second-order pipeline), and the pure functions behind it.

Like :mod:`facesr.report.widgets`, the panel uses only ipywidgets API common to 7.7 (Colab) and 8.x:
FloatSlider, Dropdown (options as ``(label, value)`` pairs), Button, Output, HBox/VBox, ``observe(handler,
names="value")``, ``on_click`` and ``Button.click()``. Its callbacks call :func:`render_second_order`, a plain
function of the GT and a :class:`SecondOrderKnobs`; the panel shows the main knobs of each stage and keeps
the others (kernel sizes, sigma y, angle, beta, resize modes) from the last random draw.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from facesr.data.degradations import lq_bicubic_psnr, to_float, to_uint8
from facesr.data.second_order import SecondOrderSettings, apply_second_order
from facesr.data.second_order_draws import (
    KERNEL_KINDS,
    PARAM_KEYS,
    RESIZE_MODES,
    kernel_from_shape,
    pulse_kernel,
    sample_second_order_params,
)
from facesr.errors import FacesrError
from facesr.report.widgets import ControlPanel

NOISE_KINDS = ("gaussian", "poisson")


@dataclass
class SecondOrderKnobs:
    """Every choice of one second-order degradation, as the panel's controls show them (docs/course.md section 4).

    Stage ``n`` (1, 2): kernel family ``kernel{n}`` (one of ``KERNEL_KINDS``) of side ``kernel{n}_size`` with
    ``sigma{n}``, ``sigma{n}_y``, ``angle{n}`` (radians), ``beta{n}`` (generalized and plateau kinds) or
    ``omega{n}`` (sinc cutoff); resize ``scale{n}`` (1 = keep) with ``mode{n}``; ``noise{n}`` (``"gaussian"``
    with ``noise{n}_sigma`` in 0-255 units, or ``"poisson"`` with ``noise{n}_scale``), ``gray{n}``.
    Stage 1 ends with JPEG ``jpeg1``; stage 2 blurs only when ``blur2``. The final step resizes to the LQ
    size with ``final_mode`` and filters with a sinc of side ``sinc_size`` and cutoff ``omega`` when
    ``sinc``, before JPEG ``jpeg2`` when ``sinc_first``, after it otherwise. ``usm`` sharpens the GT first.
    """

    usm: bool = True
    kernel1: str = "iso"
    kernel1_size: int = 21
    sigma1: float = 1.5
    sigma1_y: float = 1.5
    angle1: float = 0.0
    beta1: float = 1.0
    omega1: float = 2.0
    scale1: float = 0.5
    mode1: str = "bicubic"
    noise1: str = "gaussian"
    noise1_sigma: float = 8.0
    noise1_scale: float = 1.0
    gray1: bool = False
    jpeg1: float = 75.0
    blur2: bool = True
    kernel2: str = "iso"
    kernel2_size: int = 21
    sigma2: float = 0.8
    sigma2_y: float = 0.8
    angle2: float = 0.0
    beta2: float = 1.0
    omega2: float = 2.0
    scale2: float = 0.8
    mode2: str = "bicubic"
    noise2: str = "gaussian"
    noise2_sigma: float = 5.0
    noise2_scale: float = 0.5
    gray2: bool = False
    sinc: bool = True
    sinc_size: int = 21
    omega: float = 2.0
    sinc_first: bool = True
    final_mode: str = "bicubic"
    jpeg2: float = 85.0

    def __post_init__(self) -> None:
        for stage in (1, 2):
            kind, size = getattr(self, f"kernel{stage}"), getattr(self, f"kernel{stage}_size")
            if kind not in KERNEL_KINDS or size % 2 == 0 or not 1 <= size <= 21:
                raise FacesrError(f"SecondOrderKnobs: kernel{stage}={kind!r} of size {size}; use one of "
                                  f"{KERNEL_KINDS} and an odd size up to 21")  # fmt: skip
            if getattr(self, f"noise{stage}") not in NOISE_KINDS:
                noise = getattr(self, f"noise{stage}")
                raise FacesrError(f"SecondOrderKnobs.noise{stage}={noise!r}: use one of {NOISE_KINDS}")
        for name in ("mode1", "mode2", "final_mode"):
            if getattr(self, name) not in RESIZE_MODES:
                raise FacesrError(f"SecondOrderKnobs.{name}={getattr(self, name)!r}: use one of {RESIZE_MODES}")


def _shape(k: SecondOrderKnobs, n: int) -> list[float]:
    """Stage ``n``'s kernel shape as the draw records it: zeros where the kind needs nothing, sigma y = sigma x
    and no angle for the iso kinds."""
    kind = getattr(k, f"kernel{n}")
    if kind == "sinc":
        return [0.0, 0.0, 0.0, 0.0, float(getattr(k, f"omega{n}"))]
    sigma, aniso = float(getattr(k, f"sigma{n}")), "aniso" in kind
    sigma_y = float(getattr(k, f"sigma{n}_y")) if aniso else sigma
    angle = float(getattr(k, f"angle{n}")) if aniso else 0.0
    beta = float(getattr(k, f"beta{n}")) if kind.startswith(("generalized", "plateau")) else 0.0
    return [sigma, sigma_y, angle, beta, 0.0]


def knobs_to_params(knobs: SecondOrderKnobs) -> dict[str, torch.Tensor]:
    """One sample's params for ``knobs``, in the format of
    :func:`facesr.data.second_order.sample_second_order_params` (the same kernels, bit for bit).

    Args:
        knobs: every choice of the degradation.
    """
    k = knobs
    p: dict[str, Any] = {}
    for n in (1, 2):
        kind, size, shape = getattr(k, f"kernel{n}"), getattr(k, f"kernel{n}_size"), _shape(k, n)
        p[f"kernel{n}"], p[f"kernel{n}_kind"] = kernel_from_shape(kind, size, shape), KERNEL_KINDS.index(kind)
        p[f"kernel{n}_size"], p[f"kernel{n}_shape"] = size, np.asarray(shape, dtype=np.float64)
        scale = float(getattr(k, f"scale{n}"))
        p[f"resize{n}_kind"], p[f"resize{n}_scale"] = (0 if scale > 1 else 1 if scale < 1 else 2), scale
        p[f"resize{n}_mode"] = RESIZE_MODES.index(getattr(k, f"mode{n}"))
        gaussian = getattr(k, f"noise{n}") == "gaussian"
        p[f"noise{n}_gaussian"] = gaussian
        p[f"noise{n}_sigma"] = float(getattr(k, f"noise{n}_sigma")) if gaussian else 0.0
        p[f"noise{n}_scale"] = 0.0 if gaussian else float(getattr(k, f"noise{n}_scale"))
        p[f"noise{n}_gray"] = bool(getattr(k, f"gray{n}"))
    p["blur2"], p["final_sinc"], p["final_sinc_first"] = bool(k.blur2), bool(k.sinc), bool(k.sinc_first)
    p["sinc_kernel"], p["sinc_size"], p["sinc_omega"] = pulse_kernel(), 1, 0.0
    if k.sinc:
        p["sinc_kernel"] = kernel_from_shape("sinc", k.sinc_size, [0, 0, 0, 0, k.omega])
        p["sinc_size"], p["sinc_omega"] = k.sinc_size, k.omega
    p["final_mode"] = RESIZE_MODES.index(k.final_mode)
    p["jpeg1_quality"], p["jpeg2_quality"] = k.jpeg1, k.jpeg2
    return {key: torch.from_numpy(p[key]) if isinstance(p[key], np.ndarray) else torch.tensor(p[key], dtype=dtype)
            for key, dtype in PARAM_KEYS.items()}  # fmt: skip


def params_to_knobs(params: dict[str, torch.Tensor], base: SecondOrderKnobs | None = None) -> SecondOrderKnobs:
    """The knobs of one sample's params; what the params leave open (the Gaussian sigma of a Poisson sample,
    the beta of a Gaussian kernel, the sinc of a sample without one...) comes from ``base``.

    Args:
        params: one sample's params (from :func:`facesr.data.second_order.sample_second_order_params`).
        base: the knobs to keep where the params say nothing; None for the defaults.
    """
    values: dict[str, Any] = {}
    for n in (1, 2):
        kind = KERNEL_KINDS[int(params[f"kernel{n}_kind"])]
        sigma_x, sigma_y, angle, beta, omega = (float(v) for v in params[f"kernel{n}_shape"])
        values[f"kernel{n}"], values[f"kernel{n}_size"] = kind, int(params[f"kernel{n}_size"])
        if kind == "sinc":
            values[f"omega{n}"] = omega
        else:
            values.update({f"sigma{n}": sigma_x, f"sigma{n}_y": sigma_y, f"angle{n}": angle})
            if kind.startswith(("generalized", "plateau")):
                values[f"beta{n}"] = beta
        values[f"scale{n}"] = float(params[f"resize{n}_scale"])
        values[f"mode{n}"] = RESIZE_MODES[int(params[f"resize{n}_mode"])]
        values[f"gray{n}"] = bool(params[f"noise{n}_gray"])
        if bool(params[f"noise{n}_gaussian"]):
            values.update({f"noise{n}": "gaussian", f"noise{n}_sigma": float(params[f"noise{n}_sigma"])})
        else:
            values.update({f"noise{n}": "poisson", f"noise{n}_scale": float(params[f"noise{n}_scale"])})
    values.update(blur2=bool(params["blur2"]), sinc=bool(params["final_sinc"]))
    values.update(sinc_first=bool(params["final_sinc_first"]), final_mode=RESIZE_MODES[int(params["final_mode"])], jpeg1=float(params["jpeg1_quality"]),
                  jpeg2=float(params["jpeg2_quality"]))  # fmt: skip
    if values["sinc"]:
        values.update(sinc_size=int(params["sinc_size"]), omega=float(params["sinc_omega"]))
    return dataclasses.replace(base or SecondOrderKnobs(), **values)


def strip_kernels(knobs: SecondOrderKnobs) -> dict[str, np.ndarray | None]:
    """The kernels the picture strip draws first in each row (None for a stage without one).

    Args:
        knobs: every choice of the degradation.
    """
    params = knobs_to_params(knobs)
    return {"kernel 1": params["kernel1"].numpy(),
            "kernel 2": params["kernel2"].numpy() if knobs.blur2 else None,
            "final sinc": params["sinc_kernel"].numpy() if knobs.sinc else None}  # fmt: skip


def render_second_order(
    gt: np.ndarray, knobs: SecondOrderKnobs, seed: int = 0, settings: SecondOrderSettings | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """``(steps, lq, psnr)`` for one GT and fixed knobs: what the panel draws.

    ``steps`` holds the image after every step (float32 HxWx3, in order, from the GT to the LQ), ``lq`` the
    8-bit LQ and ``psnr`` the PSNR (dB) of OpenCV bicubic x4 of the LQ against the plain uint8 GT. The noise
    comes from ``torch.Generator().manual_seed(seed)``, so moving one control changes only that step.

    Args:
        gt: the GT face, uint8 or float [0, 1] HxWx3, sides multiples of 4 (and above 25 px).
        knobs: every choice of the degradation.
        seed: seed of the noise generator.
        settings: None for the course's; ``knobs.usm`` decides the sharpening either way.
    """
    s = dataclasses.replace(settings or SecondOrderSettings(), gt_usm=bool(knobs.usm))
    x = torch.from_numpy(to_float(gt)).permute(2, 0, 1)[None]
    steps: dict[str, torch.Tensor] = {}
    lq, _ = apply_second_order(x, knobs_to_params(knobs), [torch.Generator().manual_seed(seed)], s, steps=steps)
    out = {name: np.ascontiguousarray(img.permute(1, 2, 0).numpy()) for name, img in steps.items()}
    lq_np = out["LQ"]
    return out, lq_np, lq_bicubic_psnr(lq_np, to_uint8(to_float(gt)))


class SecondOrderPanel(ControlPanel):
    """Controls for the main knobs of each stage, a "random sample" button and the picture strip.

    Attributes:
        controls: ``{SecondOrderKnobs field: widget}`` (``kernel2`` also offers "none": no stage-2 blur).
        knobs: the knobs drawn now (controls plus the values the panel does not show).
        The rest as :class:`facesr.report.widgets.ControlPanel`.
    """

    def __init__(self, gt: np.ndarray, settings: SecondOrderSettings | None = None, seed: int = 0) -> None:
        import ipywidgets as widgets

        self.gt, self.settings, self.seed = gt, settings or SecondOrderSettings(), seed
        self.rng = np.random.default_rng(seed)
        self.knobs = SecondOrderKnobs()
        s, k, style = self.settings, self.knobs, {"description_width": "initial"}

        def slider(value: float, bounds: tuple[float, float], step: float, label: str) -> Any:
            return widgets.FloatSlider(value=value, min=bounds[0], max=bounds[1], step=step, description=label,
                                       continuous_update=False, style=style)  # fmt: skip

        def dropdown(options: list[tuple[str, Any]], value: Any, label: str) -> Any:
            return widgets.Dropdown(options=options, value=value, description=label, style=style)

        def choices(names: tuple[str, ...]) -> list[tuple[str, str]]:
            return [(name, name) for name in names]

        on_off, noises = [("on", True), ("off", False)], [("Gaussian", "gaussian"), ("Poisson", "poisson")]
        colour = [("colour", False), ("gray", True)]
        self.controls = {
            "kernel1": dropdown(choices(KERNEL_KINDS), k.kernel1, "1 blur kernel"),
            "sigma1": slider(k.sigma1, s.blur_sigma, 0.05, "1 sigma (px)"),
            "scale1": slider(k.scale1, (s.resize_range[0], s.resize_range[1]), 0.01, "1 resize scale"),
            "noise1": dropdown(noises, k.noise1, "1 noise"),
            "noise1_sigma": slider(k.noise1_sigma, s.noise_range, 0.5, "1 Gaussian sigma (/255)"),
            "noise1_scale": slider(k.noise1_scale, s.poisson_scale_range, 0.05, "1 Poisson scale"),
            "gray1": dropdown(colour, k.gray1, "1 noise colour"),
            "jpeg1": slider(k.jpeg1, s.jpeg_range, 1, "1 JPEG quality"),
            "kernel2": dropdown(choices(KERNEL_KINDS) + [("none", "none")], k.kernel2, "2 blur kernel"),
            "sigma2": slider(k.sigma2, s.blur_sigma2, 0.05, "2 sigma (px)"),
            "scale2": slider(k.scale2, (s.resize_range2[0], s.resize_range2[1]), 0.01, "2 resize scale"),
            "noise2": dropdown(noises, k.noise2, "2 noise"),
            "noise2_sigma": slider(k.noise2_sigma, s.noise_range2, 0.5, "2 Gaussian sigma (/255)"),
            "noise2_scale": slider(k.noise2_scale, s.poisson_scale_range2, 0.05, "2 Poisson scale"),
            "gray2": dropdown(colour, k.gray2, "2 noise colour"),
            "sinc": dropdown(on_off, k.sinc, "final sinc"),
            "omega": slider(k.omega, (np.pi / 3, np.pi), 0.01, "sinc cutoff (rad/px)"),
            "sinc_first": dropdown([("resize + sinc, then JPEG", True), ("JPEG, then resize + sinc", False)],
                                   k.sinc_first, "final order"),  # fmt: skip
            "jpeg2": slider(k.jpeg2, s.jpeg_range2, 1, "final JPEG quality"),
            "usm": dropdown(on_off, k.usm, "sharpen GT (USM)"),
        }
        names = list(self.controls)
        self._assemble([names[:8], names[8:15], names[15:]])

    def _read_controls(self) -> SecondOrderKnobs:
        values = {name: control.value for name, control in self.controls.items()}
        kernel2 = values.pop("kernel2")
        values["blur2"] = kernel2 != "none"
        if kernel2 != "none":
            values["kernel2"] = kernel2
        return dataclasses.replace(self.knobs, **values)

    def set_knobs(self, knobs: SecondOrderKnobs) -> None:
        """Show ``knobs`` on the controls (and keep the values they do not show) and redraw once."""
        self.knobs = knobs
        self._show({name: "none" if name == "kernel2" and not knobs.blur2 else getattr(knobs, name)
                    for name in self.controls})

    def randomize(self) -> SecondOrderKnobs:
        """Draw a degradation like training does (:func:`sample_second_order_params`) and show it."""
        knobs = params_to_knobs(sample_second_order_params(self.rng, self.settings), base=self.knobs)
        self.set_knobs(knobs)
        return knobs

    def update(self) -> None:
        """Recompute every step, the LQ and its bicubic PSNR for the current controls and redraw the figure."""
        from facesr.report.explore import plot_second_order_steps

        self.knobs = knobs = self._read_controls()
        c = self.controls
        c["sigma1"].disabled = knobs.kernel1 == "sinc"
        c["sigma2"].disabled = not knobs.blur2 or knobs.kernel2 == "sinc"
        for n in (1, 2):
            gaussian = getattr(knobs, f"noise{n}") == "gaussian"
            c[f"noise{n}_sigma"].disabled, c[f"noise{n}_scale"].disabled = not gaussian, gaussian
        c["omega"].disabled = not knobs.sinc
        steps, _, self.last_psnr = render_second_order(self.gt, knobs, self.seed, self.settings)
        fig = plot_second_order_steps(steps, strip_kernels(knobs), gt=to_uint8(to_float(self.gt)), psnr=self.last_psnr)
        self._redraw(fig)


def build_second_order_panel(
    gt: np.ndarray, settings: SecondOrderSettings | None = None, seed: int = 0
) -> SecondOrderPanel:
    """The interactive second-order panel for one GT face; display it in a notebook.

    Args:
        gt: the GT face, uint8 or float [0, 1] HxWx3 (512x512 for the course; sides multiples of 4).
        settings: None for the course's (2024/2025) ranges.
        seed: seed of the noise and of the "random sample" button.
    """
    return SecondOrderPanel(gt, settings=settings, seed=seed)
