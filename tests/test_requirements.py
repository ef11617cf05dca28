"""The versions the kit says it runs on are the ones CI tests (.ci/run): requirements.txt declares every package
the kit imports, its lower bounds are pinned in requirements-floor.txt, and requirements-colab.txt holds Colab's
versions as docs/course.md section 12 lists them."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
NOT_ON_COLAB = {"spandrel"}  # facesr.colab.setup_runtime installs it there
# import name -> distribution, where they differ; other import names are their distribution's name
DISTRIBUTION_OF = {"cv2": "opencv-python-headless", "skimage": "scikit-image", "PIL": "pillow", "zmq": "pyzmq",
                   "IPython": "ipython"}  # fmt: skip
# the kit itself; Colab's own google.colab and googleapiclient, imported only there (an ImportError says so)
NOT_INSTALLED = {"facesr", "google", "googleapiclient"}


def _requirements(name: str) -> dict[str, Requirement]:
    """The requirements a file names itself (its ``-r`` includes left out)."""
    lines = (line.split("#", 1)[0].strip() for line in (REPO / name).read_text(encoding="utf-8").splitlines())
    reqs = [Requirement(line) for line in lines if line and not line.startswith("-")]
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


def _imported_distributions(*folders: str) -> dict[str, set[str]]:
    """Distribution -> the files under ``folders`` that import it (absolute imports, standard library left out)."""
    found: dict[str, set[str]] = {}
    scripts = {p.stem for folder in ("tests", "benchmarks") for p in (REPO / folder).glob("*.py")}  # put on sys.path
    for path in sorted(p for folder in folders for p in (REPO / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for top in {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names) - NOT_INSTALLED - scripts:
                found.setdefault(canonicalize_name(DISTRIBUTION_OF.get(top, top)), set()).add(str(path.relative_to(REPO)))
    return found


def test_every_imported_package_is_declared():
    runtime, dev = _requirements("requirements.txt"), _requirements("requirements-dev.txt")
    for folders, declared, where in ((("lib", "notebooks"), set(runtime), "requirements.txt"),
                                     (("tests", "benchmarks"), set(runtime) | set(dev), "requirements-dev.txt")):  # fmt: skip
        undeclared = {dist: sorted(files) for dist, files in _imported_distributions(*folders).items()
                      if dist not in declared}  # fmt: skip
        assert not undeclared, f"{where} does not declare these imports: {undeclared}"


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
