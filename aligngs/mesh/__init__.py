"""Meshes from depth: TSDF fusion (tsdf.py)."""
