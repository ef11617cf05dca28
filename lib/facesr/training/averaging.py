"""Checkpoint averaging: the mean of the EMA weights of a run's last kept checkpoints, as a run folder of its own.

``python -m facesr average RUN --last K`` (or ``--iters N ...``) averages the EMA generator weights of the
run's ``iter_N.pt`` files (the ``keep_last`` newest are kept; ``--set keep_last=K`` keeps more; a run on Drive
keeps them on the runtime's own disk, where they are looked up) into
``RUN_avg``: a run folder like any other, so ``evaluate``, ``predict --zip``, ``handin``, ``export``, ``--init``
and the report's tables take it. It holds ``best.pt`` (the averaged weights as ``net_g_ema`` and ``net_g``, the
source's config renamed, and ``averaged``: which run and checkpoints went in), ``config.json``, the source's
``log.csv`` (the training of those weights), ``val.csv`` with one validation of the average when the data
root has a val set, and ``run_info.json`` (the source's, with the same ``averaged`` record).

Averaging late checkpoints of one run (stochastic weight averaging, Izmailov et al. 2018) is a second average
on top of the EMA: the checkpoints are thousands of iterations apart, so it smooths over a longer stretch of
the low-lr end of the schedule. Nets with running statistics (BatchNorm: DAT's attention branches) are refused:
the mean of the statistics of several checkpoints is not the statistics of the averaged weights, which would
have to be measured again on training data.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from facesr.atomic import atomic_write_json, atomic_write_text
from facesr.errors import FacesrError
from facesr.weights.checkpoints import extract_state_dict, load_checkpoint, save_checkpoint

AVG_SUFFIX = "_avg"
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")
VAL_COLUMNS = ("iter", "psnr", "ssim", "best_psnr", "best_iter", "bicubic_psnr", "val_time")  # the trainer's val.csv
_ITER_FILE = re.compile(r"iter_(\d+)\.pt")


def kept_checkpoints(run_dir: str | os.PathLike) -> dict[int, Path]:
    """The run's periodic checkpoints ``iter_N.pt``, iteration -> file, oldest first: in the run folder, or for a
    run folder on Drive in its folder on the runtime's disk (:func:`facesr.training.checkpoint_files.history_dir`)."""
    from facesr.training.checkpoint_files import history_dir

    found = {}
    for folder in dict.fromkeys((Path(run_dir), history_dir(run_dir))):
        found.update({int(m.group(1)): p for p in folder.glob("iter_*.pt") if (m := _ITER_FILE.fullmatch(p.name))})
    return dict(sorted(found.items()))


def average_state_dicts(state_dicts: Sequence[Mapping[str, torch.Tensor]], name: str = "the run") -> dict:
    """The entry-wise mean of ``state_dicts`` (summed in float64, then cast back to each tensor's dtype).

    Entries that are not floating point (index buffers) must be equal in all of them and are kept.

    Args:
        state_dicts: Two or more state dicts of one network.
        name: What messages call their source.

    Raises:
        FacesrError: running statistics (BatchNorm) in them, or dicts that do not hold the same network.
    """
    first = state_dicts[0]
    stats = [k for k in first if k.rpartition(".")[2] in RUNNING_STATS]
    if stats:
        raise FacesrError(f"{name} has BatchNorm running statistics ({stats[0]}, ...): the mean of several "
                          "checkpoints' statistics is not the statistics of the averaged weights, so averaging is "
                          "refused; submit the run's own EMA weights")
    out = {}
    for key, value in first.items():
        tensors = [sd[key] for sd in state_dicts if key in sd]
        if len(tensors) != len(state_dicts) or any(t.shape != value.shape for t in tensors):
            raise FacesrError(f"the checkpoints of {name} do not hold the same network ({key}); average one run's")
        if value.dtype.is_floating_point:
            out[key] = torch.stack([t.double() for t in tensors]).mean(dim=0).to(value.dtype)
        elif all(torch.equal(t, value) for t in tensors):
            out[key] = value.clone()
        else:
            raise FacesrError(f"the checkpoints of {name} differ in {key}, which is not a weight; average one run's")
    return out


def _select(run_dir: Path, last: int | None, iters: Sequence[int] | None) -> dict[int, Path]:
    kept = kept_checkpoints(run_dir)
    names = ", ".join(p.name for p in kept.values()) or "none"
    if (last is None) == (iters is None):
        raise FacesrError("pass either last=K (--last K) or iters=[...] (--iters N ...), not both or neither")
    if iters is not None:
        missing = [i for i in iters if i not in kept]
        if missing:
            raise FacesrError(f"{run_dir} keeps no checkpoint of iteration {missing[0]:,} (kept: {names}); pick "
                              "kept ones, or keep more with --set keep_last=K when training")
        chosen = {i: kept[i] for i in sorted(set(iters))}
    else:
        if last > len(kept):
            raise FacesrError(f"{run_dir} keeps {len(kept)} checkpoint(s) ({names}), fewer than last={last}; average "
                              f"--last {len(kept)}, or keep more with --set keep_last={last} when training")
        chosen = dict(list(kept.items())[-last:]) if last > 0 else {}
    if len(chosen) < 2:
        raise FacesrError(f"averaging needs at least 2 checkpoints, got {len(chosen)} (kept in {run_dir}: {names})")
    return chosen


