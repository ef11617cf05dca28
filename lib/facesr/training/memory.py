"""Out of memory: what a training step needs, the batch that fits a card, the one line, and letting go.

An out-of-memory error keeps alive what the failed call had made: the error's traceback holds the frames of
the step (its activations), the one-line error raised from it holds the run's frames (nets, EMA, Adam's
state) and, through ``__context__`` (which ``raise ... from None`` only hides from the printout), the
original error; IPython keeps the last of them in ``sys.last_traceback``. So every place the kit turns one
into its one line (``train``, ``plan_run``, ``predict``, ``evaluate``, ``upscale``) catches it at its outer
boundary, clears the local variables of every finished frame of the error and its chain (:func:`release`),
collects and empties the CUDA cache (:func:`free_memory`), and only then raises :class:`OutOfMemory` outside
the handler: a fresh one-line error with no context, whose traceback reaches no further than that boundary.

The line suggests the batch that fits (:func:`out_of_memory_line`): the config's memory estimate
(:func:`step_memory`, the bytes autograd saves for backward counted on the ``meta`` device, as
``benchmarks/train_memory.py`` scales them) against the memory this card has free once the run is gone.
"""

from __future__ import annotations

import gc
import traceback
from dataclasses import dataclass
from typing import Any

import torch

from facesr.errors import FacesrError

GIB = 2.0**30
# Kept free of the estimate: the allocator's rounding and fragmentation, cuDNN workspaces, the batch's own
# degradation on the device (benchmarks/train_memory.py lists what its estimate leaves out).
HEADROOM = 0.8


