"""Checkpoint registry, loading and download for the teachers (and the VGGT pose model).

The registry is a small table: checkpoint id -> task, architecture, licence, download size and notes, with the
page each fact was checked on. It drives three things:

* ``aligngs models list`` (:func:`list_models`) and ``aligngs models download <id>`` (:func:`download`);
* the licence notice: loading a checkpoint whose licence forbids commercial use logs a WARNING
  (:func:`warn_licence`);
* the defaults of the teacher factories (:data:`DEFAULT_MODELS`).

Loading (:func:`load_model_and_processor`) goes through the transformers ``from_pretrained`` loaders, so the
usual Hugging Face environment applies: ``HF_HOME`` / ``HF_HUB_CACHE`` choose the cache, ``HF_HUB_OFFLINE=1``
never touches the network. A checkpoint that is neither a local folder nor in the cache raises
:class:`CheckpointNotFoundError`, whose message names the checkpoint and the two ways to provide it
(``aligngs models download <id>`` on a machine with internet, or pass a local folder).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import UserError

log = logging.getLogger(__name__)

__all__ = [
    "CheckpointInfo",
    "CheckpointNotFoundError",
    "REGISTRY",
    "DEFAULT_MODELS",
    "list_models",
    "checkpoint_info",
    "warn_licence",
    "is_offline",
    "is_local_checkpoint",
    "resolve_local_folder",
    "load_model_and_processor",
    "download",
    "checkpoint_tag",
]


@dataclass(frozen=True)
class CheckpointInfo:
    """One known checkpoint."""

    id: str  # Hugging Face repository id
    task: str  # "semantic" | "depth" | "poses"
    architecture: str  # "eomt" | "mask2former" | "dpt" | "depth_anything" | "vggt"
    licence: str  # as stated on the model card (or the code repository where the card has none)
    non_commercial: bool  # True: a WARNING is logged on use
    size: str  # approximate download size
    notes: str = ""
    output: str = ""  # depth models: "depth" (metric / depth-like) or "disparity" (relative inverse depth)
    source: str = ""  # where the id and the licence were checked


REGISTRY: dict[str, CheckpointInfo] = {
    c.id: c
    for c in (
        CheckpointInfo(
            "tue-mps/ade20k_semantic_eomt_large_512", "semantic", "eomt",
            "MIT (tue-mps/eomt code licence; the model card carries no licence tag)", False, "~1.3 GB (0.3B params)",
            "EoMT ViT-L/16 on DINOv2, ADE20K-150 semantic, 512 px sliding windows; ADE20K val mIoU 58.4",
            source="https://huggingface.co/tue-mps/ade20k_semantic_eomt_large_512",
        ),
        CheckpointInfo(
            "facebook/mask2former-swin-large-ade-semantic", "semantic", "mask2former",
            "other (model card); Mask2Former code MIT", False, "866 MB (pytorch_model.bin)",
            "Mask2Former Swin-L, ADE20K-150 semantic, 384x384 input",
            source="https://huggingface.co/facebook/mask2former-swin-large-ade-semantic",
        ),
        CheckpointInfo(
            "facebook/mask2former-swin-small-ade-semantic", "semantic", "mask2former",
            "other (model card); Mask2Former code MIT", False, "~0.28 GB (69M params)",
            "Mask2Former Swin-S, ADE20K-150 semantic: the lighter choice for CPU runs",
            source="https://huggingface.co/facebook/mask2former-swin-small-ade-semantic",
        ),
        CheckpointInfo(
            "facebook/dpt-dinov2-small-nyu", "depth", "dpt", "Apache-2.0", False, "~0.1 GB (ViT-S/14 + DPT head)",
            "DPT head on DINOv2-S trained on NYUv2 (indoor), metric depth; native resolution, padded to x14",
            output="depth", source="https://huggingface.co/facebook/dpt-dinov2-small-nyu",
        ),
        CheckpointInfo(
            "depth-anything/Depth-Anything-V2-Small-hf", "depth", "depth_anything", "Apache-2.0", False,
            "99 MB (model.safetensors)", "Depth Anything V2 Small, relative inverse depth (disparity), 518 px",
            output="disparity", source="https://huggingface.co/depth-anything/Depth-Anything-V2-Small-hf",
        ),
        CheckpointInfo(
            "depth-anything/Depth-Anything-V2-Base-hf", "depth", "depth_anything", "CC-BY-NC-4.0", True,
            "390 MB (model.safetensors)", "Depth Anything V2 Base, relative inverse depth (disparity)",
            output="disparity", source="https://huggingface.co/depth-anything/Depth-Anything-V2-Base-hf",
        ),
        CheckpointInfo(
            "facebook/VGGT-1B", "poses", "vggt", "CC-BY-NC-4.0", True, "~5 GB (fp32)",
            "VGGT feed-forward poses/depth (not in transformers: install vggt from its repository); a gated "
            "facebook/VGGT-1B-Commercial exists",
            source="docs/method.md §1",
        ),
    )
}

#: Default checkpoint per teacher name (SemanticConfig.teacher / depth_teacher).
DEFAULT_MODELS: dict[str, str] = {
    "eomt": "tue-mps/ade20k_semantic_eomt_large_512",
    "mask2former": "facebook/mask2former-swin-large-ade-semantic",
    "dpt": "facebook/dpt-dinov2-small-nyu",
    "depth_anything": "depth-anything/Depth-Anything-V2-Small-hf",
}


class CheckpointNotFoundError(UserError, FileNotFoundError):
    """A checkpoint is neither a local folder nor in the Hugging Face cache (and could not be downloaded)."""

    def __init__(self, model_id: str, reason: str = ""):
        self.model_id = model_id
        hint = (
            f"checkpoint {model_id!r} is not available here"
            + (f" ({reason})" if reason else "")
            + f". Fetch it on a machine with internet with `aligngs models download {model_id}` (it lands in the "
            "Hugging Face cache: HF_HOME / HF_HUB_CACHE; copy that cache over), or pass a local folder holding "
            "config.json, the weights and preprocessor_config.json as the model; or reconstruct without it "
            "(`--mode 3dgs`: no semantic or depth teacher)."
        )
        super().__init__(hint, fix=hint[hint.index(". Fetch") + 2:])


def list_models(task: str | None = None) -> list[CheckpointInfo]:
    """Known checkpoints, optionally of one task ("semantic", "depth", "poses")."""
    return [c for c in REGISTRY.values() if task is None or c.task == task]


_CACHE_DIR_RE = re.compile(r"models--([^/\\]+)--([^/\\]+)")


def checkpoint_info(model: str) -> CheckpointInfo | None:
    """Registry entry for a hub id, or for a local folder inside a Hugging Face cache (``models--org--name``)."""
    if model in REGISTRY:
        return REGISTRY[model]
    m = _CACHE_DIR_RE.search(str(model))
    if m:
        return REGISTRY.get(f"{m.group(1)}/{m.group(2)}")
    return None


def warn_licence(model: str, logger: logging.Logger | None = None) -> CheckpointInfo | None:
    """Log the licence of a known checkpoint: WARNING if it is non-commercial, INFO otherwise."""
    info = checkpoint_info(model)
    lg = logger or log
    if info is None:
        lg.info("checkpoint %s is not in the registry: check its licence yourself", model)
    elif info.non_commercial:
        lg.warning("checkpoint %s is licensed %s: non-commercial use only (%s)", info.id, info.licence, info.source)
    else:
        lg.info("checkpoint %s: licence %s", info.id, info.licence)
    return info


def is_offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE as the Hugging Face libraries read them."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - huggingface_hub always ships with transformers
        return False


def is_local_checkpoint(model: str | os.PathLike) -> bool:
    """True if ``model`` names a path rather than a hub id (it exists, or is written like a path)."""
    s = str(model)
    if Path(s).expanduser().exists():
        return True
    return (
        s.startswith(("/", "./", "../", "~", "\\"))
        or bool(re.match(r"^[A-Za-z]:[\\/]", s))
        or s.count("/") > 1
        or "\\" in s
    )


def resolve_local_folder(model: str | os.PathLike) -> Path:
    """A local checkpoint folder, checked: it must exist and hold a config.json."""
    p = Path(model).expanduser()
    if not p.is_dir():
        raise CheckpointNotFoundError(str(model), f"local folder {p} does not exist")
    if not (p / "config.json").is_file():
        raise CheckpointNotFoundError(str(model), f"local folder {p} has no config.json")
    return p.resolve()


def _check_cached(model_id: str, cache_dir: str | os.PathLike | None) -> None:
    """Offline: fail fast (and clearly) if the hub id has no config.json in the cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        hit = try_to_load_from_cache(model_id, "config.json", cache_dir=None if cache_dir is None else str(cache_dir))
    except Exception as e:  # invalid repo id, unreadable cache
        raise CheckpointNotFoundError(model_id, f"not a valid hub id or cache entry: {e}") from e
    if not isinstance(hit, str):
        raise CheckpointNotFoundError(model_id, "offline (HF_HUB_OFFLINE) and not in the Hugging Face cache")


