"""The notebooks: paired .py/.ipynb without outputs, Colab-ready; and all seven executed in quick mode.

The execution test is the CI notebook run: it calls ``facesr.demo.run_demo`` once (the main job,
``python -m facesr demo``) at the tests' sizes (``smoke=True``) into a temporary folder and checks every
executed notebook and the figures and tables it wrote.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
BADGE = (
    "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    "(https://colab.research.google.com/github/facesr-kit/facesr-kit/blob/main/notebooks/{name}.ipynb)"
)
EXPECTED_NOTEBOOKS = [
    "01_data_exploration", "02_degradation_demo", "03_train_srgan", "04_train_esrgan", "05_gan_finetune",
    "06_results_and_report", "07_train_in_budget",
]  # fmt: skip
# What notebooks 02-07 write to the figures folder in quick mode (02: the training LQ against the val LQ).
EXPECTED_FIGURES = [
    "02_degradation_match.png", "02_degradation_match.pdf", "02_degradation_match.csv", "02_degradation_match.tex",
    "03_srgan_curves.png", "03_srgan_val_outputs.png", "04_esrgan_curves.png", "04_esrgan_val_outputs.png",
    "05_esrgan_gan_curves.png", "05_esrgan_gan_val_outputs.png", "06_loss_curves.png", "06_psnr_curves.png",
    "06_qualitative_0.png", "06_qualitative_1.png", "06_real_world.png", "psnr_table.csv", "psnr_table.md",
    "param_table.csv", "param_table.md", "machine_table.csv", "machine_table.md", "07_in_budget_curves.png",
    "07_in_budget_psnr.csv", "07_in_budget_psnr.md", "06_psnr_curves.pdf", "06_real_world.pdf", "psnr_table.tex",
    "submission_table.csv", "submission_table.tex", "07_in_budget_curves.pdf",
]  # fmt: skip
# Notebooks that load checkpoints: each has the TRUST_CHECKPOINT setting and passes it on.
TRUSTING = ["03_train_srgan", "04_train_esrgan", "05_gan_finetune", "06_results_and_report", "07_train_in_budget"]
# Calls that load a checkpoint, and the keyword that passes TRUST_CHECKPOINT on to each.
LOADING_CALLS = {"train": "trust", "load_generator": "trust", "psnr_table": "trust", "comparison_images": "trust",
                 "show_val_outputs": "trust", "show_real_world": "trust",
                 "make_handin": "trust_checkpoint"}  # fmt: skip


def test_the_seven_notebooks_exist():
    assert [p.stem for p in SOURCES] == EXPECTED_NOTEBOOKS


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_pair_is_in_sync_and_clean(source: Path):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} missing: run jupytext --to ipynb {source}"
    nb = jupytext.read(ipynb)
    assert jupytext.writes(nb, fmt="py:percent") == source.read_text(encoding="utf-8"), (
        f"{ipynb.name} is out of date: run jupytext --to ipynb --update {source}"
    )
    raw = nbformat.read(ipynb, as_version=4)
    for cell in raw.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{ipynb.name} holds outputs"
    assert '"output_type"' not in ipynb.read_text(encoding="utf-8")
    # Colab metadata (GPU runtime) and the badge pointing at this very notebook
    assert raw.metadata.get("accelerator") == "GPU"
    assert "colab" in raw.metadata and raw.metadata["kernelspec"]["name"] == "python3"
    first_md = next(c for c in raw.cells if c.cell_type == "markdown")
    assert BADGE.format(name=source.stem) in first_md.source
    tagged = [c for c in raw.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "#@param" in tagged[0].source


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_cells_stay_short(source: Path):
    nb = jupytext.read(source)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert len(cell.source.splitlines()) <= 25, f"{source.name}: a cell over a screenful:\n{cell.source}"


def _settings_cell(source: Path) -> str:
    nb = jupytext.read(source)
    return next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))


@pytest.mark.parametrize("stem", TRUSTING)
def test_checkpoint_loading_notebooks_pass_trust_checkpoint_on(stem: str):
    import ast

    source = NOTEBOOKS / f"{stem}.py"
    assert 'TRUST_CHECKPOINT = False  #@param {type:"boolean"}' in _settings_cell(source)
    calls = [node for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))) if isinstance(node, ast.Call)]
    loading = [(c, name) for c in calls
               if (name := getattr(c.func, "id", getattr(c.func, "attr", None))) in LOADING_CALLS]  # fmt: skip
    assert loading, f"{stem}: no call that loads a checkpoint"
    for call, name in loading:
        passed = {k.arg: k.value for k in call.keywords}
        value = passed.get(LOADING_CALLS[name])
        assert isinstance(value, ast.Name) and value.id == "TRUST_CHECKPOINT", (
            f"{stem}, line {call.lineno}: {name}(...) does not pass {LOADING_CALLS[name]}=TRUST_CHECKPOINT"
        )


def test_notebook_07_offers_the_in_budget_configs_and_their_finishes():
    from facesr.config.named_configs import config_names, in_budget_names

    settings = _settings_cell(NOTEBOOKS / "07_train_in_budget.py")
    line = next(line for line in settings.splitlines() if line.startswith("CONFIG = "))
    choices = re.fullmatch(r'CONFIG = "(\w+)"  #@param \[(.*)\] \{allow-input: true\}', line)
    assert choices, line  # a dropdown that also takes a registered network's name
    options = [o.strip().strip('"') for o in choices.group(2).split(",")]
    offered = {n for year in (2022, 2023, 2024, 2025) for n in in_budget_names(year)}
    assert set(options) == offered and len(options) == len(offered) and choices.group(1) in options  # the registry's
    for year in (2022, 2023, 2024, 2025):  # with their finishes and distillation configs
        assert all({f"{name}_l2", f"{name}_kd"} <= set(config_names(year)) for name in in_budget_names(year))
    assert 'FINISH = True  #@param {type:"boolean"}' in settings
    assert 'TEACHER = ""  #@param {type:"string"}' in settings  # "esrgan": <CONFIG>_kd, taught by notebook 04's run
    assert 'AVERAGE_LAST = 3  #@param {type:"integer"}' in settings
    # notebook 06 compares the edition's runs by default (their _l2 finishes join them when they exist)
    assert 'MODELS = ""  #@param {type:"string"}' in _settings_cell(NOTEBOOKS / "06_results_and_report.py")


def test_every_notebook_has_the_edition_setting_and_names_itself():
    for source in SOURCES:
        settings = _settings_cell(source)
        assert 'EDITION = "project"  #@param ["project", "2022", "2023", "2024", "2025"]' in settings, source.name
        assert 'FIGURES_DIR = ""  #@param {type:"string"}' in settings or "FIGURES_DIR" not in settings, source.name
        assert "edition=EDITION" in source.read_text(), source.name
        assert f'notebook="{source.stem}")' in source.read_text(), source.name  # the figure manifest records it
    assert 'SCREENSHOT = ""  #@param {type:"string"}' in _settings_cell(NOTEBOOKS / "06_results_and_report.py")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    from facesr.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    return run_demo(out_dir=out, figures_dir=out / "figures", smoke=True)  # every cell, at the tests' sizes


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_demo_runs_every_notebook(demo):
    # in number order, but the report notebook last: it shows the runs of all the others, 07's included
    assert list(demo.notebooks) == [*EXPECTED_NOTEBOOKS[:5], "07_train_in_budget", "06_results_and_report"]
    for name, path in demo.notebooks.items():
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), f"{name}: not every cell ran"
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
    # the committed notebooks stay without outputs
    assert '"output_type"' not in (NOTEBOOKS / "03_train_srgan.ipynb").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_demo_writes_figures_tables_and_runs(demo):
    missing = [name for name in EXPECTED_FIGURES if not (demo.figures_dir / name).is_file()]
    assert not missing, f"not written: {missing}"
    for run in ("srgan", "esrgan", "esrgan_gan"):
        assert (demo.runs_dir / run / "best.pt").is_file()
    table = (demo.figures_dir / "psnr_table.md").read_text(encoding="utf-8")
    from facesr.report.style import MODEL_LABELS

    for label in (MODEL_LABELS[m] for m in ("bicubic", "srgan", "esrgan", "esrgan_gan")):
        assert re.search(rf"\| {re.escape(label)} +\|", table), f"{label} row missing in:\n{table}"
    params = (demo.figures_dir / "param_table.md").read_text(encoding="utf-8")
    assert "51,221,772" in params and "1,812,995" in params
    # notebook 06 packaged an in-budget submission
    (handin,) = demo.runs_dir.glob("*_handin.zip")
    submitted = demo.runs_dir / handin.name.removesuffix("_handin.zip")
    assert (submitted / "submission.zip").is_file()
    from facesr.inference.submissions import find_submission

    assert find_submission(demo.runs_dir, submitted / "submission.zip") is not None  # logged in submissions.csv
    # ... wrote the real-world predictions and the hand-in bundle of that run, with the machine table
    from facesr.data.sample import SMOKE_COUNTS

    assert len(list((submitted / "test_real_predictions").glob("*.png"))) == SMOKE_COUNTS["test_real"]
    import zipfile

    with zipfile.ZipFile(handin) as zf:
        names = set(zf.namelist())
    assert {"Readme.txt", "submission.zip", "figures/06_real_world.png", "figures/machine_table.md",
            "figures/06_real_world.pdf", "figures/machine_table.tex"} <= names  # PDF figures and LaTeX tables too
    assert "CPU (" in (demo.figures_dir / "machine_table.md").read_text(encoding="utf-8")
    # ... and the report skeleton of that run, beside the figures folder
    report = demo.figures_dir.parent / "report"
    assert {"main.tex", "references.bib", "report.md", "report_overleaf.zip"} <= {p.name for p in report.iterdir()}
    escaped = submitted.name.replace("_", "\\_")
    assert f"We submit \\texttt{{{escaped}}}" in (report / "main.tex").read_text()
    nb06 = nbformat.read(demo.notebooks["06_results_and_report"], as_version=4)
    text = "".join(o.get("text", "") for c in nb06.cells if c.cell_type == "code" for o in c.outputs)
    assert "edition:  2022" in text and "refused" not in text  # the over-budget refusal is a test now, not a cell


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_demo_trains_in_budget_with_the_mse_finish(demo):
    """Notebook 07 in quick mode: swinir, its MSE finish and the average of the finish's last checkpoints, curves,
    the PSNR table, the better stage's zip."""
    import json

    import pandas as pd

    stages = ("swinir", "swinir_l2", "swinir_l2_avg")
    for run in stages:
        assert (demo.runs_dir / run / "best.pt").is_file()
    averaged = json.loads((demo.runs_dir / "swinir_l2_avg" / "run_info.json").read_text(encoding="utf-8"))["averaged"]
    assert len(averaged["checkpoints"]) >= 2 and averaged["run"].endswith("swinir_l2")
    finish = json.loads((demo.runs_dir / "swinir_l2" / "config.json").read_text(encoding="utf-8"))
    assert finish["pixel_loss"] == "l2" and finish["generator"] == "swinir"
    table = pd.read_csv(demo.figures_dir / "07_in_budget_psnr.csv").set_index("run")
    assert list(table.index) == ["bicubic", *stages]
    n_val = int(table.loc["bicubic", "images"])
    assert n_val > 1 and (table.loc[list(stages), "images"] == n_val).all()  # plain and hflip: every image
    assert (table.loc[list(stages), "images_x8"] == 1).all()  # x8: the first only, in quick mode
    assert table.loc[list(stages), ["psnr", "psnr_hflip", "psnr_x8"]].notna().all().all()
    zipped = [run for run in stages if (demo.runs_dir / run / "submission.zip").is_file()]
    assert len(zipped) == 1, zipped  # the better stage only
    nb07 = nbformat.read(demo.notebooks["07_train_in_budget"], as_version=4)
    text = "".join(o.get("text", "") for c in nb07.cells if c.cell_type == "code" for o in c.outputs)
    assert "1,821,085 limit" in text and "generator initialised from" in text and "no srgan run" not in text
    assert "averaged (swinir_l2_avg): " in text  # plain and averaged val PSNR side by side


