"""Safe names: result file names and submitted input file names (section 5.3)."""
from __future__ import annotations

import re
from pathlib import PurePosixPath

from .errors import ProtocolError

UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")  # everything a stored name may not hold
_UNSAFE_RUNS = re.compile(UNSAFE_CHARS.pattern + "+")
_DRIVE = re.compile(r"^[A-Za-z]:")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # what the pipeline's image loader reads
TEXT_EXTENSIONS = (".txt", ".json")  # poses, intrinsics, transforms.json, COLMAP text models
BINARY_MODEL_FILES = ("cameras.bin", "images.bin", "points3D.bin")  # COLMAP binary models (only these names)
ALLOWED_EXTENSIONS = IMAGE_EXTENSIONS + TEXT_EXTENSIONS + (".bin",)
MAX_COMPONENTS = 4
MAX_COMPONENT_CHARS = 255


def safe_name(name: str, default: str = "part", strip: str = "._") -> str:
    """A file-name-safe version of ``name``: every run of other characters than ``A-Za-z0-9_.-`` becomes one
    ``_``, ``strip`` characters are trimmed from both ends, and an empty result becomes ``default``."""
    return _UNSAFE_RUNS.sub("_", name).strip(strip) or default


def sanitize_name(name: object, where: str) -> str:
    """A safe relative POSIX path for a submitted file name, or ProtocolError('invalid_file').

    Rules (section 5.3): at most 4 ``/``-separated components (backslashes count as separators) of at most 255
    characters; no absolute path, drive letter, ``.``/``..``, hidden or empty component; characters other than
    ``A-Za-z0-9_.-`` become ``_`` one by one; the extension must be allowed (``.bin`` only for COLMAP models)."""
    if not isinstance(name, str) or not name:
        raise ProtocolError("invalid_file", f"{where}: file name must be a non-empty string", field=where)
    if "\x00" in name:
        raise ProtocolError("invalid_file", f"{where}: file name contains a NUL character", field=where)
    raw = name.replace("\\", "/")
    if raw.startswith("/") or _DRIVE.match(raw):
        raise ProtocolError("invalid_file", f"{where}: absolute paths are not allowed ({name[:100]!r})", field=where)
    parts = raw.split("/")
    if len(parts) > MAX_COMPONENTS:
        raise ProtocolError("invalid_file", f"{where}: at most {MAX_COMPONENTS} path components ({name[:100]!r})", field=where)
    out = []
    for comp in parts:
        if comp == "":
            raise ProtocolError("invalid_file", f"{where}: empty path component in {name[:100]!r}", field=where)
        if comp in (".", ".."):
            raise ProtocolError("invalid_file", f"{where}: '.' / '..' components are not allowed ({name[:100]!r})", field=where)
        if comp.startswith("."):
            raise ProtocolError("invalid_file", f"{where}: hidden files are not allowed ({comp[:100]!r})", field=where)
        if len(comp) > MAX_COMPONENT_CHARS:
            raise ProtocolError("invalid_file", f"{where}: path component longer than {MAX_COMPONENT_CHARS} characters", field=where)
        out.append(UNSAFE_CHARS.sub("_", comp))
    stored = "/".join(out)
    ext = PurePosixPath(stored).suffix.lower()
    if ext == ".bin" and PurePosixPath(stored).name not in BINARY_MODEL_FILES:
        raise ProtocolError(
            "invalid_file", f"{where}: .bin files must be COLMAP models named {' / '.join(BINARY_MODEL_FILES)}", field=where
        )
    if ext not in ALLOWED_EXTENSIONS:
        raise ProtocolError(
            "invalid_file",
            f"{where}: extension {ext or '(none)'!r} of {name[:100]!r} not allowed (allowed: {' '.join(ALLOWED_EXTENSIONS)})",
            field=where,
        )
    return stored


def is_image(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def check_content(stored: str, data: memoryview | bytes, where: str) -> None:
    """Images must start with their format's signature; text files must be UTF-8."""
    ext = PurePosixPath(stored).suffix.lower()
    head = bytes(data[:16])
    ok = True
    if ext in (".jpg", ".jpeg"):
        ok = head[:3] == b"\xff\xd8\xff"
    elif ext == ".png":
        ok = head[:8] == b"\x89PNG\r\n\x1a\n"
    elif ext in TEXT_EXTENSIONS:
        try:
            bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError("invalid_file", f"{where}: {stored!r} is not UTF-8 text ({e.reason} at byte {e.start})", field=where) from None
        return
    if not ok:
        raise ProtocolError("invalid_file", f"{where}: {stored!r} does not start with a {ext[1:].upper()} signature", field=where)
