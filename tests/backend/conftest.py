"""Fixtures for the backend tests (helpers live in backend_testlib.py, importable from this folder)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backend_testlib import ServerProc, launch  # noqa: E402


@pytest.fixture
def servers(tmp_path):
    """servers(*args, **kw) -> ServerProc; all are stopped at the end."""
    started: list[ServerProc] = []

    def start(*args, **kw):
        sp = launch(tmp_path, *args, **kw)
        started.append(sp)
        return sp

    yield start
    for sp in started:
        sp.stop()


@pytest.fixture
def clients():
    from backend.client import Client

    made = []

    def make(endpoint, **kw):
        c = Client(endpoint, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


