"""Frozen VGG19 feature extractor for the perceptual loss (MMEditing 0.x ``PerceptualVGG`` semantics).

Layer names are indices into ``torchvision.models.vgg19().features``: ``'34'`` is conv5_4 before its
ReLU, the layer ESRGAN's perceptual loss uses. Only the layers up to the highest requested index are
built, so ``features[:35]`` holds 20,024,384 parameters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn
from torchvision.models import VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

from facesr.errors import FacesrError

# ImageNet statistics torchvision's VGG19 weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# vgg19().features has 37 modules (16 convs, 16 ReLUs, 5 max-pools): valid layer names are '0'..'36'.
_VGG19_CFG = cfgs["E"]
_NUM_VGG19_LAYERS = 37


def imagenet_cache_file() -> Path:
    """Where torchvision's own cache keeps ``VGG19_Weights.IMAGENET1K_V1`` (torch.hub.get_dir()/checkpoints)."""
    url = VGG19_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _offline_hint(file_name: str, folder: Path) -> str:
    return (
        f"put {file_name} (from {VGG19_Weights.IMAGENET1K_V1.url}) into {folder}, or pass "
        f'weights="/path/to/{file_name}" (config field vgg_weights) to use a local copy'
    )


def load_imagenet_vgg19_state() -> dict[str, torch.Tensor]:
    """Load torchvision's ImageNet VGG19 state dict through torchvision's weights API and cache.

    Raises:
        FacesrError: the file is not cached and cannot be downloaded (offline), or the cached copy is
            unreadable. The message names the file torchvision expects and the folder it looks in.
    """
    weights = VGG19_Weights.IMAGENET1K_V1
    cache_file = imagenet_cache_file()
    if not cache_file.is_file():
        # Not cached: torchvision downloads it (and prints its own progress line).
        try:
            return weights.get_state_dict(progress=True, check_hash=True)
        except (URLError, OSError, RuntimeError) as err:
            raise FacesrError(
                f"VGG19 ImageNet weights are not cached and could not be downloaded ({err}); "
                + _offline_hint(cache_file.name, cache_file.parent)
            ) from err
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as err:  # a truncated or corrupt cache file fails inside torch.load
        raise FacesrError(
            f"cannot read the cached VGG19 weights {cache_file} ({type(err).__name__}: {err}); "
            f"replace that file with a good copy of {cache_file.name} or pass "
            f'weights="/path/to/{cache_file.name}" (config field vgg_weights)'
        ) from err


def _load_local_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a local VGG19 state dict: torchvision keys (``features.N.*``) or features-only (``N.*``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FacesrError(
            f"VGG weights file {path} does not exist; give the path of a torchvision vgg19 state dict "
            f'(e.g. {imagenet_cache_file().name}) or use weights="imagenet"'
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise FacesrError(
            f"cannot read VGG weights file {path} ({type(err).__name__}: {err}); "
            "it must be a torchvision vgg19 state dict saved with torch.save"
        ) from err
    if not isinstance(state, Mapping):
        raise FacesrError(
            f"VGG weights file {path} holds a {type(state).__name__}, not a state dict; "
            "save torchvision's vgg19().state_dict() or its features' state dict"
        )
    return dict(state)


def _features_state(state: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Keep the ``features`` part of a VGG19 state dict with keys ``N.weight`` / ``N.bias``."""
    out = {}
    for key, value in state.items():
        if key.startswith("features."):
            out[key[len("features.") :]] = value
        elif key.split(".", 1)[0].isdigit():
            out[key] = value
    if not out:
        raise FacesrError(
            f"VGG weights {source} have no VGG19 feature keys (expected 'features.0.weight' or "
            "'0.weight', ...); use a torchvision vgg19 state dict"
        )
    return out


class VGGFeatureExtractor(nn.Module):
    """Frozen torchvision VGG19 ``features``, cut after the highest requested layer.

    Args:
        layer_names (Sequence[str]): Indices into ``vgg19().features`` whose outputs are returned,
            e.g. ``['34']`` for conv5_4 before its ReLU.
        weights (str | None): ``"imagenet"`` = torchvision's ``VGG19_Weights.IMAGENET1K_V1`` via its
            cache (torch.hub.get_dir()/checkpoints); a file path = a local state dict (torchvision
            vgg19 keys or features-only keys); ``"random"`` or None = random init (tests, quick mode).
        use_input_norm (bool): Normalise [0, 1] inputs with the ImageNet mean and std. Default: True.
    """

    def __init__(
        self,
        layer_names: Sequence[str],
        weights: str | os.PathLike | None = "imagenet",
        use_input_norm: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(layer_names, str):
            layer_names = [layer_names]
        self.layer_names = [str(name) for name in layer_names]
        if not self.layer_names:
            raise FacesrError("VGGFeatureExtractor needs at least one layer name, e.g. ['34']")
        for name in self.layer_names:
            if not name.isdigit() or int(name) >= _NUM_VGG19_LAYERS:
                raise FacesrError(
                    f"unknown VGG19 layer {name!r}; use indices '0'..'{_NUM_VGG19_LAYERS - 1}' of "
                    "vgg19().features ('34' = conv5_4 before ReLU)"
                )
        num_layers = max(int(name) for name in self.layer_names) + 1

        # torchvision's vgg19() builds its `features` with exactly this call; building only the
        # features skips the 102M-parameter classifier the loss never uses (400 MB, ~1 s of init).
        self.features = make_layers(_VGG19_CFG, batch_norm=False)[:num_layers]
        for module in self.features:
            if isinstance(module, nn.ReLU):
                # An in-place ReLU would overwrite a returned conv output (e.g. layer '2' by '3').
                module.inplace = False

        if weights is None or weights == "random":
            self._init_random()
        elif weights == "imagenet":
            self._load_features(load_imagenet_vgg19_state(), f"{imagenet_cache_file()}")
        else:
            self._load_features(_load_local_state(weights), f"file {weights}")

        self.use_input_norm = use_input_norm
        # Non-persistent: the state dict then holds only torchvision-named `features.N.*` keys.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        for param in self.parameters():
            param.requires_grad = False
        self.train(False)

    def _init_random(self) -> None:
        # Same init as torchvision's VGG.__init__ so random features have a sensible scale.
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def _load_features(self, state: Mapping[str, torch.Tensor], source: str) -> None:
        features_state = _features_state(state, source)
        own = self.features.state_dict()
        missing = [key for key in own if key not in features_state]
        if missing:
            raise FacesrError(
                f"VGG weights {source} lack {len(missing)} key(s) the requested layers need "
                f"(first: features.{missing[0]}); use a full torchvision vgg19 state dict"
            )
        for key, value in own.items():
            if tuple(features_state[key].shape) != tuple(value.shape):
                raise FacesrError(
                    f"VGG weights {source}: features.{key} has shape {tuple(features_state[key].shape)}, "
                    f"expected {tuple(value.shape)} (is it a VGG19 without batch norm?)"
                )
        self.features.load_state_dict({key: features_state[key] for key in own})

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        """Stay in eval mode whatever the parent asks: the extractor is frozen."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{layer_name: features}`` for an input (B, 3, H, W) in [0, 1]."""
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        wanted = set(self.layer_names)
        out = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if str(index) in wanted:
                out[str(index)] = x
        return out
