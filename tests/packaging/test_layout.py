"""The README's layout drawing and the import-linter layers contract in pyproject.toml list the same layers, in the
same order (lint-imports checks the code against the contract; this keeps the drawing honest)."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _contract_layers() -> list[set[str]]:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in cfg["contracts"]
                 if c["type"] == "layers" and c["layers"][0].startswith("aligngs")]
    return [{m.strip().strip("()") for m in re.split(r"[|:]", layer)} for layer in layers]


def _readme_layers() -> list[set[str]]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Layout"):]
    block = section[section.index("```\n") + 4:]
    block = block[:block.index("```")]
    out = []
    for line in block.splitlines():
        names = line.split("  ")[0].strip()  # the drawing: names, then two or more spaces, then what the layer is
        first, *rest = [n.strip() for n in names.split("|")]
        out.append({first, *(f"aligngs.{n}" for n in rest)})
    return out


def test_readme_draws_the_contract_layers():
    assert _readme_layers() == _contract_layers()
