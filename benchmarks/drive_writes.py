"""What a 300k-iteration run writes, replaces and deletes in its run folder on Drive, per named config.

Colab's Drive mount moves a file that is replaced (renamed over) or deleted to Drive's Trash, where it counts
against the storage quota for 30 days; a file written again in place only gets a new revision, which does not
(docs/course.md section 12). This benchmark drives the trainer's own checkpoint writes
(``facesr.training.run_folder.save_iteration``, called as ``save_run`` calls it) through a whole run at the
default settings (``checkpoint_every``, ``val_every``, ``keep_last``, ``checkpoint_minutes``) into a run folder
in a Drive-like folder (no hard links, as on Drive), snapshots the folder after every save and counts:

- files written: files created, rewritten in place, or put in place by a rename;
- bytes written: their sizes;
- bytes to the Trash: the sizes of the files that were replaced or deleted (what stays in Drive's Trash);
- kept at the end: the files and bytes left in the run folder.

Two rows per config: ``before``, the writes of a run folder on a local disk (temp file renamed over the old one,
``iter_*.pt`` rotated in the run folder), which is what the kit did on Drive too until it told them apart; and
``after``, the writes of a run folder on Drive (``FACESR_DRIVE``; :mod:`facesr.training.checkpoint_files`).

Each checkpoint is the config's real one, scaled: its exact size is measured once (``torch.save`` of the
config's nets, EMA copy and Adam state at full size; ``--sizes estimate`` takes
``checkpoint_files.checkpoint_bytes`` instead), and the simulated run writes files of ``size / --scale`` bytes,
counted back at full size. Every validation is assumed to improve (``best.pt`` is written each time: the most
writes), and the time-based ``latest.pt`` of ``checkpoint_minutes`` falls at the speed given by ``--hours``
(wall hours of the whole run).

Usage: python benchmarks/drive_writes.py [--edition 2022] [--configs srgan esrgan ...] [--hours 24]
       [--iters 300000] [--scale 1000] [--sizes measured|estimate]
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


def _snapshot(folder: Path, held: list[int]) -> dict[str, tuple[int, int, int]]:
    """{relative path: (inode, size, mtime_ns)} of every file under ``folder``. Each file is held open until the
    next snapshot (``held``: file descriptors), so that its inode number cannot go to a new file in between:
    a file replaced by a new one always shows as another inode."""
    out = {}
    for path in folder.rglob("*"):
        if path.is_file():
            held.append(os.open(path, os.O_RDONLY))
            st = os.fstat(held[-1])
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
    from facesr.training.distributed import Ranks
    from facesr.training.run_folder import save_iteration
    from facesr.training.run_info import machine_info, start_session, update_session

    payload = torch.zeros(max(1, real_size // scale), dtype=torch.uint8)
    machine = machine_info(torch.device("cpu"), Ranks(), None)
    run_info = start_session(None, machine, 0)
    for session in range(1, 3):  # a 24 h run resumed on two more Colab runtimes: run_info.json as it then is
        run_info = start_session(run_info, machine, session * iters // 3)
    tally = Tally()

    def full(name: str, size: int) -> int:  # a checkpoint counts at its real size, other files as they are
        return real_size if name.endswith(".pt") else size

    seconds_per_iter = hours * 3600 / iters
    minutes = cfg.checkpoint_minutes
    last_latest_t = 0.0
    best_iter = None
    held: list[int] = []
    before = _snapshot(run_dir, held)
    for it in range(1, iters + 1):
        t = it * seconds_per_iter
        periodic = it % cfg.checkpoint_every == 0 or it == iters
        improved = it % cfg.val_every == 0 or it == iters
        due = minutes > 0 and t - last_latest_t >= minutes * 60
        if not (periodic or improved or due):
            continue
        latest = periodic or due
        best_iter = it if improved else best_iter
        state = {"payload": payload, "iter": it, "best": {"metric": "psnr", "iter": best_iter},
                 "run_info": update_session(run_info, it, t)}
        save_iteration(run_dir, state, it, improved, periodic, cfg.keep_last, latest=latest)
        if latest:
            last_latest_t = t
        previous_fds, held = held, []
        after = _snapshot(run_dir, held)
        old_files = {ino: (name, size, mtime) for name, (ino, size, mtime) in before.items()}
        new_files = {ino: (name, size, mtime) for name, (ino, size, mtime) in after.items()}
        for ino, (name, size, mtime) in new_files.items():  # by file, not by name: a rename writes nothing
            if ino not in old_files or old_files[ino][1:] != (size, mtime):
                tally.files_written += 1
                tally.bytes_written += full(name, size)
        tally.bytes_trashed += sum(full(name, size) for ino, (name, size, _) in old_files.items()
                                   if ino not in new_files)  # replaced or deleted: to the Trash
        before = after
        for fd in previous_fds:
            os.close(fd)
    for fd in held:
        os.close(fd)
    tally.files_kept = len(before)
    tally.bytes_kept = sum(full(name, size) for name, (_, size, _) in before.items())
    return tally


@contextlib.contextmanager
def drive_like(folder: Path, local: Path, as_drive: bool):
    """``folder`` without hard links, as on Colab's Drive mount; ``as_drive``: the kit knows it is Drive
    (``FACESR_DRIVE``; its iter_*.pt then go to ``local``)."""

    def no_link(*args: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted (no hard links on Drive)")

    env = {"FACESR_DRIVE": str(folder), "FACESR_LOCAL_CHECKPOINTS": str(local)} if as_drive else {}
    with mock.patch.dict(os.environ, env), mock.patch("os.link", no_link):
        if not as_drive:
            os.environ.pop("FACESR_DRIVE", None)
        yield folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edition", default=None, help="whose named configs (default FACESR_EDITION, else 2022)")
    parser.add_argument("--configs", nargs="*", default=None, help="named configs (default: all of the edition)")
    parser.add_argument("--iters", type=int, default=300_000)
    parser.add_argument("--hours", type=float, default=24.0, help="wall hours of the whole run (time-based saves)")
    parser.add_argument("--scale", type=int, default=1000, help="simulated files are this many times smaller")
    parser.add_argument("--sizes", choices=("measured", "estimate"), default="measured",
                        help="checkpoint sizes: torch.save of the real state (default) or checkpoint_bytes")
    args = parser.parse_args(argv)
    from facesr.training.checkpoint_files import checkpoint_bytes

    edition = get_edition(args.edition).year
    names = args.configs or config_names(edition)
    print(f"edition {edition}, {args.iters:,} iterations in {args.hours:g} h, default checkpoint settings, every "
          "validation an improvement; MB = 1e6, GB = 1e9 bytes")
    print("| config | writes | checkpoint | files written | GB written | MB to the Trash | files kept | GB kept |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        cfg = get_config(name, edition=edition)
        size = checkpoint_size(name, edition) if args.sizes == "measured" else checkpoint_bytes(cfg)
        for label, as_drive in (("before", False), ("after", True)):
            with tempfile.TemporaryDirectory(prefix="facesr-drive-") as tmp, \
                    drive_like(Path(tmp) / "drive", Path(tmp) / "local", as_drive) as drive:
                run_dir = drive / "facesr" / "runs" / name
                run_dir.mkdir(parents=True)
                tally = simulate(run_dir, cfg, size, args.scale, args.hours, args.iters)
            print(f"| {name} | {label} | {size / 1e6:,.0f} MB | {tally.files_written:,} | "
                  f"{tally.bytes_written / GB:,.2f} | {tally.bytes_trashed / 1e6:,.1f} | {tally.files_kept} | "
                  f"{tally.bytes_kept / GB:,.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
