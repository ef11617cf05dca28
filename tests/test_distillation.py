"""Distillation (the ``_kd`` configs) and checkpoint averaging (``python -m facesr average``) on one small run.

The run: ``msrresnet20_kd`` in quick mode with a small student, distilled from a tiny RRDBNet teacher exported
to a file (as notebook 04's run would be), 16 iterations at a constant lr with checkpoints at 8 and 16: the
reference for the resume check, the run whose teacher must be absent from every file, and the checkpoints the
average is made of.
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from facesr.config import get_config
from facesr.errors import FacesrError
from facesr.models import build_generator, count_parameters
from facesr.training import train
from facesr.weights.checkpoints import load_checkpoint

ITERS = 16
STUDENT = {"mid_channels": 16, "num_blocks": 2}
TEACHER = {"mid_channels": 8, "num_blocks": 1, "growth_channels": 4}
# A constant lr, a log row every 2 iterations, checkpoints at 8 and 16 (both kept), one validation at the end.
SETTINGS = {"generator_args": STUDENT, "gt_patch": 64, "batch_size": 2, "iters": ITERS, "log_every": 2,
            "checkpoint_every": 8, "val_every": ITERS, "keep_last": 2, "scheduler": "multistep", "milestones": [],
            "warmup_iters": 0, "checkpoint_minutes": 0.0}


@pytest.fixture(scope="module")
def data_root(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 training faces, 2 val pairs and 2 test LQ of the sample data."""
    from facesr.data.sample import copy_data_subset

    counts = {"train/GT": 8, "val/LQ": 2, "val/GT": 2, "test/LQ": 2}
    return copy_data_subset(sample_root, tmp_path_factory.mktemp("kd") / "data", counts)


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny RRDBNet teacher of the 2022 edition, as an exported file (a run folder works the same)."""
    from facesr.weights.exports import export_safetensors

    torch.manual_seed(1)
    net = build_generator("rrdbnet", **TEACHER)
    return export_safetensors(net, tmp_path_factory.mktemp("teacher") / "teacher.safetensors", "rrdbnet", TEACHER,
                              edition=2022)


def _cfg(teacher: Path, **changes: object):
    # the teacher weighted up: with equal L1 weights the loss is flat between GT and teacher, so the pull towards
    # the teacher only shows where it outweighs the GT term
    return get_config("msrresnet20_kd", quick=True, teacher=str(teacher), distill_weight=4.0,
                      **{**SETTINGS, **changes})


@pytest.fixture(scope="module")
def kd_run(data_root: Path, teacher_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted ``_kd`` run."""
    return train(_cfg(teacher_file), data_root=data_root, runs_dir=tmp_path_factory.mktemp("runs"))


def _teacher_l1(net: torch.nn.Module, teacher: torch.nn.Module, lqs: torch.Tensor) -> float:
    with torch.no_grad():
        return float(F.l1_loss(net.eval()(lqs), teacher(lqs)))


def test_a_kd_run_learns_towards_its_teacher(kd_run: Path, data_root: Path, teacher_file: Path) -> None:
    from facesr.data.datasets import ValDataset
    from facesr.inference.predict import load_generator
    from facesr.training.logs import read_run_logs
    from facesr.weights.checkpoints import load_weights

    teacher = load_generator(teacher_file)
    lqs = torch.stack([item["lq"][:, :32, :32] for item in ValDataset(data_root)])  # unseen: the val LQ
    torch.manual_seed(get_config("msrresnet20_kd").seed)  # the trainer seeds, then builds the student first
    start = build_generator("msrresnet", **STUDENT)
    trained = load_weights(build_generator("msrresnet", **STUDENT), kd_run / "latest.pt", prefer_ema=False)
    before, after = _teacher_l1(start, teacher, lqs), _teacher_l1(trained, teacher, lqs)
    assert after < 0.97 * before, (before, after)  # 0.444 -> 0.421 when written
    log = read_run_logs(kd_run)[0]
    assert list(log.columns[2:4]) == ["l_pix", "l_distill"]  # its own column, after the pixel loss


