"""The teacher of a distillation run: found, checked and loaded for every rank, never saved or counted.

A config with ``teacher`` and ``distill_weight`` > 0 adds ``distill_weight * L1(sr, teacher(lq))`` to the
generator's loss (:class:`facesr.losses.DistillationLoss`, log name ``l_distill``). ``teacher`` names a run
the way ``init`` does: a checkpoint file, a run folder (its ``best.pt``, else ``latest.pt``), or a run name
under the run's ``runs_dir`` (the ``_kd`` configs say ``"esrgan"``: notebook 04's RRDBNet run beside the
student's own run folder). The teacher is read as ``load_generator`` reads any run (EMA weights, nothing
unpickled beyond tensors), must be of the run's edition (its data and degradation) and upscale by the same
factor, and is frozen in eval mode. Every rank loads it (under torchrun each builds its own nets); it is held
outside the student's modules, so no checkpoint, export or parameter count of the student holds it. Loading
it leaves the global RNG as it was, so a ``_kd`` student starts from the same weights as its plain config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from facesr.errors import FacesrError
from facesr.losses import DISTILL_TERM, run_terms

SCALE = 4  # every edition is x4 (facesr.editions)


def uses_teacher(cfg: Any) -> bool:
    """Whether the run of ``cfg`` distils (its terms include ``l_distill``)."""
    return any(term.name == DISTILL_TERM for term in run_terms(cfg))


def resolve_teacher(cfg: Any, runs_dir: str | Path | None = None) -> Path:
    """The checkpoint file of ``cfg.teacher``: a file, a run folder, or a run name under ``runs_dir``.

    Args:
        cfg: The student's config (``teacher``, ``name``, ``edition``, ``runs_dir``).
        runs_dir: Where run names are looked up (default ``cfg.runs_dir``).

    Raises:
        FacesrError: one line naming where it looked, notebook 04 (which trains the ``esrgan`` teacher) and
            how to point elsewhere.
    """
    from facesr.weights.checkpoints import run_checkpoint

    runs_dir = Path(runs_dir if runs_dir is not None else cfg.runs_dir).expanduser()
    path = Path(str(cfg.teacher)).expanduser()
    if path.is_file():
        return path
    for folder in (path, runs_dir / str(cfg.teacher)):
        found = run_checkpoint(folder)
        if found is not None:
            return found
    raise FacesrError(
        f"{cfg.name} distils from the teacher {cfg.teacher!r}, but neither {path} nor {runs_dir / str(cfg.teacher)} "
        f"holds best.pt/latest.pt; train notebook 04's RRDBNet first (python -m facesr train esrgan --edition "
        f"{cfg.edition}), or point teacher at another run folder or checkpoint (--set teacher=RUN_OR_CKPT; "
        "notebook 07: TEACHER)"
    )


def teacher_generator(cfg: Any, runs_dir: str | Path | None = None) -> tuple[str, dict]:
    """The generator name and arguments of ``cfg``'s teacher, without its weights: from the ``config.json`` of the
    run its checkpoint lies in, else (no such run yet, or a file outside a run) the edition's ``esrgan``
    generator, the ``_kd`` configs' teacher. For memory estimates (:func:`facesr.training.memory.step_memory`).

    Args:
        cfg: The student's config.
        runs_dir: Where a run name is looked up (default ``cfg.runs_dir``).
    """
    import json

    from facesr.config import get_config

    try:
        config = json.loads((resolve_teacher(cfg, runs_dir).parent / "config.json").read_text(encoding="utf-8"))
        return str(config["generator"]), dict(config.get("generator_args") or {})
    except (FacesrError, OSError, ValueError, KeyError, TypeError):
        esrgan = get_config("esrgan", quick=bool(cfg.quick), edition=cfg.edition)
        return esrgan.generator, dict(esrgan.generator_args)


def load_teacher(cfg: Any, runs_dir: str | Path | None = None, trust: bool = False) -> nn.Module:
    """The teacher of ``cfg``'s run on the CPU, frozen in eval mode, checked against the student's edition and scale.

    Args:
        cfg: The student's config.
        runs_dir: Where a run name is looked up (default ``cfg.runs_dir``).
        trust: Unpickle the teacher's file in full (runs code from it); the kit's own runs never need it.

    Raises:
        FacesrError: no teacher run (see :func:`resolve_teacher`), a teacher of another edition, or one that does
            not upscale 3-channel images by the student's factor.
    """
    from facesr.weights.checkpoints import read_generator

    path = resolve_teacher(cfg, runs_dir)
    with torch.random.fork_rng(devices=[]):  # building it draws an init: the student's stays its plain config's
        gen = read_generator(path, trust=trust)
    if gen.edition is not None and gen.edition != cfg.edition:
        raise FacesrError(f"the teacher {path} was trained for the {gen.edition} edition, {cfg.name} for {cfg.edition}: "
                          f"distil from a run of the {cfg.edition} edition (its data and degradation), e.g. "
                          f"python -m facesr train esrgan --edition {cfg.edition}")
    teacher = gen.net.eval().requires_grad_(False)
    try:
        with torch.no_grad():
            shape = "x".join(map(str, teacher(torch.zeros(1, 3, 16, 16)).shape[1:]))
    except RuntimeError as err:
        shape = f"an error ({str(err).splitlines()[0][:80]})"
    if shape != f"3x{16 * SCALE}x{16 * SCALE}":
        raise FacesrError(f"the teacher {path} turns a 3x16x16 image into {shape}, not the student's "
                          f"3x{16 * SCALE}x{16 * SCALE}: distil from a x{SCALE} RGB network")
    return teacher
