"""What the notebooks show and the hand-in contains: tables, figures, the degradation panel, shared cells.

Modules, each named for what it draws or computes (import from them directly):

- :mod:`~facesr.report.style`: models in order, one colour and label per model, page sizes, saving a figure
  (PDF + PNG).
- :mod:`~facesr.report.runs`: finding run folders, their logs and ``run_info.json``.
- :mod:`~facesr.report.manifest`: ``manifest.json`` of a figures folder (what made each saved figure and table).
- :mod:`~facesr.report.tables`: PSNR and machine tables, CSV + Markdown + LaTeX (``save_table``).
- :mod:`~facesr.report.table_views`: how a table reads in a report (headers with units, rounding, best bold,
  scores on fewer images marked); :mod:`~facesr.report.submission_table`: the compact submission table.
- :mod:`~facesr.report.budget`: parameter counts against an edition's limit (``params``, the report's table).
- :mod:`~facesr.report.curves`: the training curves (loss terms, val PSNR, training stages against a baseline).
- :mod:`~facesr.report.figures`: the report's face figures (qualitative, val-output and real-world grids).
- :mod:`~facesr.report.explore`: the figures of notebooks 01-02 (data, degradation steps, histograms).
- :mod:`~facesr.report.widgets`: the course degradation's panel of notebook 02.
- :mod:`~facesr.report.second_order_panel`: the second-order degradation's panel and knobs (2024/2025).
- :mod:`~facesr.report.degradation_match`: training LQ against the val LQ over the val set (``compare-degradation``).
- :mod:`~facesr.report.steps`: the cells notebooks 03-07 share (config and budget, curves, outputs, the
  leaderboard zip).
- :mod:`~facesr.report.results_steps`: notebook 06's report figures, shared with ``python -m facesr report``.
- :mod:`~facesr.report.handin` and :mod:`~facesr.report.readme`: the course hand-in bundle and its Readme.txt.
- The report skeleton: :mod:`~facesr.report.skeleton` (``write_report``: the report folder and its Overleaf
  zip), :mod:`~facesr.report.sections` (the handout's sections), :mod:`~facesr.report.methods` (model and
  losses from a config), :mod:`~facesr.report.document` (blocks, Markdown), :mod:`~facesr.report.latex`
  (LaTeX: tabulars, main.tex), :mod:`~facesr.report.bibliography` (references.bib).

Public entry points here: :func:`make_handin` (``python -m facesr handin``) and :func:`write_report`
(``python -m facesr report``).
"""

from facesr.report.handin import make_handin
from facesr.report.skeleton import write_report

__all__ = ["make_handin", "write_report"]
