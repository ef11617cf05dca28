"""Where and how a run's checkpoint files are written: replaced atomically on a local disk, written in place and
in turn, with checksums, on Google Drive.

On a local disk every file is written to a temp file and renamed over the old one (:mod:`facesr.atomic`), and
``iter_NNNNNN.pt`` files are rotated. On Colab's Drive mount that pattern fills the Drive: a file renamed over or
deleted goes to Drive's Trash and counts against the quota for 30 days, while a file written again in place only
gets a new revision, which does not count (docs/course.md section 12). A 300k-iteration RRDBNet run left about
80 GB in the Trash that way (``python benchmarks/drive_writes.py``). So a run folder on Drive is written thus:

- ``latest.pt`` and ``previous.pt`` are two slots written in turn, in place: a new checkpoint overwrites the older
  slot (``previous.pt``), its size and SHA-256 go into ``checksums.json``, then the two names are swapped by
  renames (no file is replaced), so ``latest.pt`` is always the newest whole checkpoint and ``previous.pt`` the one
  before. A write cut short (a recycled runtime) leaves a file whose checksum matches nothing: resuming takes the
  newest checkpoint that matches (:func:`resume_checkpoint`), never a torn one, and loses at most the interval
  between two checkpoints (``checkpoint_minutes``).
- ``best.pt`` is written in place after the slot that holds the same weights; a torn ``best.pt`` is restored from
  that slot on resume (:func:`repair_best`).
- ``iter_NNNNNN.pt`` files stay on the runtime's local disk (:func:`history_dir`), rotated there as before: they
  are for looking back, and a recycled runtime takes them along.

Only ``checksums.json`` and ``run_info.json`` (a few kB each) are replaced at every checkpoint; that is what goes to
the Trash. A folder is on Drive when it lies under ``FACESR_DRIVE`` (the notebooks' set-up sets it; tests point it
at a folder of their own) or under Colab's mount, ``/content/drive``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from facesr.atomic import atomic_write_json, write_in_place
from facesr.errors import FacesrError

DRIVE_ENV = "FACESR_DRIVE"  # the folder that stands for Colab's MyDrive (set by facesr.colab.setup_runtime)
LOCAL_ENV = "FACESR_LOCAL_CHECKPOINTS"  # where a Drive run keeps its iter_*.pt on the runtime's own disk
COLAB_MOUNT = Path("/content/drive")
LATEST, PREVIOUS, BEST = "latest.pt", "previous.pt", "best.pt"
SWAP = ".latest.swap.pt"  # latest.pt's name for the moment of the swap (a crash there is settled next time)
CHECKSUMS = "checksums.json"
_CHUNK = 16 << 20


def drive_root() -> Path | None:
    """The Drive folder: ``FACESR_DRIVE``, else Colab's mount when it exists, else None."""
    if os.environ.get(DRIVE_ENV, "").strip():
        return Path(os.environ[DRIVE_ENV]).expanduser().resolve()
    return COLAB_MOUNT if COLAB_MOUNT.is_dir() else None


def on_drive(path: str | os.PathLike) -> bool:
    """Whether ``path`` lies on Drive (under :func:`drive_root`, links followed)."""
    root = drive_root()
    return root is not None and Path(path).expanduser().resolve().is_relative_to(root)


def history_dir(run_dir: str | os.PathLike) -> Path:
    """Where the run's ``iter_NNNNNN.pt`` go: the run folder itself, or for a run folder on Drive a folder on the
    runtime's local disk (``FACESR_LOCAL_CHECKPOINTS``, else the temp folder) named after its place on Drive."""
    run_dir = Path(run_dir)
    if not on_drive(run_dir):
        return run_dir
    local = Path(os.environ.get(LOCAL_ENV) or Path(tempfile.gettempdir()) / "facesr-checkpoints").expanduser()
    return local / run_dir.resolve().relative_to(drive_root())


# ------------------------------------------------------------------------------------------------ checksums


def read_checksums(run_dir: Path) -> list[dict] | None:
    """The records of ``checksums.json`` (``{"iter", "size", "sha256"}``), or None without one (a local run, a
    run folder of an older kit); FacesrError when it cannot be read."""
    path = run_dir / CHECKSUMS
    if not path.is_file():
        return None
    try:
        records = json.loads(path.read_text(encoding="utf-8"))["checkpoints"]
        return [dict(iter=int(r["iter"]), size=int(r["size"]), sha256=str(r["sha256"])) for r in records]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FacesrError(f"{path} is unreadable ({err}); delete it to resume from {run_dir / LATEST} as it is") from None


