"""CURVE keys for the encrypted connection: Z85 text or ZeroMQ certificate files."""
from __future__ import annotations

import os
from dataclasses import dataclass

from zmq.utils import z85

from .errors import CurveKeyError


@dataclass
class CurveKeys:
    """CURVE keys as Z85 text (40 characters each)."""

    server_public: str
    client_public: str
    client_secret: str

    def validate(self) -> None:
        for name in ("server_public", "client_public", "client_secret"):
            v = getattr(self, name)
            if not isinstance(v, str) or len(v.strip()) != 40:
                raise CurveKeyError(f"CURVE {name.replace('_', ' ')} key must be 40 Z85 characters, got {len(v.strip())}")
            try:
                z85.decode(v.strip().encode("ascii"))
            except Exception:
                raise CurveKeyError(f"CURVE {name.replace('_', ' ')} key is not valid Z85 text") from None


def load_key_file(path: str | os.PathLike) -> tuple[str, str | None]:
    """(public, secret or None) from a ZeroMQ certificate file (``zmq.auth.create_certificates`` format)."""
    p = os.path.expanduser(str(path))
    if not os.path.isfile(p):
        raise CurveKeyError(f"CURVE key file {p} does not exist")
    public = secret = None
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            key, _, value = line.strip().partition("=")
            key, value = key.strip(), value.strip().strip('"')
            if key == "public-key":
                public = value
            elif key == "secret-key":
                secret = value
    if public is None:
        raise CurveKeyError(f"CURVE key file {p} has no public-key line")
    return public, secret
