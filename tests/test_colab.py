"""facesr.colab, facesr.colab.drive and colab_setup.sh with a fake Drive folder; the notebooks' shared opening cell."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facesr.colab import runtime as colab
from facesr.colab.drive import link_runs, unpack_data
from facesr.colab.runtime import KIT_REPO_URL, arch_warning, setup_runtime
from facesr.colab.settings import resolve_settings
from facesr.errors import FacesrError

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.fixture()
def not_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(colab, "in_colab", lambda: False)


@pytest.fixture()
def fake_kit(tmp_path: Path) -> Path:
    kit = tmp_path / "kit"
    (kit / "checkpoints").mkdir(parents=True)
    (kit / "checkpoints" / "README.md").write_text("run folders go here\n")
    return kit


@pytest.fixture()
def fake_drive(tmp_path: Path, sample_root: Path) -> Path:
    """A Drive folder holding facesr/FFHQ.zip whose top folder is FFHQ/ (as the course zip has it)."""
    drive = tmp_path / "MyDrive"
    (drive / "facesr").mkdir(parents=True)
    staging = tmp_path / "staging"
    shutil.copytree(sample_root / "val", staging / "FFHQ" / "val")
    shutil.make_archive(str(drive / "facesr" / "FFHQ"), "zip", root_dir=staging)
    return drive


def test_local_run_touches_nothing(fake_kit: Path, not_colab: None, capsys: pytest.CaptureFixture) -> None:
    before = sorted(p.relative_to(fake_kit) for p in fake_kit.rglob("*"))
    info = setup_runtime(kit=fake_kit)
    assert sorted(p.relative_to(fake_kit) for p in fake_kit.rglob("*")) == before
    assert info.device in {"cpu", "cuda"} and info.drive is None and info.data_root is None
    assert "local run" in capsys.readouterr().out


def test_fake_drive_setup_is_idempotent(fake_kit: Path, fake_drive: Path, tmp_path: Path, not_colab: None) -> None:
    info = setup_runtime(kit=fake_kit, drive_root=fake_drive, verbose=False)
    runs = fake_kit / "checkpoints"
    assert runs.is_symlink() and runs.resolve() == (fake_drive / "facesr" / "runs").resolve()
    assert (fake_drive / "facesr" / "runs" / "README.md").is_file()
    data = fake_kit / "data" / "FFHQ"
    assert info.data_root == data and info.messages == []
    assert len(list((data / "val" / "GT").iterdir())) == 8
    assert (fake_drive / "facesr" / "FFHQ.zip").is_file()  # the archive in Drive stays
    assert not [p for p in (fake_kit / "data").iterdir() if p.name != "FFHQ"]  # no temporary leftovers

    # A second run (a re-run cell) changes nothing: the user's runs and edits to the data survive.
    (runs / "srgan").mkdir()
    (data / "val" / "GT" / "00000.png").write_bytes(b"edited")
    info2 = setup_runtime(kit=fake_kit, drive_root=fake_drive, verbose=False)
    assert info2.messages == [] and info2.data_root == data
    assert (fake_drive / "facesr" / "runs" / "srgan").is_dir()
    assert (data / "val" / "GT" / "00000.png").read_bytes() == b"edited"


def test_missing_drive_and_archive_are_reported(
    fake_kit: Path, tmp_path: Path, not_colab: None, capsys: pytest.CaptureFixture
) -> None:
    info = setup_runtime(kit=fake_kit, drive_root=tmp_path / "not-mounted")
    assert "Drive not found" in capsys.readouterr().out
    assert info.runs_link is None and not (fake_kit / "checkpoints").is_symlink()

    empty_drive = tmp_path / "EmptyDrive"
    empty_drive.mkdir()
    info = setup_runtime(kit=fake_kit, drive_root=empty_drive, verbose=False)
    assert info.data_root is None
    assert any("no data archive at" in m and "FFHQ.zip" in m for m in info.messages)


def test_unpack_never_overwrites(tmp_path: Path, fake_drive: Path) -> None:
    target = tmp_path / "data" / "FFHQ"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    with pytest.raises(FacesrError, match="move it away"):
        unpack_data(fake_drive / "facesr" / "FFHQ.zip", tmp_path / "data")
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_unpack_rejects_an_archive_without_the_layout(tmp_path: Path) -> None:
    (tmp_path / "src" / "photos").mkdir(parents=True)
    (tmp_path / "src" / "photos" / "a.txt").write_text("x")
    archive = shutil.make_archive(str(tmp_path / "other"), "zip", root_dir=tmp_path / "src")
    with pytest.raises(FacesrError, match="no train/GT or val/GT"):
        unpack_data(Path(archive), tmp_path / "data")
    assert not (tmp_path / "data" / "FFHQ").exists()
    assert list((tmp_path / "data").iterdir()) == []  # the temporary folder is gone


def test_link_runs_keeps_local_runs(fake_kit: Path, tmp_path: Path) -> None:
    ckpt = fake_kit / "checkpoints" / "srgan" / "latest.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"weights")
    with pytest.raises(FacesrError, match="move them to"):
        link_runs(fake_kit, tmp_path / "drive_runs")
    assert ckpt.read_bytes() == b"weights" and not (fake_kit / "checkpoints").is_symlink()


def test_link_runs_replaces_a_stale_link_only(fake_kit: Path, tmp_path: Path) -> None:
    old = tmp_path / "old_runs"
    (old / "srgan").mkdir(parents=True)
    shutil.rmtree(fake_kit / "checkpoints")
    (fake_kit / "checkpoints").symlink_to(old)
    link = link_runs(fake_kit, tmp_path / "new_runs")
    assert link.resolve() == (tmp_path / "new_runs").resolve()
    assert (old / "srgan").is_dir()  # the folder the stale link pointed to is untouched


@pytest.mark.parametrize(
    ("capability", "arch_list", "warns"),
    [
        ((7, 0), ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"], True),  # V100, CUDA 12.8
        ((7, 0), ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"], False),
        ((7, 0), ["sm_80", "compute_60"], False),  # PTX for an older arch is JIT-compiled
        ((8, 6), ["sm_75", "sm_80", "sm_90"], False),  # sm_80 code runs on 8.6
        ((7, 5), ["sm_80", "sm_90"], True),
    ],
)
def test_arch_warning(capability: tuple[int, int], arch_list: list[str], warns: bool) -> None:
    warning = arch_warning("Tesla V100-SXM2-16GB", capability, arch_list, "2.8.0", "12.8")
    assert (warning is not None) == warns
    if warns:
        assert f"sm_{capability[0]}{capability[1]}" in warning and "download.pytorch.org" in warning


def test_resolve_settings_env_overrides(
    tmp_path: Path, sample_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facesr.data.sample

    monkeypatch.setattr(facesr.data.sample, "ensure_sample_data", lambda root=None, edition=None: sample_root)
    monkeypatch.chdir(tmp_path)  # relative paths follow the kit, not the working folder
    kit = tmp_path / "kit"

    plain = resolve_settings(kit=kit, env={})
    assert (plain.data_root, plain.runs_dir, plain.figures_dir) == (
        kit / "data" / "FFHQ", kit / "checkpoints", kit / "figures"
    )
    assert plain.quick is False and plain.device in {"cpu", "cuda"}

    quick = resolve_settings(kit=kit, env={"FACESR_QUICK": "1", "FACESR_FIGURES": "out/fig"})
    assert quick.quick and quick.data_root == sample_root and quick.figures_dir == kit / "out" / "fig"

    own = resolve_settings(quick=True, kit=kit, env={"FACESR_DATA": str(tmp_path / "d"), "FACESR_RUNS": "r"})
    assert own.quick and own.data_root == tmp_path / "d" and own.runs_dir == kit / "r" / "quick"  # apart from real runs

    off = resolve_settings(data_root="mydata", quick=True, kit=kit, env={"FACESR_QUICK": "0"})
    assert not off.quick and off.data_root == kit / "mydata"
    assert "MISSING" in str(off)


def test_the_projects_edition_is_stored_once_on_drive_and_figures_live_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import json

    from facesr.data.sample import ensure_sample_data

    kit, drive = tmp_path / "kit", tmp_path / "MyDrive"
    drive.mkdir()
    env = {"FACESR_DRIVE": str(drive)}
    data_2024 = ensure_sample_data(edition=2024)
    fresh = resolve_settings(kit=kit, env=env, data_root=tmp_path / "none")  # nothing decides: 2022, not saved
    assert fresh.edition == 2022 and "no edition chosen yet" in capsys.readouterr().out
    assert not (drive / "facesr" / "settings.json").exists()
    detected = resolve_settings(kit=kit, env=env, data_root=data_2024)  # the data say 2024: saved as the project's
    assert detected.edition == 2024 and "the data's: the real-world file names test_real/01.png-06.png" in str(detected)
    assert json.loads((drive / "facesr" / "settings.json").read_text()) == {"edition": 2024}
    assert detected.figures_dir == drive / "facesr" / "figures" / "2024" and detected.drive == drive
    later = resolve_settings(kit=kit, env=env, edition="project", quick=True, notebook="03_train_srgan")
    assert later.edition == 2024 and later.edition_source.startswith("the project's")
    assert later.figures_dir == drive / "facesr" / "figures" / "2024" / "quick"
    assert later.runs_dir == kit / "checkpoints" / "quick" and later.data_root == data_2024
    from facesr.colab.settings import active_settings

    assert active_settings() is later and later.notebook == "03_train_srgan"
    capsys.readouterr()
    other = resolve_settings(kit=kit, env=env, edition=2023, data_root=tmp_path / "none")  # asked: used, said
    assert other.edition == 2023 and "the project's edition is 2024" in capsys.readouterr().out
    assert json.loads((drive / "facesr" / "settings.json").read_text()) == {"edition": 2024}
    assert resolve_settings(kit=kit, env={**env, "FACESR_EDITION": "2025"}).edition == 2025
    no_drive = resolve_settings(kit=kit, env={}, data_root=data_2024)
    assert no_drive.edition == 2024 and no_drive.figures_dir == kit / "figures" and no_drive.drive is None


def _run_setup_sh(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("COLAB_RELEASE_TAG", None)
    return subprocess.run(
        ["bash", str(REPO / "colab_setup.sh"), *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_colab_setup_sh(fake_kit: Path, fake_drive: Path, tmp_path: Path) -> None:
    args = ("--kit", str(fake_kit), "--drive-root", str(fake_drive))
    first = _run_setup_sh(*args)
    assert first.returncode == 0, first.stderr
    assert (fake_kit / "checkpoints").is_symlink() and (fake_kit / "data" / "FFHQ" / "val" / "LQ").is_dir()
    second = _run_setup_sh(*args)
    assert second.returncode == 0, second.stderr
    assert "data: " in second.stdout

    missing = _run_setup_sh("--kit", str(fake_kit), "--drive-root", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "drive.mount(" in missing.stdout


def test_one_repo_url_everywhere() -> None:
    script = (REPO / "colab_setup.sh").read_text()
    assert f'KIT_REPO_URL="{KIT_REPO_URL}"' in script
    assert "pip install" not in script  # never replaces what Colab ships
    assert NOTEBOOKS, "no notebooks/NN_*.py found"
    for nb in NOTEBOOKS:
        urls = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", nb.read_text()))
        assert urls == {KIT_REPO_URL}, f"{nb.name}: {urls}"


def _setup_cell(text: str) -> str:
    cells = re.split(r"^# %%.*$", text, flags=re.M)
    return next(cell.strip() for cell in cells if "setup_runtime(" in cell)


def test_notebooks_open_with_the_same_setup_cell() -> None:
    first = _setup_cell(NOTEBOOKS[0].read_text())
    assert "subprocess.run([\"git\", \"clone\"" in first and "!" not in first.replace("!=", "")
    for nb in NOTEBOOKS:
        text = nb.read_text()
        assert _setup_cell(text) == first, f"{nb.name}: set-up cell differs from {NOTEBOOKS[0].name}"
        assert f"blob/main/notebooks/{nb.stem}.ipynb" in text, f"{nb.name}: Open-in-Colab badge"
        assert re.search(r'^# %% tags=\["parameters"\]$', text, flags=re.M), f"{nb.name}: no parameters cell"
        assert "resolve_settings(" in text


def test_the_setup_cell_clones_kit_repo_at_kit_branch_then_updates_that_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Opened from its badge, the set-up cell clones KIT_REPO at KIT_BRANCH (a fork's, say), pulls it on every run
    (fast-forward only) and says so when it cannot; a checkout it runs inside is used as it is."""

    def git(*args: str, cwd: Path) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                       capture_output=True)

    fork = tmp_path / "fork"
    (fork / "lib" / "facesr").mkdir(parents=True)
    git("init", "-q", "-b", "mine", cwd=fork)
    (fork / "lib" / "facesr" / "version.txt").write_text("1")
    git("add", ".", cwd=fork)
    git("commit", "-q", "-m", "one", cwd=fork)
    cell = _setup_cell(NOTEBOOKS[0].read_text())
    opening = cell[: cell.index("sys.path.insert")]  # clone or update: all that runs before facesr is imported
    opening = re.sub(r'KIT_REPO = "[^"]*"', f'KIT_REPO = "{fork}"', opening)
    opening = re.sub(r'KIT_BRANCH = "[^"]*"', 'KIT_BRANCH = "mine"', opening)
    clone = tmp_path / "content" / "facesr-kit"
    monkeypatch.setenv("FACESR_KIT", str(clone))
    monkeypatch.chdir(tmp_path)  # no kit in . or ..: as on Colab
    exec(opening, {})
    assert (clone / "lib" / "facesr" / "version.txt").read_text() == "1"
    (fork / "lib" / "facesr" / "version.txt").write_text("2")
    git("commit", "-q", "-am", "two", cwd=fork)
    exec(opening, {})
    assert (clone / "lib" / "facesr" / "version.txt").read_text() == "2" and "note:" not in capsys.readouterr().out
    (clone / "lib" / "facesr" / "version.txt").write_text("mine")  # a local edit in the clone
    git("commit", "-q", "-am", "local", cwd=clone)
    (fork / "lib" / "facesr" / "version.txt").write_text("3")
    git("commit", "-q", "-am", "three", cwd=fork)
    exec(opening, {})
    assert (clone / "lib" / "facesr" / "version.txt").read_text() == "mine"
    assert "note: could not update" in capsys.readouterr().out


