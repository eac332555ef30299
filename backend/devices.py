"""Worker slots: one per visible CUDA GPU (found with ``nvidia-smi``, so the server never imports torch), else CPU."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Slot:
    index: int
    device: str  # "cuda:0" ... or "cpu"
    name: str  # GPU name or "cpu"
    cuda_visible: str | None  # CUDA_VISIBLE_DEVICES for the job process (None: leave the environment alone)
    job: str | None = None  # running job
    node: str | None = None  # the cluster node running it (Ray executor)

    @property
    def kind(self) -> str:
        return "cuda" if self.device.startswith("cuda") else "cpu"

    def public(self) -> dict:
        return {"slot": self.index, "device": self.device, "name": self.name, "job": self.job, "node": self.node}


def list_gpus(timeout: float = 15.0) -> list[dict]:
    """[{index, uuid, name}] of the GPUs nvidia-smi reports, filtered by CUDA_VISIBLE_DEVICES; [] without it."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,uuid,name", "--format=csv,noheader"], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("nvidia-smi failed: %s", e)
        return []
    if out.returncode != 0:
        log.info("nvidia-smi: %s", out.stderr.strip()[:200])
        return []
    gpus = []
    for line in out.stdout.splitlines():
        parts = [p.strip() for p in line.split(",", 2)]
        if len(parts) == 3 and parts[0].isdigit():
            gpus.append({"index": parts[0], "uuid": parts[1], "name": parts[2]})
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return gpus
    chosen = []
    for tok in (t.strip() for t in visible.split(",")):
        if not tok or tok == "-1":
            break  # CUDA stops at the first invalid entry
        match = [g for g in gpus if g["index"] == tok or g["uuid"] == tok or (tok.startswith("GPU-") and g["uuid"].startswith(tok))]
        if not match:
            break
        chosen.append(match[0])
    return chosen


def make_slots(device: str = "auto", workers: int | None = None) -> list[Slot]:
    """Slots for ``--device`` / ``--workers``: auto = one per visible GPU (else 1 CPU), cpu = CPU, cuda = GPUs."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {device!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    gpus = [] if device == "cpu" else list_gpus()
    if device == "cuda" and not gpus:
        n = workers or 1
        log.warning("--device cuda: nvidia-smi lists no GPU; assuming %d CUDA device(s)", n)
        return [Slot(i, f"cuda:{i}", "cuda", str(i)) for i in range(n)]
    if gpus:
        n = workers or len(gpus)
        # more workers than GPUs: share GPUs round-robin
        return [Slot(i, f"cuda:{i % len(gpus)}", gpus[i % len(gpus)]["name"], gpus[i % len(gpus)]["uuid"]) for i in range(n)]
    return [Slot(i, "cpu", "cpu", None) for i in range(workers or 1)]


def describe(slots: list[Slot]) -> str:
    cuda = [s for s in slots if s.kind == "cuda"]
    if not cuda:
        return "cpu" if len(slots) == 1 else f"cpu x{len(slots)}"
    names = sorted({s.name for s in cuda})
    return f"cuda x{len(cuda)} ({', '.join(names)})"
