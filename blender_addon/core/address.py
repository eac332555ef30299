"""Server address handling (pure Python): what the user types -> ``host:port`` -> a ZeroMQ endpoint."""
from __future__ import annotations

import ipaddress
import re

from .errors import AddressError

DEFAULT_PORT = 5555
_SCHEMES = ("tcp://", "http://", "https://", "zmq://")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


def normalize_address(text: str) -> str:
    """``" tcp://Host:5555/ "`` -> ``"Host:5555"``; the port defaults to 5555; IPv6 as ``[::1]:5555``.

    Strips a ``tcp://``/``http(s)://`` scheme, spaces and a trailing slash. Raises AddressError with the reason.
    """
    s = "".join(str(text).split())
    low = s.lower()
    for scheme in _SCHEMES:
        if low.startswith(scheme):
            s = s[len(scheme):]
            break
    s = s.rstrip("/")
    if not s:
        raise AddressError("the server address is empty (expected host:port, e.g. localhost:5555)")
    if "/" in s:
        raise AddressError(f"server address {text.strip()!r}: expected host:port, without a path")
    if s.startswith("["):
        m = re.match(r"^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$", s)
        if not m:
            raise AddressError(f"server address {text.strip()!r}: expected [IPv6]:port")
        host, port = m.group(1), m.group(2)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressError(f"server address {text.strip()!r}: {host!r} is not an IPv6 address") from None
        host = f"[{host}]"
    else:
        if s.count(":") > 1:
            raise AddressError(f"server address {text.strip()!r}: write IPv6 addresses as [addr]:port")
        host, _, port = s.partition(":")
        if not _HOST_RE.match(host):
            raise AddressError(f"server address {text.strip()!r}: {host!r} is not a host name or IP address")
        port = port or None
    if port is None:
        port = DEFAULT_PORT
    elif not str(port).isdigit() or not 1 <= int(port) <= 65535:
        raise AddressError(f"server address {text.strip()!r}: port must be a number 1..65535")
    return f"{host}:{int(port)}"


def endpoint(text: str) -> str:
    """The ZeroMQ endpoint ``tcp://host:port`` for a user-typed address."""
    return "tcp://" + normalize_address(text)


def host_of(address: str) -> str:
    host = normalize_address(address).rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") else host


def is_local(address: str) -> bool:
    """True for loopback servers (localhost, 127.0.0.0/8, ::1): usable even without Blender's online access."""
    host = host_of(address).lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def online_block_reason(address: str, online_access: bool) -> str | None:
    """Why this address may not be used now (None when it may): remote servers need Blender's online access."""
    try:
        local = is_local(address)
    except AddressError as e:
        return str(e)
    if local or online_access:
        return None
    return ("Online access is off (Preferences > System > Network > Allow Online Access); "
            "only a server on this computer (localhost) can be used")