def _val_row(net: torch.nn.Module, data_root: Path, it: int) -> dict | None:
    """One validation of ``net`` as the trainer's (RGB PSNR/SSIM of uint8-rounded outputs, whole image, fp32);
    None when ``data_root`` has no val pairs."""
    import time

    import numpy as np

    from facesr.data.datasets import ValDataset
    from facesr.metrics import bicubic_upscale, psnr, ssim, tensor_to_uint8

    if not (data_root / "val" / "LQ").is_dir() or not (data_root / "val" / "GT").is_dir():
        return None
    start, scores = time.perf_counter(), []
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = net.to(device)
    with torch.no_grad():
        for item in ValDataset(data_root):
            sr, gt = tensor_to_uint8(net(item["lq"].unsqueeze(0).to(device))[0]), tensor_to_uint8(item["gt"])
            scores.append((psnr(sr, gt), ssim(sr, gt), psnr(bicubic_upscale(tensor_to_uint8(item["lq"])), gt)))
    p, s, b = (float(np.mean(c)) for c in zip(*scores, strict=True))
    return {"iter": it, "psnr": p, "ssim": s, "best_psnr": p, "best_iter": it, "bicubic_psnr": b,
            "val_time": time.perf_counter() - start}


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=VAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def average_run(
    run: str | os.PathLike,
    last: int | None = None,
    iters: Sequence[int] | None = None,
    out: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    overwrite: bool = False,
    trust: bool = False,
) -> Path:
    """Average the EMA weights of ``run``'s last ``last`` kept checkpoints (or those of ``iters``) into a run folder.

    Args:
        run: The run folder (its ``iter_N.pt`` files; the trainer keeps the ``keep_last`` newest).
        last: How many of the newest kept checkpoints to average (2 or more).
        iters: Instead, the iterations whose checkpoints to average.
        out: The new run folder (default: ``<run>_avg`` beside the run).
        data_root: A data root whose val set scores the average into ``val.csv`` (default: the run's own
            ``data_root``; without a val set ``val.csv`` has its header only: score it with ``evaluate``).
        overwrite: Replace the files of an existing ``out`` (else FacesrError).
        trust: Unpickle the checkpoints in full (runs code from them); the kit's own never need it.

    Returns:
        The new run folder.

    Raises:
        FacesrError: a folder without enough kept checkpoints, a net with running statistics, an existing ``out``.
    """
    run_dir = Path(run).expanduser()
    if not run_dir.is_dir():
        raise FacesrError(f"run folder {run_dir} not found; pass the folder of a training run")
    chosen = _select(run_dir, last, iters)
    out_dir = Path(out).expanduser() if out is not None else run_dir.with_name(run_dir.name + AVG_SUFFIX)
    if out_dir.resolve() == run_dir.resolve():
        raise FacesrError(f"the average would be written into its own run folder {run_dir}; pick another --out")
    if (out_dir / "best.pt").exists() and not overwrite:
        raise FacesrError(f"{out_dir} holds an average already; pass --overwrite (overwrite=True) or another --out")
    ckpts = {it: load_checkpoint(path, trust=trust) for it, path in chosen.items()}
    newest = ckpts[max(ckpts)]
    if not isinstance(newest.get("config"), Mapping):
        raise FacesrError(f"{chosen[max(ckpts)]} has no kit config: average the checkpoints of a kit training run")
    state = average_state_dicts([extract_state_dict(c, prefer_ema=True, name=str(chosen[it])) for it, c in ckpts.items()],
                                name=str(run_dir))
    record = {"run": str(run_dir), "checkpoints": [p.name for p in chosen.values()], "iters": list(chosen),
              "weights": "net_g_ema (the EMA generator) of each, averaged entry by entry"}
    config = {**newest["config"], "name": out_dir.name}
    val = _validate(newest["config"], state, data_root, max(chosen))
    best = ({"metric": "psnr", "value": val["psnr"], "iter": val["iter"], "ssim": val["ssim"]} if val
            else {"metric": "psnr", "value": None, "iter": None})
    run_info = {**_json_or_empty(run_dir / "run_info.json"), "averaged": record}
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint({"net_g": state, "net_g_ema": state, "iter": max(chosen), "best": best, "config": config,
                     "kit_version": newest.get("kit_version"), "run_info": run_info, "averaged": record},
                    out_dir / "best.pt")
    atomic_write_json(out_dir / "config.json", config)
    atomic_write_json(out_dir / "run_info.json", run_info)
    if (run_dir / "log.csv").is_file():
        shutil.copyfile(run_dir / "log.csv", out_dir / "log.csv")
    atomic_write_text(out_dir / "val.csv", _csv_text([val] if val else []))
    scored = f"val PSNR {val['psnr']:.4f} dB" if val else "not validated (no val set): score it with evaluate"
    print(f"averaged the EMA weights of {', '.join(record['checkpoints'])} of {run_dir} into {out_dir} ({scored})")
    return out_dir


def _validate(config: Mapping, state: dict, data_root: str | os.PathLike | None, it: int) -> dict | None:
    """The val row of the averaged weights (the net rebuilt from the run's config), or None without a val set."""
    from facesr.models import build_generator

    root = Path(data_root if data_root is not None else config.get("data_root") or "data/FFHQ").expanduser()
    net = build_generator(config["generator"], **dict(config.get("generator_args") or {}))
    net.load_state_dict(state, strict=True)
    return _val_row(net.eval(), root, it)


def _json_or_empty(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
