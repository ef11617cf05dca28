"""What a checkpoint holds: the globals its pickle may ask for, the state dict that fits a net, and the
generator that rebuilds it.

Pure functions (:mod:`facesr.weights.checkpoints` reads the files): the weights-only allow-list and torch's
refusals; container formats (kit, MMEditing 0.x, BasicSR / Real-ESRGAN, original ESRGAN, bare state
dicts); the strict fit check of ``load_weights``; the kit's safetensors metadata; the BasicSR network that
holds a kit generator's weights (:func:`basicsr_network`, from its record); the generator behind
a state dict (kit config or metadata, the kit's key-based detection, then spandrel via
``facesr.models.zoo``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import numpy as np
import torch
from torch.torch_version import TorchVersion

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

# Keys of the safetensors metadata written by ``facesr.weights.exports.export_safetensors`` (all values are strings).
META_GENERATOR = "facesr_generator"
META_GENERATOR_ARGS = "facesr_generator_args"
META_VERSION = "facesr_version"
META_PARAMETERS = "facesr_parameters"
META_EDITION = "facesr_edition"  # the edition of the run it came from; absent when unknown


# ------------------------------------------------------------------------------ pickles


def _numpy_state_globals() -> list:
    """The globals a pickled ``np.random.get_state()`` tuple and numpy scalars need, and nothing else."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x before the numpy._core alias
        from numpy.core import multiarray
    found = [np.ndarray, np.dtype]
    # BUILD of a dtype needs its class: uint32 is the MT19937 key array, float64 and int64 the numpy
    # scalars (np.mean / np.argmax results) older checkpoints kept in metrics and counters.
    found += [type(np.dtype(name)) for name in ("uint32", "float64", "int64")]
    if torch.__version__ < "2.6":  # (global, name) pairs came in torch 2.6: the installed numpy's names only
        return [*found, multiarray._reconstruct, multiarray.scalar]
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2.x and 1.x pickles
        found += [(multiarray._reconstruct, f"{module}._reconstruct"),
                  (multiarray.scalar, f"{module}.scalar")]
    return found


# What ``torch.load(weights_only=True)`` may build beyond tensors and plain containers: the numpy state of
# older kit checkpoints, and torch.__version__ (a str subclass) that the kit's run_info held before it
# stored plain strings. Nothing here runs code: these build arrays, scalars, dtypes and a string.
SAFE_GLOBALS: list = [*_numpy_state_globals(), TorchVersion]


def load_error_reason(exc: BaseException) -> str:
    """The specific line of torch's paragraph-long messages (between its boilerplate), first sentence."""
    boilerplate = ("Weights only load failed", "In PyTorch", "(1)", "(2)", "Check the documentation",
                   "Please file")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    specific = [ln for ln in lines if not ln.startswith(boilerplate)] or lines
    text = specific[0].removeprefix("WeightsUnpickler error:").strip() if specific else ""
    return text.split(". ")[0].rstrip(".") if text else type(exc).__name__


def refused_global(exc: BaseException) -> str | None:
    """The global a weights-only load refused, as torch's UnpicklingError names it; None for other errors."""
    text = str(exc)
    if "weights only load failed" not in text.lower():
        return None
    for pattern in (r"GLOBAL ([\w.]+)", r"but got <class '([\w.]+)'>", r"Unsupported class ([\w.]+)"):
        if match := re.search(pattern, text):  # the last spelling is torch < 2.4's
            return match.group(1)
    return None


# ------------------------------------------------------------------------------ containers


def _is_tensor_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _select_state_dict(obj: Mapping, discriminator: bool, prefer_ema: bool, name: str) -> tuple[dict, str]:
    """Pick the state dict in a container that fits the net's role; returns (state dict, format name)."""
    if any(k in obj for k in _KIT_KEYS):
        if discriminator:
            if obj.get("net_d") is None:
                raise FacesrError(f"{name} holds no discriminator weights (no 'net_d'); "
                                  "it is not a GAN checkpoint")
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
        shown = " / ".join(prefixes)
        raise FacesrError(f"{name} is an MMEditing checkpoint without {role} weights ({shown})")
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


def extract(obj: Mapping, discriminator: bool, prefer_ema: bool, name: str) -> tuple[dict, str]:
    """(state dict with kit key names, format name) of a loaded container.

    Args:
        obj: The loaded checkpoint.
        discriminator: Take the discriminator part instead of the generator.
        prefer_ema: Prefer the EMA copy of the generator weights when there is one.
        name: What error messages call it.
    """
    sd, fmt = _select_state_dict(obj, discriminator, prefer_ema, name)
    if sd and all(isinstance(k, str) and k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}  # saved from (Distributed)DataParallel
    return _convert_original_esrgan(sd), fmt


def _fmt_keys(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" ... ({len(keys)} in all)" if len(keys) > limit else "")


