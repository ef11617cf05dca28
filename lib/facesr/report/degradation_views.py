"""Notebook 02's three views of an edition's degradation: one face through every step, the interactive panel,
and the bicubic-PSNR distribution over random draws.

The 2022/2023 course degradation (docs/course.md section 3) is drawn with :mod:`facesr.report.widgets` and
:func:`facesr.report.explore.plot_degradation_steps`; the 2024/2025 second-order one (section 4) with
:mod:`facesr.report.second_order_panel` and :func:`facesr.report.explore.plot_second_order_steps`. Each
function takes the edition and picks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facesr.editions import Edition, get_edition


def degradation_figure(gt: np.ndarray, edition: int | str | Edition | None = None, seed: int = 0) -> tuple[Any, str]:
    """``(figure, one-line description of the draw)``: one face through every step of the edition's degradation,
    the parameters drawn exactly as training draws them from ``numpy.random.default_rng(seed)``.

    Args:
        gt: the GT face, uint8 HxWx3 (512x512 for the course data).
        edition: whose degradation (None: ``FACESR_EDITION``, else 2022).
        seed: seed of the draw and of the noise.
    """
    from facesr.report.explore import plot_degradation_steps, plot_second_order_steps

    if get_edition(edition).degradation == "course":
        from facesr.data.degradations import params_kernel, sample_params
        from facesr.report.widgets import degradation_steps

        params = sample_params(np.random.default_rng(seed))
        return plot_degradation_steps(degradation_steps(gt, params, seed=seed), params_kernel(params), params), str(params)
    from facesr.data.second_order_draws import describe_params, sample_second_order_params
    from facesr.report.second_order_panel import params_to_knobs, render_second_order, strip_kernels

    params = sample_second_order_params(np.random.default_rng(seed))
    knobs = params_to_knobs(params)
    steps, _, psnr = render_second_order(gt, knobs, seed)
    description = describe_params(params)
    return plot_second_order_steps(steps, strip_kernels(knobs), gt=gt, psnr=psnr, title=description), description


def degradation_panel(gt: np.ndarray, edition: int | str | Edition | None = None, seed: int = 0) -> Any:
    """The interactive panel of the edition's degradation for one GT face (display it in a notebook).

    Args:
        gt: the GT face, uint8 HxWx3.
        edition: whose degradation (None: ``FACESR_EDITION``, else 2022).
        seed: seed of the noise and of the "random sample" button.
    """
    if get_edition(edition).degradation == "course":
        from facesr.report.widgets import build_degradation_panel

        return build_degradation_panel(gt, seed=seed)
    from facesr.report.second_order_panel import build_second_order_panel

    return build_second_order_panel(gt, seed=seed)


def bicubic_psnr_distribution(gt: np.ndarray, n: int, edition: int | str | Edition | None = None,
                              seed: int = 0) -> np.ndarray:
    """PSNR (dB) of bicubic x4 of ``n`` random training LQs of ``gt`` against the plain GT (how hard the task is).

    Course: :func:`facesr.data.degradations.bicubic_psnr_samples`. Second order: each LQ from its own generator
    (``torch.Generator().manual_seed(seed + i)``), made as training makes it (from the sharpened GT when the
    course's ``gt_usm``), rounded to 8 bits.

    Args:
        gt: the GT face, uint8 HxWx3.
        n: how many draws.
        edition: whose degradation (None: ``FACESR_EDITION``, else 2022).
        seed: the first seed.
    """
    from facesr.data.degradations import bicubic_psnr_samples, lq_bicubic_psnr, to_float, to_uint8

    if get_edition(edition).degradation == "course":
        return bicubic_psnr_samples(gt, n, np.random.default_rng(seed))
    import torch

    from facesr.data.second_order import degrade_second_order

    x = torch.from_numpy(np.ascontiguousarray(to_float(gt).transpose(2, 0, 1)))[None]
    gt8, values = to_uint8(to_float(gt)), []
    for i in range(n):
        lq, _ = degrade_second_order(x, [torch.Generator().manual_seed(seed + i)])
        values.append(lq_bicubic_psnr(lq[0].permute(1, 2, 0).numpy(), gt8))
    return np.asarray(values)
