"""The editions registry against the course facts, get_edition's environment and errors, the tables."""

from __future__ import annotations

import json
import zipfile

import pytest

from facesr.editions import EDITIONS, Edition, edition_year, editions_table, get_edition, results_table
from facesr.errors import FacesrError

# The facts as docs/course.md gives them, written out here rather than read from the module under test.
# (limit, training GT, val pairs, test LQ, real-world count, real-world size, degradation, framework,
#  baseline val, meta_info, CodaLab id, top of the leaderboard)
FACTS = {
    2022: (1_821_085, 4000, 400, 400, 5, None, "course", "MMEditing 0.x", 28.89, None, None, None),
    2023: (2_276_356, 5000, 400, 400, 6, 128, "course", "MMEditing (0.x and >= 1.0 configs)", 28.89, None, 11412,
           29.63118),
    2024: (2_276_356, 5000, 400, 400, 6, 128, "second_order", "Real-ESRGAN code on BasicSR", 26.33,
           "meta_info_FFHQ5000sub_GT.txt", 18233, 26.83132),
    2025: (2_276_356, 6000, 400, 400, 6, None, "second_order", "Real-ESRGAN code on BasicSR", None,
           "meta_info_FFHQ6000sub_GT.txt", None, 27.32311),
}
# (recipe words, parameters, val, test) of the best reported in-budget result
BEST = {
    2022: ("MSRResNet-20", 1_812_995, 29.0122, 28.8475),
    2023: ("MSRResNet-24", 2_108_419, 29.7899, 29.49933),
    2024: ("MSRResNet-24", 2_108_419, 26.5656, 26.65289),
    2025: ("SwinIR embed 60, 4x6", 929_628, None, 27.03877),
}


@pytest.fixture(autouse=True)
def _no_edition_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACESR_EDITION", raising=False)


@pytest.mark.parametrize("year", list(FACTS))
def test_registry_values_match_the_course_facts(year: int) -> None:
    ed = EDITIONS[year]
    limit, train, val, test, real_n, real_size, degradation, framework, baseline, meta, codalab, top = FACTS[year]
    assert isinstance(ed, Edition) and ed.year == year
    assert (ed.param_limit, ed.train_images, ed.val_pairs, ed.test_images) == (limit, train, val, test)
    assert (ed.real_world.count, ed.real_world.size) == (real_n, real_size)
    assert (ed.degradation, ed.framework, ed.baseline_val_psnr) == (degradation, framework, baseline)
    assert (ed.meta_info, ed.codalab_competition, ed.top_test_psnr) == (meta, codalab, top)
    assert ed.baseline_config == "srgan"
    words, params, best_val, best_test = BEST[year]
    best = ed.best_in_budget
    assert words in best.recipe and (best.params, best.val_psnr, best.test_psnr) == (params, best_val, best_test)
    assert best in ed.reported and best.params <= ed.param_limit


def test_edition_details() -> None:
    # limits: 120 % and 150 % of MSRResNet-16, rounded down
    assert EDITIONS[2022].param_limit == int(1.2 * 1_517_571) and EDITIONS[2023].param_limit == int(1.5 * 1_517_571)
    assert EDITIONS[2023].real_world.folder == EDITIONS[2024].real_world.folder == "test_real"
    assert EDITIONS[2023].real_world.files == tuple(f"00{i}.png" for i in range(1, 7))
    assert EDITIONS[2024].real_world.files == ("01.png", "02.png", "03.png", "04.png", "05.png", "06.png")
    assert EDITIONS[2022].real_world.files is None and EDITIONS[2025].real_world.size is None
    assert "not verified" in EDITIONS[2025].real_world.note
    # the 2025 course yml still names the 5000-image list
    assert EDITIONS[2025].course_yml_meta_info == "meta_info_FFHQ5000sub_GT.txt"
    assert all(EDITIONS[y].course_yml_meta_info is None for y in (2022, 2023, 2024))
    assert "Quantize" in EDITIONS[2023].degradation_note
    assert "around 26.33" in EDITIONS[2024].baseline_note and "26.3272" in EDITIONS[2024].baseline_note
    assert EDITIONS[2025].baseline_note == "not published"
    # the SwinIR of 2024 is embed 78 with 6 groups of 6 blocks: 2,251,758 parameters (counted in test_config)
    swinir = next(r for r in EDITIONS[2024].reported if r.recipe.startswith("SwinIR embed 78"))
    assert "6x6" in swinir.recipe and (swinir.params, swinir.val_psnr, swinir.test_psnr) == (2_251_758, 26.55, 26.62)
    peer_b = next(r for r in EDITIONS[2022].reported if "1M iterations" in r.recipe)
    assert (peer_b.val_psnr, peer_b.test_psnr) == (28.9604, None)
    with pytest.raises(AttributeError):  # frozen
        EDITIONS[2022].param_limit = 1  # type: ignore[misc]


