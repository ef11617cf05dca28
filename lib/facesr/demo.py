"""The kit's main job: run notebooks 01-07 headless in quick mode and regenerate the report's figures.

``python -m facesr demo [--out DIR] [--data ROOT]`` calls :func:`run_demo`. The committed notebooks
are never modified: each executed copy (with outputs) goes to ``<out>/notebooks/NN_name.ipynb``, the
runs to ``<out>/runs/quick`` (quick mode's runs folder), and the figures and tables to the repository's
``docs/figures/`` (or ``figures_dir``): the README's pictures, kept apart from ``figures/``, where a student's own go.
The notebooks read these locations from the environment (``FACESR_QUICK``, ``FACESR_DATA``,
``FACESR_RUNS``, ``FACESR_FIGURES``) through :func:`facesr.colab.resolve_settings`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from facesr.errors import FacesrError

CELL_TIMEOUT_S = 900  # one cell of a quick-mode notebook takes at most a few minutes on 2 CPU cores
PSNR_TABLE = "psnr_table"  # written by notebook 06 as docs/figures/psnr_table.{csv,md}
DEMO_FIGURES = "docs/figures"  # the demo's figures, relative to the kit (the README shows them)


@dataclass
class DemoResult:
    """What :func:`run_demo` produced: executed notebooks with their wall times, and the folders."""

    out_dir: Path
    runs_dir: Path
    figures_dir: Path
    notebooks: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0


REPORT_NOTEBOOK = "06_results_and_report"  # reports on every run, so the demo runs it after all the others


def kit_notebooks(folder: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb`` of the kit in the order the demo runs them.

    That is their number order, except that notebook 06 (results and report) comes last: it scores and
    shows the runs of every training notebook, 07's in-budget runs included.
    """
    from facesr.colab import kit_root

    folder = Path(folder) if folder is not None else kit_root() / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"), key=lambda p: (p.stem == REPORT_NOTEBOOK, p.name))
    if not paths:
        raise FacesrError(f"no notebooks NN_name.ipynb in {folder}; is this a complete checkout of the kit?")
    return paths


SOCKET_POLL_S = 1.0  # the longest a message can sit unseen in a kernel socket (see _PollingChannel)


def polling_kernel_client() -> type:
    """An AsyncKernelClient whose channels look at their socket at least every SOCKET_POLL_S seconds.

    With ipykernel 7 and pyzmq 27, the asyncio wake-up for a message on the shell socket is now and
    then lost (seen in about one run in two of notebook 02, after its widget panel opens ~40 comms):
    the execute reply sits in the socket while nbclient waits for the whole cell timeout. A wait that
    is cut into short polls checks the socket again after each one, so a lost wake-up costs at most
    SOCKET_POLL_S seconds instead of CELL_TIMEOUT_S.
    """
    from queue import Empty

    from jupyter_client.asynchronous.client import AsyncKernelClient
    from traitlets import Type

    # The async client's own channel class: jupyter_client 8 names it AsyncZMQSocketChannel, 7.x (Colab's)
    # ZMQSocketChannel, both in jupyter_client.channels with the same awaitable get_msg.
    async_channel = AsyncKernelClient.shell_channel_class.default_value

    class _PollingChannel(async_channel):
        async def get_msg(self, timeout: float | None = None) -> dict:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = SOCKET_POLL_S if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    return await super().get_msg(timeout=min(SOCKET_POLL_S, left))
                except Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

    class _PollingKernelClient(AsyncKernelClient):
        shell_channel_class = Type(_PollingChannel)
        iopub_channel_class = Type(_PollingChannel)
        control_channel_class = Type(_PollingChannel)

    return _PollingKernelClient


def kernel_manager(spec_dir: Path) -> object:
    """A kernel manager whose ``python3`` kernel is this interpreter (not whatever ``python3`` is on PATH)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    kernel_dir = spec_dir / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    ksm = KernelSpecManager(kernel_dirs=[str(spec_dir)])
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ksm)
    if os.name == "posix":
        # Unix sockets in the private temporary folder instead of localhost TCP ports: nothing else on the
        # machine can connect, and ipykernel (7.4+) no longer warns about unencrypted TCP on every start.
        stem = spec_dir / f"kernel-{uuid.uuid4().hex[:8]}"
        km.transport, km.connection_file, km.ip = "ipc", f"{stem}.json", f"{stem}-ipc"
    km.client_factory = polling_kernel_client()
    return km


def _kernel_env(data_root: Path, runs_dir: Path, figures_dir: Path, smoke: bool = False) -> dict[str, str]:
    from facesr.colab import kit_root

    env = dict(os.environ)
    env.pop("FACESR_DRIVE", None)  # the demo is no student's project: nothing of it goes to a Drive
    lib = str(kit_root() / "lib")
    env["PYTHONPATH"] = os.pathsep.join([lib, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    env.update(
        FACESR_QUICK="1",
        FACESR_SMOKE="1" if smoke else "0",
        FACESR_DATA=str(data_root),
        FACESR_RUNS=str(runs_dir),
        FACESR_FIGURES=str(figures_dir),
        # Inline figures in the executed notebooks even when the caller set MPLBACKEND=Agg (tests, CI).
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONUNBUFFERED="1",
    )
    return env


def _failed_cell(nb: object) -> tuple[int, str]:
    """(1-based code cell number, first source line) of the cell holding an error output."""
    number = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        number += 1
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            return number, first
    return 0, ""


def _stop_kernel(km: object) -> None:
    """Kill the kernel nbclient was handed (``km=...``): nbclient leaves such a kernel running.

    A plain kill of the process: every cell has run and been saved, so nothing in the kernel needs a
    clean exit, and a kill cannot wait on a shutdown reply the way the manager's async shutdown can.
    """
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(timeout=30)
    with contextlib.suppress(Exception):
        km.cleanup_connection_file()


def execute_notebook(path: Path, out_path: Path, env: dict[str, str], cwd: Path, spec_dir: Path) -> float:
    """Execute ``path`` into ``out_path`` (saved even when a cell fails); return the seconds it took.

    Raises:
        FacesrError: a cell failed; names the notebook, the cell and where the partial notebook is.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    km = kernel_manager(spec_dir)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, km=km, resources={"metadata": {"path": str(cwd)}})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        nbformat.write(nb, out_path)
        number, first = _failed_cell(nb)
        where = f"code cell {number} ({first.strip()[:60]!r})" if number else "a cell"
        last = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise FacesrError(
            f"notebook {path.name} failed in {where}: {last}; partial executed notebook saved to {out_path}"
        ) from err
    except RuntimeError as err:  # the kernel did not start or stopped answering
        raise FacesrError(
            f"could not run {path.name}: {err}; check that ipykernel is installed for {sys.executable}"
        ) from err
    finally:
        _stop_kernel(km)
    nbformat.write(nb, out_path)
    return time.perf_counter() - start


