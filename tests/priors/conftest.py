"""Tiny random checkpoints for every teacher architecture, saved once per session and loaded back through the real
loaders (no model hub here). Processor configs mirror the real checkpoints' preprocessor_config.json files."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: never wait on the hub

import json
from pathlib import Path

import numpy as np
import pytest

IMAGENET = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}

# facebook/mask2former-swin-*-ade-semantic preprocessor_config.json (fields as published)
MASK2FORMER_PROC = {
    "image_processor_type": "Mask2FormerImageProcessor", "do_normalize": True, "do_rescale": True, "do_resize": True,
    "ignore_index": 255, "num_labels": 150, "reduce_labels": False, "resample": 2, "rescale_factor": 1 / 255,
    "size": {"height": 384, "width": 384}, "size_divisor": 32, **IMAGENET,
}
# EoMT semantic: sliding windows of `shortest_edge` (512 for the ADE20K checkpoint; 64 for the tiny model)
EOMT_PROC = {
    "image_processor_type": "EomtImageProcessor", "do_resize": True, "do_rescale": True, "do_normalize": True,
    "do_split_image": True, "do_pad": False, "size": {"shortest_edge": 64, "longest_edge": None}, "resample": 2,
    "rescale_factor": 1 / 255, **IMAGENET,
}
# facebook/dpt-dinov2-*-nyu: native resolution, centre padding to multiples of 14, 0..255 normalisation
DPT_PROC = {
    "image_processor_type": "DPTImageProcessor", "do_normalize": True, "do_pad": True, "do_rescale": False,
    "do_resize": False, "ensure_multiple_of": 1, "image_mean": [123.675, 116.28, 103.53],
    "image_std": [58.395, 57.12, 57.375], "keep_aspect_ratio": False, "resample": 2, "rescale_factor": 1 / 255,
    "size": {"height": 384, "width": 384}, "size_divisor": 14,
}
# depth-anything/Depth-Anything-V2-*-hf: aspect-kept resize to a multiple of 14 (518 there; 56 here), no padding
DA_PROC = {
    "image_processor_type": "DPTImageProcessor", "do_normalize": True, "do_pad": False, "do_rescale": True,
    "do_resize": True, "ensure_multiple_of": 14, "keep_aspect_ratio": True, "resample": 3, "rescale_factor": 1 / 255,
    "size": {"height": 56, "width": 56}, **IMAGENET,
}


def _dinov2():
    from transformers import Dinov2Config

    return Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                        image_size=56, patch_size=14, out_features=["stage1", "stage2", "stage3", "stage4"],
                        apply_layernorm=True, reshape_hidden_states=False)


def build_tiny(kind: str, seed: int = 0):
    """(model, processor config) for kind in mask2former | eomt | dpt | depth_anything."""
    import torch
    import transformers as T

    torch.manual_seed(seed)
    if kind == "mask2former":
        swin = T.SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                            window_size=4, out_features=["stage1", "stage2", "stage3", "stage4"])
        cfg = T.Mask2FormerConfig(backbone_config=swin, num_labels=150, feature_size=32, mask_feature_size=32,
                                  hidden_dim=32, encoder_feedforward_dim=32, encoder_layers=1, decoder_layers=2,
                                  num_attention_heads=2, dim_feedforward=32, num_queries=8)
        return T.Mask2FormerForUniversalSegmentation(cfg), MASK2FORMER_PROC
    if kind == "eomt":
        cfg = T.EomtConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64, patch_size=16,
                           num_queries=8, num_blocks=1, num_labels=150, num_register_tokens=4)
        return T.EomtForUniversalSegmentation(cfg), EOMT_PROC
    if kind == "dpt":
        cfg = T.DPTConfig(backbone_config=_dinov2(), is_hybrid=False, neck_hidden_sizes=[16, 16, 16, 16],
                          fusion_hidden_size=16, reassemble_factors=[4, 2, 1, 0.5], hidden_size=32)
        return T.DPTForDepthEstimation(cfg), DPT_PROC
    if kind == "depth_anything":
        cfg = T.DepthAnythingConfig(backbone_config=_dinov2(), neck_hidden_sizes=[16, 16, 16, 16],
                                    fusion_hidden_size=16, reassemble_hidden_size=32, head_hidden_size=8,
                                    depth_estimation_type="relative")
        return T.DepthAnythingForDepthEstimation(cfg), DA_PROC
    raise ValueError(kind)


def _sharpen(model, mask_factor: float) -> None:
    """Scale the class head (x20) and the last mask-embedding layer: a random tiny model otherwise predicts one
    class almost everywhere, which would make label comparisons vacuous."""
    import torch

    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("class_predictor.weight"):
                p.mul_(20.0)
            elif n.endswith(("mask_embedder.2.0.weight", "mask_head.fc3.weight")):
                p.mul_(mask_factor)


def _condition_depth_head(model) -> None:
    """He-initialise every convolution and bias the last one to 1: the default 0.02-std init makes a tiny DPT
    predict ~1e-9 everywhere, which would make numeric comparisons vacuous."""
    import torch

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
                if mod.bias is not None:
                    mod.bias.zero_()
        last = [mod for mod in model.head.modules() if isinstance(mod, torch.nn.Conv2d)][-1]
        last.bias.fill_(1.0)


def save_checkpoint(folder: Path, kind: str, seed: int = 0) -> Path:
    model, proc = build_tiny(kind, seed)
    if kind in ("mask2former", "eomt"):
        _sharpen(model, 100.0 if kind == "mask2former" else 20.0)
    else:
        _condition_depth_head(model)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(proc))
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_ckpt")
    return {k: save_checkpoint(root / k, k) for k in ("mask2former", "eomt", "dpt", "depth_anything")}


@pytest.fixture(scope="session")
def save_tiny():
    """save_tiny(folder, kind, seed=0) -> folder: write a tiny checkpoint anywhere (e.g. a fake HF cache)."""
    return save_checkpoint


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random_image(rng, h: int, w: int) -> np.ndarray:
    return rng.random((h, w, 3)).astype(np.float32)


@pytest.fixture
def make_image():
    return random_image