def load_model_and_processor(
    model_cls: Any,
    model: str | os.PathLike,
    *,
    processor_cls: Any = None,
    cache_dir: str | os.PathLike | None = None,
    processor_kwargs: dict | None = None,
) -> tuple[Any, Any, str]:
    """``model_cls.from_pretrained`` + its image processor (``AutoImageProcessor`` unless given).

    Returns (model in eval mode, processor, resolved name). The resolved name is the absolute folder for local
    checkpoints and the hub id otherwise. Logs the licence (WARNING for non-commercial checkpoints).
    Raises :class:`CheckpointNotFoundError` when the weights are missing.
    """
    if processor_cls is None:
        from transformers import AutoImageProcessor as processor_cls  # noqa: N813

    name = str(model)
    if is_local_checkpoint(name):
        folder = resolve_local_folder(name)
        source, resolved = str(folder), str(folder)
    else:
        if is_offline():
            _check_cached(name, cache_dir)
        source, resolved = name, name
    warn_licence(resolved)
    kwargs = {} if cache_dir is None else {"cache_dir": str(cache_dir)}
    try:
        net = model_cls.from_pretrained(source, **kwargs)
        proc = processor_cls.from_pretrained(source, **kwargs, **(processor_kwargs or {}))
    except (OSError, ValueError) as e:
        if isinstance(e, CheckpointNotFoundError):
            raise
        raise CheckpointNotFoundError(name, f"{type(e).__name__}: {str(e).splitlines()[0][:300]}") from e
    net.eval()
    return net, proc, resolved