class OutOfMemory(FacesrError):
    """A device ran out of memory: one line, raised after everything the failed call held was let go."""


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` is an out-of-memory error: torch's, a RuntimeError saying so, or the kit's one line."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(err, (oom_type, OutOfMemory)) or (isinstance(err, RuntimeError) and "out of memory" in str(err))


def release(err: BaseException) -> None:
    """Clear the local variables of every finished frame in the tracebacks of ``err`` and of its chain
    (``__cause__``, ``__context__``): the tensors and nets they held are then free to go. Frames still
    running (the caller's) are left as they are."""
    seen: set[int] = set()
    todo = [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)
        todo += [e.__cause__, e.__context__]


def free_memory() -> None:
    """Collect garbage (reference cycles of modules and autograd graphs) and give the CUDA cache back."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass(frozen=True)
class StepMemory:
    """Bytes of one training step: ``fixed`` (weights, gradients, Adam's moments, the EMA copy, frozen nets)
    and ``per_sample`` (activations saved for backward, plus the largest of them twice over for the transient
    gradients of the backward pass), each sample of the batch adding ``per_sample``."""

    fixed: int
    per_sample: int

    def fitting_batch(self, free_bytes: float) -> int:
        """The largest batch whose step fits ``free_bytes`` (0: not even one sample)."""
        return max(0, int((free_bytes * HEADROOM - self.fixed) // max(self.per_sample, 1)))


def _nets_on_meta(cfg: Any) -> list[tuple[torch.nn.Module, str]]:
    """(net, role) for every net of a step of ``cfg`` on the ``meta`` device, where a forward pass costs nothing
    (built there; a constructor that reads a value back is built on the CPU and moved). Roles: ``generator``
    first, then ``discriminator``, ``perceptual`` and a distillation run's ``teacher``
    (:func:`facesr.training.teacher.teacher_generator`: its run's network, read without its weights)."""
    from facesr.models import ModifiedVGG, VGGFeatureExtractor, build_generator
    from facesr.training.teacher import teacher_generator, uses_teacher

    teacher = teacher_generator(cfg) if uses_teacher(cfg) else None

    def nets() -> list[tuple[torch.nn.Module, str]]:
        out = [(build_generator(cfg.generator, **cfg.generator_args), "generator")]
        if cfg.gan_weight > 0:
            out.append((ModifiedVGG(in_channels=3, mid_channels=64), "discriminator"))
        if cfg.perceptual_weight > 0 and cfg.perceptual_layers:
            out.append((VGGFeatureExtractor(list(cfg.perceptual_layers), weights="random"), "perceptual"))
        if teacher is not None:
            out.append((build_generator(teacher[0], **teacher[1]).requires_grad_(False), "teacher"))
        return out

    try:
        with torch.device("meta"):
            return nets()
    except (RuntimeError, NotImplementedError):
        return [(net.to("meta"), role) for net, role in nets()]


def _forward_peak(net: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes a forward pass of ``net`` without gradients holds at its peak, estimated: the largest input plus
    output of one of its modules, plus the net's output (a teacher's target, kept until the loss)."""
    peak = [0]

    def hook(_: torch.nn.Module, inputs: tuple, output: object) -> None:
        tensors = [t for t in (*inputs, output) if isinstance(t, torch.Tensor)]
        peak[0] = max(peak[0], sum(t.numel() * t.element_size() for t in tensors))

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            out = net(x)
    finally:
        for handle in handles:
            handle.remove()
    return peak[0] + out.numel() * out.element_size()


def step_memory(cfg: Any, dtype: torch.dtype | None = None) -> StepMemory:
    """The config's memory estimate: one batch-1 step of its nets at its LQ size on the ``meta`` device, the
    bytes autograd saves for backward counted storage by storage (as ``benchmarks/train_memory.py`` counts
    them); ``dtype`` (the run's autocast dtype) sizes the activations as half precision nets would keep them.

    A distillation run's teacher adds its weights (fp32, no gradients or Adam) and the peak of its forward pass
    without gradients, which runs while the student's saved activations are held, before the backward pass.

    Args:
        cfg: The run's TrainConfig.
        dtype: The autocast dtype (None: fp32).
    """
    nets = _nets_on_meta(cfg)
    dtype = dtype or torch.float32
    trained = sum(p.numel() for net, role in nets if role in ("generator", "discriminator")
                  for p in net.parameters() if p.requires_grad)
    total = sum(p.numel() for net, _ in nets for p in net.parameters())
    ema = sum(p.numel() for p in nets[0][0].parameters())
    fixed = 4 * total + 12 * trained + 4 * ema  # weights; gradients and Adam's two moments; the EMA copy
    saved: dict[int, int] = {}
    weights = {id(p) for net, _ in nets for p in net.parameters()}  # in ``fixed`` already

    def pack(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in weights:
            saved[id(t)] = t.numel() * t.element_size()  # alive until backward: ids are unique
        return t

    lq_size = (cfg.gt_patch or 512) // 4
    lq = torch.rand(1, 3, lq_size, lq_size, device="meta", dtype=dtype)
    teacher_peak = 0
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        sr = nets[0][0].to(dtype)(lq)
        for net, role in nets[1:]:  # the discriminator's step keeps two graphs (fake, real), VGG's one
            if role == "teacher":
                teacher_peak = _forward_peak(net.to(dtype), lq)
                continue
            for _ in range(2 if role == "discriminator" else 1):
                net.to(dtype)(sr)
    largest = max(saved.values(), default=0)
    return StepMemory(fixed=fixed, per_sample=sum(saved.values()) + max(2 * largest, teacher_peak))


def out_of_memory_line(cfg: Any, where: str, kept: str) -> str:
    """The one line of a run that ran out of memory ``where`` (e.g. "at iteration 3"): the batch that fits this
    card by the config's estimate (CUDA), else half the batch, and smaller crops; ``kept`` says what is on disk.

    Args:
        cfg: The run's TrainConfig.
        where: Where it happened, e.g. "at iteration 3".
        kept: What is left on disk, e.g. "the last checkpoint (..., iteration 2) is intact".
    """
    from facesr.training.distributed import ranks_from_env
    from facesr.training.step import amp_dtype_for

    world = ranks_from_env().world_size
    smaller, estimate = max(world, (cfg.batch_size // 2) // world * world), ""
    if torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
        memory = step_memory(cfg, amp_dtype_for(cfg, device))
        # what this card has free once the failed run is gone: its free memory and what this process holds
        free = torch.cuda.mem_get_info(device)[0] + torch.cuda.memory_reserved(device)
        fits = memory.fitting_batch(free) * world
        estimate = (f"; by the config's memory estimate ({memory.per_sample / GIB:.2f} GiB per sample and "
                    f"{memory.fixed / GIB:.2f} GiB of weights and optimizer state) batch_size={fits} fits the "
                    f"{free / GIB:.1f} GiB free on {torch.cuda.get_device_name(device)}")
        smaller = min(smaller, fits // world * world) if fits >= world else smaller
    crop = 128 if (cfg.gt_patch or 512) > 128 else max(16, cfg.gt_patch // 8 * 4)
    device_name = "CUDA" if torch.cuda.is_available() else "the CPU"
    return (f"{device_name} ran out of memory {where} (batch_size={cfg.batch_size}, gt_patch={cfg.gt_patch})"
            f"{estimate}; use a smaller batch (--set batch_size={smaller}) or crops (--set gt_patch={crop}); "
            f"notebooks: get_config(..., batch_size={smaller}); {kept}")


def call_freeing_memory(fn: Any, line: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, the outer boundary of a kit call that may run out of memory.

    An out-of-memory error from it (torch's, or the kit's :class:`OutOfMemory` line of it) is let go of
    (:func:`release`, :func:`free_memory`) and raised again, outside the handler, as a fresh
    :class:`OutOfMemory` with no context: the kit's line as it was, or ``line(err)`` for torch's own.

    Args:
        fn: The call.
        line: ``err -> str``, the one line of an out-of-memory error that ``fn`` did not word itself.
        *args: Its positional arguments.
        **kwargs: Its keyword arguments.
    """
    try:
        return fn(*args, **kwargs)
    except BaseException as err:
        if not is_oom(err):
            raise
        message = str(err) if isinstance(err, OutOfMemory) else line(err)
        release(err)
    free_memory()
    raise OutOfMemory(message)
