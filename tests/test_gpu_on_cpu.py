"""The bugs a GPU would show, proven without one (each section is a finding of the GPU audit): optimizer state
in another layout on resume, the resize caches' growth, what an out-of-memory error keeps alive (training,
plan_run, predict, evaluate), host-to-device copies in an iteration (logged on the meta device), TF32 in
scoring, plan_run's numerics and the step benchmark. The checks that need a GPU are in tests/test_cuda.py.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import shutil
import types
import weakref
from pathlib import Path

import pytest
import torch
import torch.utils._pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from facesr.config import get_config
from facesr.training import train
from facesr.weights.checkpoints import load_checkpoint, save_checkpoint


def _tiny_cfg(**kw: object):
    base = {"generator_args": {"mid_channels": 16, "num_blocks": 2}, "gt_patch": 64, "batch_size": 2,
            "log_every": 2, "checkpoint_every": 2, "val_every": 1000, "iters": 6, "num_workers": 0}
    return get_config("srgan", quick=True, **{**base, **kw})


@pytest.fixture(scope="module")
def small_root(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 training faces, 1 val pair and 1 test LQ of the sample data: a run starts and validates quickly."""
    from facesr.data.sample import copy_data_subset

    counts = {"train/GT": 4, "val/LQ": 1, "val/GT": 1, "test/LQ": 1}
    return copy_data_subset(sample_root, tmp_path_factory.mktemp("small") / "data", counts)


# ------------------------------------------------------------------------ 1. optimizer state layout on resume
def test_a_checkpoint_with_channels_last_moments_resumes_bit_identical(small_root: Path, tmp_path: Path,
                                                                       assert_same_run) -> None:
    """What a CUDA run's checkpoint holds (Adam's moments channels_last, as its parameters) resumed where the
    parameters are contiguous: the same weights as resuming the same checkpoint with contiguous moments."""
    cfg = _tiny_cfg()
    whole = train(cfg, data_root=small_root, runs_dir=tmp_path / "whole")
    ckpt = load_checkpoint(whole / "iter_000004.pt")
    for folder in ("plain", "channels_last"):
        (tmp_path / folder / cfg.name).mkdir(parents=True)
    shutil.copy(whole / "iter_000004.pt", tmp_path / "plain" / cfg.name / "latest.pt")
    moved = 0
    for state in ckpt["optimizer_g"]["state"].values():
        for key in ("exp_avg", "exp_avg_sq"):
            if state[key].ndim == 4:
                state[key] = state[key].contiguous(memory_format=torch.channels_last)
                moved += 1
    assert moved and not all(s["exp_avg"].is_contiguous() for s in ckpt["optimizer_g"]["state"].values())
    save_checkpoint(ckpt, tmp_path / "channels_last" / cfg.name / "latest.pt")
    assert not all(s["exp_avg"].is_contiguous() for s in load_checkpoint(
        tmp_path / "channels_last" / cfg.name / "latest.pt")["optimizer_g"]["state"].values())  # torch.save kept it

    plain = train(cfg, data_root=small_root, runs_dir=tmp_path / "plain")
    channels_last = train(cfg, data_root=small_root, runs_dir=tmp_path / "channels_last")
    b = assert_same_run(plain, channels_last)
    assert b["iter"] == 6
    reference = load_checkpoint(whole / "latest.pt")  # and both end where the uninterrupted run does
    assert all(torch.equal(reference["net_g"][k], v) for k, v in b["net_g"].items())


def test_restored_state_takes_each_parameters_layout_dtype_and_device() -> None:
    from facesr.training.run_folder import load_optimizer
    from facesr.training.step import build_nets

    nets = build_nets(_tiny_cfg(), torch.device("cpu"))
    conv = nets.net_g.conv_first.weight
    nets.net_g.to(memory_format=torch.channels_last)  # the parameters as a CUDA run has them
    assert not conv.is_contiguous()
    params = nets.optimizer_g.param_groups[0]["params"]
    older = torch.optim.Adam(params, lr=2e-4)
    for p in params:
        p.grad = torch.ones_like(p)
    older.step()
    saved = older.state_dict()
    for state in saved["state"].values():  # saved from contiguous parameters, in double precision
        state["exp_avg"] = state["exp_avg"].contiguous().double()
    load_optimizer(nets.optimizer_g, saved)
    for p in params:
        for key in ("exp_avg", "exp_avg_sq"):
            value = nets.optimizer_g.state[p][key]
            assert value.stride() == p.stride() and value.dtype == p.dtype and value.device == p.device, key
    assert nets.optimizer_g.param_groups[0]["fused"]


