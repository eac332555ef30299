"""Benchmarks that print figures and write --json."""
