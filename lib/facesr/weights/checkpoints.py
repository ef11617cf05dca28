"""Read and write weight files safely: kit, MMEditing 0.x, BasicSR / Real-ESRGAN, original ESRGAN,
spandrel-detected networks, safetensors.

Loading never runs code from a file. Pickles go through ``torch.load(weights_only=True)``: tensors, plain
containers and the few numpy/torch globals of the kit's older checkpoints (:data:`SAFE_GLOBALS`); a file
that wants any other global is refused with one line naming it. ``trust=True`` (``--trust-checkpoint``)
unpickles in full, running whatever code the file holds. safetensors hold tensors and text only.

Exports (``python -m facesr export``) are :mod:`facesr.weights.exports`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import torch
import torch.nn as nn

from facesr.atomic import atomic_write
from facesr.errors import FacesrError
from facesr.weights.formats import (
    META_PARAMETERS,
    SAFE_GLOBALS,
    check_fit,
    config_edition,
    config_spec,
    detect_generator,
    extract,
    load_error_reason,
    metadata_edition,
    metadata_spec,
    refused_global,
)

_TRUST_HINT = ("if you trust where the file came from, load it with trust=True (CLI: --trust-checkpoint; "
              "notebooks: TRUST_CHECKPOINT = True), which runs code from the file")


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FacesrError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise FacesrError(f"checkpoint path is not a file: {path}")
    return path


def is_safetensors(path: str | os.PathLike) -> bool:
    """True for a ``.safetensors`` name or content (an 8-byte header size, then the JSON header)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(9)
    size = int.from_bytes(head[:8], "little")
    return path.suffix.lower() == ".safetensors" or (head[8:9] == b"{" and 0 < size < path.stat().st_size)


def safetensors_torch() -> ModuleType:
    """The ``safetensors.torch`` module, or FacesrError saying how to install it."""
    try:
        import safetensors.torch
    except ImportError:
        raise FacesrError("reading or writing .safetensors needs the safetensors package: "
                          "pip install 'safetensors>=0.4'") from None
    return safetensors.torch


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on the CPU, string metadata) of a safetensors file; FacesrError naming it if unreadable."""
    path = _existing_file(path)
    st = safetensors_torch()
    try:
        with st.safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is no Mapping
    except Exception as exc:  # SafetensorError / OSError / ValueError for bad files
        raise FacesrError(f"cannot read safetensors file {path}: the file is corrupt or truncated "
                          f"({load_error_reason(exc)}); re-download or re-export it") from exc
    if not tensors:
        raise FacesrError(f"safetensors file {path} holds no tensors")
    return tensors, meta


def load_checkpoint(path: str | os.PathLike, trust: bool = False) -> dict:
    """Load a checkpoint on the CPU without running code from it (a safetensors file: its tensor dict).

    Args:
        path: A ``.pt`` / ``.pth`` pickle or a ``.safetensors`` file.
        trust: Unpickle in full. This runs any code the file holds: only for files from a trusted source
            that need more than tensors, plain containers and :data:`SAFE_GLOBALS`.

    Raises:
        FacesrError: naming the file when it is missing, corrupt or truncated, not a dict, or (without
            ``trust``) wants a global beyond tensors and plain containers.
    """
    path = _existing_file(path)
    if is_safetensors(path):
        return read_safetensors(path)[0]
    try:
        if trust:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        else:
            allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
            with allow(SAFE_GLOBALS) if allow else contextlib.nullcontext():
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/EOFError/UnpicklingError/... for bad files
        wanted = None if trust else refused_global(exc)
        if wanted:
            msg = (f"refused to load {path}: it wants {wanted}, more than tensors and plain containers, "
                   f"and unpickling it could run code from it; {_TRUST_HINT}")
            raise FacesrError(msg) from None
        raise FacesrError(f"cannot read checkpoint {path}: the file is corrupt or truncated "
                          f"({load_error_reason(exc)}); re-download or re-save it") from exc
    if not isinstance(obj, dict):
        raise FacesrError(f"checkpoint {path} holds a {type(obj).__name__}, not a dict of weights")
    return obj


def run_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint a run folder is used through: ``best.pt``, else ``latest.pt``; None without either."""
    for name in ("best.pt", "latest.pt"):
        if (Path(run_dir) / name).is_file():
            return Path(run_dir) / name
    return None