# ------------------------------------------------------------------------------------------- 2. resize caches
def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident size from /proc")
def test_the_resize_tables_of_every_size_stay_small() -> None:
    """Every width from 512 to 32-512 and back in the three modes (the tables the course degradation's draws
    need over a run; the images one row high, so the sweep costs the tables only): the process keeps far less
    than the 1.4 GB the dense cached matrices took. benchmarks/degradations.py --section resize-memory
    prints the figure for 512x512 images."""
    from facesr.data.opencv_resize import resize_taps, resize_torch

    img = torch.rand(3, 1, 512)
    gc.collect()
    before = _resident_mb()
    for mode in ("bilinear", "area", "bicubic"):
        for size in range(32, 513):
            resize_torch(resize_torch(img, (1, size), mode), (1, 512), mode)
            resize_taps(512, size, mode), resize_taps(size, 512, mode)  # the tables of resize_matrix too
    gc.collect()
    grown = _resident_mb() - before
    assert grown < 150, f"the resize sweep kept {grown:.0f} MB"
    idx, weight = resize_taps(512, 32, "area")  # the largest table: 18 taps of 32 outputs
    assert idx.shape == weight.shape == (18, 32)


# ------------------------------------------------------------------------------------------- 3. out of memory
def _oom_step(monkeypatch: pytest.MonkeyPatch, module: object, refs: list) -> None:
    """``module.train_step`` becomes a step that makes a tensor, then runs out of memory; ``refs`` receives weak
    references to that tensor and to the run's nets."""
    def step(nets, lq, gt, scaler):
        activation = torch.ones(64, 64) * lq.mean()  # what a step's forward pass leaves for its backward
        refs.extend(weakref.ref(x) for x in (activation, nets.net_g, nets.net_g_ema, nets.optimizer_g))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(module, "train_step", step)


def _assert_let_go(refs: list, err: BaseException) -> None:
    gc.collect()
    assert refs and all(r() is None for r in refs), [r() is None for r in refs]
    assert err.__context__ is None and err.__cause__ is None
    assert "\n" not in str(err) and "out of memory" in str(err)


