"""A run folder on Drive: checkpoints written in place and in turn with checksums (nothing replaced, so nothing
fills Drive's Trash), a torn write never resumed, iter_*.pt on local disk; the Drive benchmark; the Trash helper."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from facesr.config import get_config
from facesr.errors import FacesrError
from facesr.training import checkpoint_files
from facesr.training.checkpoint_files import CHECKSUMS, read_checksums, verified_iter
from facesr.weights.checkpoints import load_checkpoint


@pytest.fixture()
def drive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder standing for Colab's MyDrive; the runtime's local disk beside it."""
    folder = tmp_path / "drive"
    folder.mkdir()
    monkeypatch.setenv("FACESR_DRIVE", str(folder))
    monkeypatch.setenv("FACESR_LOCAL_CHECKPOINTS", str(tmp_path / "local"))
    return folder


def _cfg(iters: int):
    # validation only at the end (val_every past it): the checkpoints are what is tested
    return get_config("srgan", quick=True, smoke=False, iters=iters, gt_patch=32, val_every=100, checkpoint_every=2,
                      log_every=1, checkpoint_minutes=0)


def _train(cfg, data: Path, runs: Path) -> Path:
    from facesr.training import train

    return train(cfg, data_root=data, runs_dir=runs)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke copy of the 2022 sample set: 4 training faces, 2 val pairs (a quick validation)."""
    from facesr.data.sample import smoke_sample_data

    return smoke_sample_data(tmp_path_factory.mktemp("smoke") / "data")


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 iterations uninterrupted, on a local disk."""
    return _train(_cfg(8), data, tmp_path_factory.mktemp("reference"))


def test_a_drive_run_writes_two_slots_in_place_and_keeps_iter_files_local(drive: Path, data: Path,
                                                                          tmp_path: Path) -> None:
    run = _train(_cfg(6), data, drive / "facesr" / "runs")
    assert sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "latest.pt", "previous.pt"]
    assert load_checkpoint(run / "latest.pt")["iter"] == 6 and load_checkpoint(run / "previous.pt")["iter"] == 4
    records = read_checksums(run)
    assert sorted(r["iter"] for r in records) == [4, 6]
    assert verified_iter(run / "latest.pt", records) == 6 and verified_iter(run / "best.pt", records) == 6
    local = tmp_path / "local" / "facesr" / "runs" / "srgan"
    assert sorted(p.name for p in local.glob("iter_*.pt")) == ["iter_000004.pt", "iter_000006.pt"]  # keep_last 2
    inode = (run / "previous.pt").stat().st_ino
    _train(_cfg(8), data, drive / "facesr" / "runs")
    # the older slot got iteration 8 in place (same file, new bytes), then the names swapped
    assert (run / "latest.pt").stat().st_ino == inode and load_checkpoint(run / "latest.pt")["iter"] == 8
    assert load_checkpoint(run / "previous.pt")["iter"] == 6
    plan = checkpoint_files.drive_use(_cfg(8), run)
    assert plan.startswith("Drive: one checkpoint is about 24 MB") and "latest.pt, previous.pt and best.pt" in plan


