"""Repository-level checks: the README's commands, CI wiring, lint."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _ci_test_command() -> str:
    """The command .ci/run extracts from the README (runs the same awk program)."""
    script = (REPO / ".ci" / "run").read_text()
    awk_program = re.search(r"awk '([^']+)' README.md", script).group(1)
    out = subprocess.run(["awk", awk_program, "README.md"], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_ci_runs_the_readme_test_command():
    command = _ci_test_command()
    assert "pytest" in command and "pip install" in command
    assert command in (REPO / "README.md").read_text()


def test_readme_starts_with_two_commands():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    first_two = [b.strip() for b in blocks[:2]]
    assert "python3 -m facesr demo" in first_two[0]
    assert first_two[1] == _ci_test_command()


def test_cli_help_lists_every_command(capsys):
    from facesr.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("params", "check-data", "sample-data", "train", "predict", "evaluate", "score", "demo"):
        assert command in out


def test_ruff_clean():
    ruff = Path(sys.executable).with_name("ruff")  # installed by requirements-dev.txt in the same env
    result = subprocess.run([str(ruff if ruff.exists() else "ruff"), "check", "."], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
