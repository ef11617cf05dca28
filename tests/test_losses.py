"""Pixel, perceptual and relativistic GAN losses, and the VGG19 feature extractor (random weights, no network)."""

from __future__ import annotations

import math
from urllib.error import URLError

import pytest
import torch
import torch.nn.functional as F

from facesr.errors import FacesrError
from facesr.losses import (
    CharbonnierLoss,
    L1Loss,
    PerceptualLoss,
    RelativisticGANLoss,
    build_pixel_loss,
)
from facesr.models.vgg_arch import VGGFeatureExtractor


@pytest.fixture(scope="module")
def vgg34() -> VGGFeatureExtractor:
    torch.manual_seed(0)
    return VGGFeatureExtractor(["34"], weights="random")


# ---------------------------------------------------------------- pixel losses


def test_l1_loss_value() -> None:
    pred = torch.tensor([[0.0, 1.0], [2.0, -3.0]])
    target = torch.zeros(2, 2)
    assert L1Loss()(pred, target).item() == pytest.approx(1.5)
    assert L1Loss(loss_weight=0.01)(pred, target).item() == pytest.approx(0.015)
    assert L1Loss.criterion is F.l1_loss


def test_charbonnier_loss_value() -> None:
    pred = torch.tensor([3.0, -4.0], dtype=torch.float64)
    target = torch.zeros(2, dtype=torch.float64)
    assert CharbonnierLoss()(pred, target).item() == pytest.approx(3.5, abs=1e-9)
    expected = 2.0 * (math.sqrt(9 + 0.5) + math.sqrt(16 + 0.5)) / 2
    assert CharbonnierLoss(loss_weight=2.0, eps=0.5)(pred, target).item() == pytest.approx(expected)
    # eps keeps the gradient finite at zero error.
    x = torch.zeros(3, requires_grad=True)
    CharbonnierLoss()(x, torch.zeros(3)).backward()
    assert torch.isfinite(x.grad).all()


def test_build_pixel_loss() -> None:
    pred = torch.tensor([1.0, -3.0])
    target = torch.zeros(2)
    assert build_pixel_loss("l1", loss_weight=2.0)(pred, target).item() == pytest.approx(4.0)
    assert build_pixel_loss("L2")(pred, target).item() == pytest.approx(5.0)
    assert build_pixel_loss("mse", loss_weight=0.5)(pred, target).item() == pytest.approx(2.5)
    assert isinstance(build_pixel_loss("charbonnier"), CharbonnierLoss)
    with pytest.raises(FacesrError, match="'huber'.*l1, charbonnier, l2, mse"):
        build_pixel_loss("huber")


# ---------------------------------------------------------------- VGG feature extractor


def test_vgg_parameter_count_and_frozen(vgg34: VGGFeatureExtractor) -> None:
    assert len(vgg34.features) == 35
    assert sum(p.numel() for p in vgg34.parameters()) == 20_024_384
    assert not any(p.requires_grad for p in vgg34.parameters())
    parent = torch.nn.Sequential(vgg34)
    parent.train()
    assert not vgg34.training and not any(m.training for m in vgg34.modules())
    # Only torchvision-named weights in the state dict (the normalisation buffers are not persistent).
    assert all(key.startswith("features.") for key in vgg34.state_dict())
    assert VGGFeatureExtractor(["2", "7"], weights=None).features[-1].out_channels == 128


def test_vgg_forward_layers_and_normalisation() -> None:
    torch.manual_seed(1)
    vgg = VGGFeatureExtractor(["2", "4"], weights="random")
    x = torch.rand(1, 3, 32, 32)
    out = vgg(x)
    assert set(out) == {"2", "4"}
    assert out["2"].shape == (1, 64, 32, 32) and out["4"].shape == (1, 64, 16, 16)
    # '2' is conv1_2 before its ReLU: the following ReLU must not overwrite it in place.
    assert (out["2"] < 0).any()
    normed = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(out["2"], vgg.features[:3](normed))
    raw = VGGFeatureExtractor(["2"], weights="random", use_input_norm=False)
    raw.features.load_state_dict(vgg.features[:3].state_dict())
    torch.testing.assert_close(raw(normed)["2"], out["2"])
    with pytest.raises(FacesrError, match="'conv5_4'"):
        VGGFeatureExtractor(["conv5_4"], weights="random")


