"""Repository-level checks: the README's commands, CI wiring, lint."""

from __future__ import annotations

import contextlib
import io
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


def test_readme_tables_are_the_commands_output():
    """Every block the README marks as a command's output is exactly what that command prints now."""
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"<!-- begin: python -m facesr ([^>]*?) -->\n(.*?)\n<!-- end: python -m facesr \1 -->",
                        readme, flags=re.S)
    assert {args for args, _ in blocks} >= {"editions", "params --edition 2022", "params --edition 2024"}
    from facesr.cli import main

    for args, text in blocks:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(args.split()) == 0
        assert text.removeprefix("```\n").removesuffix("\n```") == printed.getvalue().rstrip("\n"), args