def test_demo_stops_at_a_failing_notebook(tmp_path: Path):
    from facesr.demo import run_demo
    from facesr.errors import FacesrError

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# broken"),
        nbformat.v4.new_code_cell("import os\nprint(os.environ['FACESR_QUICK'], os.environ['FACESR_RUNS'])"),
        nbformat.v4.new_code_cell("raise ValueError('boom')"),
        nbformat.v4.new_code_cell("print('never')"),
    ]
    path = tmp_path / "src" / "07_broken.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    out = tmp_path / "out"
    with pytest.raises(FacesrError, match=r"07_broken\.ipynb failed in code cell 2 .*ValueError.*boom") as info:
        run_demo(out_dir=out, figures_dir=tmp_path / "figures", notebooks=[path])
    partial = out / "notebooks" / "07_broken.ipynb"
    assert str(partial) in str(info.value)
    executed = nbformat.read(partial, as_version=4)
    assert executed.cells[1].outputs[0]["text"].split() == ["1", str(out / "runs")]
    assert executed.cells[3].outputs == []
    assert nbformat.read(path, as_version=4).cells[1].outputs == []  # the source notebook is untouched


def test_kernel_channels_look_at_their_socket_again_after_each_short_poll(monkeypatch):
    """A wait on a kernel channel is cut into SOCKET_POLL_S polls, so a lost wake-up cannot stall a cell."""
    import asyncio
    from queue import Empty

    import zmq
    import zmq.asyncio
    from jupyter_client.session import Session

    from facesr import demo

    monkeypatch.setattr(demo, "SOCKET_POLL_S", 0.05)
    client_class = demo.polling_kernel_client()
    channel_class = client_class.shell_channel_class.default_value
    assert client_class.iopub_channel_class.default_value is channel_class

    async def scenario() -> tuple[list, dict]:
        ctx = zmq.asyncio.Context()
        sender, receiver = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        sender.bind("inproc://facesr-test")
        receiver.connect("inproc://facesr-test")
        polls = []
        real_poll = receiver.poll

        def counting_poll(timeout=None, *args, **kwargs):
            polls.append(timeout)
            return real_poll(timeout, *args, **kwargs)

        receiver.poll = counting_poll
        session = Session()
        channel = channel_class(receiver, session)
        with pytest.raises(Empty):
            await channel.get_msg(timeout=0.2)
        timed_out_polls = list(polls)
        asyncio.get_running_loop().call_later(0.15, session.send, sender, "execute_reply", {"status": "ok"})
        msg = await channel.get_msg(timeout=None)  # no deadline: still returns once the reply is there
        sender.close(0)
        receiver.close(0)
        ctx.term()
        return timed_out_polls, msg

    timed_out_polls, msg = asyncio.run(scenario())
    assert len(timed_out_polls) >= 4 and max(timed_out_polls) <= 50
    assert msg["msg_type"] == "execute_reply" and msg["content"] == {"status": "ok"}


@pytest.mark.skipif(os.name != "posix", reason="Unix sockets are POSIX only; elsewhere the kernel uses TCP")
def test_demo_kernels_talk_over_unix_sockets_in_their_private_folder(tmp_path: Path):
    from facesr import demo

    km = demo.kernel_manager(tmp_path)
    assert km.transport == "ipc"
    assert Path(km.connection_file).parent == tmp_path and Path(km.ip).parent == tmp_path
    assert demo.kernel_manager(tmp_path).connection_file != km.connection_file  # one set of sockets per kernel