# ---------------------------------------------------------------- spandrel on Colab


@pytest.fixture()
def fake_modules(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Which of spandrel and its small dependencies importlib finds (the rest as they really are)."""
    import importlib.util

    present = {"spandrel": False, "einops": False, "safetensors": True, "typing_extensions": True}
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if present[name] else None) if name in present else real(name, *a))
    return present


def test_ensure_spandrel_installs_it_and_only_the_missing_small_deps(
    fake_modules: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    calls: list[list[str]] = []
    invalidated: list[bool] = []
    monkeypatch.setattr(importlib, "invalidate_caches", lambda: invalidated.append(True))

    def fake_pip(args: list[str]) -> None:
        calls.append(args)
        fake_modules.update(spandrel=True, einops=True)

    note = colab.ensure_spandrel(pip=fake_pip)
    assert calls == [["--no-deps", "spandrel>=0.4", "einops"]]  # never torch, torchvision or numpy
    assert invalidated and note is not None and "installed spandrel>=0.4" in note and "einops" in note
    assert colab.ensure_spandrel(pip=fake_pip) is None and len(calls) == 1  # present: nothing to do


def test_ensure_spandrel_reports_a_failed_install(fake_modules: dict[str, bool], monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []

    def failing_run(cmd: list[str], check: bool) -> None:
        commands.append(cmd)
        raise subprocess.CalledProcessError(1, cmd)

    monkeypatch.setattr(colab.subprocess, "run", failing_run)
    note = colab.ensure_spandrel()  # the real pip call, faked at subprocess.run: no network here
    assert commands[0][:4] == [sys.executable, "-m", "pip", "install"] and "--no-deps" in commands[0]
    assert not {"torch", "torchvision", "numpy"} & set(commands[0])
    assert note is not None and "could not install spandrel" in note and "pip install 'spandrel>=0.4'" in note
    assert colab.ensure_spandrel(pip=lambda args: None).startswith("pip ran but spandrel is still not importable")


def test_setup_runtime_installs_spandrel_on_colab_only(fake_kit: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(colab, "ensure_spandrel", lambda: calls.append(True) or "installed spandrel>=0.4")
    monkeypatch.setattr(colab, "in_colab", lambda: False)
    assert "installed spandrel>=0.4" not in setup_runtime(kit=fake_kit, verbose=False).messages and not calls
    monkeypatch.setattr(colab, "in_colab", lambda: True)
    info = setup_runtime(kit=fake_kit, mount=False, verbose=False)
    assert calls == [True] and "installed spandrel>=0.4" in info.messages
