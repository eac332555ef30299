"""Benchmarks: ``python -m aligngs.bench raster|scene|poses [...]`` (each prints figures; ``--json PATH`` writes them)."""
import importlib
import sys

COMMANDS = {"raster": "aligngs.bench.raster", "scene": "aligngs.bench.scene", "poses": "aligngs.bench.poses"}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m aligngs.bench {{{'|'.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