def test_a_torn_checkpoint_write_is_never_resumed(drive: Path, data: Path, reference: Path,
                                                   monkeypatch: pytest.MonkeyPatch, assert_same_run,
                                                   capsys: pytest.CaptureFixture) -> None:
    runs = drive / "facesr" / "runs"
    run = runs / "srgan"
    real_write = checkpoint_files.write_in_place
    calls = []

    def torn(source: Path, target: Path) -> dict:  # the third checkpoint: the runtime goes away half-way through
        calls.append(target.name)
        if len(calls) < 3:
            return real_write(source, target)
        content = source.read_bytes()
        with open(target, "r+b" if target.exists() else "wb") as f:
            f.write(content[: len(content) // 2])
        raise OSError("the runtime was recycled")

    monkeypatch.setattr(checkpoint_files, "write_in_place", torn)
    with pytest.raises(OSError, match="recycled"):
        _train(_cfg(8), data, runs)  # latest.pt 4, previous.pt 2; dies writing iteration 6 into previous.pt
    monkeypatch.setattr(checkpoint_files, "write_in_place", real_write)
    assert calls == ["previous.pt"] * 3 and load_checkpoint(run / "latest.pt")["iter"] == 4
    # half of iteration 6 over iteration 2's bytes: it even loads (the same layout), mixing two checkpoints,
    # which is why the checksum decides and not whether the file loads
    assert load_checkpoint(run / "previous.pt")["iter"] == 6 and verified_iter(run / "previous.pt", read_checksums(run)) is None
    capsys.readouterr()
    _train(_cfg(8), data, runs)
    out = capsys.readouterr().out
    assert "from iteration 4" in out and "previous.pt does not match its checksum" in out
    assert_same_run(reference, run)  # as if nothing had happened
    # a torn latest.pt (bytes changed, size kept) is passed over the same way: the other slot is resumed
    data = bytearray((run / "latest.pt").read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    (run / "latest.pt").write_bytes(bytes(data))
    assert checkpoint_files.resume_checkpoint(run) == run / "previous.pt"
    assert "latest.pt does not match its checksum" in capsys.readouterr().out
    (run / "previous.pt").write_bytes(b"torn")
    with pytest.raises(FacesrError, match=r"no checkpoint in .* matches checksums.json; delete"):
        checkpoint_files.resume_checkpoint(run)


def test_a_torn_best_pt_is_restored_from_its_slot_and_a_cut_swap_is_settled(drive: Path, data: Path,
                                                                            capsys: pytest.CaptureFixture) -> None:
    runs = drive / "facesr" / "runs"
    run = _train(_cfg(6), data, runs)  # best.pt = latest.pt = iteration 6 (the only validation)
    best = (run / "best.pt").read_bytes()
    (run / "best.pt").write_bytes(best[:1000])
    (run / "latest.pt").rename(run / checkpoint_files.SWAP)  # a crash between the renames of the swap
    (run / "previous.pt").rename(run / "latest.pt")
    checkpoint_files.settle_swap(run)
    assert not (run / checkpoint_files.SWAP).exists() and load_checkpoint(run / "latest.pt")["iter"] == 4
    capsys.readouterr()
    _train(_cfg(8), data, runs)  # resumes from the newest verified slot (6) and restores best.pt first
    out = capsys.readouterr().out
    assert "from iteration 6" in out and "best.pt was cut short while being written: restored from" in out
    records = read_checksums(run)
    assert verified_iter(run / "best.pt", records) in (6, 8)


def test_an_older_run_folder_on_drive_resumes_from_its_latest_pt(drive: Path, data: Path,
                                                                 reference: Path, tmp_path: Path) -> None:
    import shutil

    local = _train(_cfg(4), data, tmp_path / "old-kit")  # written the local way: no checksums
    run = drive / "facesr" / "runs" / "srgan"
    shutil.copytree(local, run)
    assert not (run / CHECKSUMS).exists()
    _train(_cfg(8), data, drive / "facesr" / "runs")
    assert load_checkpoint(run / "latest.pt")["iter"] == 8 and (run / CHECKSUMS).is_file()


def test_drive_benchmark_meets_the_trash_bound(capsys: pytest.CaptureFixture, monkeypatch) -> None:
    """benchmarks/drive_writes.py at the issue's settings (300k iterations, default checkpoints) for srgan: before
    (files replaced) over 2 GB to the Trash, after (slots in place) a few MB. The Trash of the after-writes holds
    only checksums.json and run_info.json, whatever the checkpoint's size: the note's table has every config."""
    import os

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import drive_writes
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # what is written does not depend on it; the time does
    assert drive_writes.main(["--configs", "srgan", "--sizes", "estimate", "--scale", "20000"]) == 0
    rows = {r[2].strip(): r for r in (line.split("|") for line in capsys.readouterr().out.splitlines())
            if len(r) > 2 and r[1].strip() == "srgan"}
    before, after = (float(rows[label][6].replace(",", "")) for label in ("before", "after"))
    assert after < 10 < 2000 < before, (before, after)  # MB


def test_empty_kit_trash_needs_colab_and_deletes_only_the_kits_own_trashed_files(monkeypatch, capsys) -> None:
    from facesr.colab import empty_kit_trash

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert empty_kit_trash() == 0
    assert "needs Colab" in capsys.readouterr().out
    folders = {"root": [("facesr", "F")], "F": [("runs", "R"), ("figures", "G")], "R": [("srgan", "S")],
               "S": [], "G": []}
    files = [  # (id, name, parent, trashed, bytes)
        ("1", "latest.pt", "S", True, 300), ("2", "iter_000005.pt", "S", True, 200), ("3", "notes.txt", "S", True, 5),
        ("4", "latest.pt", "X", True, 300), ("5", "best.pt", "S", False, 300), ("6", ".latest.pt.a1b2.tmp", "S", True, 7),
        ("7", "checksums.json", "S", True, 1),
    ]
    deleted: list[str] = []

    class Request:
        def __init__(self, result):
            self.result = result

        def execute(self):
            return self.result

    class Files:
        def list(self, q: str, fields: str, pageSize: int, pageToken=None, **kw):  # noqa: N803 - the API's names
            parent = q.split("'")[1]
            if "mimeType = " in q:  # the folders below one
                return Request({"files": [{"id": i, "name": n} for n, i in folders.get(parent, [])]})
            return Request({"files": [{"id": i, "name": n, "quotaBytesUsed": str(b)} for i, n, p, t, b in files
                                      if p == parent and t]})

        def delete(self, fileId: str, **kw):  # noqa: N803
            deleted.append(fileId)
            return Request({})

    class Service:
        def files(self):
            return Files()

    auth = types.SimpleNamespace(authenticate_user=lambda: None)
    colab = types.ModuleType("google.colab")
    colab.auth = auth
    discovery = types.SimpleNamespace(build=lambda name, version, cache_discovery=False: Service())
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.auth", auth)
    monkeypatch.setitem(sys.modules, "googleapiclient", types.SimpleNamespace(discovery=discovery))
    monkeypatch.setitem(sys.modules, "googleapiclient.discovery", discovery)
    assert empty_kit_trash() == 508
    assert sorted(deleted) == ["1", "2", "6", "7"]  # not the note, not another folder's file, not a kept file
    assert "deleted 4 of the kit's trashed files for good (508 bytes)" in capsys.readouterr().out


def test_setup_runtime_with_a_drive_folder_points_iter_files_at_local_disk(tmp_path: Path, monkeypatch) -> None:
    from facesr.colab.runtime import setup_runtime

    monkeypatch.delenv("FACESR_DRIVE", raising=False)
    monkeypatch.delenv("FACESR_LOCAL_CHECKPOINTS", raising=False)
    kit = tmp_path / "kit"
    (kit / "checkpoints").mkdir(parents=True)
    drive = tmp_path / "drive"
    drive.mkdir()
    info = setup_runtime(kit, drive_root=drive, verbose=False)
    assert info.runs_link.resolve() == (drive / "facesr" / "runs").resolve()
    import os

    assert os.environ["FACESR_DRIVE"] == str(drive.resolve())
    assert os.environ["FACESR_LOCAL_CHECKPOINTS"] == str(kit / "checkpoints-local")