def download(ids: Iterable[str], cache_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Fetch checkpoints into the Hugging Face cache (``huggingface_hub.snapshot_download``).

    Only what the transformers loaders need is fetched: configs, processor configs, safetensors (falling back to
    ``*.bin`` where a repository has no safetensors). Unknown ids are allowed (a warning names them).
    Returns id -> local snapshot folder.
    """
    from huggingface_hub import list_repo_files, snapshot_download

    out: dict[str, Path] = {}
    for model_id in ids:
        if model_id not in REGISTRY:
            log.warning("%s is not in the registry: downloading it anyway; check its licence", model_id)
        else:
            warn_licence(model_id)
        patterns = ["*.json", "*.txt", "*.model", "*.safetensors"]
        try:
            files = list_repo_files(model_id)
            if not any(f.endswith(".safetensors") for f in files):
                patterns += ["*.bin", "*.pt", "*.pth"]
        except Exception as e:  # listing failed: fetch weights of every kind rather than none
            log.warning("could not list %s (%s): fetching all weight formats", model_id, e)
            patterns += ["*.bin", "*.pt", "*.pth"]
        path = snapshot_download(
            model_id, cache_dir=None if cache_dir is None else str(cache_dir), allow_patterns=patterns
        )
        out[model_id] = Path(path)
        log.info("downloaded %s to %s", model_id, path)
    return out


def _folder_fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix in (".json", ".safetensors", ".bin", ".pt", ".pth"):
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def checkpoint_tag(model_id: str, model: Any) -> str:
    """Checkpoint identity for cache keys: hub id + commit, or local folder + a fingerprint of its files."""
    p = Path(model_id)
    if p.is_dir():
        return f"{p}#{_folder_fingerprint(p)}"
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return f"{model_id}@{commit}" if commit else model_id
