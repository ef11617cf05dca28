"""Shared fixtures: the bundled sample data, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the bundled sample data in the course layout (read-only by convention)."""
    from facesr.sample_data import make_sample_data

    return make_sample_data(tmp_path_factory.mktemp("sample") / "data")