def file_record(path: Path) -> dict:
    """``{"size", "sha256"}`` of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def verified_iter(path: Path, records: list[dict]) -> int | None:
    """The iteration of the checkpoint at ``path`` when its size and SHA-256 match a record, else None."""
    if not path.is_file():
        return None
    if not any(r["size"] == path.stat().st_size for r in records):
        return None  # cheap: a torn file is usually the wrong size
    found = file_record(path)
    return next((r["iter"] for r in records if r["size"] == found["size"] and r["sha256"] == found["sha256"]), None)


# ------------------------------------------------------------------------------------------------ writing


def settle_swap(run_dir: Path) -> None:
    """Finish a swap of ``latest.pt`` and ``previous.pt`` that a crash cut short (renames only; see :func:`swap`)."""
    if not (run_dir / SWAP).exists():
        return
    if not (run_dir / LATEST).exists() and (run_dir / PREVIOUS).exists():
        os.rename(run_dir / PREVIOUS, run_dir / LATEST)
    if not (run_dir / PREVIOUS).exists():
        os.rename(run_dir / SWAP, run_dir / PREVIOUS)


def swap(run_dir: Path) -> None:
    """``previous.pt`` (just written) becomes ``latest.pt`` and ``latest.pt`` becomes ``previous.pt``: three renames
    of which none lands on an existing file, so Drive moves nothing to its Trash."""
    if (run_dir / LATEST).exists():
        os.rename(run_dir / LATEST, run_dir / SWAP)
    os.rename(run_dir / PREVIOUS, run_dir / LATEST)
    if (run_dir / SWAP).exists():
        os.rename(run_dir / SWAP, run_dir / PREVIOUS)


def _keep(records: list[dict], new: dict, best_iter: int | None) -> list[dict]:
    """The records still needed: the new checkpoint, the newest before it (the other slot) and the best one."""
    others = [r for r in records if r["iter"] != new["iter"]]
    other_slot = max((r["iter"] for r in others), default=None)
    return [r for r in others if r["iter"] in (other_slot, best_iter)] + [new]


def rotate_checkpoints(folder: Path, keep_last: int) -> None:
    """Keep the ``keep_last`` newest ``iter_NNNNNN.pt`` files of ``folder`` (best.pt and latest.pt are separate)."""
    for old in sorted(folder.glob("iter_[0-9][0-9][0-9][0-9][0-9][0-9].pt"))[:-keep_last]:
        old.unlink(missing_ok=True)


def save_on_drive(run_dir: Path, state: dict, it: int, improved: bool, periodic: bool, keep_last: int,
                  latest: bool) -> None:
    """Write checkpoint ``it`` of a run folder on Drive (see the module docstring): the slot, its checksum and the
    swap when ``latest`` (always when ``improved``: ``best.pt`` is written after the slot that guards it), then
    ``best.pt``; the ``iter_N.pt`` of a ``periodic`` checkpoint stays in :func:`history_dir`, rotated there."""
    from facesr.weights.checkpoints import save_checkpoint

    history = history_dir(run_dir)
    staged = save_checkpoint(state, history / (f"iter_{it:06d}.pt" if periodic else ".staged.pt"))  # local disk
    settle_swap(run_dir)
    records = read_checksums(run_dir) or []
    best_iter = (state.get("best") or {}).get("iter")
    if latest or improved:
        record = {"iter": it, **write_in_place(staged, run_dir / PREVIOUS)}
        records = _keep(records, record, best_iter)
        atomic_write_json(run_dir / CHECKSUMS, {"checkpoints": records})
        swap(run_dir)
    if improved:
        write_in_place(staged, run_dir / BEST)
    if periodic:
        rotate_checkpoints(history, keep_last)
    else:
        staged.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------ reading


def resume_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a run resumes from: ``latest.pt``, or on a run folder with ``checksums.json`` the newest of
    ``latest.pt`` and ``previous.pt`` whose checksum matches (a torn one is named and passed over); None for a
    fresh run.

    Raises:
        FacesrError: checksums.json exists but no checkpoint matches it.
    """
    records = read_checksums(run_dir)
    if records is None:
        return run_dir / LATEST if (run_dir / LATEST).exists() else None
    settle_swap(run_dir)
    found = {name: verified_iter(run_dir / name, records) for name in (LATEST, PREVIOUS)}
    valid = {name: it for name, it in found.items() if it is not None}
    for name in (n for n, it in found.items() if it is None and (run_dir / n).exists()):
        print(f"{run_dir / name} does not match its checksum in {CHECKSUMS} (a write cut short, or a file put "
              "there by hand): not resumed from")
    if not valid:
        if not any((run_dir / n).exists() for n in (LATEST, PREVIOUS)):
            return None
        raise FacesrError(f"no checkpoint in {run_dir} matches {CHECKSUMS}; delete {run_dir / CHECKSUMS} to resume "
                          f"from {run_dir / LATEST} as it is")
    return run_dir / max(valid, key=valid.get)


