"""Loading a checkpoint never runs code: a malicious pickle at every entry point, trust, old formats, safetensors."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from facesr.cli import main
from facesr.config import get_config
from facesr.errors import FacesrError
from facesr.inference.predict import load_generator
from facesr.models import GENERATORS, MSRResNet, build_generator, count_parameters, inference_form
from facesr.training import train
from facesr.weights.checkpoints import (
    extract_state_dict,
    load_checkpoint,
    load_weights,
    read_generator,
    save_checkpoint,
)
from facesr.weights.exports import export_generator, export_safetensors

safetensors_torch = pytest.importorskip("safetensors.torch")

TINY = {"generator_args": {"mid_channels": 16, "num_blocks": 2}, "gt_patch": 64, "batch_size": 2,
        "log_every": 2, "checkpoint_every": 2, "val_every": 1000, "iters": 4, "keep_last": 5}
TINY_ARGS = ["--set", "generator_args.mid_channels=16", "--set", "generator_args.num_blocks=2"]
# Small sizes of the registry's generators; a generator not listed is built with its defaults.
SMALL = {"msrresnet": {"mid_channels": 8, "num_blocks": 2},
         "rrdbnet": {"mid_channels": 8, "num_blocks": 1, "growth_channels": 4},
         "swinir": {"embed_dim": 12, "depths": [2], "num_heads": [2], "window_size": 4, "img_size": 16,
                    "upsampler": "pixelshuffledirect", "upscale": 4},
         "rcan": {"n_resgroups": 1, "n_resblocks": 1, "n_feats": 8, "reduction": 4}}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets on a shared 2-core machine
    yield
    torch.set_num_threads(threads)


def _tiny_cfg(**kw: object):
    return get_config("srgan", quick=True, **{**TINY, **kw})


def _tiny_msr(seed: int = 0) -> MSRResNet:
    torch.manual_seed(seed)
    return MSRResNet(mid_channels=16, num_blocks=2)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _Shell:
    """Unpickled in full, runs a shell command (what the issue's peer-shared .pth did)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


CALLS: list[int] = []


def _harmless_state_dict(seed: int) -> dict:
    """A harmless payload: records that it ran, then returns the tiny generator's weights."""
    CALLS.append(seed)
    return _tiny_msr(seed).state_dict()


class _Harmless:
    def __reduce__(self):
        return _harmless_state_dict, (3,)


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path]:
    """(a kit-looking checkpoint whose unpickling would create ``marker``, marker)."""
    marker = tmp_path / "MARKER"
    config = {"generator": "msrresnet", "generator_args": TINY["generator_args"]}
    ckpt = {"net_g": _tiny_msr().state_dict(), "iter": 2, "config": config,
            "net_g_ema": _Shell(f"touch {shlex.quote(str(marker))}")}
    path = tmp_path / "peer_model.pth"
    torch.save(ckpt, path)
    return path, marker


def _refused(err: str, path: Path) -> None:
    assert str(path) in err and "wants posix.system" in err and "trust=True" in err, err
    assert "--trust-checkpoint" in err and "\n" not in err


def test_the_payload_is_real(evil: tuple[Path, Path]) -> None:
    path, marker = evil
    torch.load(path, weights_only=False)  # what the kit did before: the command runs
    assert marker.exists()


@pytest.mark.parametrize("entry", ["load_checkpoint", "load_weights", "extract_state_dict", "load_generator",
                                   "load_generator(run best.pt)", "load_generator(run latest.pt)",
                                   "read_generator"])
def test_library_entry_points_refuse(entry: str, evil: tuple[Path, Path], tmp_path: Path) -> None:
    path, marker = evil
    if "run" in entry:
        run = tmp_path / "run"
        run.mkdir()
        path = run / ("best.pt" if "best" in entry else "latest.pt")
        evil[0].rename(path)
    calls: dict[str, Callable[[], object]] = {
        "load_checkpoint": lambda: load_checkpoint(path),
        "load_weights": lambda: load_weights(_tiny_msr(), path),
        "extract_state_dict": lambda: extract_state_dict(path),
        "read_generator": lambda: read_generator(path),
    }
    with pytest.raises(FacesrError) as err:
        calls.get(entry, lambda: load_generator(path.parent if "run" in entry else path))()
    _refused(str(err.value), path)
    assert not marker.exists()