def test_get_edition_default_environment_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_edition().year == 2022
    assert get_edition(2024) is EDITIONS[2024] and get_edition("2023").year == 2023
    assert get_edition(EDITIONS[2025]) is EDITIONS[2025]
    monkeypatch.setenv("FACESR_EDITION", "2024")
    assert get_edition().year == 2024 and edition_year(None) == 2024
    assert get_edition(2022).year == 2022  # an explicit year wins
    monkeypatch.setenv("FACESR_EDITION", " ")
    assert get_edition().year == 2022  # blank counts as unset
    monkeypatch.setenv("FACESR_EDITION", "2026")
    with pytest.raises(FacesrError, match=r"^FACESR_EDITION='2026' is not a known edition; known editions: "
                                          r"2022, 2023, 2024, 2025$"):
        get_edition()
    for bad in (2021, "twenty", True, 2022.5):
        with pytest.raises(FacesrError, match="known editions: 2022, 2023, 2024, 2025") as err:
            get_edition(bad)
        assert "\n" not in str(err.value)


def test_tables_and_summary() -> None:
    table = editions_table().splitlines()
    assert len(table) == 2 + len(EDITIONS)
    row = {line.split("|")[1].strip(): line for line in table[2:]}
    assert "| 5000 | 2,276,356 | second order (Real-ESRGAN) | Real-ESRGAN code on BasicSR | 26.33 | 26.65289 | 26.83132 |" \
        in row["2024"]
    assert "| 4000 | 1,821,085 | course (MMEditing) | MMEditing 0.x | 28.89 | 28.8475 | - |" in row["2022"]
    assert "not published | 27.03877 | 27.32311 |" in row["2025"]
    results = results_table(2023)
    assert "| MSRResNet-24, L1, 150k iterations | 2,108,419 | 29.7315 | 29.4399 |" in results
    assert "| MSRResNet-16, MSE, 300k iterations | 1,517,571 | 29.6773 | - |" in results
    text = get_edition(2024).summary()
    for words in ("Edition 2024", "5000 training GT", "test_real/ (01.png-06.png)", "2,276,356", "second order", "26.33 dB",
                  "26.65289 dB test", "26.83132 dB", "18233", "meta_info_FFHQ5000sub_GT.txt"):
        assert words in text, words
    assert "size not verified" in get_edition(2025).summary() and "test_real/" in get_edition(2023).summary()


