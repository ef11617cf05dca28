"""The interactive degradation panel of notebook 02, and the pure functions behind it.

The panel uses only ipywidgets API common to 7.7 (what Colab ships) and 8.x: FloatSlider, IntSlider,
Dropdown, Button, Output, HBox/VBox, ``observe(handler, names="value")``, ``on_click`` and
``Button.click()``; no ``Stack``, no layout features that changed between the two. Its callbacks call
:func:`render_degradation`, a plain function the tests call directly.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from facesr.data.degradations import (
    DegradationParams,
    DegradationSettings,
    add_gaussian_noise,
    apply_degradation,
    blur,
    jpeg_compress,
    lq_bicubic_psnr,
    params_kernel,
    quantize,
    resize,
    sample_params,
    to_float,
    to_uint8,
)


def degradation_steps(
    gt: np.ndarray, params: DegradationParams, seed: int = 0, settings: DegradationSettings | None = None
) -> dict[str, np.ndarray]:
    """Every intermediate image of :func:`facesr.data.degradations.apply_degradation`, in order.

    Args:
        gt: the GT face, uint8 or float [0, 1] HxWx3.
        params: the degradation parameters.
        seed: seed of the noise generator.
        settings: None for the course settings.

    Uses the library's single ops in the order of docs/course.md section 3; the last entry ("LQ") equals
    ``apply_degradation(gt, params, np.random.default_rng(seed), settings)`` up to float rounding.
    """
    s = settings or DegradationSettings()
    rng = np.random.default_rng(seed)
    img = to_float(gt)
    h, w = img.shape[:2]
    factor = s.gt_size // s.out_size
    steps = {"GT": img}
    steps["1 blurred"] = img = blur(img, params_kernel(params, s))
    size = (max(1, int(h * params.scale)), max(1, int(w * params.scale)))
    steps[f"2 downsized x{params.scale:.3f} ({params.down_interpolation})"] = img = resize(
        img, size, params.down_interpolation
    )
    steps[f"3 noise sigma {params.noise_sigma:.1f}/255"] = img = add_gaussian_noise(img, params.noise_sigma, rng)
    steps[f"4 JPEG quality {params.jpeg_quality}"] = img = jpeg_compress(img, params.jpeg_quality)
    img = resize(img, (h, w), params.up_interpolation)
    steps[f"5-6 back to {w}x{h} ({params.up_interpolation}), quantized"] = img = quantize(img)
    steps[f"7 LQ (area x1/{factor})"] = resize(img, (h // factor, w // factor), "area")
    return steps


def render_degradation(
    gt: np.ndarray, params: DegradationParams, seed: int = 0, settings: DegradationSettings | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(kernel, lq, psnr)`` for one GT and fixed ``params``: what the panel draws.

    The noise comes from ``np.random.default_rng(seed)``, so moving one slider changes only that step.
    ``psnr`` is the PSNR (dB) of OpenCV bicubic x4 of the uint8-rounded LQ against the uint8 GT.

    Args:
        gt: the GT face, uint8 or float [0, 1] HxWx3.
        params: the degradation parameters.
        seed: seed of the noise generator.
        settings: None for the course settings.
    """
    lq = apply_degradation(to_float(gt), params, np.random.default_rng(seed), settings)
    return params_kernel(params, settings), lq, lq_bicubic_psnr(lq, to_uint8(gt))


