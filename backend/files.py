"""Submitted input files (protocol section 5.3): the rules live in ``aligngs.wire.names``; re-exported here."""
from __future__ import annotations

from aligngs.wire.names import (  # noqa: F401  (re-exported)
    ALLOWED_EXTENSIONS,
    BINARY_MODEL_FILES,
    IMAGE_EXTENSIONS,
    MAX_COMPONENT_CHARS,
    MAX_COMPONENTS,
    TEXT_EXTENSIONS,
    check_content,
    is_image,
    sanitize_name,
)
