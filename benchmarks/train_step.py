"""Training speed per config: data time and step time (forward + backward + Adam + EMA) apart, model FLOPs, MFU.

Times the trainer's own code (``facesr.training.step.train_step`` and the run's EMA update, ``TrainDataset`` /
``prepare_batch``) at the course settings (each config's own: batch 8, full LQ 128 -> GT 512; the GAN run at GT
patch 128, SwinIR at GT patch 256, where it never runs in fp16) and at quick-mode settings, after warm-up steps
(cuDNN autotuning and the first allocations are not a step), and prints a Markdown table: data and step s/it,
s/it, it/s, samples/s, the data-wait share (data / (data + step), with the batch loaded in this one process: the
trainer's num_workers divide the data time), the model FLOPs of one iteration (``torch.utils.flop_counter`` on the
``meta`` device: convolutions and matrix products of the forward and backward passes of every net in the step)
and, on CUDA, the MFU against the card's dense peak for the step's precision (:data:`PEAK_TFLOPS`; TF32 for fp32
convolutions on Ampere and newer, as cuDNN uses it). On CUDA each config is timed with and without AMP and with
GPU or CPU degradation.

A configuration whose single step is estimated (from a batch-2 step at LQ 32, scaled by pixels and batch)
to take longer than ``--limit`` seconds is skipped with a note, so a CPU run finishes in minutes; one that
runs out of memory (RRDBNet at batch 8 on a T4) is a row that says so, and the table goes on.

``--profile`` writes a ``torch.profiler`` trace (Chrome trace JSON; open it in https://ui.perfetto.dev) of 10
steps of one config (``--config``, ``--quick`` for its quick size) after 3 warm-up steps.

``--fwbw`` times instead the forward and backward pass of each in-budget config's generator alone on the CPU
(one batch of 2 LQ patches of 64), beside its parameters and the GFLOP of its training step: the networks compared
at one input size, in minutes.

``--ddp N`` times instead the DistributedDataParallel step of one config (``--config``, default srgan;
``--quick`` for its quick-mode size) on 1 and N ranks at the same global batch, with synthetic batches
(NCCL on CUDA, gloo on the CPU), and prints per-rank and global samples/s and the scaling efficiency.

Usage: python benchmarks/train_step.py [--quick] [--configs NAME ...] [--repeats N] [--limit SECONDS] [--device cpu|cuda]
       python benchmarks/train_step.py --profile [--config NAME] [--quick] [--trace FILE]
       python benchmarks/train_step.py --ddp N [--config NAME] [--quick] [--repeats N] [--threads T]
       python benchmarks/train_step.py --fwbw [--configs NAME ...] [--repeats N] [--threads T]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import time
from collections.abc import Iterator

import torch

from facesr.config import get_config
from facesr.errors import FacesrError
from facesr.models import build_generator
from facesr.models.sizing import inference_args
from facesr.report.budget import generator_label
from facesr.training.device import resolve_device, training_numerics
from facesr.training.memory import free_memory, is_oom, release
from facesr.training.run_info import precision_name
from facesr.training.schedule import IterationBatchSampler
from facesr.training.step import amp_dtype_for, build_nets, prepare_batch, train_dataset, train_step
from facesr.training.teacher import uses_teacher

HOURS_FOR = 300_000
# The networks sized to each limit by facesr.models.size_to_budget (facesr.config.sized_networks).
SIZED = ("omnisr", "span", "realplksr", "dat", "atd")
WARMUP_STEPS = 2
# Dense peak TFLOPS of the cards Colab and the clouds lend, per step precision, from NVIDIA's data sheets
# (SXM versions where there are two; "fp32" is TF32 on Ampere and newer, which cuDNN uses for convolutions).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "T4": {"fp16": 65.0, "fp32": 8.1},
    "L4": {"bf16": 121.0, "fp16": 121.0, "fp32": 60.0},
    "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 156.0},
    "H100": {"bf16": 989.0, "fp16": 989.0, "fp32": 495.0},
    "H200": {"bf16": 989.0, "fp16": 989.0, "fp32": 495.0},
    "V100": {"fp16": 125.0, "fp32": 15.7},
    "P100": {"fp16": 18.7, "fp32": 9.3},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_tflops(gpu_name: str, precision: str) -> float | None:
    """The card's dense peak for ``precision`` (bf16/fp16/fp32), None for a card not in :data:`PEAK_TFLOPS`.

    A card matches a whole word of the name (``torch.cuda.get_device_name``: "NVIDIA L4", "Tesla T4",
    "NVIDIA A100-SXM4-40GB"), never a part of one: an L40S is not an L4.
    """
    words = set(re.split(r"[\s\-_/]+", gpu_name.upper()))
    for card, peaks in PEAK_TFLOPS.items():
        if card in words:
            return peaks.get(precision)
    return None


@contextlib.contextmanager
def fused_adam_on_meta() -> Iterator[None]:
    """Let fused Adam (the trainer's optimizer) take meta tensors: its kernel has a meta version; torch's
    Python-side device check leaves meta out."""
    import torch.optim.optimizer as optimizer

    real = optimizer._get_fused_kernels_supported_devices
    optimizer._get_fused_kernels_supported_devices = lambda: [*real(), "meta"]
    try:
        yield
    finally:
        optimizer._get_fused_kernels_supported_devices = real


def step_flops(cfg) -> int:
    """Model FLOPs of one training iteration of ``cfg`` (every net's forward and backward), counted on ``meta``."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = torch.device("meta")
    lq_size = (cfg.gt_patch or 512) // 4
    with fused_adam_on_meta():
        nets = build_nets(cfg, meta, teacher=teacher_for(cfg, meta))
        lq = torch.rand(cfg.batch_size, 3, lq_size, lq_size, device=meta)
        gt = torch.rand(cfg.batch_size, 3, lq_size * 4, lq_size * 4, device=meta)
        with FlopCounterMode(display=False) as counter:
            train_step(nets, lq, gt, torch.amp.GradScaler("cuda", enabled=False))
    return int(counter.get_total_flops())


def _setups(quick_only: bool, names: list[str] | None) -> list[tuple[str, str, dict]]:
    """(setting, label, get_config arguments) of the edition's configs (FACESR_EDITION, else 2022)."""
    from facesr.config.named_configs import config_names

    wide = "msrresnet26" in config_names()  # 2023-2025: the in-budget configs fill the 150 % limit
    rows = []
    for setting, quick in (("course", False), ("quick", True)):
        if quick_only and not quick:
            continue
        rows += [
            (setting, "MSRResNet-16", {"name": "srgan", "quick": quick}),
            (setting, "MSRResNet-20", {"name": "msrresnet20", "quick": quick}),
            *([(setting, "MSRResNet-26", {"name": "msrresnet26", "quick": quick})] if wide else []),
            (setting, "RRDBNet 64/23/32" if not quick else "RRDBNet 64/2/32 (quick)", {"name": "esrgan", "quick": quick}),
            (setting, "GAN step (RRDBNet+D+VGG)", {"name": "esrgan_gan", "quick": quick, "vgg_weights": "random"}),
            # swinir's config has allow_fp16=False: its AMP rows are bf16 where the card has it, else fp32
            (setting, f"SwinIR {'78/6x6' if wide else '84/4x6'}" + (" (quick: 2x2)" if quick else ""),
             {"name": "swinir", "quick": quick}),
            (setting, f"RCAN 64/{'4x6' if wide else '3x6'}" + (" (quick: 2x2)" if quick else ""),
             {"name": "rcan", "quick": quick}),
            *[(setting, _label(name, quick), {"name": name, "quick": quick}) for name in SIZED],
            # a distillation step: the student's step plus one forward of the RRDBNet teacher (random weights here)
            (setting, "MSRResNet-20 + RRDBNet teacher", {"name": "msrresnet20_kd", "quick": quick}),
        ]
    return [row for row in rows if not names or row[2]["name"] in names]


def _label(name: str, quick: bool) -> str:
    """The row label of the in-budget config ``name`` of the edition: its network at its (quick) size."""
    cfg = get_config(name, quick=quick)
    return generator_label(cfg.generator, inference_args(cfg.generator, cfg.generator_args)) + (" (quick)" if quick else "")


def teacher_for(cfg, device: torch.device) -> torch.nn.Module | None:
    """A distillation config's teacher for timing: the edition's esrgan generator (at the same quick or full
    size) with random weights, which cost what trained ones do; None for other configs."""
    if not uses_teacher(cfg):
        return None
    esrgan = get_config("esrgan", quick=cfg.quick, edition=cfg.edition)
    with torch.device(device):
        return build_generator(esrgan.generator, **esrgan.generator_args).eval().requires_grad_(False)


def _batch(cfg, ds: torch.utils.data.Dataset, k: int) -> tuple[dict, float]:
    """Batch ``k`` from the real pipeline and the seconds it took (single process)."""
    keys = IterationBatchSampler(len(ds), cfg.batch_size, cfg.seed, k, k + 1).batch(k)
    t = time.perf_counter()
    items = [ds[key] for key in keys]
    batch = torch.utils.data.default_collate(items)
    return batch, time.perf_counter() - t


def _iteration(nets, lq, gt, scaler, k: int) -> None:
    """What the trainer runs per iteration after its batch: the step and the EMA update."""
    train_step(nets, lq, gt, scaler)
    nets.ema.update(k, applied=1 - nets.skipped)


def _header(setting, label, kw, device, amp, gpu_degrade) -> tuple:
    """The row's config and its first columns (what it is, before anything is measured)."""
    name = kw.pop("name")
    cfg = get_config(name, amp=amp, gpu_degrade=gpu_degrade, **kw)
    lq_size = (cfg.gt_patch or 512) // 4
    row = {"setting": setting, "model": label, "device": device.type,
           "amp": precision_name(amp_dtype_for(cfg, device)),
           "degrade": "GPU" if cfg.gpu_degrade and device.type == "cuda" else "CPU", "batch": cfg.batch_size,
           "size": f"{lq_size}->{lq_size * 4}", "note": "", "flops": step_flops(cfg)}
    return cfg, row


def _measure(cfg, row: dict, device, repeats, limit, data_root) -> dict:
    """Fill ``row`` with the data and step times of ``cfg`` (or a note why not)."""
    teacher = teacher_for(cfg, device)
    nets = build_nets(cfg, device, teacher=teacher)
    scaler = torch.amp.GradScaler("cuda", enabled=nets.amp_dtype == torch.float16)
    precision = precision_name(nets.amp_dtype)
    lq_size = (cfg.gt_patch or 512) // 4

    # estimate from a batch-2 step at LQ 32 (convolutions scale with pixels and batch; DAT's BatchNorm wants 2)
    lq, gt = torch.rand(2, 3, 32, 32, device=device), torch.rand(2, 3, 128, 128, device=device)
    _sync(device)
    t = time.perf_counter()
    train_step(nets, lq, gt, scaler)
    _sync(device)
    estimate = (time.perf_counter() - t) * cfg.batch_size / 2 * (lq_size / 32) ** 2
    if estimate > limit:
        row["note"] = f"skipped: one step estimated at {estimate:.0f} s (> --limit {limit:.0f} s)"
        return row

    nets = build_nets(cfg, device, teacher=teacher)  # fresh nets: the estimate's step is not a training step
    ds = train_dataset(cfg, data_root / "train" / "GT", on_device=nets.gpu_degrade)
    for k in range(WARMUP_STEPS):  # degradation kernels, cuDNN autotuning, first allocations: not timed
        batch, _ = _batch(cfg, ds, k)
        _iteration(nets, *prepare_batch(batch, cfg, nets, device), scaler, k)
    data_t, step_t = [], []
    for k in range(WARMUP_STEPS, WARMUP_STEPS + repeats):
        batch, cpu_t = _batch(cfg, ds, k)
        _sync(device)
        t = time.perf_counter()
        lq, gt = prepare_batch(batch, cfg, nets, device)
        _sync(device)
        data_t.append(cpu_t + time.perf_counter() - t)
        t = time.perf_counter()
        _iteration(nets, lq, gt, scaler, k)
        _sync(device)
        step_t.append(time.perf_counter() - t)
    data_s, step_s = sorted(data_t)[len(data_t) // 2], sorted(step_t)[len(step_t) // 2]  # medians
    total = data_s + step_s
    row.update(data=data_s, step=step_s, its=1 / total, sps=cfg.batch_size / total, share=data_s / total,
               hours=HOURS_FOR * total / 3600)
    if device.type == "cuda":
        peak = peak_tflops(torch.cuda.get_device_name(device), precision)
        row["mfu"] = row["flops"] / step_s / (peak * 1e12) if peak else None
    if data_s > step_s and not nets.gpu_degrade:
        row["note"] = "data-bound in one process; num_workers DataLoader workers divide the data time"
    return row


def measured_row(setting, label, kw, device, amp, gpu_degrade, repeats, limit, data_root) -> dict:
    """One row of the table; a configuration that runs out of memory is a row that says so (at which batch),
    its memory let go before the next one (``facesr.training.memory``)."""
    cfg, row = _header(setting, label, dict(kw), device, amp, gpu_degrade)
    try:
        return _measure(cfg, row, device, repeats, limit, data_root)
    except (RuntimeError, MemoryError) as err:
        if not is_oom(err):
            raise
        release(err)
    free_memory()
    for key in ("data", "step", "its", "sps", "share", "hours", "mfu"):
        row.pop(key, None)
    row["note"] = f"out of memory at batch {cfg.batch_size}"
    return row


def _table(rows: list[dict]) -> str:
    head = ("| setting | model | device | amp | degrade | batch | LQ->GT | data s/it | step s/it | s/it | it/s "
            f"| samples/s | data wait | GFLOP/it | MFU | h per {HOURS_FOR:,} it | note |")
    lines = [head, "|" + "---|" * 17]
    for r in rows:
        gflop = f"{r['flops'] / 1e9:,.1f}"
        if "step" in r:
            mfu = f"{100 * r['mfu']:.1f} %" if r.get("mfu") is not None else "-"
            nums = (f"{r['data']:.3f} | {r['step']:.3f} | {r['data'] + r['step']:.3f} | {r['its']:.2f} | {r['sps']:.1f} "
                    f"| {100 * r['share']:.0f} % | {gflop} | {mfu} | {r['hours']:.0f}")
        else:
            nums = f"- | - | - | - | - | - | {gflop} | - | -"
        lines.append(f"| {r['setting']} | {r['model']} | {r['device']} | {r['amp']} | {r['degrade']} | {r['batch']} "
                     f"| {r['size']} | {nums} | {r['note']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- --profile
def profile(name: str, quick: bool, device: torch.device, data_root, trace: str) -> None:
    """Write a torch.profiler trace of 10 steps (batch preparation, step, EMA) of config ``name`` to ``trace``."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    cfg = get_config(name, quick=quick, vgg_weights="random") if name == "esrgan_gan" else get_config(name, quick=quick)
    nets = build_nets(cfg, device, teacher=teacher_for(cfg, device))
    scaler = torch.amp.GradScaler("cuda", enabled=nets.amp_dtype == torch.float16)
    ds = train_dataset(cfg, data_root / "train" / "GT", on_device=nets.gpu_degrade)
    batches = [_batch(cfg, ds, k)[0] for k in range(13)]  # loaded up front: the trace shows the device's work
    for k in range(3):
        _iteration(nets, *prepare_batch(batches[k], cfg, nets, device), scaler, k)
    _sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities, record_shapes=True) as prof:
        for k in range(3, 13):
            with torch.profiler.record_function(f"iteration {k}"):
                _iteration(nets, *prepare_batch(batches[k], cfg, nets, device), scaler, k)
        _sync(device)
    prof.export_chrome_trace(trace)
    print(f"trace of 10 steps of {name}{' (quick)' if quick else ''} on {device}: {trace}")
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=15))


# ----------------------------------------------------------------------------------------------- --fwbw
FWBW_BATCH, FWBW_LQ = 2, 64  # DAT's BatchNorm wants 2 samples; LQ 64 is the transformers' training patch


def fwbw_table(names: list[str], repeats: int) -> str:
    """Forward+backward seconds of each config's generator (its in-budget size) on the CPU, on one batch of
    FWBW_BATCH LQ patches of FWBW_LQ, median of ``repeats`` after one warm-up pass, beside its parameters (the
    submitted form) and the GFLOP of one training step at the config's own batch and patch."""
    from facesr.models import count_generator

    lines = [f"| config | network | parameters | GFLOP/it (course step) | fwd+bwd s ({FWBW_BATCH} x LQ {FWBW_LQ}) |",
             "|---|---|---:|---:|---:|"]
    for name in names:
        cfg = get_config(name)
        net = build_generator(cfg.generator, **cfg.generator_args).train()
        lq = torch.rand(FWBW_BATCH, 3, FWBW_LQ, FWBW_LQ)
        net(lq).mean().backward()  # first allocations and thread start-up: not timed
        times = []
        for _ in range(repeats):
            net.zero_grad(set_to_none=True)
            t = time.perf_counter()
            net(lq).mean().backward()
            times.append(time.perf_counter() - t)
        label = generator_label(cfg.generator, inference_args(cfg.generator, cfg.generator_args))
        lines.append(f"| `{name}` | {label} | {count_generator(cfg.generator, cfg.generator_args):,} "
                     f"| {step_flops(cfg) / 1e9:,.1f} | {sorted(times)[len(times) // 2]:.2f} |")
        print(lines[-1], flush=True)
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
    nets = build_nets(cfg, device, ranks, teacher=teacher_for(cfg, device))
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
    parser.add_argument("--configs", nargs="+", default=None, metavar="NAME", help="only these configs")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per row (default 3, --quick 1)")
    parser.add_argument("--limit", type=float, default=60.0, help="skip rows whose one step would take longer")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--data", default=None, help="data root for the data-time column (default: sample data)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--profile", action="store_true", help="instead: write a torch.profiler trace of 10 steps")
    parser.add_argument("--trace", default="train_step_trace.json", help="--profile: the trace file")
    parser.add_argument("--ddp", type=int, default=None, metavar="N",
                        help="instead: time one DistributedDataParallel step on N ranks against one (CPU: gloo)")
    parser.add_argument("--config", default="srgan", help="--ddp, --profile: the config (default: srgan)")
    parser.add_argument("--fwbw", action="store_true",
                        help="instead: CPU forward+backward seconds of each in-budget config's generator (--configs)")
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
    if args.fwbw:
        from facesr.config.named_configs import in_budget_names

        names = args.configs or in_budget_names()
        print(f"Forward+backward on the CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; medians of "
              f"{args.repeats or 3} passes after one warm-up\n")
        print("\n" + fwbw_table(names, args.repeats or 3))
        return
    try:
        device = resolve_device(args.device)  # CUDA when available, after the kernel (arch) check
    except FacesrError as err:
        raise SystemExit(f"error: {err}") from None
    data_root = Path(args.data) if args.data else ensure_sample_data()
    with training_numerics(device, deterministic=False):  # the trainer's: cuDNN autotuning on CUDA
        if args.profile:
            profile(args.config, args.quick, device, data_root, args.trace)
            return
        repeats = args.repeats or (1 if args.quick else 3)
        variants = [(True, True), (False, True), (True, False)] if device.type == "cuda" else [(True, False)]
        rows = []
        for setting, label, kw in _setups(args.quick, args.configs):
            for amp, gpu_degrade in variants:
                row = measured_row(setting, label, kw, device, amp, gpu_degrade, repeats, args.limit, data_root)
                print(f"  {row['setting']:6} {row['model']:28} {row['amp']:5} {row['degrade']}: "
                      + (f"step {row['step']:.3f} s, data {row['data']:.3f} s" if "step" in row else row["note"]),
                      flush=True)
                rows.append(row)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\nTraining step speed on {gpu} (torch {torch.__version__}); medians of {repeats} steps after "
          f"{WARMUP_STEPS} warm-up steps; data time = one batch through TrainDataset in one process (+ GPU "
          "degradation); step = forward + backward + Adam + EMA; hours = 300k x (data + step)\n")
    print(_table(rows))


if __name__ == "__main__":
    main()