def _print_summary(result: DemoResult) -> None:
    table = result.figures_dir / f"{PSNR_TABLE}.md"
    print()
    print(f"demo finished in {result.total_seconds:.0f} s")
    if table.is_file():
        print("validation PSNR (quick mode: a few hundred CPU iterations on the sample data, not the course's "
              "results):")
        print(table.read_text(encoding="utf-8").rstrip())
    print(f"figures and tables: {result.figures_dir}")
    print(f"executed notebooks: {result.out_dir / 'notebooks'}")
    print(f"runs:               {result.runs_dir}")


def run_demo(
    out_dir: str | os.PathLike = "demo_output",
    data_root: str | os.PathLike | None = None,
    figures_dir: str | os.PathLike | None = None,
    notebooks: list[Path] | None = None,
    smoke: bool = False,
) -> DemoResult:
    """Run the kit's notebooks in quick mode, in order, and regenerate the figures.

    Args:
        out_dir: folder for ``notebooks/`` (executed copies) and ``runs/`` (quick training runs).
        data_root: data root in the course layout (default: the bundled sample data, built if missing;
            with ``smoke`` a copy of its first few files, :data:`facesr.data.sample.SMOKE_COUNTS`).
        figures_dir: where the notebooks write figures and tables (default: the repository's ``docs/figures/``).
        notebooks: the notebooks to run (default: every ``notebooks/NN_*.ipynb`` of the kit).
        smoke: run every cell at the tests' sizes (``FACESR_SMOKE=1``, see :mod:`facesr.config.quick_mode`): minutes
            instead of the demo's, and numbers that mean nothing.

    Returns:
        A :class:`DemoResult`. A failing notebook stops the demo with a FacesrError naming it.
    """
    from facesr.colab import kit_root
    from facesr.config.quick_mode import quick_runs_dir
    from facesr.data.check import find_data_root
    from facesr.data.sample import ensure_sample_data, smoke_sample_data

    start = time.perf_counter()
    out = Path(out_dir).expanduser().resolve()
    if data_root is not None:
        data = find_data_root(data_root)
    else:  # the sample set; smoke mode a few files of it, so that every cell runs in seconds
        data = smoke_sample_data(out / "data") if smoke else ensure_sample_data()
    figures = Path(figures_dir).expanduser().resolve() if figures_dir is not None else kit_root() / DEMO_FIGURES
    result = DemoResult(out_dir=out, runs_dir=Path(quick_runs_dir(out / "runs")), figures_dir=figures)
    paths = list(notebooks) if notebooks is not None else kit_notebooks()
    env = _kernel_env(Path(data).resolve(), out / "runs", figures, smoke)  # the notebooks add quick/
    mode = "smoke mode (the tests' sizes)" if smoke else "quick mode"
    print(f"facesr demo: {len(paths)} notebooks in {mode} on {data}", flush=True)
    with tempfile.TemporaryDirectory(prefix="facesr-kernel-") as spec_dir:
        for i, path in enumerate(paths, 1):
            # a line of its own: the kernel's start-up warnings (on stderr) must not split it
            print(f"[{i}/{len(paths)}] {path.stem} ...", flush=True)
            target = out / "notebooks" / path.name
            try:
                seconds = execute_notebook(path, target, env, path.parent, Path(spec_dir))
            except FacesrError:
                print(f"[{i}/{len(paths)}] {path.stem} FAILED", flush=True)
                raise
            result.notebooks[path.stem], result.seconds[path.stem] = target, seconds
            print(f"[{i}/{len(paths)}] {path.stem} done in {seconds:.0f} s", flush=True)
    result.total_seconds = time.perf_counter() - start
    _print_summary(result)
    return result
