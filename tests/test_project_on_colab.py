"""A student's project as Colab runs it: each notebook on its own runtime, one Drive shared by all of them.

Three fresh clones of the kit (its committed HEAD) stand for three Colab runtimes; one folder stands for the
student's Drive (``FACESR_DRIVE``), holding the course data as ``facesr/FFHQ.zip`` (here the edition's sample set at
the tests' size, its two val pairs swapped so that no figure of it is one of the demo's by chance). Runtime 1 runs
notebook 01 with ``EDITION`` set to the edition, runtime 2 notebook 03 with the default settings, runtime 3
notebook 06 with the default settings, all at the tests' sizes (``FACESR_SMOKE``).
Nothing passes from one runtime to the next but the Drive: the edition (settings.json), the run, the figures.
The third runtime's hand-in bundle must hold the figures the second made, name the edition and its limit, and
hold no figure or table that is a file of the kit's repository (the demo's pictures, say).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fresh_runtime(folder: Path) -> Path:
    """A fresh checkout of the kit's committed HEAD: what a new Colab runtime clones."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(folder)], check=True, capture_output=True)
    return folder


def _run_notebook(kit: Path, stem: str, drive: Path, tmp: Path, edition: int | None = None) -> str:
    """Execute notebook ``stem`` of the runtime ``kit`` (optionally with ``EDITION = edition`` chosen in its
    settings cell, as a student picks it); return the text it printed."""
    from facesr.demo import execute_notebook

    path = kit / "notebooks" / f"{stem}.ipynb"
    if edition is not None:
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.source = re.sub(r'^EDITION = "project".*$', f"EDITION = {edition}", cell.source, flags=re.M)
        nbformat.write(nb, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACESR_")}
    env.update(FACESR_DRIVE=str(drive), FACESR_QUICK="1", FACESR_SMOKE="1", FACESR_DATA=str(kit / "data" / "FFHQ"),
               PYTHONPATH=str(kit / "lib"), MPLBACKEND="module://matplotlib_inline.backend_inline",
               PYTHONUNBUFFERED="1")
    out = tmp / f"{kit.name}-{stem}.ipynb"
    # the kernel's Unix sockets in a short folder, as the demo's (a socket path has at most 107 bytes)
    with tempfile.TemporaryDirectory(prefix="facesr-kernel-") as spec:
        execute_notebook(path, out, env, path.parent, Path(spec))
    executed = nbformat.read(out, as_version=4)
    return "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)


def _tracked_hashes() -> set[str]:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout.split(b"\0")
    return {_sha((REPO / f.decode()).read_bytes()) for f in files if f and (REPO / f.decode()).is_file()}


@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("year", [2024, 2022])
def test_three_runtimes_share_only_the_drive(year: int, tmp_path: Path) -> None:
    from facesr.data.sample import smoke_sample_data
    from facesr.editions import get_edition

    started = time.perf_counter()
    drive = tmp_path / "MyDrive"
    data = smoke_sample_data(tmp_path / "staging" / "FFHQ", edition=year)  # the archive: one top folder, FFHQ/
    for sub in ("val/LQ", "val/GT"):  # the student's data are not the demo's: its first val face is another one
        (data / sub / "00000.png").rename(data / sub / "first.png")
        (data / sub / "00001.png").rename(data / sub / "00000.png")
        (data / sub / "first.png").rename(data / sub / "00001.png")
    (drive / "facesr").mkdir(parents=True)
    shutil.make_archive(str(drive / "facesr" / "FFHQ"), "zip", root_dir=tmp_path / "staging")
    runtimes = [_fresh_runtime(tmp_path / f"runtime{i}") for i in (1, 2, 3)]

    out1 = _run_notebook(runtimes[0], "01_data_exploration", drive, tmp_path, edition=year)
    assert json.loads((drive / "facesr" / "settings.json").read_text()) == {"edition": year}
    assert f"edition:  {year} (EDITION, saved as the project's)" in out1
    out2 = _run_notebook(runtimes[1], "03_train_srgan", drive, tmp_path)
    assert f"edition:  {year} (the project's, {drive / 'facesr' / 'settings.json'})" in out2
    assert "Drive: one checkpoint is about" in out2  # the plan cell's Drive use
    out3 = _run_notebook(runtimes[2], "06_results_and_report", drive, tmp_path)
    assert f"edition:  {year} (the project's" in out3

    figures = drive / "facesr" / "figures" / str(year) / "quick"
    runs = drive / "facesr" / "runs" / "quick"
    assert (runs / "srgan" / "latest.pt").is_file() and not list((runs / "srgan").glob("iter_*.pt"))
    manifest = json.loads((figures / "manifest.json").read_text())["files"]
    made_in_2 = {name for name, entry in manifest.items() if entry["notebook"] == "03_train_srgan"}
    assert made_in_2 == {f"03_srgan_{name}.{ext}" for name in ("curves", "val_outputs") for ext in ("png", "pdf")}
    assert all(entry["edition"] == year and entry["mode"] == "quick" for entry in manifest.values())
    (bundle,) = runs.glob("*_handin.zip")
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        readme = zf.read("Readme.txt").decode()
        for name in made_in_2:  # the second runtime's figures, as it made them
            assert zf.read(f"figures/{name}") == (figures / name).read_bytes()
        tracked = _tracked_hashes()
        own = [n for n in names if not n.startswith("code/") and not n.endswith("/")
               and not Path(n).name.startswith("param_table")]  # the parameter table is a function of the edition
        assert own and not [n for n in own if _sha(zf.read(n)) in tracked], "a file of the kit's repository"
    assert {f"figures/{n}" for n in manifest} <= set(names)  # every figure made for the run's edition and mode
    report = drive / "facesr" / "report" / str(year) / "quick"  # the report skeleton beside the figures on Drive
    assert {"main.tex", "report_overleaf.zip"} <= {p.name for p in report.iterdir()}
    ed = get_edition(year)
    assert f"for the {year} edition of the course" in readme and f"{ed.param_limit:,}" in readme
    assert f"{ed.degradation_label} degradation" in readme
    assert f"python -m facesr train srgan --edition {year} --quick" in readme
    print(f"\n{year}: three runtimes, one Drive: {time.perf_counter() - started:.0f} s")