def check_fit(sd: Mapping, target: Mapping, name: str, fmt: str) -> None:
    """FacesrError saying what the file holds unless ``sd`` fits the net's ``target`` state dict exactly.

    Args:
        sd: The state dict from the file.
        target: The net's ``state_dict()``.
        name: What error messages call the file.
        fmt: Its format, as :func:`extract` names it.
    """
    from facesr.models import describe_state_dict, generator_architecture, is_basicsr_msrresnet

    if is_basicsr_msrresnet(sd) and not is_basicsr_msrresnet(target):
        found = generator_architecture(sd)
        build = f"build_generator('msrresnet_basicsr', **{found[1] if found else {}})"
        raise FacesrError(
            f"{name} holds a BasicSR MSRResNet ({describe_state_dict(sd)}); its weights do not transfer: "
            "BasicSR's MSRResNet puts a LeakyReLU after each pixel shuffle (the kit's msrresnet follows MMEditing, "
            f"which has none) and uses other key names; the net is {describe_state_dict(target)}. Load it into "
            f"{build}, or with load_generator, which builds that"
        )
    if is_basicsr_msrresnet(target) and any(isinstance(k, str) and k.startswith("trunk_net.") for k in sd):
        raise FacesrError(
            f"{name} holds an MMEditing MSRResNet ({describe_state_dict(sd)}); its weights do not transfer into "
            f"BasicSR's MSRResNet ({describe_state_dict(target)}), which puts a LeakyReLU after each pixel "
            "shuffle; load it into build_generator('msrresnet', ...) or with load_generator"
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


# ------------------------------------------------------------------------------ BasicSR files


def basicsr_network(generator: str, generator_args: Mapping) -> str:
    """The BasicSR constructor call that builds the net of ``generator`` (``"MSRResNet(num_feat=64, ...)"``).

    Every argument is spelled out (the record's defaults filled in: BasicSR's defaults differ from the kit's),
    under BasicSR's names (the record's ``basicsr_args``).

    Args:
        generator: Its name in :data:`facesr.models.GENERATORS`.
        generator_args: Its ``build_generator`` kwargs.

    Raises:
        FacesrError: for a generator whose weights BasicSR's archs do not hold under the same names (its record
            has no ``basicsr`` class: the kit's MMEditing ``msrresnet``, ``rcan``).
    """
    from facesr.models import generator_record

    record = generator_record(generator)
    if record.basicsr is None:
        raise FacesrError(f"{generator} cannot be written as a BasicSR file: {record.basicsr_why_not}; export it "
                          "as .safetensors")
    args = {k: list(v) if isinstance(v, tuple) else v for k, v in {**record.defaults, **generator_args}.items()}
    return f"{record.basicsr}({', '.join(f'{record.basicsr_args.get(k, k)}={v!r}' for k, v in args.items())})"


# ------------------------------------------------------------------------------ which generator


def generator_metadata(
    generator: str, generator_args: Mapping, n_params: int, edition: int | None = None
) -> dict[str, str]:
    """The safetensors metadata of an exported generator (string values, as safetensors requires).

    Args:
        generator: Its name in :data:`facesr.models.GENERATORS`.
        generator_args: Its ``build_generator`` kwargs, written as JSON.
        n_params: Its trainable parameter count.
        edition: The edition of the run it came from (``TrainConfig.edition``); None leaves it out.
    """
    import facesr

    try:
        args = json.dumps(dict(generator_args), sort_keys=True)
    except (TypeError, ValueError) as err:
        msg = f"generator_args {generator_args!r} of {generator!r} are not JSON values ({err})"
        raise FacesrError(msg) from None
    meta = {"format": "pt", META_GENERATOR: str(generator), META_GENERATOR_ARGS: args,
            META_VERSION: facesr.__version__, META_PARAMETERS: str(int(n_params))}
    if edition is not None:
        meta[META_EDITION] = str(int(edition))
    return meta


def metadata_spec(meta: Mapping[str, str], name: str) -> tuple[str, dict] | None:
    """(generator, kwargs) from the kit's safetensors metadata, or None for a file without it.

    Args:
        meta: The file's metadata (see :func:`generator_metadata`).
        name: What error messages call the file.

    Raises:
        FacesrError: when the kit's keys are there but inconsistent.
    """
    key, args_key = META_GENERATOR, META_GENERATOR_ARGS
    if key not in meta:
        if args_key in meta:
            raise FacesrError(f"{name}: metadata has {args_key} but no {key}; re-export it")
        return None
    try:
        args = json.loads(meta.get(args_key) or "{}")
    except ValueError as err:
        raise FacesrError(f"{name}: metadata {args_key} is not JSON ({err}); re-export it") from None
    if not isinstance(args, dict):
        kind = type(args).__name__
        raise FacesrError(f"{name}: metadata {args_key} is a {kind}, not a JSON object; re-export it")
    return meta[key], args


def config_spec(obj: Mapping) -> tuple[str, dict] | None:
    """(generator, kwargs) from a kit checkpoint's ``config``, or None when it has none."""
    config = obj.get("config")
    if isinstance(config, Mapping) and config.get("generator"):
        return str(config["generator"]), dict(config.get("generator_args") or {})
    return None


def config_edition(obj: Mapping) -> int | None:
    """The edition in a kit checkpoint's ``config`` (``TrainConfig.edition``), or None when it has none."""
    config = obj.get("config")
    edition = config.get("edition") if isinstance(config, Mapping) else None
    return int(edition) if isinstance(edition, int) and not isinstance(edition, bool) else None


def metadata_edition(meta: Mapping[str, str]) -> int | None:
    """The edition in the kit's safetensors metadata (:data:`META_EDITION`), or None when it has none."""
    value = str(meta.get(META_EDITION, "")).strip()
    return int(value) if value.isdigit() else None


def detect_generator(sd: Mapping, name: str) -> tuple[str, dict] | None:
    """(generator, kwargs) the kit rebuilds ``sd`` with: its key-based detection, then spandrel's.

    Args:
        sd: A state dict with kit key names (from :func:`extract`).
        name: What error messages call its file.

    Returns:
        None when neither knows it as a kit generator (``zoo.spandrel_model`` may still build it).
    """
    from facesr.models import describe_state_dict, generator_architecture
    from facesr.models.zoo import spandrel_architecture

    guess = generator_architecture(sd)
    if guess is not None:
        return guess
    try:
        return spandrel_architecture(sd)
    except FacesrError as err:  # spandrel missing, or a network it detects but cannot build
        raise FacesrError(f"{name} holds {describe_state_dict(sd)}, not a generator the kit can rebuild "
                          f"(MSRResNet or RRDBNet weights), and spandrel cannot tell: {err}") from None
