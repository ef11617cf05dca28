"""Load and save checkpoints: the kit's own, MMEditing 0.x, BasicSR / Real-ESRGAN and original ESRGAN.

``load_weights`` finds the part of a file that fits a network, renames foreign keys to the kit's
(MMEditing) names and loads strictly: any mismatch is one FacesrError that says what the file holds.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from facesr.errors import FacesrError

_KIT_KEYS = ("net_g", "net_g_ema", "net_d")
_MMEDIT_PREFIXES = ("generator.", "generator_ema.", "discriminator.", "perceptual_loss.")

# Original ESRGAN release (xinntao/ESRGAN, "new" architecture) -> kit names.
_ESRGAN_RENAMES = (
    (re.compile(r"^RRDB_trunk\.(\d+)\.RDB([123])\."), r"body.\1.rdb\2."),
    (re.compile(r"^trunk_conv\."), "conv_body."),
    (re.compile(r"^upconv1\."), "conv_up1."),
    (re.compile(r"^upconv2\."), "conv_up2."),
    (re.compile(r"^HRconv\."), "conv_hr."),
)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load`` a checkpoint on the CPU; FacesrError naming the file if missing, corrupt or truncated.

    ``weights_only=True`` is tried first; files that also pickle other objects (numpy RNG state in
    the kit's own checkpoints, MMEditing ``meta``) are then loaded in full, so only load files you trust.
    """
    path = Path(path)
    if not path.exists():
        raise FacesrError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise FacesrError(f"checkpoint path is not a file: {path}")
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "weights only load failed" not in str(exc).lower():
                raise
            obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises RuntimeError/EOFError/UnpicklingError/... for bad files
        text = str(exc).strip()
        # torch's messages run to a paragraph; the first sentence is the useful part.
        reason = text.splitlines()[0].split(". ")[0] if text else type(exc).__name__
        raise FacesrError(
            f"cannot read checkpoint {path}: the file is corrupt or truncated ({reason}); "
            "re-download or re-save it"
        ) from exc
    if not isinstance(obj, dict):
        raise FacesrError(f"checkpoint {path} holds a {type(obj).__name__}, not a dict of weights")
    return obj


def run_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint a run folder is used through: ``best.pt``, else ``latest.pt``; None if it has neither."""
    for name in ("best.pt", "latest.pt"):
        if (Path(run_dir) / name).is_file():
            return Path(run_dir) / name
    return None


def save_checkpoint(obj: object, path: str | os.PathLike) -> Path:
    """Atomically ``torch.save`` ``obj`` to ``path`` (temp file in the same folder, fsync, os.replace).

    A crash or full disk leaves any previous file at ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible on Windows, where it is skipped.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_discriminator(net: nn.Module) -> bool:
    from facesr.models import ModifiedVGG

    return isinstance(net, ModifiedVGG)


def _is_tensor_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _select_state_dict(obj: Mapping, discriminator: bool, prefer_ema: bool, name: str) -> tuple[dict, str]:
    """Pick the state dict in a container that fits the net's role; returns (state dict, format name)."""
    if any(k in obj for k in _KIT_KEYS):
        if discriminator:
            if obj.get("net_d") is None:
                raise FacesrError(f"{name} holds no discriminator weights (no 'net_d'); it is not a GAN checkpoint")
            return dict(obj["net_d"]), "kit checkpoint"
        key = "net_g_ema" if prefer_ema and obj.get("net_g_ema") is not None else "net_g"
        if obj.get(key) is None:
            raise FacesrError(f"{name} holds no generator weights ('net_g' is missing)")
        return dict(obj[key]), "kit checkpoint"

    if "params" in obj or "params_ema" in obj:
        order = ("params_ema", "params") if prefer_ema else ("params", "params_ema")
        for key in order:
            if isinstance(obj.get(key), Mapping):
                return dict(obj[key]), "BasicSR checkpoint"
        raise FacesrError(f"{name} is a BasicSR checkpoint with empty 'params' / 'params_ema'")

    sd = obj.get("state_dict", obj)
    if isinstance(sd, Mapping) and any(isinstance(k, str) and k.startswith(_MMEDIT_PREFIXES) for k in sd):
        if discriminator:
            prefixes = ["discriminator."]
        else:
            prefixes = ["generator_ema.", "generator."] if prefer_ema else ["generator."]
        for prefix in prefixes:
            part = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            if part:
                return part, "MMEditing checkpoint"
        role = "discriminator" if discriminator else "generator"
        raise FacesrError(f"{name} is an MMEditing checkpoint without {role} weights ({' / '.join(prefixes)})")
    for key in ("state_dict", "model", "net"):
        if key in obj and _is_tensor_dict(obj[key]):
            return dict(obj[key]), "state dict"
    if _is_tensor_dict(obj):
        return dict(obj), "state dict"
    shown = ", ".join(repr(k) for k in list(obj)[:6])
    raise FacesrError(f"{name} holds no recognisable weights (top-level keys: {shown})")


