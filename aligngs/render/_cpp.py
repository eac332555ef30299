"""The C++ compositing kernel (``csrc/composite.cpp``), built on first use with ``torch.utils.cpp_extension``
the way gsplat builds its CUDA kernels, and cached by torch (``~/.cache/torch_extensions``, keyed by the source).

``kernel("auto")`` returns the loaded module, or None where it cannot be built (no C++ compiler): the caller
then composites with the pure-torch kernels, which compute the same thing more slowly. ``kernel("cpp")`` raises
instead, naming the cause.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from types import ModuleType
from typing import Optional

from ..errors import UserError

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "composite.cpp"
KERNELS = ("auto", "cpp", "torch")


class KernelUnavailable(UserError, RuntimeError):
    """``cpu_kernel="cpp"`` was asked for but the C++ kernel cannot be built here."""


@functools.lru_cache(maxsize=None)
def _build() -> tuple[Optional[ModuleType], str]:
    try:
        from torch.utils.cpp_extension import load

        logger.info("building the CPU compositing kernel %s (once per source version)", SOURCE.name)
        mod = load(name="aligngs_composite_cpu", sources=[str(SOURCE)], extra_cflags=["-O3"], verbose=False)
        return mod, ""
    except Exception as e:  # noqa: BLE001 - any build failure means: use the torch kernels
        reason = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        logger.warning("C++ compositing kernel unavailable (%s); compositing with the pure-torch kernels", reason)
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
            f"rasterization: cpu_kernel='cpp' but {SOURCE} could not be built: {reason}",
            fix="install a C++ compiler (g++) and ninja, or pass cpu_kernel='auto' (the torch kernels where it cannot "
                "be built) or 'torch'",
        )
    return mod
