"""The wheel holds the library and the backend only: no demo, benchmark, synth or test code (those run from a
checkout: tools/, benchmarks/, tests/)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("demo", "bench", "benchmarks", "synth", "tools", "tests")


def test_package_discovery_leaves_the_tools_out():
    from setuptools import find_packages

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(REPO), include=cfg["include"], exclude=cfg.get("exclude", ()))
    assert "aligngs" in packages and "backend" in packages and "aligngs.wire" in packages
    assert not [p for p in packages if set(p.split(".")) & set(TOOLS)], packages
    assert {p.split(".")[0] for p in packages} == {"aligngs", "backend"}


@pytest.mark.slow
def test_built_wheel_has_no_tool_code(tmp_path):
    # build from a copy of the checkout's files (as a fresh clone has them): a stale build/ folder here would leak
    # old modules into the wheel
    src = tmp_path / "src"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for rel in listed.stdout.splitlines():
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    out = tmp_path / "wheel"
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                          str(out), str(src)], capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {res.stderr[-500:]}")
    (whl,) = out.glob("aligngs-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    assert any(n == "aligngs/pipeline.py" for n in names)
    # the C++ kernels are built from the installed sources on first use: every source and header ships
    from aligngs.render._cpp import HEADERS, SOURCES

    assert {f"aligngs/render/csrc/{p.name}" for p in SOURCES + HEADERS} <= set(names)
    tops = {n.split("/")[0] for n in names}
    assert tops <= {"aligngs", "backend", f"{whl.name.split('-')[0]}-{whl.name.split('-')[1]}.dist-info"}, tops
    bad = [n for n in names if not n.endswith("dist-info") and set(Path(n).with_suffix("").parts) & set(TOOLS)]
    assert not bad, bad
