"""Speed and distribution of the training degradations: the course's (2022/2023) and the second order (2024/2025).

Run: ``python benchmarks/degradations.py [--quick] [--section course|jpeg|second-order|resize-memory|all]``. Prints Markdown:

1. ``course``: samples/s on one process (OpenCV and torch limited to one thread) of ``degrade`` with and
   without PNG decoding, of ``degrade_reference`` (full 41x41 filter2D, numpy rounding) and the speedup; of
   ``degrade_batch`` on the CPU at batch 8 (OpenCV and torch JPEG) and on CUDA when a GPU is present; peak
   memory. Then the distribution check of docs/course.md section 3: mean bicubic x4 PSNR over random
   degradations of scikit-image ``astronaut``, ``coffee`` and ``chelsea`` (400 samples per image, 40 with
   --quick) against the course's means; pass = within 0.25 dB.
2. ``jpeg``: the same distribution with ``degrade_batch(jpeg="torch")`` against ``jpeg="opencv"`` (same
   seeds) per image, on the CPU and on CUDA when present, and whether every mean is within 0.05 dB, the
   condition for ``TORCH_JPEG_ON_CUDA``.
3. ``second-order``: samples/s of the kit's second-order degradation (one sample as a DataLoader worker
   makes it: draw + apply on one CPU thread; a batch of 8 on the CPU; batches on CUDA when present) against
   ``second_order_reference`` below, a straightforward per-sample version written from docs/course.md
   section 4 (full 2-D convolutions as BasicSR's ``filter2D``, ``torch.unique`` for Poisson, DiffJPEG with
   tensordot); their per-sample agreement with the same params and noise seeds; and the mean / std of the
   LQ's bicubic PSNR (against the plain GT) on the three images.
4. ``resize-memory``: how much the process grows (resident memory, after the sweep) when ``resize_torch``
   resizes a 512x512 image to every size from 32 to 512 and back in each of the three modes, as the course
   degradation's draws do over a run: what the resize caches keep (the kit asks for at most 150 MB).
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import time
import tracemalloc

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from facesr.data.degradations import bicubic_psnr_samples, degrade, degrade_reference, lq_bicubic_psnr
from facesr.data.degradations_torch import TORCH_JPEG_ON_CUDA, degrade_batch
from facesr.data.jpeg_torch import CHROMA_TABLE, LUMA_TABLE
from facesr.data.second_order import SecondOrderSettings, apply_second_order, degrade_second_order
from facesr.data.second_order_draws import RESIZE_MODES, sample_second_order_params

REFERENCE_MEANS = {"astronaut": 21.78, "coffee": 24.46, "chelsea": 28.46}  # docs/course.md section 3
TOLERANCE_DB = 0.25
JPEG_TOLERANCE_DB = 0.05


def test_image(name: str) -> np.ndarray:
    """scikit-image sample resized to 512x512 with INTER_AREA, uint8 RGB."""
    from skimage import data

    return cv2.resize(getattr(data, name)(), (512, 512), interpolation=cv2.INTER_AREA)


def _as_batch(gt8: np.ndarray, batch: int, device: str = "cpu") -> torch.Tensor:
    return torch.from_numpy(gt8).permute(2, 0, 1).float().div(255)[None].repeat(batch, 1, 1, 1).to(device)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _psnrs(lqs: torch.Tensor, gt8: np.ndarray) -> np.ndarray:
    return np.array([lq_bicubic_psnr(lq.permute(1, 2, 0).cpu().numpy(), gt8) for lq in lqs])


# ----------------------------------------------------------------------------------------- course degradation


def _decode_png(png: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255


def time_numpy(gt8: np.ndarray, n: int) -> dict[str, tuple[float, float]]:
    """(CPU seconds, wall seconds) per sample over ``n`` random degradations.

    The variants run back to back on each sample with the same generator state (so the same parameters),
    which keeps machine-load drift from favouring one; CPU time is the fair measure on a shared machine.
    """
    png = cv2.imencode(".png", cv2.cvtColor(gt8, cv2.COLOR_RGB2BGR))[1]
    gt = gt8.astype(np.float32) / 255
    variants = {
        "degrade": lambda rng: degrade(gt, rng),
        "degrade + PNG decode": lambda rng: degrade(_decode_png(png), rng),
        "degrade_reference": lambda rng: degrade_reference(gt, rng),
    }
    cpu, wall = dict.fromkeys(variants, 0.0), dict.fromkeys(variants, 0.0)
    rng = np.random.default_rng(0)
    degrade(gt, np.random.default_rng(1))  # warm-up (FFT setup, lazy imports)
    for _ in range(n):
        state = rng.bit_generator.state
        for name, fn in variants.items():
            rng.bit_generator.state = state
            c0, w0 = time.process_time(), time.perf_counter()
            fn(rng)
            cpu[name] += time.process_time() - c0
            wall[name] += time.perf_counter() - w0
    return {name: (cpu[name] / n, wall[name] / n) for name in variants}


def peak_numpy_bytes(gt8: np.ndarray) -> int:
    gt = gt8.astype(np.float32) / 255
    tracemalloc.start()
    for seed in range(4):
        degrade(gt, np.random.default_rng(seed))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def time_batch(gt8: np.ndarray, device: str, batch: int, iters: int, jpeg: str | None = None) -> tuple[float, float, int | None]:
    """(CPU seconds, wall seconds) per sample of degrade_batch and peak CUDA bytes (None on the CPU)."""
    x = _as_batch(gt8, batch, device)
    gen = torch.Generator(device=device).manual_seed(0)
    degrade_batch(x, gen, jpeg=jpeg)  # warm-up: cuFFT plans, resize matrix cache
    _sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(iters):
        degrade_batch(x, gen, jpeg=jpeg)
    _sync(device)
    cpu, wall = (time.process_time() - c0) / (iters * batch), (time.perf_counter() - w0) / (iters * batch)
    return cpu, wall, (torch.cuda.max_memory_allocated() if device == "cuda" else None)


def batch_psnrs(gt8: np.ndarray, n: int, seed: int, device: str, jpeg: str | None = None) -> np.ndarray:
    """Bicubic PSNRs of n degrade_batch LQs (batches of 8 from one generator seeded with ``seed``)."""
    x = _as_batch(gt8, 8, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    lqs = torch.cat([degrade_batch(x, gen, jpeg=jpeg).cpu() for _ in range(-(-n // 8))])[:n]
    return _psnrs(lqs, gt8)


def course_section(quick: bool, n_dist: int, cuda: bool) -> None:
    gt8 = test_image("astronaut")
    per = time_numpy(gt8, n=30 if quick else 200)
    rows = [(name, cpu, wall) for name, (cpu, wall) in per.items()]
    for jpeg in ("opencv", "torch"):
        cpu_b, wall_b, _ = time_batch(gt8, "cpu", 8, 1 if quick else 3, jpeg)
        rows.append((f"degrade_batch, CPU, batch 8, {jpeg} JPEG", cpu_b, wall_b))
    gpu_mem = None
    if cuda:
        for jpeg, b in itertools.product(("torch", "opencv"), (8, 32)):
            _, wall_g, mem = time_batch(gt8, "cuda", b, 3 if quick else 10, jpeg)
            gpu_mem = mem if (jpeg, b) == ("torch", 32) else gpu_mem
            rows.append((f"degrade_batch, CUDA, batch {b}, {jpeg} JPEG", None, wall_g))
    print("## Course degradation speed (one process, 1 thread, astronaut 512x512)\n")
    print("| variant | samples/s (CPU time) | samples/s (wall) | ms/sample (CPU time) |\n|---|---:|---:|---:|")
    for name, cpu, wall in rows:
        cpu_cells = f"{1 / cpu:.1f} | {1 / wall:.1f} | {cpu * 1e3:.1f}" if cpu else f"- | {1 / wall:.1f} | -"
        print(f"| {name} | {cpu_cells} |")
    speed_cpu = per["degrade_reference"][0] / per["degrade"][0]
    speed_wall = per["degrade_reference"][1] / per["degrade"][1]
    print(f"\nSpeedup of degrade over degrade_reference: {speed_cpu:.2f}x CPU time, {speed_wall:.2f}x wall")
    print(f"Peak traced numpy memory of one degrade call: {peak_numpy_bytes(gt8) / 2**20:.1f} MiB; "
          f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")  # fmt: skip
    if cuda:
        print(f"Peak CUDA memory (degrade_batch, batch 32): {gpu_mem / 2**20:.0f} MiB on {torch.cuda.get_device_name()}")
    else:
        print("No CUDA device: GPU rows skipped.")

    print(f"\n## Course degradation: bicubic x4 PSNR over random degradations ({n_dist} samples per image)\n")
    methods = [("degrade", None, None), ("degrade_batch (CPU)", "cpu", None)]
    if cuda:
        methods += [("degrade_batch (CUDA, torch JPEG)", "cuda", "torch"), ("degrade_batch (CUDA, OpenCV JPEG)", "cuda", "opencv")]
    print("| image | reference mean | " + " | ".join(f"{m} mean (std)" for m, _, _ in methods) + " | max abs diff | pass |")
    print("|---|---:|" + "---:|" * len(methods) + "---:|---|")
    # 0.25 dB is the bound at 400 samples; with fewer (--quick) the test suite's looser 0.8 dB applies.
    tolerance = TOLERANCE_DB if n_dist >= 400 else 0.8
    all_ok = True
    for image, ref in REFERENCE_MEANS.items():
        im = test_image(image)
        results = [
            bicubic_psnr_samples(im, n_dist, np.random.default_rng(0)) if dev is None else batch_psnrs(im, n_dist, 0, dev, jpeg)
            for _, dev, jpeg in methods
        ]
        worst = max(abs(r.mean() - ref) for r in results)
        ok = worst <= tolerance
        all_ok &= ok
        cells = " | ".join(f"{r.mean():.2f} ({r.std():.2f})" for r in results)
        print(f"| {image} | {ref:.2f} | {cells} | {worst:.2f} | {'yes' if ok else 'NO'} |")
    note = f" (fewer than 400 samples: the {TOLERANCE_DB} dB bound applies at 400)" if n_dist < 400 else ""
    print(f"\nAll within {tolerance} dB of the course means: {'yes' if all_ok else 'no'}{note}")


def jpeg_section(n_dist: int, cuda: bool) -> None:
    """Torch JPEG (libjpeg's conventions) against OpenCV's inside degrade_batch, same seeds."""
    print(f"\n## Course degradation with the torch JPEG vs OpenCV's ({n_dist} samples per image, same seeds)\n")
    devices = ["cpu"] + (["cuda"] if cuda else [])
    print("| image | device | OpenCV JPEG mean (std) | torch JPEG mean (std) | mean diff (dB) | identical LQs |")
    print("|---|---|---:|---:|---:|---:|")
    worst = 0.0
    for image, device in itertools.product(REFERENCE_MEANS, devices):
        im = test_image(image)
        x = _as_batch(im, 8, device)
        lqs = {}
        for jpeg in ("opencv", "torch"):
            gen = torch.Generator(device=device).manual_seed(0)
            lqs[jpeg] = torch.cat([degrade_batch(x, gen, jpeg=jpeg).cpu() for _ in range(-(-n_dist // 8))])[:n_dist]
        a, b = _psnrs(lqs["opencv"], im), _psnrs(lqs["torch"], im)
        same = sum(torch.equal(p, q) for p, q in zip(lqs["opencv"], lqs["torch"], strict=True))
        worst = max(worst, abs(a.mean() - b.mean()))
        print(f"| {image} | {device} | {a.mean():.3f} ({a.std():.2f}) | {b.mean():.3f} ({b.std():.2f}) | "
              f"{b.mean() - a.mean():+.3f} | {same}/{n_dist} |")  # fmt: skip
    ok = worst <= JPEG_TOLERANCE_DB
    print(f"\nLargest mean difference {worst:.3f} dB: {'within' if ok else 'NOT within'} {JPEG_TOLERANCE_DB} dB, so the torch "
          f"JPEG {'may' if ok else 'must not'} be CUDA's default; TORCH_JPEG_ON_CUDA = {TORCH_JPEG_ON_CUDA}"
          f"{'' if ok == TORCH_JPEG_ON_CUDA else ' (DISAGREES with this measurement)'}")  # fmt: skip


# ----------------------------------------------------------------------------------------- resize caches

RESIZE_MEMORY_BOUND_MB = 150


def _resident_bytes() -> int:
    """The process's resident memory now (Linux /proc; elsewhere its peak, which only grows)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def resize_memory_growth(sizes: range = range(32, 513), device: str = "cpu") -> float:
    """MB the process keeps after ``resize_torch`` took a 512x512 image to every size in ``sizes`` and back,
    in each of the three modes (on the CPU its resident memory; on CUDA the device memory allocated)."""
    import gc

    from facesr.data.opencv_resize import resize_torch

    img = torch.rand(3, 512, 512, device=device)
    for mode in ("bilinear", "area", "bicubic"):  # torch's own first-call allocations are not the caches'
        resize_torch(resize_torch(img, (300, 300), mode), (512, 512), mode)
    gc.collect()
    before = torch.cuda.memory_allocated() if device == "cuda" else _resident_bytes()
    for mode in ("bilinear", "area", "bicubic"):
        for size in sizes:
            resize_torch(resize_torch(img, (size, size), mode), (512, 512), mode)
    gc.collect()
    after = torch.cuda.memory_allocated() if device == "cuda" else _resident_bytes()
    return (after - before) / 1e6


def resize_memory_section(cuda: bool) -> None:
    print("\n## Resize caches: what the process keeps after every size 32-512 and back, three modes\n")
    print("| device | grows by (MB) | sweep time (s) | within the kit's bound |\n|---|---:|---:|---|")
    for device in ["cpu"] + (["cuda"] if cuda else []):
        t = time.perf_counter()
        grown = resize_memory_growth(device=device)
        ok = "yes" if grown <= RESIZE_MEMORY_BOUND_MB else "NO"
        print(f"| {device} | {grown:.0f} | {time.perf_counter() - t:.1f} | {ok} (<= {RESIZE_MEMORY_BOUND_MB} MB) |")


# ----------------------------------------------------------------------------------------- second order


def _filter2d_reference(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """BasicSR's filter2D for one sample: reflect padding, one full 2-D convolution per channel."""
    k = kernel.shape[-1]
    c = img.shape[1]
    padded = F.pad(img, (k // 2,) * 4, mode="reflect")
    return F.conv2d(padded, kernel.to(img).view(1, 1, k, k).repeat(c, 1, 1, 1), groups=c)


def _diffjpeg_reference(img: torch.Tensor, quality: float) -> torch.Tensor:
    """DiffJPEG(differentiable=False) on one (1, 3, h, w) image: tensordot DCT on 8x8 blocks, transposed tables."""
    _, _, h, w = img.shape
    factor = (5000.0 / quality if quality < 50 else 200.0 - 2 * quality) / 100.0
    x = F.pad(img, (0, -w % 16, 0, -h % 16)).permute(0, 2, 3, 1) * 255
    ycc = torch.tensordot(x, torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                                           [0.5, -0.418688, -0.081312]], device=img.device).T, dims=1)  # fmt: skip
    ycc = ycc + torch.tensor([0.0, 128.0, 128.0], device=img.device)
    planes = [ycc[..., 0]] + [F.avg_pool2d(ycc[..., c][:, None], 2)[:, 0] for c in (1, 2)]
    fwd, inv = np.zeros((8, 8, 8, 8), np.float32), np.zeros((8, 8, 8, 8), np.float32)
    for a, b, u, v in itertools.product(range(8), repeat=4):
        fwd[a, b, u, v] = np.cos((2 * a + 1) * u * np.pi / 16) * np.cos((2 * b + 1) * v * np.pi / 16)
        inv[a, b, u, v] = np.cos((2 * u + 1) * a * np.pi / 16) * np.cos((2 * v + 1) * b * np.pi / 16)
    alpha = np.outer(*[np.array([1 / np.sqrt(2)] + [1] * 7)] * 2).astype(np.float32)
    fwd_t, inv_t, alpha_t = (torch.from_numpy(a).to(img.device) for a in (fwd, inv, alpha))
    rec = []
    for plane, table in zip(planes, (LUMA_TABLE, CHROMA_TABLE, CHROMA_TABLE), strict=True):
        hh, ww = plane.shape[1:]
        blocks = plane.view(1, hh // 8, 8, -1, 8).permute(0, 1, 3, 2, 4).reshape(1, -1, 8, 8)
        coef = alpha_t * 0.25 * torch.tensordot(blocks - 128, fwd_t, dims=2)
        step = torch.from_numpy(table.T.astype(np.float32)).to(img.device) * factor
        coef = torch.round(coef / step) * step
        out = 0.25 * torch.tensordot(coef * alpha_t, inv_t, dims=2) + 128
        rec.append(out.view(1, hh // 8, ww // 8, 8, 8).permute(0, 1, 3, 2, 4).reshape(1, hh, ww))
    y, cb, cr = rec[0], *(c.repeat_interleave(2, 1).repeat_interleave(2, 2) - 128 for c in rec[1:])
    rgb = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return (rgb.clamp(0, 255) / 255)[..., :h, :w]


def _noise_reference(img: torch.Tensor, p: dict, stage: int, gen: torch.Generator) -> torch.Tensor:
    gray = bool(p[f"noise{stage}_gray"])
    if bool(p[f"noise{stage}_gaussian"]):
        shape = (1, 1, *img.shape[2:]) if gray else img.shape
        noise = torch.randn(shape, generator=gen, device=img.device) * float(p[f"noise{stage}_sigma"]) / 255
    else:
        base = 0.2989 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3] if gray else img
        base = torch.clamp((base * 255).round(), 0, 255) / 255
        vals = 2 ** np.ceil(np.log2(len(torch.unique(base))))
        noise = (torch.poisson(base * vals, generator=gen) / vals - base) * float(p[f"noise{stage}_scale"])
    return torch.clamp(img + noise, 0, 1)


def second_order_reference(gt: torch.Tensor, p: dict, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The second-order degradation of one (3, H, W) GT, written out from docs/course.md section 4 -> (lq, target).

    Takes one sample's params (``sample_second_order_params``) and draws its noise from ``gen`` in the same
    order and shapes as the kit, so both give the same LQ up to float error.
    """
    with torch.no_grad():
        h, w = gt.shape[1:]
        g = cv2.getGaussianKernel(51, 0)
        usm = torch.from_numpy(np.outer(g, g)).float()
        x = gt[None]
        residual = x - _filter2d_reference(x, usm)
        soft = _filter2d_reference((residual.abs() * 255 > 10).float(), usm)
        x = soft * torch.clamp(x + 0.5 * residual, 0, 1) + (1 - soft) * x
        target = x
        out = _filter2d_reference(x, p["kernel1"])
        out = F.interpolate(out, scale_factor=float(p["resize1_scale"]), mode=RESIZE_MODES[int(p["resize1_mode"])])
        out = _noise_reference(out, p, 1, gen)
        out = _diffjpeg_reference(torch.clamp(out, 0, 1), float(p["jpeg1_quality"]))
        if bool(p["blur2"]):
            out = _filter2d_reference(out, p["kernel2"])
        scale2 = float(p["resize2_scale"])
        out = F.interpolate(out, size=(int(h / 4 * scale2), int(w / 4 * scale2)), mode=RESIZE_MODES[int(p["resize2_mode"])])
        out = _noise_reference(out, p, 2, gen)
        final_mode = RESIZE_MODES[int(p["final_mode"])]
        if bool(p["final_sinc_first"]):
            out = _filter2d_reference(F.interpolate(out, size=(h // 4, w // 4), mode=final_mode), p["sinc_kernel"])
            out = _diffjpeg_reference(torch.clamp(out, 0, 1), float(p["jpeg2_quality"]))
        else:
            out = _diffjpeg_reference(torch.clamp(out, 0, 1), float(p["jpeg2_quality"]))
            out = _filter2d_reference(F.interpolate(out, size=(h // 4, w // 4), mode=final_mode), p["sinc_kernel"])
        return torch.clamp((out * 255).round(), 0, 255)[0] / 255, target[0]


def _timed(fn, device: str = "cpu") -> tuple[float, float]:
    _sync(device)
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    _sync(device)
    return time.process_time() - c0, time.perf_counter() - w0


def second_order_section(quick: bool, n_dist: int, cuda: bool) -> None:
    gt8 = test_image("astronaut")
    gt = _as_batch(gt8, 1)
    n_kit, n_ref = (8, 2) if quick else (40, 6)
    draws = [sample_second_order_params(np.random.default_rng(i)) for i in range(max(n_kit, n_ref))]
    degrade_second_order(gt, [torch.Generator().manual_seed(0)])  # warm-up
    rows = []
    kit = [_timed(lambda i=i: apply_second_order(gt, draws[i], [torch.Generator().manual_seed(i)]))
           for i in range(n_kit)]  # fmt: skip
    draw = _timed(lambda: [sample_second_order_params(np.random.default_rng(i)) for i in range(n_kit)])
    rows.append(("kit: draw + apply_second_order, one sample (a DataLoader worker)",
                 np.mean([c for c, _ in kit]) + draw[0] / n_kit, np.mean([w for _, w in kit]) + draw[1] / n_kit))  # fmt: skip
    ref = [_timed(lambda i=i: second_order_reference(gt[0], draws[i], torch.Generator().manual_seed(i))) for i in range(n_ref)]
    rows.append(("straightforward (second_order_reference), one sample", np.mean([c for c, _ in ref]),
                 np.mean([w for _, w in ref])))  # fmt: skip
    batch8 = torch.utils.data.default_collate(draws[:8]) if len(draws) >= 8 else None
    if batch8 is not None:
        x8 = gt.repeat(8, 1, 1, 1)
        c, w = _timed(lambda: apply_second_order(x8, batch8, [torch.Generator().manual_seed(i) for i in range(8)]))
        rows.append(("kit: apply_second_order, CPU batch 8", c / 8, w / 8))
    if cuda:
        for b in (8, 32):
            batch = torch.utils.data.default_collate([sample_second_order_params(np.random.default_rng(i)) for i in range(b)])
            xb = gt.repeat(b, 1, 1, 1).cuda()
            gens = [torch.Generator(device="cuda").manual_seed(i) for i in range(b)]
            apply_second_order(xb, batch, gens)  # warm-up: cuDNN, caches
            iters = 3 if quick else 10
            _, w = _timed(lambda xb=xb, batch=batch, gens=gens, n=iters: [apply_second_order(xb, batch, gens) for _ in range(n)],
                          "cuda")  # fmt: skip
            rows.append((f"kit: apply_second_order, CUDA batch {b}", None, w / (iters * b)))
        gcuda = gt[0].cuda()
        second_order_reference(gcuda, draws[0], torch.Generator(device="cuda").manual_seed(0))
        _, w = _timed(lambda: [second_order_reference(gcuda, draws[i], torch.Generator(device="cuda").manual_seed(i))
                               for i in range(8)], "cuda")  # fmt: skip
        rows.append(("straightforward, CUDA, one sample at a time", None, w / 8))
    print("\n## Second-order degradation speed (one process, 1 thread, astronaut 512x512)\n")
    print("| variant | samples/s (CPU time) | samples/s (wall) | ms/sample (CPU time) |\n|---|---:|---:|---:|")
    for name, cpu, wall in rows:
        cells = f"{1 / cpu:.2f} | {1 / wall:.2f} | {cpu * 1e3:.0f}" if cpu else f"- | {1 / wall:.1f} | -"
        print(f"| {name} | {cells} |")
    print(f"\nSpeedup of the kit (one sample, draw included) over the straightforward version: {rows[1][1] / rows[0][1]:.1f}x "
          f"CPU time ({n_kit} kit samples, {n_ref} straightforward)")  # fmt: skip
    if not cuda:
        print("No CUDA device: GPU rows skipped.")

    diffs = []
    for i in range(n_ref):
        lq_kit = apply_second_order(gt, draws[i], [torch.Generator().manual_seed(100 + i)])[0][0]
        lq_ref = second_order_reference(gt[0], draws[i], torch.Generator().manual_seed(100 + i))[0]
        diffs.append(((lq_kit - lq_ref).abs() * 255).round())
    print(f"\nSame params and noise seeds, kit vs straightforward ({n_ref} samples): mean |difference| "
          f"{np.mean([float(d.mean()) for d in diffs]):.4f} levels of 255, pixels that differ "
          f"{np.mean([float((d > 0).float().mean()) for d in diffs]) * 100:.2f} %, largest {max(float(d.max()) for d in diffs):.0f}")  # fmt: skip

    print(f"\n## Second-order degradation: bicubic x4 PSNR of the LQ against the plain GT ({n_dist} samples per image)\n")
    print("| image | kit mean (std) | straightforward mean (std), same params and seeds |\n|---|---:|---:|")
    n_ref_dist = max(4, n_dist // 20)
    for image in REFERENCE_MEANS:
        im = test_image(image)
        x = _as_batch(im, 8)
        lqs = []
        for start in range(0, n_dist, 8):
            size = min(8, n_dist - start)
            lqs.append(degrade_second_order(x[:size], [torch.Generator().manual_seed(start + i) for i in range(size)])[0])
        kit_psnr = _psnrs(torch.cat(lqs), im)
        ref_lqs = []
        for i in range(n_ref_dist):
            gen = torch.Generator().manual_seed(i)
            seed = int(torch.randint(0, 2**62, (1,), generator=gen))  # as degrade_second_order seeds its draw
            ref_lqs.append(second_order_reference(x[0], sample_second_order_params(np.random.default_rng(seed)), gen)[0])
        ref_psnr = _psnrs(torch.stack(ref_lqs), im)
        print(f"| {image} | {kit_psnr.mean():.2f} ({kit_psnr.std():.2f}) | {ref_psnr.mean():.2f} ({ref_psnr.std():.2f}), "
              f"{n_ref_dist} samples; kit on the same {n_ref_dist}: {kit_psnr[:n_ref_dist].mean():.2f} |")  # fmt: skip
    settings = SecondOrderSettings()
    print(f"\nSettings: the course's (gt_usm={settings.gt_usm}); the LQ is compared with the plain GT, as val and test are.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples; each section finishes in about a minute")
    parser.add_argument("--samples", type=int, default=None, help="distribution samples per image")
    parser.add_argument("--section", choices=("course", "jpeg", "second-order", "resize-memory", "all"),
                        default="all")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    n_dist = args.samples or (40 if args.quick else 400)
    cuda = torch.cuda.is_available()
    if args.section in ("course", "all"):
        course_section(args.quick, n_dist, cuda)
    if args.section in ("jpeg", "all"):
        jpeg_section(n_dist, cuda)
    if args.section in ("second-order", "all"):
        second_order_section(args.quick, n_dist, cuda)
    if args.section in ("resize-memory", "all"):
        resize_memory_section(cuda)
    return 0


if __name__ == "__main__":
    sys.exit(main())
