"""Training speed per generator: data time and step time (forward + backward + optimizer step) apart.

Times the trainer's own code (``facesr.training.step.train_step``, ``TrainDataset`` / ``degrade_batch``) at the
course settings (each config's own: batch 8, full LQ 128 -> GT 512; the GAN run at GT patch 128, SwinIR at
GT patch 256, where it never runs in fp16) and at quick-mode settings,
and prints a Markdown table with iterations/s, samples/s and the estimated hours for 300,000 iterations.
On CUDA each generator is timed with and without AMP and with GPU or CPU degradation.

A configuration whose single step is estimated (from a batch-1 step at LQ 32, scaled by pixels and batch)
to take longer than ``--limit`` seconds is skipped with a note, so a CPU run finishes in minutes.

``--ddp N`` times instead the DistributedDataParallel step of one config (``--config``, default srgan;
``--quick`` for its quick-mode size) on 1 and N ranks at the same global batch, with synthetic batches
(NCCL on CUDA, gloo on the CPU), and prints per-rank and global samples/s and the scaling efficiency.

Usage: python benchmarks/train_step.py [--quick] [--repeats N] [--limit SECONDS] [--device cpu|cuda]
       python benchmarks/train_step.py --ddp N [--config NAME] [--quick] [--repeats N] [--threads T]
"""

from __future__ import annotations

import argparse
import time

import torch

from facesr.config import get_config
from facesr.data.datasets import TrainDataset
from facesr.errors import FacesrError
from facesr.training.device import resolve_device
from facesr.training.schedule import IterationBatchSampler
from facesr.training.step import build_nets, prepare_batch, train_step

HOURS_FOR = 300_000


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _setups(quick_only: bool) -> list[tuple[str, str, dict]]:
    """(setting, label, get_config arguments)."""
    rows = []
    for setting, quick in (("course", False), ("quick", True)):
        if quick_only and not quick:
            continue
        rows += [
            (setting, "MSRResNet-16", {"name": "srgan", "quick": quick}),
            (setting, "MSRResNet-20", {"name": "msrresnet20", "quick": quick}),
            (setting, "RRDBNet 64/23/32" if not quick else "RRDBNet 64/2/32 (quick)", {"name": "esrgan", "quick": quick}),
            (setting, "GAN step (RRDBNet+D+VGG)", {"name": "esrgan_gan", "quick": quick, "vgg_weights": "random"}),
            # swinir's config has allow_fp16=False: its AMP rows are bf16 where the card has it, else fp32
            (setting, "SwinIR 84/4x6" if not quick else "SwinIR 84/2x2 (quick)", {"name": "swinir", "quick": quick}),
            (setting, "RCAN 64/3x6" if not quick else "RCAN 64/2x2 (quick)", {"name": "rcan", "quick": quick}),
        ]
    return rows


def _batch(cfg, ds: TrainDataset, k: int) -> tuple[dict, float]:
    """Batch ``k`` from the real pipeline and the seconds it took (single process)."""
    keys = IterationBatchSampler(len(ds), cfg.batch_size, cfg.seed, k, k + 1).batch(k)
    t = time.perf_counter()
    items = [ds[key] for key in keys]
    batch = torch.utils.data.default_collate(items)
    return batch, time.perf_counter() - t


