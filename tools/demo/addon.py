"""Build the extension zip for this machine with the repository's ``build_addon.py``."""
from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

from .paths import DemoSetupError, repo_file

log = logging.getLogger(__name__)
PLATFORM = "linux-x64"


def _load_build_addon():
    path = repo_file("build_addon.py")
    name = "aligngs_demo_build_addon"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the file executes
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def build_zip(out_dir: Path, platform: str = PLATFORM) -> Path:
    """The extension zip for ``platform`` in ``out_dir``; offline when the pyzmq wheels are cached."""
    ba = _load_build_addon()
    cache = ba.DEFAULT_CACHE
    offline = all(any((cache / py / platform).glob("*.whl")) for py, _ in ba.PYTHONS)
    log.info("building the extension (%s, %s wheels)", platform, "cached" if offline else "downloading")
    try:
        res = ba.build(Path(out_dir), offline=offline, platforms=[platform])
    except ba.BuildError as e:
        raise DemoSetupError(f"build_addon.py could not build the extension: {e}") from None
    if len(res.zips) != 1:
        raise DemoSetupError(f"build_addon.py built {len(res.zips)} zips for {platform}, expected one")
    return res.zips[0]
