"""Peak GPU memory of one training step per config, measured on the CPU at a small size and scaled up.

What is measured: the bytes autograd keeps for backward (``torch.autograd.graph.saved_tensors_hooks``, each
storage counted once, parameters left out) in one forward + loss of the trainer's own nets
(``facesr.training.step.build_nets``), at batch 1 on two LQ sizes, in fp32 and under the CPU's bf16 autocast.
That stands in for CUDA's fp16/bf16 autocast: the same for the CNNs (convolutions in half precision, the loss in
fp32); for SwinIR a lower bound, as CUDA also keeps softmax and layer norms in fp32 (a T4 runs it in fp32).

How it is scaled: activations grow with pixels x batch, so the two sizes give ``bytes = a + b * pixels``
(``a`` covers size-independent saved tensors such as bf16 copies of the weights) and the config's batch and
LQ size are read off that line. The estimated peak adds the weights, their gradients, Adam's two moments and
the EMA copy (5 x 4 bytes per parameter), plus the largest saved tensor twice over for the transient
gradients of the backward pass. Not in it: the CUDA context and cuDNN workspaces (about 0.5-1 GiB), the
GPU degradation of the batch before the step (under 0.3 GiB at batch 8), allocator fragmentation.

"fits T4" uses the precision the config gets on a T4 (no bf16 there): fp16 autocast, sized like bf16, where
``allow_fp16`` is on, fp32 where it is off (SwinIR), and asks for at most 12 GiB of the T4's ~14.6 GiB.

Each edition sizes its configs to its own limit (``--edition``; default ``FACESR_EDITION``, else 2022); the
default configs are its baseline and its in-budget first stages.

Usage: python benchmarks/train_memory.py [--edition 2024] [--configs swinir rcan ...] [--sizes 32 48]
"""

from __future__ import annotations

import argparse
import contextlib

import torch

from facesr.config import get_config
from facesr.config.named_configs import REPORT_CONFIGS, config_names
from facesr.editions import get_edition
from facesr.models import count_parameters
from facesr.training.step import Nets, build_nets

T4_BUDGET_GIB = 12.0
GIB = 2.0**30


def default_configs(edition: int) -> list[str]:
    """The edition's baseline (srgan) and its in-budget first stages (no ``_l2`` finish or ``_kd`` distillation:
    the same net; a teacher adds its weights and one forward without saved activations)."""
    return ["srgan"] + [n for n in config_names(edition) if n not in REPORT_CONFIGS and not n.endswith(("_l2", "_kd"))]


def saved_bytes(nets: Nets, lq_size: int, amp: bool) -> tuple[int, int]:
    """(bytes saved for backward, largest saved storage) of one batch-1 step of ``nets`` at ``lq_size``."""
    net = nets.net_g.train()
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:  # saved tensors stay alive until backward: pointers are unique
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    lq = torch.rand(1, 3, lq_size, lq_size)  # (1, 3, h, w) -> sr (1, 3, 4h, 4w)
    gt = torch.rand(1, 3, 4 * lq_size, 4 * lq_size)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast:
        loss = nets.terms["l_pix"][1](net(lq).float(), gt)
    loss.backward()  # the step as the trainer runs it; also checks the graph is complete
    return sum(storages.values()), max(storages.values())


def estimate(name: str, sizes: tuple[int, int], edition: int) -> dict:
    """Measured and scaled memory of config ``name`` of ``edition`` at its batch and LQ size."""
    cfg = get_config(name, quick=False, edition=edition, amp=False)
    lq = (cfg.gt_patch or 512) // 4
    pixels = cfg.batch_size * lq * lq
    torch.manual_seed(0)
    nets = build_nets(cfg, torch.device("cpu"))
    n = count_parameters(nets.net_g)
    row = {"config": name, "params": n, "batch": cfg.batch_size, "lq": lq, "allow_fp16": cfg.allow_fp16}
    for kind, amp in (("fp32", False), ("bf16", True)):
        (b0, m0), (b1, m1) = (saved_bytes(nets, s, amp) for s in sizes)
        slope = (b1 - b0) / (sizes[1] ** 2 - sizes[0] ** 2)  # bytes per LQ pixel (batch 1)
        saved = b0 + slope * (pixels - sizes[0] ** 2)
        largest = max(m0, m1) * pixels / sizes[1] ** 2
        row[f"measured_{kind}"] = b1
        row[kind] = (saved + 2 * largest + 5 * 4 * n) / GIB
    t4 = row["bf16"] if cfg.allow_fp16 else row["fp32"]
    dtype = "fp16" if cfg.allow_fp16 else "fp32"
    row["t4"] = f"{'yes' if t4 <= T4_BUDGET_GIB else 'NO'} ({dtype} {t4:.1f} GiB)"
    return row


def table(rows: list[dict], size: int) -> str:
    """Markdown table of :func:`estimate` rows; ``size`` is the LQ side of the measured columns."""
    lines = [
        f"| config | params | batch | LQ | saved at 1x{size}x{size} fp32 / bf16 (MiB) | est. peak fp32 GiB "
        f"| est. peak bf16/fp16 GiB | fits 16 GB T4 (<= {T4_BUDGET_GIB:.0f} GiB) |",
        "|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['params']:,} | {r['batch']} | {r['lq']}x{r['lq']} "
            f"| {r['measured_fp32'] / 2**20:.0f} / {r['measured_bf16'] / 2**20:.0f} | {r['fp32']:.1f} "
            f"| {r['bf16']:.1f} | {r['t4']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edition", default=None, metavar="YEAR",
                        help="2022, 2023, 2024 or 2025 (default: FACESR_EDITION, else 2022)")
    parser.add_argument("--configs", nargs="+", default=None,
                        help="named configs (default: the edition's srgan and in-budget configs)")
    parser.add_argument("--sizes", nargs=2, type=int, default=(32, 48), metavar=("LQ1", "LQ2"),
                        help="the two LQ sides measured at batch 1 (multiples of SwinIR's window, 8)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    edition = get_edition(args.edition).year
    rows = []
    for name in args.configs or default_configs(edition):
        rows.append(estimate(name, tuple(args.sizes), edition))
        print(f"  {name}: fp32 {rows[-1]['fp32']:.2f} GiB, bf16 {rows[-1]['bf16']:.2f} GiB", flush=True)
    print(f"\nPeak memory of one training step (forward + backward + Adam + EMA) of the {edition} configs, from "
          f"saved-for-backward bytes "
          f"measured on the CPU at batch 1, LQ {args.sizes[0]} and {args.sizes[1]}, scaled linearly in "
          f"pixels x batch (torch {torch.__version__})\n")
    print(table(rows, args.sizes[1]))


if __name__ == "__main__":
    main()