def _measure(setting, label, kw, device, amp, gpu_degrade, repeats, limit, data_root) -> dict:
    name = kw.pop("name")
    cfg = get_config(name, amp=amp, gpu_degrade=gpu_degrade, **kw)
    nets = build_nets(cfg, device)
    scaler = torch.amp.GradScaler("cuda", enabled=nets.amp_dtype == torch.float16)
    lq_size = (cfg.gt_patch or 512) // 4
    row = {"setting": setting, "model": label, "device": device.type, "amp": str(nets.amp_dtype).replace("torch.", "")
           if nets.amp_dtype else "fp32", "degrade": "GPU" if nets.gpu_degrade else "CPU", "batch": cfg.batch_size,
           "size": f"{lq_size}->{lq_size * 4}", "note": ""}

    # estimate from a batch-1 step at LQ 32 (convolutions scale with pixels and batch)
    lq, gt = torch.rand(1, 3, 32, 32, device=device), torch.rand(1, 3, 128, 128, device=device)
    _sync(device)
    t = time.perf_counter()
    train_step(nets, lq, gt, scaler)
    _sync(device)
    estimate = (time.perf_counter() - t) * cfg.batch_size * (lq_size / 32) ** 2
    if estimate > limit:
        row["note"] = f"skipped: one step estimated at {estimate:.0f} s (> --limit {limit:.0f} s)"
        return row

    ds = TrainDataset(data_root / "train" / "GT", gt_patch=None if nets.gpu_degrade else cfg.gt_patch,
                      degrade=not nets.gpu_degrade, seed=cfg.seed)
    batch, _ = _batch(cfg, ds, 0)
    lq, gt = prepare_batch(batch, cfg, nets, device)  # warm-up of the degradation kernels
    if estimate < limit / 4:
        train_step(nets, lq, gt, scaler)  # warm-up (allocator, cuDNN autotune)
    data_t, step_t = [], []
    for k in range(repeats):
        batch, cpu_t = _batch(cfg, ds, k + 1)
        _sync(device)
        t = time.perf_counter()
        lq, gt = prepare_batch(batch, cfg, nets, device)
        _sync(device)
        data_t.append(cpu_t + time.perf_counter() - t)
        t = time.perf_counter()
        train_step(nets, lq, gt, scaler)
        _sync(device)
        step_t.append(time.perf_counter() - t)
    data_s, step_s = sorted(data_t)[len(data_t) // 2], sorted(step_t)[len(step_t) // 2]  # medians
    total = data_s + step_s
    row.update(data=data_s, step=step_s, its=1 / total, sps=cfg.batch_size / total, hours=HOURS_FOR * total / 3600)
    if data_s > step_s and not nets.gpu_degrade:
        row["note"] = "data-bound in one process; num_workers DataLoader workers divide the data time"
    return row


def _table(rows: list[dict]) -> str:
    head = ("| setting | model | device | amp | degrade | batch | LQ->GT | data s/it | step s/it | it/s | samples/s "
            f"| h per {HOURS_FOR:,} it | note |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        if "step" in r:
            nums = f"{r['data']:.3f} | {r['step']:.3f} | {r['its']:.2f} | {r['sps']:.1f} | {r['hours']:.0f}"
        else:
            nums = "- | - | - | - | -"
        lines.append(f"| {r['setting']} | {r['model']} | {r['device']} | {r['amp']} | {r['degrade']} | {r['batch']} "
                     f"| {r['size']} | {nums} | {r['note']} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ --ddp N
def _ddp_worker(rank: int, world: int, port: int, cfg_kw: dict, repeats: int, threads: int, results) -> None:
    """One rank of the DDP timing: the trainer's nets and step on this rank's part of the global batch."""
    import os

    from facesr.training import distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(threads)
    ranks = distributed.ranks_from_env()
    wanted = cfg_kw.pop("device", None)
    device = distributed.start(ranks, torch.device(wanted) if wanted else None)
    cfg = get_config(**cfg_kw)
    nets = build_nets(cfg, device, ranks)
    scaler = torch.amp.GradScaler("cuda", enabled=nets.amp_dtype == torch.float16)
    b, lq_size = distributed.per_rank_batch(cfg.batch_size, world), (cfg.gt_patch or 512) // 4
    gen = torch.Generator().manual_seed(rank)  # synthetic batches: this times the step, not the data
    lq, gt = (torch.rand(b, 3, s, s, generator=gen).to(device) for s in (lq_size, lq_size * 4))
    train_step(nets, lq, gt, scaler)  # warm-up (allocator, cuDNN, DDP buckets)
    times = []
    for _ in range(repeats):
        distributed.barrier(ranks)
        _sync(device)
        t = time.perf_counter()
        train_step(nets, lq, gt, scaler)
        _sync(device)
        times.append(time.perf_counter() - t)
    results.put((rank, sorted(times)[len(times) // 2]))
    distributed.stop(ranks)


def _time_ranks(world: int, cfg_kw: dict, repeats: int, threads: int) -> float:
    """Median step seconds of the slowest rank of a ``world``-rank job (1 = one process, no DDP)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:  # a free port for this job's rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    mp.start_processes(_ddp_worker, args=(world, port, dict(cfg_kw), repeats, threads, results), nprocs=world,
                       start_method="spawn")
    return max(results.get()[1] for _ in range(world))


def ddp_table(world: int, cfg_kw: dict, repeats: int, threads: int) -> str:
    """Per-rank and global samples/s of 1 and ``world`` ranks at the same global batch, and the efficiency."""
    batch = get_config(**{k: v for k, v in cfg_kw.items() if k != "device"}).batch_size
    rows, base = [], None
    for n in dict.fromkeys((1, world)):
        step = _time_ranks(n, cfg_kw, repeats, threads)
        base = base or step
        efficiency = base / (n * step)  # strong scaling: the same global batch shared by n ranks
        rows.append(f"| {n} | {batch // n} | {step:.3f} | {batch // n / step:.2f} | {batch / step:.2f} "
                    f"| {100 * efficiency:.0f} % |")
    head = "| ranks | batch per rank | step s/it | samples/s per rank | samples/s global | scaling efficiency |"
    return "\n".join([head, "|---:|---:|---:|---:|---:|---:|", *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick-mode settings only, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per row (default 3, --quick 1)")
    parser.add_argument("--limit", type=float, default=60.0, help="skip rows whose one step would take longer")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--data", default=None, help="data root for the data-time column (default: sample data)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--ddp", type=int, default=None, metavar="N",
                        help="instead: time one DistributedDataParallel step on N ranks against one (CPU: gloo)")
    parser.add_argument("--config", default="srgan", help="--ddp: the config to time (default: srgan)")
    args = parser.parse_args()
    if args.ddp:
        threads = args.threads or 1  # one thread per rank, as torchrun sets OMP_NUM_THREADS
        cfg_kw = {"name": args.config, "quick": args.quick, "device": args.device}
        where = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        print(f"DDP step of {args.config}{' (quick)' if args.quick else ''} on {where}, {threads} thread(s) per "
              f"rank, torch {torch.__version__}; medians of {args.repeats or 3} steps, synthetic batches\n")
        print(ddp_table(args.ddp, cfg_kw, args.repeats or 3, threads))
        return
    from pathlib import Path

    from facesr.data.sample import ensure_sample_data

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)  # CUDA when available, after the kernel (arch) check
    except FacesrError as err:
        raise SystemExit(f"error: {err}") from None
    data_root = Path(args.data) if args.data else ensure_sample_data()
    repeats = args.repeats or (1 if args.quick else 3)
    variants = [(True, True), (False, True), (True, False)] if device.type == "cuda" else [(True, False)]
    rows = []
    for setting, label, kw in _setups(args.quick):
        for amp, gpu_degrade in variants:
            row = _measure(setting, label, dict(kw), device, amp, gpu_degrade, repeats, args.limit, data_root)
            print(f"  {row['setting']:6} {row['model']:28} {row['amp']:8} {row['degrade']}: "
                  + (f"step {row['step']:.3f} s, data {row['data']:.3f} s" if "step" in row else row["note"]),
                  flush=True)
            rows.append(row)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\nTraining step speed on {gpu} (torch {torch.__version__}); medians of {repeats} steps; data time = one "
          "batch through TrainDataset in one process (+ GPU degradation); hours = 300k x (data + step)\n")
    print(_table(rows))


if __name__ == "__main__":
    main()