def checkpoint_file(run_or_ckpt: str | os.PathLike) -> Path:
    """The file behind a run folder (:func:`run_checkpoint`) or a checkpoint path; FacesrError if neither."""
    path = Path(run_or_ckpt)
    if path.is_dir():
        found = run_checkpoint(path)
        if found is not None:
            return found
        raise FacesrError(f"run folder {path} holds neither best.pt nor latest.pt; train first or pass a "
                          "checkpoint file")
    if not path.exists():
        raise FacesrError(f"{path} not found; pass a run folder or a checkpoint file")
    return path


def save_checkpoint(obj: object, path: str | os.PathLike) -> Path:
    """Atomically ``torch.save`` ``obj`` to ``path``: a crash or full disk leaves any previous file whole."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def _open_source(source: str | os.PathLike | Mapping, trust: bool, name: str | None) -> tuple[Mapping, str]:
    """(checkpoint, name for error messages) of a path (read with ``load_checkpoint``) or a loaded dict."""
    if isinstance(source, (str, os.PathLike)):
        return load_checkpoint(source, trust=trust), name or str(source)
    return source, name or "the given checkpoint dict"


def extract_state_dict(
    source: str | os.PathLike | Mapping,
    discriminator: bool = False,
    prefer_ema: bool = True,
    name: str | None = None,
    trust: bool = False,
) -> dict:
    """The state dict ``load_weights`` would load, with kit key names, without a net to load it into.

    Args:
        source: Path of a checkpoint (pickle or safetensors), or the dict ``torch.load`` returned.
        discriminator: Take the discriminator part (``net_d`` / ``discriminator.``) instead of the generator.
        prefer_ema: Prefer the EMA copy of the generator weights when the file has one.
        name: What error messages call the source (default: its path, or "the given checkpoint dict").
        trust: Unpickle a file in full (runs code from it); see :func:`load_checkpoint`.
    """
    obj, name = _open_source(source, trust, name)
    return extract(obj, discriminator, prefer_ema, name)[0]


def _load_into(net: nn.Module, obj: Mapping, name: str, prefer_ema: bool) -> nn.Module:
    from facesr.models import ModifiedVGG

    sd, fmt = extract(obj, isinstance(net, ModifiedVGG), prefer_ema, name)
    check_fit(sd, net.state_dict(), name, fmt)
    net.load_state_dict(sd, strict=False)  # key sets checked above; num_batches_tracked may be absent
    return net


def load_weights(
    net: nn.Module, source: str | os.PathLike | Mapping, prefer_ema: bool = True, trust: bool = False
) -> nn.Module:
    """Load weights into ``net`` from a checkpoint file or an already loaded dict; returns ``net``.

    Accepted: kit checkpoints (``net_g_ema`` / ``net_g`` / ``net_d``), MMEditing 0.x (``state_dict`` with
    ``generator.`` / ``generator_ema.`` / ``discriminator.`` prefixes), BasicSR / Real-ESRGAN
    (``params_ema`` / ``params``), original ESRGAN key names, bare state dicts, ``module.`` prefixes,
    safetensors files. EMA weights are taken when present and ``prefer_ema``. Loading is strict.

    Args:
        net: The network to fill (a kit generator or ``ModifiedVGG``).
        source: Path of a checkpoint (pickle or safetensors), or the dict ``torch.load`` returned.
        prefer_ema: Prefer the EMA copy of the generator weights when the file has one.
        trust: Unpickle a file in full (runs code from it); see :func:`load_checkpoint`.
    """
    if not isinstance(source, (str, os.PathLike, Mapping)):
        raise FacesrError(f"load_weights needs a checkpoint path or dict, got {type(source).__name__}")
    obj, name = _open_source(source, trust, None)
    return _load_into(net, obj, name, prefer_ema)


class GeneratorFile(NamedTuple):
    """A generator read from a file: the net, the registry entry that rebuilds it, the edition it was trained for."""

    net: nn.Module
    generator: str | None  # None: a spandrel network the kit's registry does not hold
    generator_args: dict
    path: Path
    edition: int | None = None  # from a kit checkpoint's config or export metadata; None for other files


def _spandrel_net(sd: dict, path: Path) -> nn.Module:
    """The last resort of :func:`read_generator`: any network spandrel knows, from the kit's own safe load."""
    from facesr.models import describe_state_dict
    from facesr.models.zoo import spandrel_model

    unknown = (f"{path} holds {describe_state_dict(sd)}, not a generator the kit can rebuild "
               "(MSRResNet or RRDBNet weights in a kit, MMEditing, BasicSR, ESRGAN or safetensors file)")
    try:
        return spandrel_model(sd)
    except (FacesrError, KeyError, RuntimeError, TypeError, ValueError) as err:
        raise FacesrError(f"{unknown}, nor one spandrel knows ({load_error_reason(err)})") from None


