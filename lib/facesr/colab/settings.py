"""The notebooks' settings cell: where data, runs and figures are, the mode, and the project's edition.

A student's project lives on many Colab runtimes and one Drive, so what must persist is kept on Drive
(:mod:`facesr.colab.drive`): with a Drive, the figures and tables go to ``MyDrive/facesr/figures/<edition>/``
(quick mode: its ``quick/`` folder) and the project's edition is stored once in ``MyDrive/facesr/settings.json``;
without one, ``figures/`` of the kit as before. Quick-mode runs live in ``RUNS_DIR/quick/``, so a real run never
meets a quick one of the same name.

The edition a notebook uses (:func:`resolve_edition`): ``FACESR_EDITION``, else the notebook's ``EDITION`` when it
names a year, else (``EDITION = "project"``, the default) the project's from settings.json, else the one the data
say (:func:`facesr.editions.detect_edition`), else 2022 with a printed note. The first edition chosen or detected
is written to settings.json; a notebook that asks for another one uses it and says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from facesr.atomic import atomic_write_json
from facesr.colab.drive import DRIVE_ARCHIVE, DRIVE_FIGURES, DRIVE_SETTINGS, RUNS_DIR, drive_from_env
from facesr.config.quick_mode import QUICK_RUNS, quick_runs_dir
from facesr.errors import FacesrError

PROJECT = "project"  # EDITION = "project": the project's edition, stored once
FIGURES_DIR = "figures"  # the kit's own, without a Drive
_ACTIVE: list[Settings] = []  # the settings the notebook's settings cell resolved last (the figure manifest's)


def _env_flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    """Resolved notebook settings; paths are absolute. ``str(settings)`` prints them."""

    kit: Path
    data_root: Path
    runs_dir: Path
    figures_dir: Path
    quick: bool
    device: str
    smoke: bool = False  # quick mode at the tests' sizes (FACESR_SMOKE=1): every cell runs, numbers mean nothing
    edition: int = 2022  # the course edition (facesr.editions): limit, data, degradation, configs
    edition_source: str = "the default"  # where the edition came from (EDITION, settings.json, the data, ...)
    drive: Path | None = None  # the folder that stands for MyDrive, if any
    notebook: str | None = None  # the notebook these settings are for (the figure manifest records it)

    def __str__(self) -> str:
        mode = "QUICK (small sizes, sample data unless FACESR_DATA is set)" if self.quick else "full"
        mode += ", SMOKE (the tests' sizes)" if self.smoke else ""
        return "\n".join(
            [
                f"edition:  {self.edition} ({self.edition_source})",
                f"mode:     {mode}",
                f"device:   {self.device}",
                f"data:     {self.data_root}" + ("" if self.data_root.is_dir() else "  (MISSING)"),
                f"runs:     {self.runs_dir}",
                f"figures:  {self.figures_dir}",
            ]
        )


def active_settings() -> Settings | None:
    """The settings :func:`resolve_settings` returned last in this process (a notebook's), or None."""
    return _ACTIVE[-1] if _ACTIVE else None


# ------------------------------------------------------------------------------------------------ the project


def project_file(drive: str | os.PathLike) -> Path:
    """``<drive>/facesr/settings.json``: the project's settings, kept once for every runtime."""
    return Path(drive) / DRIVE_SETTINGS


def read_project(drive: str | os.PathLike | None) -> dict:
    """The project's settings (``{}`` without a Drive or a settings.json); FacesrError naming an unreadable file."""
    if drive is None or not project_file(drive).is_file():
        return {}
    path = project_file(drive)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FacesrError(f"{path} is unreadable ({err}); fix it or delete it (it holds the project's edition)") from None
    if not isinstance(values, dict):
        raise FacesrError(f"{path} is not a JSON object; delete it (it holds the project's edition)")
    return values


def save_project(drive: str | os.PathLike, **values: object) -> Path:
    """Merge ``values`` into the project's settings.json (atomic) and return its path."""
    path = project_file(drive)
    atomic_write_json(path, {**read_project(drive), **values})
    return path


def figures_folder(edition: int, quick: bool, drive: str | os.PathLike | None, kit: Path) -> Path:
    """Where a notebook's figures and tables go by default: ``<drive>/facesr/figures/<edition>/`` (quick mode: its
    ``quick/``) with a Drive, else the kit's ``figures/``."""
    if drive is None:
        return kit / FIGURES_DIR
    folder = Path(drive) / DRIVE_FIGURES / str(edition)
    return folder / QUICK_RUNS if quick else folder


def resolve_edition(
    asked: int | str | None, drive: Path | None, data_root: Path | None, env: Mapping[str, str]
) -> tuple[int, str]:
    """(edition, where it came from) for a notebook: see the module docstring. Writes settings.json the first time
    an edition is chosen or detected.

    Args:
        asked: The notebook's ``EDITION``: a year, or ``"project"`` / None for the project's.
        drive: The folder standing for MyDrive, or None.
        data_root: The data root whose facts may decide, or None (quick mode's sample data follow the edition).
        env: The environment (``FACESR_EDITION``).
    """
    from facesr.editions import (
        DEFAULT_YEAR,
        EDITION_ENV,
        data_facts,
        describe_facts,
        detect_edition,
        edition_year,
    )

    saved = read_project(drive).get("edition")
    saved = edition_year(saved, str(project_file(drive))) if saved is not None else None
    if env.get(EDITION_ENV, "").strip():
        year, source = edition_year(env[EDITION_ENV], EDITION_ENV), EDITION_ENV
    elif asked is not None and str(asked).strip().lower() not in ("", PROJECT):
        year, source = edition_year(asked, "EDITION"), "EDITION"
    elif saved is not None:
        return saved, f"the project's, {project_file(drive)}"
    elif data_root is not None and (found := detect_edition(data_root)) is not None:
        year, source = found, f"the data's: {describe_facts(data_facts(data_root))}"
    else:
        print(f"note: no edition chosen yet and the data do not name one: using {DEFAULT_YEAR}; set EDITION in the "
              "settings cell to your course's year")
        return DEFAULT_YEAR, "the default"
    if drive is not None and saved is None:
        print(f"the project's edition is now {year}, saved in {save_project(drive, edition=year)}")
        source += ", saved as the project's"
    elif saved is not None and saved != year:
        print(f"note: this notebook uses {year} ({source}) but the project's edition is {saved} "
              f"({project_file(drive)}); set EDITION = \"project\" to follow the project")
    return year, source


# ------------------------------------------------------------------------------------------------ settings


def resolve_settings(
    data_root: str | os.PathLike = "data/FFHQ",
    runs_dir: str | os.PathLike = RUNS_DIR,
    figures_dir: str | os.PathLike | None = None,
    quick: bool = False,
    kit: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    edition: int | str | None = PROJECT,
    drive: str | os.PathLike | None = None,
    notebook: str | None = None,
) -> Settings:
    """The notebook's settings after the environment overrides; relative paths are relative to the kit.

    ``FACESR_QUICK`` (1/0) overrides ``quick``; quick mode uses the edition's bundled sample data
    (:func:`facesr.data.sample.ensure_sample_data`) unless ``FACESR_DATA`` is set, and the runs folder's
    ``quick/``. ``FACESR_DATA``, ``FACESR_RUNS`` and ``FACESR_FIGURES`` override the data root, the runs folder and
    the figures folder; ``FACESR_SMOKE=1`` (with quick mode) sets ``smoke``: the tests' sizes
    (:mod:`facesr.config.quick_mode`). The edition: :func:`resolve_edition`.

    Args:
        data_root: The data root.
        runs_dir: The folder of run folders (quick mode: its ``quick/``).
        figures_dir: The figures folder; None or "" for the project's (:func:`figures_folder`).
        quick: Quick mode.
        kit: The kit's root (default: this checkout).
        env: The environment (default ``os.environ``).
        edition: The notebook's ``EDITION``: a year, or ``"project"`` for the project's.
        drive: The folder standing for MyDrive (default ``FACESR_DRIVE``, which the set-up cell sets).
        notebook: The notebook's name (for the figure manifest).
    """
    import torch

    from facesr.colab.runtime import kit_root

    env = os.environ if env is None else env
    kit = Path(kit).resolve() if kit is not None else kit_root()
    drive = Path(drive) if drive is not None else drive_from_env(env)
    if env.get("FACESR_QUICK", "").strip():
        quick = _env_flag(env["FACESR_QUICK"])
    given_data = env.get("FACESR_DATA") or (None if quick else data_root)
    data_path = kit / Path(given_data).expanduser() if given_data else None  # an absolute path stays as it is
    year, source = resolve_edition(edition, drive, data_path if data_path and data_path.is_dir() else None, env)
    if data_path is None:
        from facesr.data.sample import ensure_sample_data

        data_path = ensure_sample_data(edition=year)
    runs = kit / Path(env.get("FACESR_RUNS") or runs_dir).expanduser()
    figures = env.get("FACESR_FIGURES") or figures_dir
    settings = Settings(
        kit=kit,
        data_root=data_path,
        runs_dir=Path(quick_runs_dir(runs)) if quick else runs,
        figures_dir=kit / Path(figures).expanduser() if figures else figures_folder(year, bool(quick), drive, kit),
        quick=bool(quick),
        device="cuda" if torch.cuda.is_available() else "cpu",
        smoke=bool(quick) and _env_flag(env.get("FACESR_SMOKE", "")),
        edition=year,
        edition_source=source,
        drive=drive,
        notebook=notebook,
    )
    if not settings.data_root.is_dir():
        print(
            f"note: data root {settings.data_root} not found; on Colab put {DRIVE_ARCHIVE} in your Drive and "
            "re-run the set-up cell, or set QUICK for the bundled sample data"
        )
    _ACTIVE[:] = [settings]
    return settings
