"""The device a run trains on: CUDA checks (kernels for the card, OOM, missing kernels), the CPU fallback, and
the numerics settings of a run (cuDNN autotuning, or deterministic algorithms)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import torch

from facesr.errors import FacesrError
from facesr.training.memory import OutOfMemory, is_oom, out_of_memory_line

TORCH_CU126_HINT = "pip install torch torchvision --index-url https://download.pytorch.org/whl/cu126"


def has_kernel_for(capability: tuple[int, int], arch_list: Sequence[str]) -> bool:
    """Whether a torch build with ``arch_list`` (``torch.cuda.get_arch_list()``) runs on a GPU of ``capability``.

    A cubin for sm_XY runs on sm_XZ with Z >= Y; PTX (compute_XY) is JIT-compiled for any newer card. An empty
    list (CPU-only, ROCm or another unusual build) gives True: there is nothing to compare, so torch decides.
    Entries that are not ``sm_``/``compute_`` plus digits (e.g. the arch-specific ``sm_90a``) are skipped.
    """
    if not arch_list:
        return True
    major, minor = capability
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        if len(digits) < 2 or not digits.isdigit():
            continue
        a_major, a_minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and a_major == major and a_minor <= minor:
            return True
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False


def check_cuda_arch(index: int = 0) -> None:
    """FacesrError when the installed torch has no kernels for the card (e.g. V100 sm_70 on CUDA 12.8+)."""
    major, minor = torch.cuda.get_device_capability(index)
    arch_list = torch.cuda.get_arch_list()
    if has_kernel_for((major, minor), arch_list):
        return
    name = torch.cuda.get_device_name(index)
    raise FacesrError(
        f"the installed torch {torch.__version__} has no kernels for {name} (compute capability sm_{major}{minor}; "
        f"this build supports {' '.join(arch_list)}), so every CUDA call would fail with 'no kernel image is "
        f"available'; install a torch build whose arch list includes sm_{major}{minor}, e.g. `{TORCH_CU126_HINT}` "
        "(then restart the runtime), or pick another GPU"
    )


def resolve_device(device: str | torch.device | None, verbose: bool = True) -> torch.device:
    """CUDA when available (after the capability check), else the CPU, with a one-line note.

    ``meta`` passes through silently: the tests run the training loop there, where every read of a device
    value back to the host fails.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "meta":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FacesrError("device='cuda' was asked for but torch sees no CUDA device; use device='cpu'")
        check_cuda_arch(device.index or 0)
        if verbose:
            print(f"training on {torch.cuda.get_device_name(device.index or 0)}")
    elif verbose:
        print("no CUDA device: training on the CPU (fine for quick mode; full runs need a GPU)")
    return device


# cuBLAS's deterministic workspace setting (read when cuBLAS starts: set before the first GPU matrix product).
CUBLAS_DETERMINISTIC = ":4096:8"


@contextlib.contextmanager
def training_numerics(device: torch.device, deterministic: bool) -> Iterator[None]:
    """The run's numerics settings for the duration, the previous ones restored after.

    On CUDA cuDNN autotunes its convolution algorithms (``cudnn.benchmark``): the shapes of a run are
    fixed (its crops in training, the full 128x128 LQ in validation), so each is tuned once. With
    ``deterministic`` instead: ``torch.use_deterministic_algorithms(True, warn_only=True)`` (an op without a
    deterministic version warns once and runs), ``cudnn.deterministic``, no autotuning, and
    ``CUBLAS_WORKSPACE_CONFIG`` set when it is not; then a resume on the same GPU model, torch and CUDA is
    bit-exact, as the CPU's always is, at some cost in speed.

    Args:
        device: The training device.
        deterministic: ``cfg.deterministic``.
    """
    cudnn = torch.backends.cudnn
    saved = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
            torch.use_deterministic_algorithms(True, warn_only=True)
            cudnn.deterministic, cudnn.benchmark = True, False
        elif device.type == "cuda":
            cudnn.benchmark = True
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic = saved[0], saved[1]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def is_compile_error(err: BaseException) -> bool:
    """Whether ``err`` comes from ``torch.compile`` (dynamo or inductor) rather than from the step itself."""
    return type(err).__module__.startswith(("torch._dynamo", "torch._inductor"))


def is_no_kernel(err: BaseException) -> bool:
    return isinstance(err, RuntimeError) and "no kernel image is available" in str(err)


def step_error(err: BaseException, it: int, cfg: object, kept: str) -> BaseException:
    """One clear FacesrError for CUDA OOM and missing kernels; anything else is returned as it is.

    The out-of-memory one (:class:`facesr.training.memory.OutOfMemory`) still has the step's memory behind it:
    the caller's outer boundary lets go of it (:mod:`facesr.training.memory`).

    Args:
        err: what the step or the validation raised.
        it: the iteration (1-based) it happened in.
        cfg: the run's TrainConfig (the batch and patch the message suggests shrinking).
        kept: what is left on disk, e.g. "the last checkpoint (..., iteration 2) is intact".
    """
    if is_oom(err):
        return OutOfMemory(out_of_memory_line(cfg, f"at iteration {it}", kept))
    if is_compile_error(err):
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return FacesrError(
            f"torch.compile could not compile the generator at iteration {it} ({type(err).__name__}: {first}); "
            f"train without it: --set compile=false (notebooks: get_config(..., compile=False)); {kept}"
        )
    if is_no_kernel(err):
        return FacesrError(
            f"this torch build has no CUDA kernels for the GPU ('no kernel image is available'); install one "
            f"whose torch.cuda.get_arch_list() includes the card, e.g. `{TORCH_CU126_HINT}`; {kept}"
        )
    return err
