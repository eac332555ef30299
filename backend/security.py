"""Bind policy (non-loopback needs CURVE unless --insecure) and CURVE set-up with zmq.auth."""
from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from .errors import SecurityError  # re-exported: backend.security.SecurityError

log = logging.getLogger(__name__)


def is_loopback(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on 127.0.0.0/8, ::1 or localhost."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    rest = endpoint[len("tcp://"):]
    if ";" in rest:  # source;destination form
        return False
    host, sep, _port = rest.rpartition(":")
    if not sep:
        return False
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", interface names, host names


def check_bind_policy(endpoint: str, *, curve: bool, insecure: bool) -> None:
    if is_loopback(endpoint) or curve:
        return
    if insecure:
        log.warning("binding %s without encryption or authentication (--insecure)", endpoint)
        return
    raise SecurityError(
        f"refusing to bind {endpoint} without CURVE keys: anything but loopback needs --curve-secret-key and "
        "--curve-authorized-dir (make them with `python -m backend.keys generate DIR`), or --insecure"
    )


def load_server_keys(secret_key_file: Path) -> tuple[bytes, bytes]:
    if not Path(secret_key_file).is_file():
        raise SecurityError(f"--curve-secret-key {secret_key_file}: no such file")
    try:
        public, secret = zmq.auth.load_certificate(str(secret_key_file))
    except (ValueError, OSError) as e:
        raise SecurityError(f"--curve-secret-key {secret_key_file}: {e}") from e
    if not secret:
        raise SecurityError(f"--curve-secret-key {secret_key_file}: no secret-key in it (give the .key_secret file)")
    return public, secret


def start_curve(ctx: zmq.Context, socket: zmq.Socket, secret_key_file: Path, authorized_dir: Path) -> ThreadAuthenticator:
    """Make ``socket`` a CURVE server that admits only the public keys found in ``authorized_dir``."""
    public, secret = load_server_keys(secret_key_file)
    authorized_dir = Path(authorized_dir)
    if not authorized_dir.is_dir():
        raise SecurityError(f"--curve-authorized-dir {authorized_dir}: not a folder")
    n = len(list(authorized_dir.glob("*.key")))
    if n == 0:
        log.warning("--curve-authorized-dir %s holds no *.key files: no client can connect", authorized_dir)
    auth = ThreadAuthenticator(ctx, log=logging.getLogger("backend.auth"))
    auth.start()
    auth.configure_curve(domain="*", location=str(authorized_dir))
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    log.info("CURVE on: %d authorised client key(s) in %s", n, authorized_dir)
    return auth