class ControlPanel(ABC):
    """What both degradation panels share: controls in columns above a "random sample" button and an
    ``Output`` holding the figure, one redraw per change (several controls set at once redraw once).

    A subclass builds ``self.controls`` (``{name: widget}``), defines ``update()`` (recompute, then
    :meth:`_redraw`) and ``randomize()``, and ends its ``__init__`` with :meth:`_assemble`.

    Attributes:
        button: the "random sample" button.
        output: the Output widget holding the current figure.
        widget: the whole panel (a VBox); displaying the panel displays it.
        last_psnr: the bicubic PSNR the last redraw computed.
        redraws: how many times the figure was redrawn.
    """

    controls: dict[str, Any]

    def _assemble(self, columns: list[list[str]]) -> None:
        """Lay the controls out in ``columns`` (lists of control names), wire them and draw once."""
        import ipywidgets as widgets

        self.button = widgets.Button(description="random sample")
        self.output = widgets.Output()
        boxes = [widgets.VBox([self.controls[name] for name in column]) for column in columns]
        self.widget = widgets.VBox([widgets.HBox(boxes), self.button, self.output])
        self.last_psnr: float | None = None
        self.redraws = 0
        self._hold = False  # set while several controls change at once: one redraw at the end
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.button.on_click(lambda _button: self.randomize())
        self.update()

    def _show(self, values: dict[str, Any]) -> None:
        """Set the controls named in ``values``, then redraw once."""
        self._hold = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._hold = False
        self.update()

    def _on_change(self, change: dict) -> None:
        if not self._hold:
            self.update()

    def _redraw(self, fig: Any) -> None:
        show_in(self.output, fig)
        self.redraws += 1

    @abstractmethod
    def update(self) -> None:
        """Recompute the picture for the current controls and :meth:`_redraw` it."""

    @abstractmethod
    def randomize(self) -> Any:
        """Draw a degradation as training does, show it on the controls and return it."""

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class DegradationPanel(ControlPanel):
    """Sliders and dropdowns for every degradation parameter, a "random sample" button and the figure.

    Attributes:
        controls: ``{DegradationParams field: widget}``; the rest as :class:`ControlPanel`.
    """

    def __init__(self, gt: np.ndarray, settings: DegradationSettings | None = None, seed: int = 0) -> None:
        import ipywidgets as widgets

        self.gt, self.settings, self.seed = gt, settings or DegradationSettings(), seed
        self.rng = np.random.default_rng(seed)
        s, style = self.settings, {"description_width": "initial"}

        def slider(cls: Any, value: float, bounds: tuple[float, float], step: float, label: str) -> Any:
            return cls(value=value, min=bounds[0], max=bounds[1], step=step, description=label,
                       continuous_update=False, style=style)  # fmt: skip

        def dropdown(options: tuple[str, ...], value: str, label: str) -> Any:
            return widgets.Dropdown(options=list(options), value=value, description=label, style=style)

        self.controls = {
            "kernel_kind": dropdown(("iso", "aniso"), "aniso", "kernel type"),
            "sigma_x": slider(widgets.FloatSlider, 2.0, s.sigma_range, 0.05, "sigma x (px)"),
            "sigma_y": slider(widgets.FloatSlider, 1.0, s.sigma_range, 0.05, "sigma y (px)"),
            "angle": slider(widgets.FloatSlider, 0.5, s.angle_range, 0.01, "angle (rad)"),
            "scale": slider(widgets.FloatSlider, 0.25, s.scale_range, 0.0025, "downscale factor"),
            "down_interpolation": dropdown(s.resize_interpolations, "bicubic", "down interpolation"),
            "noise_sigma": slider(widgets.FloatSlider, 5.0, s.noise_sigma_range, 0.5, "noise sigma (/255)"),
            "jpeg_quality": slider(widgets.IntSlider, 75, tuple(map(int, s.jpeg_quality_range)), 1, "JPEG quality"),
            "up_interpolation": dropdown(s.resize_interpolations, "bicubic", "up interpolation"),
        }
        names = list(self.controls)
        self._assemble([names[:5], names[5:]])

    @property
    def params(self) -> DegradationParams:
        """The parameters the controls show (iso kernels use sigma x for both axes and no angle)."""
        values = {name: control.value for name, control in self.controls.items()}
        if values["kernel_kind"] == "iso":
            values.update(sigma_y=values["sigma_x"], angle=0.0)
        return DegradationParams(**values)

    def set_params(self, params: DegradationParams) -> None:
        """Show ``params`` on the controls and redraw once."""
        self._show(dataclasses.asdict(params))

    def randomize(self) -> DegradationParams:
        """Draw parameters like the training pipeline does (:func:`sample_params`) and show them."""
        params = sample_params(self.rng, self.settings)
        self.set_params(params)
        return params

    def update(self) -> None:
        """Recompute the LQ and its bicubic PSNR for the current controls and redraw the figure."""
        from facesr.metrics import bicubic_upscale
        from facesr.report.explore import plot_degradation_result

        iso = self.controls["kernel_kind"].value == "iso"
        self.controls["sigma_y"].disabled = iso
        self.controls["angle"].disabled = iso
        params = self.params
        kernel, lq, self.last_psnr = render_degradation(self.gt, params, self.seed, self.settings)
        lq8, gt8 = to_uint8(lq), to_uint8(self.gt)
        fig = plot_degradation_result(kernel, lq8, bicubic_upscale(lq8, gt8.shape[0] // lq8.shape[0]),
                                      gt8, self.last_psnr, params)  # fmt: skip
        self._redraw(fig)


def show_in(output: Any, fig: Any) -> None:
    """Replace what a panel's ``Output`` shows with ``fig``, shown once there and not again under the cell."""
    import matplotlib.pyplot as plt
    from IPython.display import clear_output, display

    with output:
        clear_output(wait=True)
        display(fig)
    plt.close(fig)


def build_degradation_panel(
    gt: np.ndarray, settings: DegradationSettings | None = None, seed: int = 0
) -> DegradationPanel:
    """The interactive panel for one GT face; display it in a notebook.

    Args:
        gt: the GT face, uint8 or float [0, 1] HxWx3.
        settings: None for the course settings.
        seed: seed of the noise and of the "random sample" button.
    """
    return DegradationPanel(gt, settings=settings, seed=seed)