def test_the_teacher_is_in_no_file_and_not_counted(kd_run: Path, teacher_file: Path, capsys) -> None:
    from facesr.cli import main
    from facesr.inference.predict import load_generator

    teacher = [t for t in load_generator(teacher_file).state_dict().values() if t.numel() > 1]

    def tensors(obj: object):
        if isinstance(obj, torch.Tensor):
            yield obj
        elif isinstance(obj, dict):
            for value in obj.values():
                yield from tensors(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                yield from tensors(value)

    files = sorted(kd_run.iterdir())
    assert {p.name for p in files} >= {"latest.pt", "best.pt", "iter_000008.pt", "iter_000016.pt", "config.json"}
    for path in files:
        if path.suffix == ".pt":
            written = list(tensors(load_checkpoint(path)))
            assert not any(w.shape == t.shape and torch.equal(w, t) for w in written for t in teacher), path
            assert not any("teacher" in str(k) for k in load_checkpoint(path)["net_g"]), path
        else:
            assert "rdb1" not in path.read_text(errors="replace"), path
    student = count_parameters(build_generator("msrresnet", **STUDENT))
    assert count_parameters(load_generator(kd_run)) == student
    assert main(["params", str(kd_run)]) == 0
    assert f"{student:,} parameters" in capsys.readouterr().out


def test_a_resumed_kd_run_is_bit_identical(kd_run: Path, data_root: Path, teacher_file: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, assert_same_run) -> None:
    import facesr.training.loop as loop
    from facesr.training.logs import read_run_logs
    from facesr.training.stopping import TrainingStopped

    at, real, calls = random.Random("kd resume").randint(3, ITERS - 3), loop.train_step, []

    def step(*args, **kwargs):
        calls.append(1)
        out = real(*args, **kwargs)
        if len(calls) == at:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(loop, "train_step", step)
    with pytest.raises(TrainingStopped):
        train(_cfg(teacher_file), data_root=data_root, runs_dir=tmp_path)
    monkeypatch.undo()
    train(_cfg(teacher_file), data_root=data_root, runs_dir=tmp_path)
    assert_same_run(kd_run, tmp_path / "msrresnet20_kd")
    a, b = read_run_logs(kd_run)[0], read_run_logs(tmp_path / "msrresnet20_kd")[0]
    assert list(a["l_distill"]) == list(b["l_distill"])


def test_a_missing_teacher_names_notebook_04_and_another_edition_is_refused(
    data_root: Path, teacher_file: Path, tmp_path: Path
) -> None:
    cfg = get_config("msrresnet20_kd", quick=True, **SETTINGS)  # teacher "esrgan": no such run in tmp_path
    with pytest.raises(FacesrError) as err:
        train(cfg, data_root=data_root, runs_dir=tmp_path)
    text = str(err.value)
    assert "\n" not in text and "notebook 04" in text and "python -m facesr train esrgan" in text, text
    assert not (tmp_path / "msrresnet20_kd").exists()  # refused before anything is written
    other = get_config("msrresnet20_kd", quick=True, edition=2024, teacher=str(teacher_file),
                       **{**SETTINGS, "generator_args": {"num_feat": 16, "num_block": 2}})
    with pytest.raises(FacesrError, match="trained for the 2022 edition, msrresnet20_kd for 2024"):
        train(other, data_root=data_root, runs_dir=tmp_path)
    with pytest.raises(FacesrError, match="distill_weight=1.0 must be >= 0, and > 0 only with a teacher"):
        get_config("msrresnet20", distill_weight=1.0)


def test_a_teacher_of_another_scale_is_refused(tmp_path: Path) -> None:
    from facesr.training.teacher import load_teacher
    from facesr.weights.exports import export_safetensors

    x2 = {**TEACHER, "upscale_factor": 2}
    path = export_safetensors(build_generator("rrdbnet", **x2), tmp_path / "x2.safetensors", "rrdbnet", x2,
                              edition=2022)
    with pytest.raises(FacesrError, match=r"turns a 3x16x16 image into 3x32x32, not the student's 3x64x64"):
        load_teacher(get_config("msrresnet20_kd", teacher=str(path)))


# ------------------------------------------------------------------------------------------------- averaging
def test_average_is_the_mean_of_the_ema_tensors_and_a_run_like_any(kd_run: Path, data_root: Path,
                                                                   tmp_path: Path, capsys) -> None:
    import json

    from facesr.cli import main
    from facesr.report import make_handin
    from facesr.training.averaging import average_run

    out = tmp_path / "msrresnet20_kd_avg"
    assert main(["average", str(kd_run), "--last", "2", "--out", str(out), "--data", str(data_root)]) == 0
    a, b = (load_checkpoint(kd_run / f"iter_{i:06d}.pt")["net_g_ema"] for i in (8, 16))
    avg = load_checkpoint(out / "best.pt")
    assert avg["net_g_ema"].keys() == a.keys()
    for key in a:
        assert torch.equal(avg["net_g_ema"][key], torch.stack([a[key].double(), b[key].double()]).mean(0).float())
    record = json.loads((out / "run_info.json").read_text())["averaged"]
    assert record["checkpoints"] == ["iter_000008.pt", "iter_000016.pt"] and record["iters"] == [8, 16]
    assert avg["averaged"] == record and json.loads((out / "config.json").read_text())["name"] == out.name
    assert (out / "val.csv").read_text().count("\n") == 2  # the header and the average's validation
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(data_root), "--csv", str(tmp_path / "eval.csv")]) == 0
    assert main(["predict", str(out), str(data_root / "test" / "LQ"), str(tmp_path / "sr"), "--zip",
                 str(tmp_path / "sub.zip")]) == 0
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "psnr_table.md").write_text("| model | psnr |\n")
    bundle = make_handin(out, tmp_path / "handin.zip", data_root=data_root, figures_dir=figures)
    assert bundle.is_file()
    with pytest.raises(FacesrError, match="holds an average already"):
        average_run(kd_run, last=2, out=out)
    with pytest.raises(FacesrError, match=r"keeps 2 checkpoint\(s\).*fewer than last=3"):
        average_run(kd_run, last=3)