def test_an_out_of_memory_error_in_training_holds_nothing_of_the_run(small_root: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import facesr.training.loop as loop
    from facesr.training.memory import OutOfMemory

    refs: list = []
    _oom_step(monkeypatch, loop, refs)
    with pytest.raises(OutOfMemory, match="out of memory at iteration 1 .*--set batch_size=1") as info:
        train(_tiny_cfg(iters=2), data_root=small_root, runs_dir=tmp_path)
    held = info.value  # the error still alive in a variable, as a notebook's sys.last_value keeps it
    _assert_let_go(refs, held)


def test_the_step_memory_estimate_scales_with_pixels_and_precision() -> None:
    """The estimate behind the line's batch size (facesr.training.memory.step_memory), counted on meta."""
    from facesr.training.memory import HEADROOM, step_memory

    small, large = step_memory(_tiny_cfg(gt_patch=64)), step_memory(_tiny_cfg(gt_patch=128))
    assert small.fixed == large.fixed == 20 * 31_043  # weights, gradients, Adam's moments, EMA: 20 B per parameter
    assert 3.9 < large.per_sample / small.per_sample <= 4.0  # activations grow with the pixels
    half = step_memory(_tiny_cfg(gt_patch=128), torch.bfloat16)
    assert half.fixed == large.fixed and half.per_sample == large.per_sample // 2
    free = (large.fixed + 5.5 * large.per_sample) / HEADROOM
    assert large.fitting_batch(free) == 5 and large.fitting_batch(large.fixed) == 0


def test_plan_run_out_of_memory_is_the_trainers_line_and_holds_nothing(small_root: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import facesr.training.loop as loop
    import facesr.training.step as step
    from facesr.training.memory import OutOfMemory
    from facesr.training.speed import plan_run

    refs: list = []
    _oom_step(monkeypatch, step, refs)
    with pytest.raises(OutOfMemory) as info:
        plan_run(_tiny_cfg(), small_root, iters=1, warmup=1)
    _assert_let_go(refs, info.value)
    planned = str(info.value)
    _oom_step(monkeypatch, loop, refs)
    with pytest.raises(OutOfMemory) as info:
        train(_tiny_cfg(), data_root=small_root, runs_dir=tmp_path)
    trained = str(info.value)
    # the same line: the iteration and what is on disk are each call's own
    assert planned.split(" (")[1].split(";")[:3] == trained.split(" (")[1].split(";")[:3]
    assert planned.startswith("the CPU ran out of memory at iteration 1 (batch_size=2, gt_patch=64)")
    assert "--set batch_size=1" in planned and "--set gt_patch=32" in planned and "plan_run saves nothing" in planned


@pytest.fixture()
def tiny_val(tmp_path: Path) -> Path:
    """A data root of 3 val pairs, 24x24 LQ and 96x96 GT (random pixels): inference in milliseconds."""
    import numpy as np

    from facesr.data.images import write_png

    rng = np.random.default_rng(0)
    for i in range(3):
        write_png(tmp_path / "data" / "val" / "LQ" / f"{i:03d}.png", rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
        write_png(tmp_path / "data" / "val" / "GT" / f"{i:03d}.png", rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    return tmp_path / "data"


def _tiny_net() -> torch.nn.Module:
    from facesr.models import MSRResNet

    torch.manual_seed(0)
    return MSRResNet(mid_channels=8, num_blocks=1)


def test_predict_retries_a_group_that_does_not_fit_one_image_at_a_time(tiny_val: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    P = importlib.import_module("facesr.inference.predict")  # the package's `predict` is the function
    from facesr.data.images import read_image

    tta = importlib.import_module("facesr.inference.tta")
    real, sizes = tta.run_net_variants, []

    def fits_one(net, lq, ttas):
        sizes.append(lq.shape[0])
        if lq.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(net, lq, ttas)

    net = _tiny_net()
    whole = P.predict(net, tiny_val / "val" / "LQ", tmp_path / "whole", batch_size=1, device="cpu")
    monkeypatch.setattr(tta, "run_net_variants", fits_one)
    retried = P.predict(net, tiny_val / "val" / "LQ", tmp_path / "retried", batch_size=4, device="cpu")
    assert sizes == [3, 1, 1, 1]  # the group of three, then each image
    assert [p.name for p in retried] == [p.name for p in whole]
    assert all(np.array_equal(read_image(a), read_image(b)) for a, b in zip(whole, retried, strict=True))


def test_an_image_that_does_not_fit_alone_is_one_line_holding_nothing(tiny_val: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    P = importlib.import_module("facesr.inference.predict")  # the package's `predict` is the function
    from facesr.training.memory import OutOfMemory

    refs: list = []

    def never_fits(net, lq, ttas):
        sr = torch.nn.functional.interpolate(lq, scale_factor=4)  # what the forward pass made so far
        refs.append(weakref.ref(sr))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(importlib.import_module("facesr.inference.tta"), "run_net_variants", never_fits)
    with pytest.raises(OutOfMemory, match="super-resolving a 24x24 image, one image at a time") as info:
        P.evaluate(_tiny_net(), tiny_val, tta="x8")
    assert len(refs) == 2  # the group of three, then the first image alone
    _assert_let_go(refs, info.value)


# ----------------------------------------------------------------------------------- 4. host-to-device copies
class _Uploads(TorchDispatchMode):
    """Records the host tensor of every copy to the ``meta`` device (explicit, or an op mixing a host tensor
    with device ones, which copies it); 0-d host tensors used as scalars are not copies."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[torch.Tensor] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        to_meta = str(kwargs.get("device", "")) == "meta" or any(t.device.type == "meta" for t in tensors)
        if to_meta:
            aten = torch.ops.aten
            explicit = func in (aten._to_copy.default, aten.copy_.default, aten.lift_fresh.default)
            self.sources += [t for t in tensors if t.device.type == "cpu" and (t.ndim > 0 or explicit)]
        return func(*args, **kwargs)


@pytest.mark.parametrize("edition", [2022, 2024], ids=["course", "second_order"])
def test_the_device_path_copies_nothing_to_the_device_but_the_batch(edition: int, sample_root: Path) -> None:
    """prepare_batch on the meta device (the GPU path: the workers' draws, then the degradation, crop and flip on
    the device): after a first batch (constant tables cached on the device), every host-to-device copy is of a
    tensor of the collated batch, which the trainer's loader pins; no table is made on the host in the step."""
    from facesr.training.step import prepare_batch, train_dataset

    cfg = get_config("srgan", quick=True, edition=edition, gt_patch=64)
    ds = train_dataset(cfg, sample_root / "train" / "GT", on_device=True)
    batches = [torch.utils.data.default_collate([ds[(i, (0, k, i))] for i in range(3)]) for k in (1, 2)]
    nets = types.SimpleNamespace(gpu_degrade=True, channels_last=False)  # what prepare_batch reads of the nets
    meta = torch.device("meta")
    prepare_batch(batches[0], cfg, nets, meta)
    with _Uploads() as uploads:
        lq, gt = prepare_batch(batches[1], cfg, nets, meta)
    assert lq.device == meta and lq.shape == (3, 3, 16, 16)
    batch_storages = {t.untyped_storage().data_ptr() for t in pytree.tree_leaves(batches[1]) if torch.is_tensor(t)}
    others = [tuple(t.shape) for t in uploads.sources if t.untyped_storage().data_ptr() not in batch_storages]
    assert uploads.sources and not others, f"host tensors copied to the device that are not the batch's: {others}"


def test_the_step_copies_nothing_to_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rest of an iteration on the meta device (step, fused Adam, EMA, the per-iteration seed): no copy."""
    import torch.optim.optimizer as optimizer

    from facesr.training import distributed
    from facesr.training.step import build_nets, train_step

    supported = optimizer._get_fused_kernels_supported_devices()  # fused Adam has a meta kernel; allow it
    monkeypatch.setattr(optimizer, "_get_fused_kernels_supported_devices", lambda: [*supported, "meta"])
    meta = torch.device("meta")
    nets = build_nets(_tiny_cfg(ema_decay=0.999, grad_clip=1.0), meta)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    lq, gt = torch.rand(2, 3, 16, 16, device=meta), torch.rand(2, 3, 64, 64, device=meta)

    def iteration(k: int) -> None:
        distributed.seed_step(0, k + 1, distributed.Ranks(), meta)
        train_step(nets, lq, gt, scaler)
        nets.ema.update(k, applied=1 - nets.skipped)

    iteration(0)  # warm: optimizer state
    with _Uploads() as uploads:
        iteration(1)
    assert not uploads.sources, [tuple(t.shape) for t in uploads.sources]


# ---------------------------------------------------------------------------------------------------- 5. TF32
def _tf32() -> tuple[bool, bool]:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


class _SpyNet(torch.nn.Module):
    """x4 nearest upscaling that records the TF32 flags it runs under."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.flags: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.flags.append(_tf32())
        return torch.nn.functional.interpolate(x, scale_factor=4) * self.scale


@pytest.fixture()
def tf32_on():
    """Both TF32 flags on (cuDNN's default on an Ampere card; matmul's after set_float32_matmul_precision("high")),
    the previous values restored after."""
    saved = _tf32()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_scoring_and_the_degradation_run_without_tf32(small_root: Path, tiny_val: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, tf32_on: None) -> None:
    import numpy as np

    import facesr.data.degradations_torch as DT
    import facesr.data.second_order as SO
    from facesr.data.datasets import ValDataset
    from facesr.data.degradations import sample_params
    from facesr.data.second_order_draws import sample_second_order_params
    from facesr.inference import evaluate, predict, upscale
    from facesr.training.step import validate

    net, off = _SpyNet(), (False, False)
    validate(net, ValDataset(small_root), torch.device("cpu"))
    evaluate(net, tiny_val, tta="x8")
    predict(net, tiny_val / "val" / "LQ", tmp_path / "sr", tta="hflip", device="cpu")
    upscale(net, np.zeros((8, 8, 3), np.uint8))
    assert len(net.flags) == 1 + 8 + 2 + 1 and set(net.flags) == {off}  # val image, x8, hflip, one image
    assert _tf32() == (True, True)  # restored

    seen = []
    for module, name in ((DT, "blur_torch"), (SO, "filter2d")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, **k: seen.append(_tf32()) or real(*a, **k))
    gt = torch.rand(1, 3, 64, 64)
    DT.apply_degradation_batch(gt, [sample_params(np.random.default_rng(0))])
    params = torch.utils.data.default_collate([sample_second_order_params(np.random.default_rng(0))])
    SO.apply_second_order(gt, params)
    assert seen and set(seen) == {off} and _tf32() == (True, True)


def test_the_training_step_keeps_the_cards_tf32_and_each_rank_seeds_its_device_per_iteration(
        small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tf32_on: None) -> None:
    import facesr.training.loop as loop
    from facesr.training import distributed

    seeds: list = []
    monkeypatch.setattr(torch.cuda, "manual_seed", seeds.append)  # what seed_step does on CUDA, recorded
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    cuda = torch.device("cuda", 0)
    for rank, it in ((0, 1), (1, 1), (0, 2), (0, 1)):
        distributed.seed_step(7, it, distributed.Ranks(rank, 2, rank), cuda)
    assert len(set(seeds[:3])) == 3 and seeds[3] == seeds[0]  # per rank and iteration, a pure function of them
    distributed.seed_step(7, 1, distributed.Ranks(), torch.device("cpu"))
    assert len(seeds) == 4  # the CPU's generator is the checkpoint's, left alone

    real_step, step_flags, seeded = loop.train_step, [], []
    monkeypatch.setattr(loop, "train_step", lambda *a, **k: step_flags.append(_tf32()) or real_step(*a, **k))
    monkeypatch.setattr(distributed, "seed_step", lambda seed, it, ranks, device: seeded.append((seed, it)))
    train(_tiny_cfg(iters=2, seed=5), data_root=small_root, runs_dir=tmp_path / "runs")
    assert step_flags == [(True, True)] * 2  # training keeps the card's default
    assert seeded == [(5, 1), (5, 2)]


# ----------------------------------------------------------------- 7. plan_run's numerics, the step benchmark
def test_plan_run_times_under_the_runs_numerics(small_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import facesr.training.step as step
    from facesr.training.speed import plan_run

    real, seen = step.train_step, []

    def timed_step(*args, **kwargs):
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic))
        return real(*args, **kwargs)

    monkeypatch.setattr(step, "train_step", timed_step)
    before = torch.are_deterministic_algorithms_enabled()
    plan = plan_run(_tiny_cfg(deterministic=True), small_root, iters=1, warmup=1)
    assert seen == [(True, True)] * 2 and plan.seconds_per_iter > 0
    assert torch.are_deterministic_algorithms_enabled() == before


def test_the_step_benchmark_records_an_out_of_memory_row_and_names_cards_exactly(
        monkeypatch: pytest.MonkeyPatch, train_step_benchmark) -> None:
    bench = train_step_benchmark
    assert bench.peak_tflops("NVIDIA L4", "bf16") == 121.0 and bench.peak_tflops("Tesla T4", "fp16") == 65.0
    assert bench.peak_tflops("NVIDIA A100-SXM4-40GB", "fp32") == 156.0
    assert bench.peak_tflops("NVIDIA L40S", "bf16") is None  # not an L4
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.0

    refs: list = []

    def out_of_memory(cfg, row, *args):
        activations = torch.ones(256, 256)
        refs.append(weakref.ref(activations))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    monkeypatch.setattr(bench, "_measure", out_of_memory)
    row = bench.measured_row("quick", "MSRResNet-16", {"name": "srgan", "quick": True}, torch.device("cpu"), True,
                             False, 1, 60.0, None)
    assert row["note"] == "out of memory at batch 4" and "step" not in row and row["model"] == "MSRResNet-16"
    assert "out of memory" in bench._table([row])
    gc.collect()
    assert refs[0]() is None
