"""Gaussian scene model and its initialisation."""