def test_vgg_local_weights(tmp_path, vgg34: VGGFeatureExtractor) -> None:
    features_only = {k[len("features.") :]: v for k, v in vgg34.state_dict().items()}
    torch.save(features_only, tmp_path / "features.pth")
    # A full torchvision-style dict: features.* keys for all 37 layers plus classifier keys.
    full = {f"features.{k}": v.clone() for k, v in features_only.items()}
    full["features.34.weight"] = full["features.34.weight"] + 1.0
    full["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(full, tmp_path / "full.pth")

    a = VGGFeatureExtractor(["34"], weights=str(tmp_path / "features.pth"))
    torch.testing.assert_close(a.features[0].weight, vgg34.features[0].weight)
    b = VGGFeatureExtractor(["34"], weights=tmp_path / "full.pth")
    torch.testing.assert_close(b.features[34].weight, vgg34.features[34].weight + 1.0)
    assert not any(p.requires_grad for p in b.parameters())

    (tmp_path / "bad.pth").write_bytes(b"this is not a checkpoint")
    with pytest.raises(FacesrError, match="bad.pth"):
        VGGFeatureExtractor(["34"], weights=str(tmp_path / "bad.pth"))
    with pytest.raises(FacesrError, match="missing.pth"):
        VGGFeatureExtractor(["34"], weights=str(tmp_path / "missing.pth"))
    torch.save({k: v for k, v in features_only.items() if not k.startswith("34.")}, tmp_path / "short.pth")
    with pytest.raises(FacesrError, match=r"short.pth.*features\.34\."):
        VGGFeatureExtractor(["34"], weights=str(tmp_path / "short.pth"))


def test_vgg_imagenet_offline_error(tmp_path, monkeypatch) -> None:
    import torchvision.models._api as tv_api

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    calls = []

    def no_network(url, *args, **kwargs):
        calls.append(url)
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", no_network, raising=False)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(FacesrError) as info:
        VGGFeatureExtractor(["34"], weights="imagenet")
    message = str(info.value)
    assert calls and calls[0].endswith("vgg19-dcbb9e9d.pth")
    assert "\n" not in message
    assert "vgg19-dcbb9e9d.pth" in message
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints") in message
    assert 'weights="/path/to/vgg19-dcbb9e9d.pth"' in message and "vgg_weights" in message


def test_vgg_imagenet_corrupt_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"truncated download")
    with pytest.raises(FacesrError, match="vgg19-dcbb9e9d.pth") as info:
        PerceptualLoss(weights="imagenet")
    assert str(cached) in str(info.value)
    assert cached.read_bytes() == b"truncated download"  # never deleted


# ---------------------------------------------------------------- perceptual loss


def test_perceptual_loss_random_weights() -> None:
    torch.manual_seed(2)
    loss_fn = PerceptualLoss(weights="random")
    loss_fn.train()
    gt = torch.rand(1, 3, 32, 32)
    assert loss_fn(gt.clone(), gt).item() == 0.0

    sr = (gt + 0.1 * torch.randn_like(gt)).clamp(0, 1).requires_grad_(True)
    loss = loss_fn(sr, gt)
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss_fn.parameters())
    assert not loss_fn.vgg.training

    feats_sr, feats_gt = loss_fn.vgg(sr.detach()), loss_fn.vgg(gt)
    torch.testing.assert_close(loss.detach(), F.l1_loss(feats_sr["34"], feats_gt["34"]))


def test_perceptual_loss_weights_and_criterion() -> None:
    torch.manual_seed(3)
    loss_fn = PerceptualLoss({"2": 0.5, "34": 1.0}, criterion="l2", perceptual_weight=2.0, weights="random")
    gt, sr = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    fs, fg = loss_fn.vgg(sr), loss_fn.vgg(gt)
    expected = 2.0 * (0.5 * F.mse_loss(fs["2"], fg["2"]) + F.mse_loss(fs["34"], fg["34"]))
    torch.testing.assert_close(loss_fn(sr, gt), expected)
    with pytest.raises(FacesrError, match="'l3'"):
        PerceptualLoss(criterion="l3", weights="random")


# ---------------------------------------------------------------- relativistic GAN loss


def _bce(x: float, target: float) -> float:
    """BCE-with-logits of one logit by hand."""
    p = 1.0 / (1.0 + math.exp(-x))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_relativistic_gan_loss_values() -> None:
    real_vals, fake_vals = [1.0, 3.0], [0.0, -1.0]
    mean_real, mean_fake = sum(real_vals) / 2, sum(fake_vals) / 2
    g_fake = sum(_bce(f - mean_real, 1) for f in fake_vals) / 2
    g_real = sum(_bce(r - mean_fake, 0) for r in real_vals) / 2
    d_real = 0.5 * sum(_bce(r - mean_fake, 1) for r in real_vals) / 2
    d_fake = 0.5 * sum(_bce(f - mean_real, 0) for f in fake_vals) / 2

    gan = RelativisticGANLoss(loss_weight=5e-3)
    real = torch.tensor(real_vals, dtype=torch.float64).view(2, 1).requires_grad_(True)
    fake = torch.tensor(fake_vals, dtype=torch.float64).view(2, 1).requires_grad_(True)

    g_loss = gan.generator_loss(real, fake)
    assert g_loss.item() == pytest.approx(5e-3 * 0.5 * (g_fake + g_real), rel=1e-12)
    g_loss.backward()
    assert real.grad is None and fake.grad.abs().sum() > 0  # D(gt) is detached in the generator step

    fake.grad = None
    loss_real = gan.discriminator_loss_real(real, fake)
    assert loss_real.item() == pytest.approx(d_real, rel=1e-12)
    loss_real.backward()
    assert fake.grad is None and real.grad.abs().sum() > 0

    real.grad = None
    loss_fake = gan.discriminator_loss_fake(fake, real)
    assert loss_fake.item() == pytest.approx(d_fake, rel=1e-12)
    loss_fake.backward()
    assert real.grad is None and fake.grad.abs().sum() > 0

    # No loss_weight on the discriminator halves.
    assert RelativisticGANLoss(loss_weight=1.0).discriminator_loss_real(real, fake).item() == pytest.approx(
        d_real, rel=1e-12
    )