def _convert_original_esrgan(sd: dict) -> dict:
    """Rename original ESRGAN keys (new ``RRDB_trunk`` and old ``model.N`` layouts) to kit names."""
    keys = list(sd)
    if any(k.startswith(("RRDB_trunk.", "trunk_conv.")) for k in keys):
        out = {}
        for k, v in sd.items():
            for pattern, repl in _ESRGAN_RENAMES:
                k = pattern.sub(repl, k)
            out[k] = v
        return out
    if any(k.startswith("model.1.sub.") for k in keys):
        # Oldest release (RRDB_ESRGAN_x4_old_arch.pth): one nn.Sequential named ``model``.
        nb = max(int(m.group(1)) for k in keys if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", k))) + 1
        fixed = {"model.0.": "conv_first.", f"model.1.sub.{nb}.": "conv_body.", "model.3.": "conv_up1.",
                 "model.6.": "conv_up2.", "model.8.": "conv_hr.", "model.10.": "conv_last."}
        out = {}
        for k, v in sd.items():
            m = re.match(r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv(\d)\.0\.(weight|bias)$", k)
            if m:
                k = f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}"
            else:
                for old, new in fixed.items():
                    if k.startswith(old):
                        k = new + k[len(old):]
                        break
            out[k] = v
        return out
    return sd


def _extract(obj: Mapping, discriminator: bool, prefer_ema: bool, name: str) -> tuple[dict, str]:
    sd, fmt = _select_state_dict(obj, discriminator, prefer_ema, name)
    if sd and all(isinstance(k, str) and k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}  # saved from (Distributed)DataParallel
    return _convert_original_esrgan(sd), fmt


def _open_source(source: str | os.PathLike | Mapping, name: str | None = None) -> tuple[Mapping, str]:
    """(checkpoint, name for error messages) of a path (read with ``load_checkpoint``) or a loaded dict."""
    if isinstance(source, (str, os.PathLike)):
        return load_checkpoint(source), name or str(source)
    return source, name or "the given checkpoint dict"


def extract_state_dict(
    source: str | os.PathLike | Mapping,
    discriminator: bool = False,
    prefer_ema: bool = True,
    name: str | None = None,
) -> dict:
    """The state dict ``load_weights`` would load, with kit key names, without a net to load it into.

    Args:
        source: Path of a checkpoint, or the dict ``torch.load`` returned.
        discriminator: Take the discriminator part (``net_d`` / ``discriminator.``) instead of the generator.
        prefer_ema: Prefer the EMA copy of the generator weights when the file has one.
        name: What error messages call the source (default: its path, or "the given checkpoint dict").
    """
    obj, name = _open_source(source, name)
    return _extract(obj, discriminator, prefer_ema, name)[0]


def _fmt_keys(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_weights(net: nn.Module, source: str | os.PathLike | Mapping, prefer_ema: bool = True) -> nn.Module:
    """Load weights into ``net`` from a checkpoint file or an already loaded dict; returns ``net``.

    Accepted: kit checkpoints (``net_g_ema`` / ``net_g`` / ``net_d``), MMEditing 0.x (``state_dict`` with
    ``generator.`` / ``generator_ema.`` / ``discriminator.`` prefixes), BasicSR / Real-ESRGAN
    (``params_ema`` / ``params``), original ESRGAN key names, bare state dicts, ``module.`` prefixes.
    EMA weights are taken when present and ``prefer_ema``. Loading is strict.

    Args:
        net: The network to fill (a kit generator or ``ModifiedVGG``).
        source: Path of a checkpoint, or the dict ``torch.load`` returned.
        prefer_ema: Prefer the EMA copy of the generator weights when the file has one.
    """
    from facesr.models import describe_state_dict, is_basicsr_msrresnet

    if not isinstance(source, (str, os.PathLike, Mapping)):
        raise FacesrError(f"load_weights needs a checkpoint path or dict, got {type(source).__name__}")
    obj, name = _open_source(source)

    sd, fmt = _extract(obj, _is_discriminator(net), prefer_ema, name)

    target = net.state_dict()
    if is_basicsr_msrresnet(sd):
        raise FacesrError(
            f"{name} holds a BasicSR MSRResNet ({describe_state_dict(sd)}); its weights do not transfer: "
            "BasicSR's MSRResNet puts a LeakyReLU after each pixel shuffle (the kit follows MMEditing, which "
            f"has none) and uses other key names; the net is {describe_state_dict(target)}. "
            "Use an MMEditing or kit checkpoint"
        )

    missing = [k for k in target if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in target]
    mismatched = [
        f"{k} {tuple(sd[k].shape)} vs net {tuple(target[k].shape)}"
        for k in target
        if k in sd and isinstance(sd[k], torch.Tensor) and sd[k].shape != target[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = [f"{name} ({fmt}) does not fit the net: the file holds {describe_state_dict(sd)}; "
                 f"the net is {describe_state_dict(target)}"]
        if missing:
            parts.append(f"missing keys: {_fmt_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_fmt_keys(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches: {_fmt_keys(mismatched, 3)}")
        raise FacesrError("; ".join(parts))
    for k in target:
        if k in sd and not isinstance(sd[k], torch.Tensor):
            raise FacesrError(f"{name}: entry {k!r} is a {type(sd[k]).__name__}, not a tensor")
    net.load_state_dict(sd, strict=False)  # key sets checked above; num_batches_tracked may be absent
    return net
