"""``python -m benchmarks <name> [options]``: runs ``benchmarks/<name>.py``'s ``main(argv)``.

Dispatch is by module name, so a new benchmark is a new file with a ``main(argv) -> int``; nothing here lists them.
Each prints its figures and writes them with ``--json PATH``. No torch import here: the Blender import benchmark
runs under .venv-blender.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import aligngs  # noqa: F401  (before any benchmark imports torch: it sets torch's OpenMP wait policy)

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    """The benchmark modules next to this file (every ``<name>.py`` not starting with an underscore)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = available()
    if not argv or argv[0] not in names:
        print(f"usage: python -m benchmarks {{{'|'.join(names)}}} [options]", file=sys.stderr)
        return 2
    module = importlib.import_module(f"{__package__ or 'benchmarks'}.{argv[0]}")
    main_fn = getattr(module, "main", None)
    if main_fn is None:
        print(f"benchmarks/{argv[0]}.py has no main(argv)", file=sys.stderr)
        return 2
    return int(main_fn(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