def read_generator(path: str | os.PathLike, trust: bool = False) -> GeneratorFile:
    """Build and load the generator a checkpoint or safetensors file holds (EMA weights preferred).

    Rebuilt from, in this order: the kit's safetensors metadata or checkpoint ``config``; the kit's
    key-based detection (MSRResNet, BasicSR's MSRResNet, RRDBNet in kit / MMEditing / BasicSR / ESRGAN
    files); spandrel's detection (``facesr.models.zoo``), for a kit generator or, failing that, any network
    spandrel knows. The edition comes from the checkpoint's config or the export metadata, where there is one.
    A net that trains in another form than it is submitted (SPAN) comes back in its inference form
    (:func:`facesr.models.inference_form`), with the arguments that build that form.

    Args:
        path: A checkpoint file (see :func:`load_checkpoint`).
        trust: Unpickle in full (runs code from the file).
    """
    from facesr.models import build_generator, count_parameters, inference_form

    path, meta, edition = _existing_file(path), {}, None
    if is_safetensors(path):
        obj, meta = read_safetensors(path)
        spec, origin = metadata_spec(meta, str(path)), "its safetensors metadata"
        edition = metadata_edition(meta)
    else:
        obj = load_checkpoint(path, trust=trust)
        spec, origin = config_spec(obj), "its config"
        edition = config_edition(obj)
    if spec is None:
        sd = extract(obj, False, True, str(path))[0]
        spec, origin = detect_generator(sd, str(path)), "its key names"
        if spec is None:
            return GeneratorFile(_spandrel_net(sd, path).eval().cpu(), None, {}, path)
    name, kwargs = spec
    try:
        net = _load_into(build_generator(name, **kwargs), obj, str(path), prefer_ema=True)
    except FacesrError as err:
        where = f"{path} ({name} {kwargs} from {origin})"
        raise FacesrError(f"cannot load a generator from {where}: {err}") from err
    except (RuntimeError, TypeError, ValueError, KeyError) as err:
        raise FacesrError(f"cannot load a {name} from {path}: {load_error_reason(err)}") from err
    n_params = count_parameters(net)
    if META_PARAMETERS in meta and meta[META_PARAMETERS] != str(n_params):
        raise FacesrError(f"{path}: its metadata says {meta[META_PARAMETERS]} parameters, but {name} "
                          f"{kwargs} has {n_params}; re-export it")
    net, kwargs = inference_form(name, kwargs, net.eval())  # SPAN: fused, the form that is counted and submitted
    return GeneratorFile(net.eval().cpu(), name, kwargs, path, edition)