@pytest.mark.slow
@pytest.mark.parametrize("year", list(FACTS))
def test_train_evaluate_and_predict_zip_per_edition(year: int, tmp_path, capsys: pytest.CaptureFixture) -> None:
    """A quick train, evaluate and leaderboard zip of the edition's baseline on its own sample set, through the CLI."""
    from facesr.cli import main
    from facesr.data.sample import smoke_sample_data

    data, runs = smoke_sample_data(tmp_path / "data", edition=year), tmp_path / "runs"
    assert main(["train", "srgan", "--quick", "--edition", str(year), "--iters", "2", "--data", str(data),
                 "--runs", str(runs), "--set", "val_every=2", "--set", "log_every=1"]) == 0
    run = runs / "srgan"
    config = json.loads((run / "config.json").read_text())
    assert config["edition"] == year and config["generator"] == ("msrresnet" if year < 2024 else "msrresnet_basicsr")
    assert main(["evaluate", str(run), "--data", str(data), "--csv", str(tmp_path / "eval.csv")]) == 0
    out = capsys.readouterr().out
    assert f"within the {year} limit of {EDITIONS[year].param_limit:,}" in out
    assert main(["predict", str(run), str(data / "test" / "LQ"), str(tmp_path / "sr"), "--zip",
                 str(tmp_path / "sub.zip")]) == 0
    assert zipfile.ZipFile(tmp_path / "sub.zip").namelist() == ["results/00000.png", "results/00001.png"]
    # the run resumes in its own edition without --edition; another edition is refused with the difference
    assert main(["train", "srgan", "--quick", "--iters", "3", "--data", str(data), "--runs", str(runs),
                 "--set", "val_every=2", "--set", "log_every=1"]) == 0
    other = 2024 if year != 2024 else 2022
    capsys.readouterr()
    assert main(["train", "srgan", "--quick", "--edition", str(other), "--iters", "4", "--data", str(data),
                 "--runs", str(runs)]) == 2
    assert f"edition: {year} -> {other}" in capsys.readouterr().err


@pytest.mark.parametrize("year", list(FACTS))
def test_detect_edition_names_each_editions_sample_data(year: int, tmp_path) -> None:
    from facesr.data.sample import ensure_sample_data
    from facesr.editions import data_facts, detect_edition

    root = ensure_sample_data(edition=year)  # 24 faces, a subset: the real-world images decide
    assert detect_edition(root) == year, data_facts(root)
    facts = data_facts(root)
    assert len(facts) == 1 and facts[0][1] == {year} and "test_real/" in facts[0][0]


def test_detect_edition_from_counts_and_meta_info_and_on_contradicting_roots(tmp_path) -> None:
    from facesr.editions import data_facts, describe_facts, detect_edition

    def root_with(name: str, train: int = 0, real: list[str] | None = None, meta: list[str] | None = None,
                  nested: bool = False):
        root = tmp_path / name
        (root / "train" / "GT").mkdir(parents=True)
        for i in range(train):  # names only: nothing is decoded
            (root / "train" / "GT" / f"{i:05d}.png").touch()
        folder = root / "test_real" / ("LQ" if nested else "")
        folder.mkdir(parents=True, exist_ok=True)
        for file in real or []:
            (folder / file).touch()
        for file in meta or []:
            (root / file).write_text("00000.png (512,512,3)\n")
        return root

    assert detect_edition(root_with("2022", train=4000)) == 2022
    assert detect_edition(root_with("5000", train=5000)) is None  # 2023 or 2024
    assert detect_edition(root_with("2023", train=5000, real=[f"{i:03d}.png" for i in range(1, 7)])) == 2023
    assert detect_edition(root_with("2024", train=5000, meta=["meta_info_FFHQ5000sub_GT.txt"])) == 2024
    assert detect_edition(root_with("2025", meta=["meta_info_FFHQ6000sub_GT.txt"])) == 2025
    nested = root_with("nested", real=["01.png", "02.png"], nested=True)  # test_real/LQ/: found all the same
    assert detect_edition(nested) == 2024 and "test_real/LQ/01.png-02.png" in describe_facts(data_facts(nested))
    assert detect_edition(tmp_path / "missing") is None and detect_edition(root_with("empty")) is None
    # contradicting roots: each fact names an edition, together none
    contra = root_with("contra", train=4000, real=["01.png", "02.png"])
    assert detect_edition(contra) is None
    assert describe_facts(data_facts(contra)) == ("4000 training faces in train/GT (2022); "
                                                  "the real-world file names test_real/01.png-02.png (2024)")
    assert detect_edition(root_with("contra2", train=6000, meta=["meta_info_FFHQ5000sub_GT.txt"])) == 2025
    assert detect_edition(root_with("contra3", train=4000, meta=["meta_info_FFHQ6000sub_GT.txt"])) is None
