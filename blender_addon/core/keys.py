"""CURVE keys for the encrypted connection: Z85 text or ZeroMQ certificate files."""
from __future__ import annotations

import os
from dataclasses import dataclass

import zmq.auth
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
    """(public, secret or None) from a ZeroMQ certificate file (``zmq.auth.create_certificates`` format), read by
    pyzmq's own ``zmq.auth.load_certificate`` (as ``backend.client`` does)."""
    p = os.path.expanduser(str(path))
    if not os.path.isfile(p):
        raise CurveKeyError(f"CURVE key file {p} does not exist")
    try:
        public, secret = zmq.auth.load_certificate(p)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CurveKeyError(f"CURVE key file {p}: {e}") from None
    return public.decode("ascii"), secret.decode("ascii") if secret else None
