"""What every spandrel network of the kit needs: the package itself (one clear line when it is missing),
building on the meta device, and spandrel's architecture detection.

spandrel (chaiNNer's and ComfyUI's model zoo) keeps the official implementations with the official state-dict
names; the kit builds SwinIR and RCAN on it (``swinir_arch.py``, ``rcan_arch.py``) and asks it about foreign
state dicts (:mod:`facesr.models.zoo`). ``import facesr.models`` works without spandrel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from types import ModuleType

import torch

from facesr.errors import FacesrError

SPANDREL_PIP = "pip install 'spandrel>=0.4'"
SPANDREL_MIN_VERSION = (0, 4)


def require_spandrel() -> ModuleType:
    """The spandrel module; one-line FacesrError naming the pip command when it is missing or too old."""
    try:
        import spandrel
    except ImportError:  # also when sys.modules["spandrel"] is None
        raise FacesrError(
            f"SwinIR, RCAN and other spandrel networks need the spandrel package, which is not installed: "
            f"{SPANDREL_PIP} (on Colab, facesr.colab.setup_runtime installs it)"
        ) from None
    version = getattr(spandrel, "__version__", "0")
    parts = tuple(int(p) if p.isdigit() else 0 for p in version.split(".")[:2])
    if parts < SPANDREL_MIN_VERSION:
        raise FacesrError(f"spandrel {version} is too old for the kit: {SPANDREL_PIP}")
    return spandrel


@contextlib.contextmanager
def off_meta_device() -> Iterator[bool]:
    """Run a spandrel ``__init__`` on the CPU when the default device is meta; yields whether it was.

    spandrel's constructors call ``.item()`` (SwinIR's drop-path rates) and assign ``.data`` (RCAN's mean
    shift), which fail on meta tensors; the kit counts parameters on the meta device, so the caller builds on
    the CPU and moves the finished module to meta.
    """
    meta = torch.empty(()).device.type == "meta"
    with torch.device("cpu") if meta else contextlib.nullcontext():
        yield meta


def spandrel_arch_id(sd: Mapping) -> str | None:
    """spandrel's architecture id for ``sd`` (detection by key names only, nothing is built), or None.

    None also when spandrel is not installed: used where a description is nice to have, never required.
    """
    try:
        spandrel = require_spandrel()
    except FacesrError:
        return None
    plain = dict(sd)
    for support in spandrel.MAIN_REGISTRY.architectures("detection"):
        with contextlib.suppress(Exception):  # a detector may trip over unusual values; that is "not it"
            if support.detect(plain):
                return str(support.architecture.id)
    return None
