"""The one exception every loader raises for bad input."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError


class DataError(UserError, ValueError):
    """Bad input data: names the offending file (``path``) and what is wrong with it (``problem``); ``fix`` (optional)
    says what to do when the problem does not already say it."""

    def __init__(self, path: str | Path | None, problem: str, fix: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem, fix=fix)
