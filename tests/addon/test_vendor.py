"""The extension zip carries the protocol and result format as a byte-identical copy of ``aligngs/wire`` and
imports nothing the extension does not carry (no ``aligngs``, ``backend`` or ``torch``)."""
from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import pytest

from addon_testlib import REPO

pytestmark = pytest.mark.blender
WIRE = REPO / "aligngs" / "wire"


def _sources(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.py"))
            if "__pycache__" not in p.parts}


def test_vendored_wire_is_byte_identical(addon_zip):
    with zipfile.ZipFile(addon_zip) as z:
        vendored = {n[len("_vendor/wire/"):]: z.read(n) for n in z.namelist()
                    if n.startswith("_vendor/wire/") and not n.endswith("/")}
    source = _sources(WIRE)
    assert len(source) >= 8 and "__init__.py" in source and "stream.py" in source
    assert sorted(vendored) == sorted(source)
    assert all(vendored[n] == source[n] for n in source), [n for n in source if vendored[n] != source[n]]


def test_repository_holds_no_copy_of_wire():
    assert not (REPO / "blender_addon" / "_vendor" / "wire").exists()


def test_extension_imports_only_what_it_carries(addon_zip):
    bad = []
    with zipfile.ZipFile(addon_zip) as z:
        for name in z.namelist():
            if not name.endswith(".py"):
                continue
            for node in ast.walk(ast.parse(z.read(name))):
                mods = []
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    mods = [node.module or ""]
                bad += [f"{name}: {m}" for m in mods if m.split(".")[0] in ("aligngs", "backend", "torch")]
    assert bad == []
