"""``python -m backend.keys``: CURVE key pairs for the server and its clients (zmq.auth certificate files).

- ``generate DIR``: ``DIR/server.key`` + ``server.key_secret``, ``DIR/client.key`` + ``client.key_secret`` and
  ``DIR/authorized/client.key`` (start the server with ``--curve-secret-key DIR/server.key_secret
  --curve-authorized-dir DIR/authorized``).
- ``client DIR --name NAME``: another client pair ``DIR/NAME.key`` + ``NAME.key_secret``, authorised by copying
  the public key into ``DIR/authorized/``.
- ``show FILE``: print the Z85 public (and secret) key of a key file.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

import zmq.auth

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def make_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """``folder/name.key`` (public) and ``folder/name.key_secret``; the secret file is made private (0600)."""
    if not _NAME.match(name):
        raise ValueError(f"key name {name!r}: use letters, digits, '_' and '-'")
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".key", ".key_secret"):
        if (folder / f"{name}{suffix}").exists():
            raise FileExistsError(f"{folder / (name + suffix)} exists; not overwriting keys")
    public, secret = zmq.auth.create_certificates(str(folder), name)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


def authorize(public: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / public.name
    shutil.copyfile(public, dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backend.keys", description="CURVE keys for backend.serve")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="server pair + one authorised client pair")
    g.add_argument("dir", type=Path)
    c = sub.add_parser("client", help="another authorised client pair")
    c.add_argument("dir", type=Path)
    c.add_argument("--name", required=True)
    s = sub.add_parser("show", help="print the keys in a key file")
    s.add_argument("file", type=Path)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "generate":
            make_pair(args.dir, "server")
            pub, _ = make_pair(args.dir, "client")
            authorize(pub, args.dir / "authorized")
            print(f"server: {args.dir / 'server.key_secret'} (give clients {args.dir / 'server.key'})")
            print(f"client: {args.dir / 'client.key_secret'} (authorised in {args.dir / 'authorized'})")
            print(f"start:  python -m backend.serve --curve-secret-key {args.dir / 'server.key_secret'} "
                  f"--curve-authorized-dir {args.dir / 'authorized'} --bind tcp://0.0.0.0:5555")
        elif args.cmd == "client":
            pub, sec = make_pair(args.dir, args.name)
            authorize(pub, args.dir / "authorized")
            print(f"client: {sec} (authorised in {args.dir / 'authorized'}; restart the server to pick it up)")
        else:
            public, secret = zmq.auth.load_certificate(str(args.file))
            print(f"public-key = {public.decode()}")
            if secret:
                print(f"secret-key = {secret.decode()}")
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
