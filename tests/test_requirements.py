"""The versions the kit says it runs on are the ones CI tests (.ci/run): requirements.txt's lower bounds are
pinned in requirements-floor.txt, and requirements-colab.txt holds Colab's versions as docs/course.md
section 12 lists them."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
NOT_ON_COLAB = {"spandrel"}  # facesr.colab.setup_runtime installs it there


def _requirements(name: str) -> dict[str, Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in (REPO / name).read_text(encoding="utf-8").splitlines())
    reqs = [Requirement(line) for line in lines if line]
    by_name = {canonicalize_name(r.name): r for r in reqs}
    assert len(by_name) == len(reqs), f"{name} names a package twice"
    return by_name


def _pin(req: Requirement) -> str:
    (spec,) = req.specifier
    assert spec.operator == "==", f"{req}: pin it with =="
    return spec.version


def _colab_versions() -> dict[str, str]:
    """The `name==version` pins in docs/course.md section 12."""
    text = (REPO / "docs" / "course.md").read_text(encoding="utf-8")
    section = re.search(r"^## 12\. .*?(?=^## 13\. )", text, re.S | re.M)
    assert section, "docs/course.md has no section 12 before section 13"
    pins = re.findall(r"`([A-Za-z0-9_.-]+)==([^`\s]+)`", section.group(0))
    assert pins, "docs/course.md section 12 lists no `name==version` pins"
    return {canonicalize_name(name): version for name, version in pins}


def test_floor_file_pins_every_lower_bound_of_requirements_txt():
    runtime, floor = _requirements("requirements.txt"), _requirements("requirements-floor.txt")
    assert sorted(floor) == sorted(runtime), "requirements-floor.txt and requirements.txt name other packages"
    for name, req in runtime.items():
        lower = [s.version for s in req.specifier if s.operator == ">="]
        assert len(lower) == 1, f"requirements.txt: {req} needs one lower bound (>=)"
        assert _pin(floor[name]) == lower[0], f"requirements-floor.txt pins {floor[name]}, the floor is {lower[0]}"


def test_colab_file_pins_section_12s_versions_within_the_kits_bounds():
    runtime, colab, listed = _requirements("requirements.txt"), _requirements("requirements-colab.txt"), _colab_versions()
    assert set(runtime) <= set(colab), f"requirements-colab.txt lacks {sorted(set(runtime) - set(colab))}"
    for name, req in runtime.items():  # the kit's promise: Colab's versions satisfy every bound
        assert req.specifier.contains(_pin(colab[name])), f"Colab's {name} {_pin(colab[name])} is outside {req}"
    on_colab = {name: _pin(req) for name, req in colab.items() if name not in NOT_ON_COLAB}
    # torch 2.11.0+cu128 on Colab, the same release from PyPI here (see requirements-colab.txt)
    assert {n: Version(v).public for n, v in listed.items()} == {n: Version(v).public for n, v in on_colab.items()}
