"""Runtime set-up for the notebooks: Colab + Google Drive on Colab, nothing harmful elsewhere.

Every notebook opens with the same short cell that finds the kit (opened from its badge: clones ``KIT_REPO`` at
``KIT_BRANCH``, or updates that clone with ``git pull --ff-only``), puts ``lib/`` on ``sys.path`` and calls
:func:`setup_runtime`; its settings cell then calls :func:`facesr.colab.settings.resolve_settings`.
``colab_setup.sh`` is a thin shell wrapper around :func:`main` (``python -m facesr.colab``), so the
set-up logic exists once, here.

On Colab, :func:`setup_runtime` mounts Drive (``FACESR_DRIVE=DIR`` or ``drive_root=DIR``: DIR stands for it,
nothing is mounted), links the kit's ``checkpoints/`` folder into Drive (runtimes are recycled without warning;
runs must survive that), copies the data archive from Drive to local disk and unpacks it once (reading thousands of small files from Drive is slow; both steps live
in :mod:`facesr.colab.drive`), installs spandrel (SwinIR, RCAN) when it is missing without touching Colab's
torch, and checks that the installed torch build has kernels for the GPU. Locally it only reports where
it runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from facesr.colab.drive import (
    DRIVE_ARCHIVE,
    DRIVE_ENV,
    DRIVE_RUNS,
    LOCAL_CHECKPOINTS,
    drive_from_env,
    link_runs,
    unpack_data,
)
from facesr.errors import FacesrError
from facesr.training.checkpoint_files import LOCAL_ENV

KIT_REPO_URL = "https://github.com/facesr-kit/facesr-kit"  # also in colab_setup.sh and the notebooks' first cell
COLAB_DRIVE_MOUNT = Path("/content/drive")


def kit_root() -> Path:
    """The kit's repository root (the folder holding ``lib/facesr``)."""
    return Path(__file__).resolve().parents[3]  # lib/facesr/colab/runtime.py


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


# ------------------------------------------------------------------------------------------------ GPU


def arch_warning(
    gpu_name: str, capability: tuple[int, int], arch_list: Sequence[str], torch_version: str, cuda: str | None
) -> str | None:
    """A warning when this torch build has no kernel for the GPU (V100 under CUDA 12.8+), else None.

    The rule (:func:`facesr.training.device.has_kernel_for`): a GPU of compute capability X.Y runs code built
    for sm_X<=Y (same major) or JIT-compiles PTX ``compute_Z`` with Z <= XY.
    """
    from facesr.training.device import TORCH_CU126_HINT, has_kernel_for  # imports torch: not at module import

    if has_kernel_for(capability, arch_list):  # an empty list (CPU-only or unusual build) counts as fine
        return None
    major, minor = capability
    return (
        f"WARNING: this torch {torch_version} (CUDA {cuda}) has no kernels for the {gpu_name} "
        f"(sm_{major}{minor}; the build has {', '.join(arch_list)}): training would fail with "
        f"'no kernel image is available'. Fix: Runtime > Change runtime type > T4, L4 or A100; or install a "
        f"build that still has sm_{major}{minor}, e.g. {TORCH_CU126_HINT}, then Runtime > Restart session."
    )


def describe_device() -> tuple[str, str, str | None]:
    """(device, one-line description, warning or None) for the best device torch sees."""
    import torch

    if not torch.cuda.is_available():
        return "cpu", f"CPU only (torch {torch.__version__}); training is slow, use quick mode", None
    props = torch.cuda.get_device_properties(0)
    capability = (props.major, props.minor)
    text = (
        f"GPU {props.name}, {props.total_memory / 2**30:.1f} GiB, compute capability {props.major}.{props.minor}"
        f" (torch {torch.__version__}, CUDA {torch.version.cuda})"
    )
    warning = arch_warning(props.name, capability, torch.cuda.get_arch_list(), torch.__version__, torch.version.cuda)
    return "cuda", text, warning


