"""Repository tools (outside the wheel): ``python -m tools.demo`` (what ``make demo`` runs) and ``python -m tools.synth``."""
