"""LPIPS (VGG, v0.1) in plain torch: available only when both weight files are on disk. Nothing is downloaded.

LPIPS-VGG needs two sets of weights:
1. the ImageNet VGG16 backbone, torchvision's ``vgg16-397923af.pth`` (528 MB; the ``lpips`` package normally has
   torchvision download it from the PyTorch model site into ``torch.hub.get_dir()/checkpoints``);
2. the learned linear heads, ``lpips/weights/v0.1/vgg.pth`` (7 KB, shipped inside the ``lpips`` PyPI wheel).

We rebuild the network here (no torchvision import needed) and look for the files in this order:
backbone: argument, ``$ALIGNGS_LPIPS_VGG16``, ``<torch hub dir>/checkpoints/vgg16-397923af.pth``;
heads: argument, ``$ALIGNGS_LPIPS_LIN``, the installed ``lpips`` package's ``weights/v0.1/vgg.pth`` (found without
importing it). If either is missing, ``lpips_available()`` is False and ``lpips()`` raises ``LPIPSUnavailable``:
callers report LPIPS as unavailable, never as 0.

Matches ``lpips.LPIPS(net="vgg", version="0.1")(x, y, normalize=True)`` for inputs in [0, 1].
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import UserError

VGG16_FILE = "vgg16-397923af.pth"
CHANNELS = (64, 128, 256, 512, 512)
# torchvision vgg16().features layout: conv indices, max-pool indices, and the ReLU after which each LPIPS tap is taken
_VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class LPIPSUnavailable(UserError, RuntimeError):
    """LPIPS weights are not on this machine (the message says which file is missing and where it was looked for)."""


def _backbone_candidates(path: str | Path | None) -> list[Path]:
    if path is not None:
        return [Path(path)]
    out = []
    if os.environ.get("ALIGNGS_LPIPS_VGG16"):
        out.append(Path(os.environ["ALIGNGS_LPIPS_VGG16"]))
    out.append(Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE)
    return out


def _lin_candidates(path: str | Path | None) -> list[Path]:
    if path is not None:
        return [Path(path)]
    out = []
    if os.environ.get("ALIGNGS_LPIPS_LIN"):
        out.append(Path(os.environ["ALIGNGS_LPIPS_LIN"]))
    spec = importlib.util.find_spec("lpips")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            out.append(Path(loc) / "weights" / "v0.1" / "vgg.pth")
    return out


def lpips_status(backbone: str | Path | None = None, lin: str | Path | None = None) -> tuple[Path | None, Path | None, str]:
    """(backbone file, heads file, reason) — a file is None when not found; reason is '' when both are found."""
    bb = next((p for p in _backbone_candidates(backbone) if p.is_file()), None)
    ln = next((p for p in _lin_candidates(lin) if p.is_file()), None)
    reasons = []
    if bb is None:
        reasons.append("VGG16 backbone weights not found (looked at: "
                       + ", ".join(map(str, _backbone_candidates(backbone))) + ")")
    if ln is None:
        cands = _lin_candidates(lin)
        reasons.append("LPIPS linear heads not found (" + (
            "looked at: " + ", ".join(map(str, cands)) if cands else "the lpips package is not installed") + ")")
    return bb, ln, "; ".join(reasons)


def lpips_available(backbone: str | Path | None = None, lin: str | Path | None = None) -> bool:
    """True when both weight files are present locally (see the module doc for where they are looked for)."""
    bb, ln, _ = lpips_status(backbone, lin)
    return bb is not None and ln is not None


class LPIPSVGG(nn.Module):
    """VGG16 feature taps + learned 1x1 heads; frozen. ``forward(x, y)`` takes [B,3,H,W] in [0,1] -> [B]."""

    def __init__(self, backbone_state: dict, lin_state: dict) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in _VGG_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU()]
                c_in = v
        self.features = nn.Sequential(*layers)
        feats = {k[len("features."):]: v for k, v in backbone_state.items() if k.startswith("features.")}
        feats = {k: v for k, v in feats.items() if int(k.split(".")[0]) < len(layers)}
        self.features.load_state_dict(feats, strict=True)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        for i, lin in enumerate(self.lins):
            key = next((k for k in (f"lin{i}.model.1.weight", f"lin{i}.model.0.weight", f"lins.{i}.weight")
                        if k in lin_state), None)
            if key is None:
                raise ValueError(f"LPIPS head weights lack lin{i} (keys: {sorted(lin_state)[:8]}...)")
            lin.weight.data.copy_(lin_state[key].reshape(lin.weight.shape))
        self.register_buffer("shift", torch.tensor(_SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(_SCALE)[None, :, None, None])
        self.requires_grad_(False)
        self.eval()

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((2 * x - 1) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = 0
        for lin, fx, fy in zip(self.lins, self.taps(x), self.taps(y)):
            nx = fx / (torch.sqrt((fx ** 2).sum(1, keepdim=True)) + 1e-10)
            ny = fy / (torch.sqrt((fy ** 2).sum(1, keepdim=True)) + 1e-10)
            total = total + lin((nx - ny) ** 2).mean((2, 3))
        return total[:, 0]


def _load_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@functools.lru_cache(maxsize=2)
def _load_cached(backbone: Path, lin: Path) -> LPIPSVGG:
    return LPIPSVGG(_load_state(backbone), _load_state(lin))


def load_lpips(backbone: str | Path | None = None, lin: str | Path | None = None) -> LPIPSVGG:
    """The LPIPS-VGG network from local files (memoised per file pair), or ``LPIPSUnavailable``."""
    bb, ln, reason = lpips_status(backbone, lin)
    if bb is None or ln is None:
        raise LPIPSUnavailable(f"LPIPS (VGG) is unavailable: {reason}")
    return _load_cached(bb.resolve(), ln.resolve())


def lpips(pred, gt, model: LPIPSVGG | None = None) -> torch.Tensor:
    """LPIPS-VGG distance (lower is better), mean over the batch; same shape rule as ``image.psnr`` (3 channels).

    Raises ``LPIPSUnavailable`` when the weights are not on this machine (never returns a placeholder value).
    """
    from .image import _pair

    model = model or load_lpips()
    p, g = _pair(pred, gt)
    if p.shape[1] != 3:
        raise ValueError(f"LPIPS needs RGB images, got {p.shape[1]} channels")
    model = model.to(device=p.device, dtype=p.dtype)
    return model(p, g).mean()
