"""The CPU rasterizer's C++ kernels (``csrc/``: projection and SH ``project.cpp``, tile binning ``tiles.cpp``,
compositing ``composite.cpp``; and the trainer's photometric loss ``photometric.cpp``; bound in ``ops.cpp``),
built on first use with ``torch.utils.cpp_extension`` the way gsplat builds its CUDA kernels, and cached by torch
(``~/.cache/torch_extensions``, under a name that carries a digest of the sources).

``kernel("auto")`` returns the loaded module, or None where it cannot be built (no C++ compiler): the caller
then bins and composites with the pure-torch code, which computes the same thing more slowly. ``kernel("cpp")``
raises instead, naming the cause.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from types import ModuleType
from typing import Optional

from ..errors import UserError

logger = logging.getLogger(__name__)

CSRC = Path(__file__).with_name("csrc")
SOURCES = tuple(CSRC / n for n in ("ops.cpp", "project.cpp", "tiles.cpp", "composite.cpp", "photometric.cpp"))
HEADERS = (CSRC / "ops.h",)
# no fused multiply-adds: the binning rounds its float32 products as torch's elementwise ops do
CFLAGS = ["-O3", "-ffp-contract=off"]
KERNELS = ("auto", "cpp", "torch")


class KernelUnavailable(UserError, RuntimeError):
    """``cpu_kernel="cpp"`` was asked for but the C++ kernel cannot be built here."""


@functools.lru_cache(maxsize=None)
def _build() -> tuple[Optional[ModuleType], str]:
    try:
        from torch.utils.cpp_extension import load

        digest = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES + HEADERS)).hexdigest()[:12]
        logger.info("building the CPU rasterizer's C++ kernels (%s; once per source version)", digest)
        mod = load(name=f"aligngs_render_cpu_{digest}", sources=[str(p) for p in SOURCES], extra_cflags=CFLAGS,
                   extra_include_paths=[str(CSRC)], verbose=False)
        return mod, ""
    except Exception as e:  # noqa: BLE001 - any build failure means: use the torch kernels
        reason = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        logger.warning("C++ rasterizer kernels unavailable (%s); using the pure-torch kernels", reason)
        return None, reason


def kernel(choice: str) -> Optional[ModuleType]:
    """The compiled kernel for ``choice`` in :data:`KERNELS`: "torch" -> None; "auto" -> the kernel, or None when
    it cannot be built; "cpp" -> the kernel or :class:`KernelUnavailable`."""
    if choice not in KERNELS:
        raise ValueError(f"rasterization: cpu_kernel must be one of {KERNELS}, got {choice!r}")
    if choice == "torch":
        return None
    mod, reason = _build()
    if mod is None and choice == "cpp":
        raise KernelUnavailable(
            f"rasterization: cpu_kernel='cpp' but the C++ kernels in {CSRC} could not be built: {reason}",
            fix="install a C++ compiler (g++) and ninja, or pass cpu_kernel='auto' (the torch kernels where it cannot "
                "be built) or 'torch'",
        )
    return mod