def repair_best(run_dir: Path, ckpt: dict[str, Any]) -> None:
    """Restore ``best.pt`` of a run folder on Drive from the slot holding the same iteration when its write was cut
    short (its checksum matches nothing); nothing to do elsewhere."""
    records = read_checksums(run_dir)
    best_iter = (ckpt.get("best") or {}).get("iter")
    if records is None or best_iter is None or verified_iter(run_dir / BEST, records) == best_iter:
        return
    source = next((run_dir / n for n in (LATEST, PREVIOUS) if verified_iter(run_dir / n, records) == best_iter), None)
    if source is not None:
        write_in_place(source, run_dir / BEST)
        print(f"{run_dir / BEST} was cut short while being written: restored from {source.name} (iteration {best_iter})")


# ------------------------------------------------------------------------------------------------ planning


def checkpoint_bytes(cfg: Any) -> int:
    """About how many bytes one checkpoint of ``cfg`` takes: the generator and its EMA copy, Adam's two moments of
    every trainable parameter, and for a GAN run the discriminator and its Adam (counted on the meta device)."""
    import torch

    from facesr.models import ModifiedVGG, build_generator

    def sizes(net: torch.nn.Module) -> tuple[int, int]:
        state = sum(t.numel() * t.element_size() for t in net.state_dict().values())
        trainable = sum(p.numel() * p.element_size() for p in net.parameters() if p.requires_grad)
        return state, trainable

    with torch.device("meta"):
        g_state, g_train = sizes(build_generator(cfg.generator, **cfg.generator_args))
        total = 2 * g_state + 2 * g_train
        if cfg.gan_weight > 0:
            d_state, d_train = sizes(ModifiedVGG(in_channels=3, mid_channels=64))
            total += d_state + 2 * d_train
    return total


def drive_use(cfg: Any, run_dir: str | os.PathLike, hours: float | None = None) -> str:
    """What a run will keep on Drive and send to its Trash, as the plan cell prints it.

    Args:
        cfg: The run's config.
        run_dir: Its run folder.
        hours: The run's expected wall hours (for the number of time-based checkpoints), if known.
    """
    size = checkpoint_bytes(cfg)
    saves = cfg.iters // cfg.checkpoint_every + 1
    if hours and cfg.checkpoint_minutes > 0:
        saves += int(hours * 60 / cfg.checkpoint_minutes)
    gb = f"{size / 1e9:.2f} GB" if size >= 1e8 else f"{size / 1e6:.0f} MB"
    if not on_drive(run_dir):
        return (f"disk: one checkpoint is about {gb}; the run folder keeps latest.pt, best.pt and the last "
                f"{cfg.keep_last} iter_*.pt (about {(2 + cfg.keep_last) * size / 1e9:.2f} GB; not on Drive)")
    trash = saves * 8e3  # checksums.json and run_info.json, replaced at each checkpoint
    return (f"Drive: one checkpoint is about {gb}; the run folder keeps latest.pt, previous.pt and best.pt (about "
            f"{3 * size / 1e9:.2f} GB) and its logs, written in place; about {trash / 1e6:.1f} MB go to Drive's "
            f"Trash over the run ({saves} checkpoints); the last {cfg.keep_last} iter_*.pt stay on this runtime's "
            f"disk ({history_dir(run_dir)})")