# ------------------------------------------------------------------------------------------------ spandrel

# spandrel's requirements that pip may add: einops and typing_extensions are pure Python, safetensors one small
# wheel without dependencies. Its other requirements (torch, torchvision, numpy) are Colab's and never touched.
SPANDREL_SMALL_DEPS = ("einops", "safetensors", "typing_extensions")
SPANDREL_SPEC = "spandrel>=0.4"


def _pip_install(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)


def ensure_spandrel(pip: Callable[[list[str]], None] = _pip_install) -> str | None:
    """Install spandrel into the running kernel when it is missing; a line saying what was done, or None.

    ``pip install --no-deps spandrel`` plus only those of :data:`SPANDREL_SMALL_DEPS` that are missing, so
    Colab's torch, torchvision and numpy stay as they are; the import caches are refreshed so that the
    running kernel imports it without a restart.

    Args:
        pip: Runs ``pip install ARGS`` (tests pass a fake: there is no network there).
    """
    if importlib.util.find_spec("spandrel") is not None:
        return None
    missing = [name for name in SPANDREL_SMALL_DEPS if importlib.util.find_spec(name) is None]
    try:
        pip(["--no-deps", SPANDREL_SPEC, *missing])
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"could not install spandrel ({exc}); SwinIR and RCAN need it: pip install '{SPANDREL_SPEC}'"
    importlib.invalidate_caches()  # pip wrote new folders into site-packages after this kernel started
    if importlib.util.find_spec("spandrel") is None:
        return f"pip ran but spandrel is still not importable; SwinIR and RCAN need it: pip install '{SPANDREL_SPEC}'"
    return f"installed {SPANDREL_SPEC} (--no-deps{', with ' + ', '.join(missing) if missing else ''}) for SwinIR and RCAN"


# ------------------------------------------------------------------------------------------------ set-up


@dataclass
class RuntimeInfo:
    """What :func:`setup_runtime` found and did; ``str(info)`` is the printable summary."""

    colab: bool
    kit: Path
    device: str
    device_text: str
    drive: Path | None = None
    data_root: Path | None = None
    runs_link: Path | None = None
    messages: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        from facesr.training.run_info import kit_commit

        commit = kit_commit(self.kit)
        where = f"kit at {self.kit}" + (f" (commit {commit[:10]})" if commit else "")
        lines = [f"{'Colab' if self.colab else 'local'} run, {where}", f"device: {self.device_text}"]
        if self.drive is not None:
            lines.append(f"Drive: {self.drive}")
        if self.runs_link is not None:
            lines.append(f"runs: {self.runs_link} -> {self.runs_link.resolve()}")
        if self.data_root is not None:
            lines.append(f"data: {self.data_root}")
        return "\n".join(lines + self.messages)


def _mount_drive() -> Path | None:
    """Mount Google Drive in the Colab kernel (asks for permission once); None when that fails."""
    try:
        from google.colab import drive  # only importable on Colab

        drive.mount(str(COLAB_DRIVE_MOUNT))
    except Exception as exc:  # any failure means "no Drive"; the message says why
        print(f"Drive not mounted ({exc})")
        return None
    return COLAB_DRIVE_MOUNT / "MyDrive"


