"""The steps notebooks 03-05 share (config and budget, curves, val outputs), written once.

Each function prints or returns what one notebook cell shows, so a training notebook stays a list
of settings, one-line calls and prose.
"""

from __future__ import annotations

import os
from pathlib import Path

from facesr.errors import FacesrError


def budget_line(cfg: object) -> str:
    """The generator's trainable parameter count of a config against the course limit, as one line.

    The network is built on the meta device: exact count, no memory, no initialisation cost.
    """
    import torch

    from facesr.models import PARAM_LIMIT, build_generator, count_parameters

    with torch.device("meta"):
        n = count_parameters(build_generator(cfg.generator, **cfg.generator_args))
    share = f"{100 * n / PARAM_LIMIT:.1f} % of the limit"
    if n <= PARAM_LIMIT:
        return f"{cfg.generator}: {n:,} trainable parameters, within the {PARAM_LIMIT:,} limit ({share})"
    return (
        f"{cfg.generator}: {n:,} trainable parameters, OVER the {PARAM_LIMIT:,} limit ({share}): "
        "fine for the report's comparison, not for a leaderboard submission"
    )


def show_config(cfg: object) -> None:
    """Print the config table and the parameter budget line (the config cell of 03-05)."""
    from facesr.config import config_table

    print(config_table(cfg))
    print()
    print(budget_line(cfg))


def resolve_init(
    init_from: str | os.PathLike | None,
    runs_dir: str | os.PathLike,
    default: str = "esrgan",
    run_name: str | None = None,
) -> Path | None:
    """The run folder or checkpoint a fine-tune starts from (``INIT_FROM`` of notebook 05).

    Args:
        init_from: a run folder or ``.pt`` file; empty/None means ``runs_dir/default``.
        runs_dir: the folder of run folders.
        default: the run used when ``init_from`` is empty.
        run_name: the fine-tune's own run; when it already has ``latest.pt`` the training resumes from
            it and needs no starting point: None is returned (and printed).

    Raises:
        FacesrError: when it does not exist, saying which notebook makes it and how to point elsewhere.
    """
    from facesr.checkpoints import run_checkpoint

    if run_name and (Path(runs_dir) / run_name / "latest.pt").is_file():
        print(f"{Path(runs_dir) / run_name} exists: training resumes from its latest.pt (INIT_FROM is not used)")
        return None
    path = Path(init_from).expanduser() if init_from else Path(runs_dir) / default
    if path.is_file() or run_checkpoint(path) is not None:
        print(f"the generator starts from {path}")
        return path
    if init_from:
        raise FacesrError(f"INIT_FROM={init_from} is neither a run folder with best.pt/latest.pt nor a checkpoint file")
    raise FacesrError(
        f"no {default} run in {runs_dir} to start from: train notebook 04 first, or set INIT_FROM to an "
        "esrgan run folder or a .pt checkpoint (e.g. INIT_FROM = '/content/drive/MyDrive/facesr/runs/esrgan')"
    )


def show_curves(
    run_dir: str | os.PathLike, figures_dir: str | os.PathLike | None = None, name: str | None = None
) -> object:
    """Plot a run's training loss and val PSNR (with bicubic for reference); save ``name`` (``<run>_curves``)."""
    from facesr.figures import plot_run_curves
    from facesr.report import save_figure
    from facesr.training import read_run_logs

    run_dir = Path(run_dir)
    log, val = read_run_logs(run_dir)
    fig = plot_run_curves(run_dir.name, log, val)
    if figures_dir is not None:
        print(f"saved {save_figure(fig, figures_dir, name or f'{run_dir.name}_curves')}")
    return fig


def show_val_outputs(
    run_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    n: int = 3,
    figures_dir: str | os.PathLike | None = None,
    name: str | None = None,
) -> object:
    """LQ | bicubic | SR | GT of the first ``n`` val faces; save ``name`` (``<run>_val_outputs``)."""
    from facesr.figures import plot_val_outputs
    from facesr.report import save_figure

    run_dir = Path(run_dir)
    fig = plot_val_outputs(run_dir, data_root, n=n)
    if figures_dir is not None:
        print(f"saved {save_figure(fig, figures_dir, name or f'{run_dir.name}_val_outputs')}")
    return fig


def overrides(**values: object) -> dict:
    """Config overrides from notebook settings, leaving out the unset ones (0, "" or None = the config's)."""
    return {key: value for key, value in values.items() if value not in (0, "", None)}
