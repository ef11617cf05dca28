"""Inference: a generator from a file, SR images, the val scores, the leaderboard zip and the local scorer.

- :mod:`~facesr.inference.predict`: ``load_generator``, ``upscale`` (one image), ``predict`` (a folder of
  PNGs), ``evaluate`` / ``evaluate_variants`` (val PSNR/SSIM beside bicubic).
- :mod:`~facesr.inference.tta`: the self-ensembles (plain, hflip, x8).
- :mod:`~facesr.inference.submission`: the leaderboard zip (``package_submission``) and ``score``.
- :mod:`~facesr.inference.submissions`: ``RUNS_DIR/submissions.csv``, the log of every zip and its CodaLab score.
"""

from facesr.inference.predict import evaluate, evaluate_variants, load_generator, predict, upscale
from facesr.inference.submission import package_submission, score

__all__ = ["evaluate", "evaluate_variants", "load_generator", "package_submission", "predict", "score", "upscale"]