def setup_runtime(
    kit: str | os.PathLike | None = None,
    drive_root: str | os.PathLike | None = None,
    archive: str = DRIVE_ARCHIVE,
    drive_runs: str = DRIVE_RUNS,
    data_dir: str | os.PathLike | None = None,
    mount: bool | None = None,
    verbose: bool = True,
) -> RuntimeInfo:
    """Prepare the runtime: on Colab install spandrel, mount Drive, link runs into it, unpack the data; check the GPU.

    Args:
        kit: the kit's root (default: the one this module lives in).
        drive_root: the Drive folder that holds ``archive`` and ``drive_runs`` (default ``FACESR_DRIVE``, which
            stands for Drive without mounting; else on Colab /content/drive/MyDrive after mounting; elsewhere None,
            which skips all Drive steps). Once found, ``FACESR_DRIVE`` names it for the rest of the session (the
            settings cell, the trainer, commands run from the notebook) and ``FACESR_LOCAL_CHECKPOINTS`` the
            runtime's own disk, where runs on Drive keep their ``iter_*.pt``.
        archive: the data archive (zip or tar), relative to ``drive_root`` or absolute.
        drive_runs: the runs folder in Drive, relative to ``drive_root`` or absolute.
        data_dir: where the archive is unpacked to ``data_dir/FFHQ`` (default ``kit/data``).
        mount: mount Drive first (default: only on Colab and when ``drive_root`` is not given).
        verbose: print the summary.

    A missing Drive or archive, or runs on local disk, is reported in the summary and does not raise:
    the quick mode and the notebooks that need no data still work.
    """
    kit = Path(kit).resolve() if kit is not None else kit_root()
    colab = in_colab()
    device, device_text, warning = describe_device()
    info = RuntimeInfo(colab=colab, kit=kit, device=device, device_text=device_text)
    if warning:
        info.messages.append(warning)
    if colab and (note := ensure_spandrel()):  # elsewhere a missing spandrel is a clear error when it is needed
        info.messages.append(note)
    if drive_root is None and mount is not True:
        drive_root = drive_from_env()
    if drive_root is None and (mount if mount is not None else colab):
        drive_root = _mount_drive()
        if drive_root is None:
            info.messages.append(
                "Drive is not mounted: checkpoints stay on this runtime's disk and are lost when it is recycled"
            )
    if drive_root is not None:
        info.drive = Path(drive_root)
        if not info.drive.is_dir():
            info.messages.append(
                f"Drive not found at {info.drive}: mount it in a notebook cell first (from google.colab import "
                "drive; drive.mount('/content/drive')) or pass another folder; skipped the runs link and the data"
            )
        else:
            os.environ[DRIVE_ENV] = str(info.drive.resolve())
            os.environ.setdefault(LOCAL_ENV, str(kit / LOCAL_CHECKPOINTS))
            try:
                info.runs_link = link_runs(kit, info.drive / drive_runs)
            except FacesrError as exc:
                info.messages.append(str(exc))
            try:
                info.data_root = unpack_data(info.drive / archive, Path(data_dir or kit / "data"))
            except FacesrError as exc:
                info.messages.append(str(exc))
    if verbose:
        print(info)
    return info


# ------------------------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m facesr.colab``: the shell side of the set-up (called by colab_setup.sh)."""
    parser = argparse.ArgumentParser(prog="python -m facesr.colab", description=setup_runtime.__doc__.split("\n")[0])
    parser.add_argument("--kit", default=None, help="kit root (default: this checkout)")
    parser.add_argument(
        "--drive-root", default=None, help=f"Drive folder (default on Colab: {COLAB_DRIVE_MOUNT}/MyDrive)"
    )
    parser.add_argument("--archive", default=DRIVE_ARCHIVE, help="data archive, relative to the Drive folder")
    parser.add_argument("--drive-runs", default=DRIVE_RUNS, help="runs folder, relative to the Drive folder")
    parser.add_argument("--data-dir", default=None, help="unpack to DATA_DIR/FFHQ (default: KIT/data)")
    args = parser.parse_args(argv)
    drive_root = args.drive_root or (COLAB_DRIVE_MOUNT / "MyDrive" if in_colab() else None)
    if drive_root is None:
        print("not on Colab: pass --drive-root DIR (the folder that holds facesr/FFHQ.zip)", file=sys.stderr)
        return 2
    info = setup_runtime(
        kit=args.kit, drive_root=drive_root, archive=args.archive, drive_runs=args.drive_runs,
        data_dir=args.data_dir, mount=False,  # a shell cannot mount Drive; only the notebook kernel can
    )  # fmt: skip
    return 0 if info.runs_link is not None and info.data_root is not None else 1

