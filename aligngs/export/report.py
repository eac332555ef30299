"""JSON files written atomically (report.json, cameras.json, ...): never half-written, numpy-aware.

The helpers live in ``aligngs.wire.jsonio`` (one implementation for the pipeline, the backend and the add-on)."""
from aligngs.wire.jsonio import read_json, to_jsonable, write_json_atomic  # noqa: F401

__all__ = ["read_json", "to_jsonable", "write_json_atomic"]