def test_train_refuses_a_malicious_latest_and_init(evil: tuple[Path, Path], sample_root: Path, tmp_path) -> None:
    path, marker = evil
    run = tmp_path / "runs" / "srgan"
    run.mkdir(parents=True)
    latest = run / "latest.pt"
    latest.write_bytes(path.read_bytes())
    with pytest.raises(FacesrError) as err:
        train(_tiny_cfg(), data_root=sample_root, runs_dir=tmp_path / "runs")
    _refused(str(err.value), latest)
    assert latest.read_bytes() == path.read_bytes() and sorted(os.listdir(run)) == ["latest.pt"]
    with pytest.raises(FacesrError) as err:
        train(_tiny_cfg(), data_root=sample_root, runs_dir=tmp_path / "fresh", init=path)
    _refused(str(err.value), path)
    assert not marker.exists() and not (tmp_path / "fresh" / "srgan").exists()


def test_cli_entry_points_refuse(evil: tuple[Path, Path], mini_root: Path, sample_root: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    path, marker = evil
    out = tmp_path / "out"
    run = tmp_path / "runs" / "srgan"
    run.mkdir(parents=True)
    (run / "latest.pt").write_bytes(path.read_bytes())
    train_args = ["train", "srgan", "--quick", "--data", str(sample_root), *TINY_ARGS]
    commands = {
        "predict": ["predict", str(path), str(mini_root / "test" / "LQ"), str(out / "sr")],
        "evaluate": ["evaluate", str(path), "--data", str(mini_root), "--csv", str(out / "e.csv")],
        "export": ["export", str(path), str(out / "g.safetensors")],
        "train --init": [*train_args, "--runs", str(tmp_path / "fresh"), "--init", str(path)],
        "train (resume)": [*train_args, "--runs", str(tmp_path / "runs")],
    }
    for name, argv in commands.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: "), name
        _refused(err, run / "latest.pt" if name == "train (resume)" else path)
    assert not marker.exists() and not out.exists() and not (tmp_path / "fresh" / "srgan").exists()


def test_other_refused_globals_are_named(tmp_path: Path) -> None:
    marker = tmp_path / "TOUCHED"

    class Touch:
        def __reduce__(self):
            return Path.touch, (marker,)

    # torch 2.6 names the builtin with its module (builtins.getattr), newer releases without it
    cases = {r"(builtins\.)?getattr": Touch(), r"numpy\.random\._pickle\.__randomstate_ctor": np.random.RandomState(0)}
    for wanted, payload in cases.items():
        torch.save({"x": payload}, tmp_path / "f.pt")
        with pytest.raises(FacesrError, match=f"wants {wanted},.*trust=True"):
            load_checkpoint(tmp_path / "f.pt")
    assert not marker.exists()


# ------------------------------------------------------------------------------------------ trust


def test_trust_loads_what_a_plain_load_refuses(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = {"generator": "msrresnet", "generator_args": TINY["generator_args"]}
    path = tmp_path / "trusted.pt"
    torch.save({"net_g": _Harmless(), "iter": 1, "config": config}, path)
    expected = _tiny_msr(3).state_dict()
    CALLS.clear()
    with pytest.raises(FacesrError, match="wants .*_harmless_state_dict"):
        load_generator(path)
    assert CALLS == []
    assert _same(load_checkpoint(path, trust=True)["net_g"], expected)
    assert _same(extract_state_dict(path, trust=True), expected)
    assert _same(load_weights(_tiny_msr(), path, trust=True).state_dict(), expected)
    assert _same(load_generator(path, trust=True).state_dict(), expected)
    out = tmp_path / "shared.safetensors"
    assert main(["export", str(path), str(out), "--trust-checkpoint"]) == 0
    assert "msrresnet" in capsys.readouterr().out
    assert _same(load_generator(out).state_dict(), expected)  # the export needs no trust
    assert len(CALLS) == 5


def test_train_init_with_trust(tmp_path: Path, sample_root: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "trusted.pt"
    torch.save({"net_g": _Harmless()}, path)
    CALLS.clear()
    run = train(_tiny_cfg(iters=1), data_root=sample_root, runs_dir=tmp_path / "runs", init=path, trust=True)
    assert f"generator initialised from {path}" in capsys.readouterr().out
    assert CALLS == [3] and (run / "latest.pt").is_file()


# --------------------------------------------------------------------------------- old kit checkpoints


def test_old_format_checkpoint_resumes_bit_exact_without_trust(sample_root: Path, tmp_path: Path) -> None:
    clean = train(_tiny_cfg(), data_root=sample_root, runs_dir=tmp_path / "clean")
    for name in ("iter_000002.pt", "latest.pt"):
        torch.load(clean / name, weights_only=True)  # the kit's own checkpoints need no allow-list
    old = load_checkpoint(clean / "iter_000002.pt")
    name, keys, *rest = old["rng"]["numpy"]
    old["rng"]["numpy"] = (name, keys.numpy().astype(np.uint32), *rest)  # as np.random.get_state() gives it
    old["best"] = {"metric": "psnr", "value": np.float64(10.0), "iter": np.int64(2)}
    old["run_info"]["torch"] = torch.__version__  # a TorchVersion, as run_info held it
    resumed = tmp_path / "resumed" / "srgan"
    resumed.mkdir(parents=True)
    torch.save(old, resumed / "latest.pt")
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(resumed / "latest.pt", weights_only=True)  # needs the allow-list
    train(_tiny_cfg(), data_root=sample_root, runs_dir=tmp_path / "resumed")
    a = torch.load(clean / "latest.pt", weights_only=True)
    b = torch.load(resumed / "latest.pt", weights_only=True)  # plain again after the resume
    assert a["iter"] == b["iter"] == 4
    assert _same(a["net_g"], b["net_g"]) and _same(a["net_g_ema"], b["net_g_ema"])
    assert type(b["best"]["value"]) is float and type(b["run_info"]["torch"]) is str


def test_numpy_1_and_2_spellings_load_through_the_allow_list(tmp_path: Path) -> None:
    """A checkpoint written under either numpy major loads under the installed one (1.x or 2.x)."""
    state = np.random.get_state()
    path = tmp_path / "np.pt"
    torch.save({"numpy": state, "best": np.float64(28.9)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    spellings = (b"numpy._core.multiarray", b"numpy.core.multiarray")  # numpy 2.x's names, 1.x's
    written = next(s for s in spellings if s in data)  # the installed numpy's
    assert data.count(written) >= 2  # _reconstruct and scalar
    for spelling in spellings:
        path.write_bytes(data.replace(written, spelling))
        loaded = load_checkpoint(path)
        assert np.array_equal(loaded["numpy"][1], state[1]) and loaded["numpy"][2:] == state[2:]
        assert loaded["best"] == 28.9


# ------------------------------------------------------------------------------------------ safetensors


@pytest.mark.parametrize("name", sorted(set(GENERATORS) | set(SMALL)))
def test_safetensors_round_trip(name: str, tmp_path: Path) -> None:
    if name not in GENERATORS:
        pytest.skip(f"{name} is not in the registry")
    kwargs = SMALL.get(name, {})
    torch.manual_seed(0)
    net = build_generator(name, **kwargs)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
    out = export_safetensors(net, tmp_path / "g.safetensors", name, kwargs)
    with safetensors_torch.safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
    assert meta["facesr_generator"] == name and json.loads(meta["facesr_generator_args"]) == kwargs
    assert meta["facesr_parameters"] == str(count_parameters(net)) and meta["facesr_version"]
    loaded = load_generator(out)
    submitted, _ = inference_form(name, kwargs, net.eval())  # SPAN comes back fused, the form it is submitted in
    assert type(loaded) is type(net) and _same(loaded.state_dict(), submitted.state_dict())
    assert _same(load_weights(build_generator(name, **kwargs), out).state_dict(), net.state_dict())
    with pytest.raises(FacesrError, match="already exists"):
        export_safetensors(net, out, name, kwargs)


def test_cli_export_of_a_run_and_bare_safetensors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    net_g, net_g_ema = _tiny_msr(1), _tiny_msr(2)
    config = {"generator": "msrresnet", "generator_args": TINY["generator_args"]}
    save_checkpoint({"net_g": net_g.state_dict(), "net_g_ema": net_g_ema.state_dict(), "config": config},
                    tmp_path / "run" / "latest.pt")
    out = tmp_path / "g.safetensors"
    assert main(["export", str(tmp_path / "run"), str(out)]) == 0
    assert "parameters (within the 1,821,085 limit)" in capsys.readouterr().out
    assert _same(load_generator(out).state_dict(), net_g_ema.state_dict())  # the EMA weights
    before = out.read_bytes()
    assert main(["export", str(tmp_path / "run"), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "g.pt")]) == 2
    assert ".safetensors name" in capsys.readouterr().err
    save_checkpoint({"net_g": net_g.state_dict(), "config": config}, tmp_path / "run" / "latest.pt")
    assert main(["export", str(tmp_path / "run"), str(out), "--overwrite"]) == 0
    assert _same(load_generator(out).state_dict(), net_g.state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.safetensors", "run"]  # no temp file left
    bare = tmp_path / "bare.safetensors"
    safetensors_torch.save_file(net_g.state_dict(), str(bare))  # no kit metadata: detected from key names
    loaded = load_generator(bare)
    assert isinstance(loaded, MSRResNet) and _same(loaded.state_dict(), net_g.state_dict())


WRONG_METADATA = {
    "unknown generator": ({"facesr_generator": "nosuchnet"}, "unknown generator 'nosuchnet'"),
    "args not JSON": ({"facesr_generator": "msrresnet", "facesr_generator_args": "{mid"}, "is not JSON"),
    "args not an object": ({"facesr_generator": "msrresnet", "facesr_generator_args": "[16]"}, "not a JSON object"),
    "args that do not build": ({"facesr_generator": "msrresnet", "facesr_generator_args": '{"width": 3}'},
                               "bad arguments for generator 'msrresnet'"),
    "weights that do not fit": ({"facesr_generator": "msrresnet", "facesr_generator_args": '{"mid_channels": 8}'},
                                "does not fit the net"),
    "wrong parameter count": ({"facesr_generator": "msrresnet",
                               "facesr_generator_args": '{"mid_channels": 16, "num_blocks": 2}',
                               "facesr_parameters": "12"}, "metadata says 12 parameters"),
    "args without generator": ({"facesr_generator_args": "{}"}, "no facesr_generator"),
}


@pytest.mark.parametrize("case", sorted(WRONG_METADATA))
def test_safetensors_with_wrong_metadata_is_refused(case: str, tmp_path: Path) -> None:
    meta, message = WRONG_METADATA[case]
    path = tmp_path / "shared.safetensors"
    safetensors_torch.save_file(_tiny_msr().state_dict(), str(path), metadata=meta)
    with pytest.raises(FacesrError) as err:
        load_generator(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_corrupt_safetensors_and_bad_exports(tmp_path: Path) -> None:
    net = _tiny_msr()
    good = export_safetensors(net, tmp_path / "g.safetensors", "msrresnet", TINY["generator_args"])
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:200])
    for fn in (load_generator, load_checkpoint, lambda p: load_weights(_tiny_msr(), p)):
        with pytest.raises(FacesrError, match="cut.safetensors.*corrupt or truncated"):
            fn(cut)
    with pytest.raises(FacesrError, match="does not fit"):  # metadata that would not rebuild the weights
        export_safetensors(net, tmp_path / "x.safetensors", "msrresnet", {"mid_channels": 8})
    with pytest.raises(FacesrError, match="unknown generator"):
        export_safetensors(net, tmp_path / "x.safetensors", "nosuchnet", {})
    assert not (tmp_path / "x.safetensors").exists()


# ----------------------------------------------------------------------------------------- spandrel


def test_spandrel_network_loads_from_the_kits_own_safe_load(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("facesr.models.zoo")
    spandrel = pytest.importorskip("spandrel")
    from spandrel.architectures.Compact import Compact

    def no_file_loading(*args, **kwargs):
        raise AssertionError("spandrel read the file itself")

    monkeypatch.setattr(spandrel.ModelLoader, "load_from_file", no_file_loading)
    torch.manual_seed(0)
    compact = Compact(num_feat=8, num_conv=2, upscale=4)  # Real-ESRGAN's SRVGGNetCompact: not in the registry
    for path in (tmp_path / "compact.pth", tmp_path / "compact.safetensors"):
        if path.suffix == ".pth":
            torch.save({"params": compact.state_dict()}, path)
        else:
            safetensors_torch.save_file(compact.state_dict(), str(path))
        net = load_generator(path)
        assert count_parameters(net) == count_parameters(compact)
        x = torch.rand(1, 3, 8, 8)
        with torch.no_grad():
            assert torch.allclose(net(x), compact.eval()(x), atol=1e-5)
    with pytest.raises(FacesrError, match="spandrel builds but the kit does not register"):
        export_generator(tmp_path / "compact.pth", tmp_path / "c.safetensors")


@pytest.mark.parametrize("name", sorted(set(GENERATORS) - {"msrresnet", "rrdbnet"}))
def test_registered_spandrel_generators_are_detected(name: str, tmp_path: Path) -> None:
    kwargs = SMALL.get(name, {})
    net = build_generator(name, **kwargs)
    torch.save(net.state_dict(), tmp_path / "bare.pth")  # official key names, no kit config
    loaded = load_generator(tmp_path / "bare.pth")
    submitted, _ = inference_form(name, kwargs, net.eval())  # SPAN: fused, as the kit counts and submits it
    assert type(loaded) is type(net) and _same(loaded.state_dict(), submitted.state_dict())
