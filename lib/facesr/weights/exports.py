"""Exports (``python -m facesr export``): a generator's weights written for sharing, safetensors with the kit's
metadata, or, with ``--format basicsr``, ``{"params": ...}`` with BasicSR's key names for the course's
2024/2025 code (docs/course.md section 7). Every export is checked to rebuild from what it says it holds,
and written atomically; an existing file is never replaced unless asked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from facesr.atomic import atomic_write, atomic_write_bytes
from facesr.errors import FacesrError
from facesr.weights.checkpoints import GeneratorFile, checkpoint_file, read_generator, safetensors_torch
from facesr.weights.formats import basicsr_network, check_fit, generator_metadata

EXPORT_FORMATS = ("safetensors", "basicsr")
_EXPORT_SUFFIXES = {"safetensors": (".safetensors",), "basicsr": (".pth", ".pt")}


def _export_target(path: str | os.PathLike, overwrite: bool, file_format: str = "safetensors") -> Path:
    path = Path(path)
    if file_format not in EXPORT_FORMATS:
        raise FacesrError(f"export format {file_format!r} is unknown; use {' or '.join(EXPORT_FORMATS)}")
    suffixes = _EXPORT_SUFFIXES[file_format]
    if path.suffix.lower() not in suffixes:
        what = "safetensors" if file_format == "safetensors" else "a BasicSR .pth file"
        raise FacesrError(f"{path}: export --format {file_format} writes {what}; give the file a "
                          f"{' or '.join(suffixes)} name")
    if path.is_dir() or (path.exists() and not overwrite):
        raise FacesrError(f"{path} already exists; choose another name, or overwrite=True (CLI: --overwrite)")
    return path


def checked_tensors(net: nn.Module, generator: str, generator_args: Mapping) -> dict[str, torch.Tensor]:
    """``net``'s state dict as contiguous CPU copies, once ``build_generator(generator, **generator_args)`` is
    shown to hold exactly these keys and shapes: an export never names a net that would not rebuild it.

    Args:
        net: The generator to export.
        generator: Its name in :data:`facesr.models.GENERATORS`.
        generator_args: Its ``build_generator`` kwargs.
    """
    from facesr.models import build_generator

    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in net.state_dict().items()}
    what = f"the weights of {generator} {dict(generator_args)}"
    try:
        target = build_generator(generator, **dict(generator_args)).state_dict()
    except (RuntimeError, TypeError, ValueError) as err:
        raise FacesrError(f"cannot export {what}: the generator does not build ({err})") from None
    check_fit(tensors, target, what, "export")
    return tensors


def export_safetensors(
    net: nn.Module,
    path: str | os.PathLike,
    generator: str,
    generator_args: Mapping,
    overwrite: bool = False,
    edition: int | None = None,
) -> Path:
    """Atomically write ``net``'s weights as safetensors, the generator that rebuilds them in the metadata.

    Args:
        net: The generator whose ``state_dict`` is written (e.g. from ``load_generator``: EMA weights).
        path: The ``.safetensors`` file to write.
        generator: Its name in :data:`facesr.models.GENERATORS` (metadata ``facesr_generator``).
        generator_args: Its ``build_generator`` kwargs (metadata ``facesr_generator_args``, JSON).
        overwrite: Replace an existing file (else FacesrError).
        edition: The edition of the run (metadata ``facesr_edition``), so the file keeps it; None leaves it out.
    """
    from facesr.models import count_parameters

    path = _export_target(path, overwrite, "safetensors")
    meta = generator_metadata(generator, generator_args, count_parameters(net), edition)
    tensors = checked_tensors(net, generator, generator_args)
    data = safetensors_torch().save(tensors, metadata=meta)
    return atomic_write_bytes(path, data)


def export_basicsr(
    net: nn.Module, path: str | os.PathLike, generator: str, generator_args: Mapping, overwrite: bool = False
) -> Path:
    """Atomically write ``net``'s weights as BasicSR saves them, ``{"params": state_dict}``, with BasicSR's names.

    The course's 2024/2025 code (BasicSR) loads the file with ``load_state_dict(torch.load(path)["params"])``
    into the network :func:`facesr.weights.formats.basicsr_network` names; the kit reads it back with
    ``load_generator``. Only generators whose keys BasicSR shares are written: ``msrresnet_basicsr``,
    ``rrdbnet`` and ``swinir`` (the last needs BasicSR's SwinIR built with the same ``img_size``: its
    attention masks are saved too).

    Args:
        net: The generator whose ``state_dict`` is written (e.g. from ``load_generator``: EMA weights).
        path: The ``.pth`` file to write.
        generator: Its name in :data:`facesr.models.GENERATORS`.
        generator_args: Its ``build_generator`` kwargs.
        overwrite: Replace an existing file (else FacesrError).
    """
    basicsr_network(generator, generator_args)  # FacesrError for a net BasicSR cannot hold under these names
    path = _export_target(path, overwrite, "basicsr")
    params = checked_tensors(net, generator, generator_args)
    return atomic_write(path, lambda f: torch.save({"params": params}, f))




def export_generator(
    run_or_ckpt: str | os.PathLike,
    out: str | os.PathLike,
    overwrite: bool = False,
    trust: bool = False,
    file_format: str = "safetensors",
) -> GeneratorFile:
    """Write the generator of a run or file (as ``load_generator`` picks it) to ``out``.

    Args:
        run_or_ckpt: A run folder (``best.pt``, else ``latest.pt``) or a checkpoint file.
        out: The file to write: ``.safetensors`` (see :func:`export_safetensors`), or ``.pth`` for
            ``file_format="basicsr"`` (see :func:`export_basicsr`).
        overwrite: Replace an existing ``out``.
        trust: Unpickle the checkpoint in full (runs code from it).
        file_format: ``"safetensors"`` (weights and the kit's architecture metadata) or ``"basicsr"``
            (``{"params": ...}`` with BasicSR's names, for msrresnet_basicsr, rrdbnet and swinir).

    Returns:
        The :class:`GeneratorFile` written (``path`` is ``out``). A spandrel network that the kit's
        registry does not hold is refused: it has no kit name and kwargs for the metadata.
    """
    _export_target(out, overwrite, file_format)  # before the (slow) load
    gen = read_generator(checkpoint_file(run_or_ckpt), trust=trust)
    if gen.generator is None:
        raise FacesrError(f"{gen.path} holds a {type(gen.net).__name__} that spandrel builds but the kit "
                          "does not register, so it has no kit name and arguments to export; share the file")
    if file_format == "basicsr":
        written = export_basicsr(gen.net, out, gen.generator, gen.generator_args, overwrite=overwrite)
    else:
        written = export_safetensors(gen.net, out, gen.generator, gen.generator_args, overwrite=overwrite,
                                     edition=gen.edition)
    return gen._replace(path=written)
