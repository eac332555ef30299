"""Benchmarks (outside the wheel): ``python -m benchmarks <name> [options]`` runs ``benchmarks/<name>.py:main``."""
