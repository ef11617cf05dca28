"""What the notebooks show and the hand-in contains: tables, figures, the degradation panel, shared cells.

Modules, each named for what it draws or computes (import from them directly):

- :mod:`~facesr.report.style`: models in order, one colour and label per model, saving a figure.
- :mod:`~facesr.report.runs`: finding run folders, their logs and ``run_info.json``.
- :mod:`~facesr.report.tables`: PSNR and machine tables, CSV + Markdown.
- :mod:`~facesr.report.budget`: parameter counts against an edition's limit (``params``, the report's table).
- :mod:`~facesr.report.curves`: the training curves (loss terms, val PSNR, training stages against a baseline).
- :mod:`~facesr.report.figures`: the report's face figures (qualitative, val-output and real-world grids).
- :mod:`~facesr.report.explore`: the figures of notebooks 01-02 (data, degradation steps, histograms).
- :mod:`~facesr.report.widgets`: the course degradation's panel of notebook 02.
- :mod:`~facesr.report.second_order_panel`: the second-order degradation's panel and knobs (2024/2025).
- :mod:`~facesr.report.degradation_match`: training LQ against the val LQ over the val set (``compare-degradation``).
- :mod:`~facesr.report.steps`: the cells notebooks 03-07 share (config and budget, curves, outputs, the
  leaderboard zip).
- :mod:`~facesr.report.handin` and :mod:`~facesr.report.readme`: the course hand-in bundle and its Readme.txt.

Public entry point here: :func:`make_handin` (``python -m facesr handin``).
"""

from facesr.report.handin import make_handin

__all__ = ["make_handin"]
