"""The one atomic write: the old file survives a failed write, no temp file is left, and every writer uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from facesr.atomic import atomic_link, atomic_write, atomic_write_json, temp_pattern

LIB = Path(__file__).resolve().parents[1] / "lib" / "facesr"


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = atomic_write_json(tmp_path / "run_info.json", {"iter": 1})

    def fails_halfway(f) -> None:
        f.write(b'{"iter": ')
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(path, fails_halfway)
    assert path.read_text() == '{\n  "iter": 1\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_info.json"]


def test_temp_names_are_unique_and_match_the_clean_up_pattern(tmp_path: Path) -> None:
    seen = []

    def record(f) -> None:  # the temp file is the one file of the folder that is not the target
        seen.extend(p.name for p in tmp_path.iterdir() if p.name != "latest.pt")

    for _ in range(2):
        atomic_write(tmp_path / "latest.pt", record)
    assert len(seen) == 2 and seen[0] != seen[1]
    assert sorted(p.name for p in tmp_path.glob(temp_pattern("latest.pt"))) == []
    assert all(Path(tmp_path / name).match(temp_pattern("latest.pt")) for name in seen)


def test_atomic_link_replaces_the_target_with_the_source(tmp_path: Path) -> None:
    source = atomic_write_json(tmp_path / "iter_000002.pt", {"iter": 2})
    target = atomic_write_json(tmp_path / "latest.pt", {"iter": 1})
    assert atomic_link(source, target)
    assert target.read_text() == source.read_text() and target.stat().st_ino == source.stat().st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_000002.pt", "latest.pt"]


def test_no_module_renames_or_fsyncs_files_itself() -> None:
    """The temp-file + fsync + replace pattern is written once, in facesr.atomic."""
    writers = [p.relative_to(LIB).as_posix() for p in LIB.rglob("*.py")
               if p.name != "atomic.py" and ("os.fsync(" in p.read_text() or "mkstemp(" in p.read_text())]
    assert writers == []
