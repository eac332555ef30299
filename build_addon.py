"""Build the AlignGS Blender extension zip(s).

    python build_addon.py [--offline] [--out dist] [--platform linux-x64 ...] [--cache .cache/addon-wheels]

Steps:
1. Download the pyzmq wheels the add-on needs (``pip download --only-binary=:all: --no-deps``) for every platform in
   ``blender_addon/blender_manifest.toml`` and for both Python ABIs Blender ships: CPython 3.11 (``cp311``, Blender
   4.2 - 5.0) and 3.13 (``abi3`` wheels, Blender 5.1+). Wheels are cached per target under ``--cache``;
   ``--offline`` only uses that cache and fails naming the missing target.
2. Copy ``blender_addon/`` into a staging folder, vendor ``aligngs/wire/`` (the protocol and result format) into
   ``_vendor/wire/`` byte for byte (a Blender extension imports only from inside its zip; the repository keeps one
   copy, see ``blender_addon/_vendor/__init__.py``), put the wheels in ``wheels/`` and write the ``wheels = [...]``
   list into the staged manifest (the source manifest stays wheel-free).
3. Build one zip per platform with Blender's own extension builder (``blender_ext.py build --split-platforms``,
   shipped inside the ``bpy`` wheel, stdlib-only, so any Python runs it) and ``validate`` each zip.

Only the standard library is used here.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "blender_addon"
DEFAULT_CACHE = ROOT / ".cache" / "addon-wheels"
DEFAULT_OUT = ROOT / "dist"

log = logging.getLogger("build_addon")

# Blender platform -> the pip ``--platform`` tags that select a wheel for it (first match wins; pip accepts several).
PIP_PLATFORMS: dict[str, list[str]] = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_11_0_arm64", "macosx_10_15_universal2"],
    "macos-x64": ["macosx_10_15_x86_64", "macosx_10_15_universal2"],
}

# Python ABIs Blender bundles: (label, pip flags).
PYTHONS: list[tuple[str, list[str]]] = [
    ("cp311", ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]),
    ("cp313-abi3", ["--python-version", "3.13", "--implementation", "cp", "--abi", "cp313", "--abi", "abi3"]),
]

REQUIREMENTS = ["pyzmq"]

# Pure-Python packages of this repository copied into the zip: path inside the add-on -> source folder.
VENDORED: dict[str, Path] = {"_vendor/wire": ROOT / "aligngs" / "wire"}


class BuildError(RuntimeError):
    """A build step failed; the message says which and why."""


@dataclass
class BuildResult:
    zips: list[Path]
    wheels: list[str]


def find_blender_ext(explicit: str | None = None) -> Path:
    """Locate Blender's extension builder: --blender-ext, $ALIGNGS_BLENDER_EXT, then the bpy wheel in .venv-blender."""
    candidates = []
    if explicit:
        candidates.append(explicit)
    if os.environ.get("ALIGNGS_BLENDER_EXT"):
        candidates.append(os.environ["ALIGNGS_BLENDER_EXT"])
    pattern = "lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"
    for venv in (ROOT / ".venv-blender", Path(sys.prefix)):
        candidates.extend(sorted(glob.glob(str(venv / pattern)), reverse=True))
    for c in candidates:
        if Path(c).is_file():
            return Path(c)
    raise BuildError(
        "Blender's extension builder (bpy/<ver>/scripts/addons_core/bl_pkg/cli/blender_ext.py) was not found: "
        "install the bpy wheel into .venv-blender (make blender-env) or pass --blender-ext PATH"
    )


def read_manifest_field(manifest_text: str, key: str) -> object:
    """Read a top-level ``key = value`` (string or list of strings) from a TOML manifest without a TOML parser."""
    m = re.search(rf'^{re.escape(key)}\s*=\s*(.+)$', manifest_text, re.MULTILINE)
    if m is None:
        raise BuildError(f"blender_manifest.toml: missing field {key!r}")
    value = m.group(1).strip()
    if value.startswith("["):
        return re.findall(r'"([^"]*)"', value)
    if value.startswith('"'):
        return value.strip('"')
    raise BuildError(f"blender_manifest.toml: field {key!r}: expected a string or a list of strings, got {value!r}")


def fetch_wheels(platforms: list[str], cache: Path, *, offline: bool) -> list[Path]:
    """Return one pyzmq wheel per (python ABI, platform), downloading into ``cache/<abi>/<platform>/`` when needed."""
    wheels: list[Path] = []
    for py_label, py_flags in PYTHONS:
        for platform in platforms:
            if platform not in PIP_PLATFORMS:
                raise BuildError(f"no pip platform tags known for Blender platform {platform!r}")
            target = cache / py_label / platform
            found = sorted(target.glob("*.whl"))
            if not found:
                if offline:
                    raise BuildError(
                        f"--offline: no cached wheel for {py_label} {platform} in {target}; run once without --offline"
                    )
                target.mkdir(parents=True, exist_ok=True)
                cmd = [sys.executable, "-m", "pip", "download", *REQUIREMENTS, "--only-binary=:all:", "--no-deps",
                       "--disable-pip-version-check", "-q", "-d", str(target), *py_flags]
                for tag in PIP_PLATFORMS[platform]:
                    cmd += ["--platform", tag]
                log.info("downloading %s wheels for %s %s", ", ".join(REQUIREMENTS), py_label, platform)
                proc = subprocess.run(cmd, capture_output=True, text=True)
                found = sorted(target.glob("*.whl"))
                if proc.returncode != 0 or not found:
                    raise BuildError(
                        f"pip download failed for {py_label} {platform} (exit {proc.returncode}): "
                        f"{proc.stderr.strip()[-800:]}"
                    )
            wheels.extend(found)
    # universal2 wheels serve both macOS platforms: keep each file once.
    unique: dict[str, Path] = {}
    for w in wheels:
        unique.setdefault(w.name, w)
    return list(unique.values())


