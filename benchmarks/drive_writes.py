"""What a 300k-iteration run writes, replaces and deletes in its run folder on Drive, per named config.

Colab's Drive mount moves a file that is replaced (renamed over) or deleted to Drive's Trash, where it counts
against the storage quota for 30 days; a file written again in place only gets a new revision, which does not
(docs/course.md section 12). This benchmark drives the trainer's own checkpoint writes
(``facesr.training.run_folder.save_iteration``, called as ``save_run`` calls it) through a whole run at the
default settings (``checkpoint_every``, ``val_every``, ``keep_last``, ``checkpoint_minutes``) into a run folder
inside a Drive-like folder (``FACESR_DRIVE``, no hard links, as on Drive), snapshots the folder after every
save and counts:

- files written: files created, rewritten in place, or put in place by a rename;
- bytes written: their sizes;
- bytes to the Trash: the sizes of the files that were replaced or deleted (what stays in Drive's Trash);
- kept at the end: the files and bytes left in the run folder.

Each checkpoint is the config's real one, scaled: its exact size is measured once (``torch.save`` of the
config's nets, EMA copy and Adam state at full size), and the simulated run writes files of
``size / --scale`` bytes, counted back at full size. Every validation is assumed to improve (``best.pt`` is
written each time: the most writes), and the time-based ``latest.pt`` of ``checkpoint_minutes`` falls at the
speed given by ``--hours`` (wall hours of the whole run).

Usage: python benchmarks/drive_writes.py [--edition 2022] [--configs srgan esrgan ...] [--hours 24]
       [--iters 300000] [--scale 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import tempfile
from pathlib import Path
from unittest import mock

import torch

from facesr.config import get_config
from facesr.config.named_configs import config_names
from facesr.editions import get_edition

GB = 1e9


class _Counter(io.RawIOBase):
    """A write-only sink that counts bytes (``torch.save`` into it gives a checkpoint's size)."""

    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:
        self.n += len(b)
        return len(b)


def checkpoint_size(name: str, edition: int) -> int:
    """Bytes of the config's checkpoint as the trainer writes it (full-size nets, EMA, Adam state)."""
    from facesr.training.distributed import Ranks
    from facesr.training.run_folder import make_checkpoint
    from facesr.training.run_info import machine_info, start_session
    from facesr.training.schedule import IterationLR
    from facesr.training.step import build_nets

    cfg = dataclasses.replace(get_config(name, edition=edition), vgg_weights="random", compile=False)
    device = torch.device("cpu")
    nets = build_nets(cfg, device)
    for opt, net in ((nets.optimizer_g, nets.net_g), (nets.optimizer_d, nets.net_d)):
        if opt is None:
            continue
        for p in net.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()  # Adam's moments exist from the first step on
    schedulers = {"scheduler_g": IterationLR(nets.optimizer_g, cfg, cfg.lr)}
    if nets.optimizer_d is not None:
        schedulers["scheduler_d"] = IterationLR(nets.optimizer_d, cfg, cfg.lr_d)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    run_info = start_session(None, machine_info(device, Ranks(), None), 0)
    state = make_checkpoint(nets, schedulers, scaler, 1, {"metric": "psnr", "value": None, "iter": None}, cfg,
                            run_info)
    sink = _Counter()
    torch.save(state, sink)
    return sink.n


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """{relative path: (inode, size, mtime_ns)} of every file under ``folder``."""
    out = {}
    for path in folder.rglob("*"):
        if path.is_file():
            st = path.stat()
            out[path.relative_to(folder).as_posix()] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


@dataclasses.dataclass
class Tally:
    """What the simulated run did to the Drive-like folder (bytes at full size)."""

    files_written: int = 0
    bytes_written: int = 0
    bytes_trashed: int = 0
    files_kept: int = 0
    bytes_kept: int = 0


def simulate(run_dir: Path, cfg: object, real_size: int, scale: int, hours: float, iters: int) -> Tally:
    """Drive ``save_iteration`` through ``iters`` iterations of ``cfg`` into ``run_dir``; count what changed."""
    from facesr.training.run_folder import save_iteration

    payload = torch.zeros(max(1, real_size // scale), dtype=torch.uint8)
    run_info = {"sessions": [{"from_iter": 0, "to_iter": 0, "seconds": 0.0, "gpu_name": "Tesla T4"}] * 8}
    fake_size: list[int] = []  # the size a simulated checkpoint file has on disk (learnt from the first one)
    tally = Tally()

    def full(size: int) -> int:
        return real_size if fake_size and size == fake_size[0] else size

    seconds_per_iter = hours * 3600 / iters
    minutes = cfg.checkpoint_minutes
    last_latest_t = 0.0
    before = _snapshot(run_dir)
    for it in range(1, iters + 1):
        t = it * seconds_per_iter
        periodic = it % cfg.checkpoint_every == 0 or it == iters
        improved = it % cfg.val_every == 0 or it == iters
        due = minutes > 0 and t - last_latest_t >= minutes * 60
        if not (periodic or improved or due):
            continue
        latest = periodic or due
        state = {"payload": payload, "iter": it, "run_info": {**run_info, "iterations": it}}
        save_iteration(run_dir, state, it, improved, periodic, cfg.keep_last, latest=latest)
        if latest:
            last_latest_t = t
        after = _snapshot(run_dir)
        if not fake_size:
            fake_size += [s for name, (_, s, _) in after.items() if name.endswith(".pt")][:1]
        for name, (ino, size, mtime) in after.items():
            old = before.get(name)
            if old is None or old[0] != ino or old[2] != mtime or old[1] != size:
                tally.files_written += 1
                tally.bytes_written += full(size)
            if old is not None and old[0] != ino:  # renamed over: the old file went to the Trash
                tally.bytes_trashed += full(old[1])
        tally.bytes_trashed += sum(full(old[1]) for name, old in before.items() if name not in after)
        before = after
    tally.files_kept = len(before)
    tally.bytes_kept = sum(full(size) for _, size, _ in before.values())
    return tally


@contextlib.contextmanager
def drive_like(folder: Path):
    """``folder`` as the Drive (``FACESR_DRIVE``), where hard links fail as on Colab's Drive mount."""

    def no_link(*args: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted (no hard links on Drive)")

    with mock.patch.dict(os.environ, {"FACESR_DRIVE": str(folder)}), mock.patch("os.link", no_link):
        yield folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edition", default=None, help="whose named configs (default FACESR_EDITION, else 2022)")
    parser.add_argument("--configs", nargs="*", default=None, help="named configs (default: all of the edition)")
    parser.add_argument("--iters", type=int, default=300_000)
    parser.add_argument("--hours", type=float, default=24.0, help="wall hours of the whole run (time-based saves)")
    parser.add_argument("--scale", type=int, default=1000, help="simulated files are this many times smaller")
    args = parser.parse_args()
    edition = get_edition(args.edition).year
    names = args.configs or config_names(edition)
    print(f"edition {edition}, {args.iters:,} iterations in {args.hours:g} h, default checkpoint settings, every "
          "validation an improvement; GB = 1e9 bytes")
    print("| config | checkpoint | files written | GB written | GB to the Trash | files kept | GB kept |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        cfg = get_config(name, edition=edition)
        size = checkpoint_size(name, edition)
        with tempfile.TemporaryDirectory(prefix="facesr-drive-") as tmp, drive_like(Path(tmp)) as drive:
            run_dir = drive / "facesr" / "runs" / name
            run_dir.mkdir(parents=True)
            tally = simulate(run_dir, cfg, size, args.scale, args.hours, args.iters)
        print(f"| {name} | {size / 1e6:,.0f} MB | {tally.files_written:,} | {tally.bytes_written / GB:,.2f} | "
              f"{tally.bytes_trashed / GB:,.2f} | {tally.files_kept} | {tally.bytes_kept / GB:,.2f} |", flush=True)


if __name__ == "__main__":
    main()