def test_notebook_07_averages_what_the_run_keeps_and_prints_both_psnrs(kd_run: Path, data_root: Path, tmp_path: Path,
                                                                       capsys) -> None:
    import shutil

    from facesr.report.runs import run_best_validation
    from facesr.report.steps import average_stage

    run = shutil.copytree(kd_run, tmp_path / kd_run.name)
    out = average_stage(run, 3, data_root)  # AVERAGE_LAST = 3, the run keeps 2: both averaged
    assert out == tmp_path / "msrresnet20_kd_avg" and (out / "best.pt").is_file()
    text = capsys.readouterr().out
    plain, averaged = run_best_validation(run)["psnr"], run_best_validation(out)["psnr"]
    assert f"msrresnet20_kd: {plain:.4f} dB (its best validation); averaged (msrresnet20_kd_avg): {averaged:.4f} dB" in text
    assert average_stage(run, 0, data_root) is None and "no weight averaging: AVERAGE_LAST = 0" in capsys.readouterr().out


def test_averaging_refuses_running_statistics() -> None:
    from facesr.training.averaging import average_state_dicts

    sd = {"conv.weight": torch.ones(2), "bn.running_mean": torch.zeros(2), "bn.num_batches_tracked": torch.tensor(3)}
    with pytest.raises(FacesrError, match="BatchNorm running statistics .*bn.running_mean"):
        average_state_dicts([sd, sd], name="a DAT run")


def test_the_memory_estimate_holds_the_teacher(teacher_file: Path, tmp_path: Path) -> None:
    """facesr.training.memory.step_memory (the out-of-memory line's batch): the teacher's weights and its forward."""
    from facesr.models import count_generator
    from facesr.training.memory import step_memory

    plain = step_memory(get_config("msrresnet20", quick=True, **SETTINGS))
    # a file outside a run folder (or no teacher run yet): counted as the edition's esrgan generator
    esrgan = get_config("esrgan", quick=True)
    kd = step_memory(_cfg(teacher_file))
    assert kd.fixed - plain.fixed == 4 * count_generator(esrgan.generator, esrgan.generator_args)  # fp32, no Adam
    assert kd.per_sample >= plain.per_sample
    # a teacher run folder: its own network, from its config.json
    run = tmp_path / "teacher_run"
    run.mkdir()
    torch.save({"net_g_ema": build_generator("rrdbnet", **TEACHER).state_dict()}, run / "best.pt")
    (run / "config.json").write_text(f'{{"generator": "rrdbnet", "generator_args": {TEACHER!r}}}'.replace("'", '"'))
    kd = step_memory(_cfg(run))
    assert kd.fixed - plain.fixed == 4 * count_parameters(build_generator("rrdbnet", **TEACHER))