def stage(source: Path, stage_dir: Path, wheels: list[Path]) -> list[str]:
    """Copy the add-on source, its wheels and a manifest listing them into ``stage_dir``."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(source, stage_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "wheels"))
    vendor(stage_dir)
    (stage_dir / "wheels").mkdir()
    rel = []
    for w in sorted(wheels, key=lambda p: p.name):
        shutil.copy2(w, stage_dir / "wheels" / w.name)
        rel.append(f"./wheels/{w.name}")
    manifest = stage_dir / "blender_manifest.toml"
    text = manifest.read_text()
    if re.search(r"^wheels\s*=", text, re.MULTILINE):
        raise BuildError(f"{source / 'blender_manifest.toml'}: must not list wheels (build_addon.py writes them)")
    wheel_block = "wheels = [\n" + "".join(f'  "{r}",\n' for r in rel) + "]\n\n"
    # Top-level keys must precede the first [table].
    idx = text.find("\n[")
    text = text[: idx + 1] + wheel_block + text[idx + 1:] if idx >= 0 else text + wheel_block
    manifest.write_text(text)
    return rel


def vendor(stage_dir: Path) -> list[Path]:
    """Copy each VENDORED package into the staged add-on (replacing whatever is there); returns the copies."""
    out = []
    for rel, src in VENDORED.items():
        if not (src / "__init__.py").is_file():
            raise BuildError(f"vendored package {src} is missing")
        dest = stage_dir / rel
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        out.append(dest)
    return out


def run_blender_ext(builder: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(builder), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"blender_ext.py {args[0]} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def build(out: Path = DEFAULT_OUT, *, offline: bool = False, cache: Path = DEFAULT_CACHE,
          platforms: list[str] | None = None, blender_ext: str | None = None) -> BuildResult:
    """Build and validate the extension zip(s); return their paths (one per platform)."""
    builder = find_blender_ext(blender_ext)
    manifest_text = (SOURCE / "blender_manifest.toml").read_text()
    all_platforms = list(read_manifest_field(manifest_text, "platforms"))
    platforms = platforms or all_platforms
    unknown = [p for p in platforms if p not in all_platforms]
    if unknown:
        raise BuildError(f"unknown platform(s) {unknown}; the manifest declares {all_platforms}")
    wheels = fetch_wheels(platforms, Path(cache), offline=offline)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aligngs-stage-") as tmp:
        stage_dir = Path(tmp) / "aligngs"
        rel = stage(SOURCE, stage_dir, wheels)
        if platforms != all_platforms:
            text = (stage_dir / "blender_manifest.toml").read_text()
            text = re.sub(r"^platforms\s*=.*$", "platforms = [" + ", ".join(f'"{p}"' for p in platforms) + "]",
                          text, count=1, flags=re.MULTILINE)
            (stage_dir / "blender_manifest.toml").write_text(text)
        run_blender_ext(builder, "validate", str(stage_dir))
        with tempfile.TemporaryDirectory(prefix="aligngs-zips-") as zdir:
            run_blender_ext(builder, "build", "--source-dir", str(stage_dir), "--output-dir", zdir,
                            "--split-platforms")
            zips = []
            for z in sorted(Path(zdir).glob("*.zip")):
                run_blender_ext(builder, "validate", str(z))
                dest = out / z.name
                shutil.copy2(z, dest)
                zips.append(dest)
    if not zips:
        raise BuildError("blender_ext.py build produced no zip")
    return BuildResult(zips=zips, wheels=rel)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--offline", action="store_true", help="use cached wheels only (no pip download)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="output folder for the zip(s) (default: dist)")
    ap.add_argument("--cache", default=str(DEFAULT_CACHE), help="wheel cache folder (default: .cache/addon-wheels)")
    ap.add_argument("--platform", action="append", dest="platforms",
                    help="build only this Blender platform (repeatable; default: all in the manifest)")
    ap.add_argument("--blender-ext", default=None, help="path to Blender's bl_pkg/cli/blender_ext.py")
    ap.add_argument("--json", default=None, help="also write {zips, wheels} as JSON to this path")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = build(Path(args.out), offline=args.offline, cache=Path(args.cache), platforms=args.platforms,
                       blender_ext=args.blender_ext)
    except BuildError as e:
        print(f"build_addon: error: {e}", file=sys.stderr)
        return 1
    print("wheels:")
    for w in result.wheels:
        print(f"  {w}")
    print("built and validated:")
    for z in result.zips:
        print(f"  {z}  ({z.stat().st_size / 1e6:.2f} MB)")
    if args.json:
        Path(args.json).write_text(json.dumps({"zips": [str(z) for z in result.zips], "wheels": result.wheels}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
