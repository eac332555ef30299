"""Semantic segmentation metrics: confusion matrix and mean IoU."""
from __future__ import annotations

import numpy as np


def confusion_matrix(pred_labels, gt_labels, num_classes: int, ignore: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(cm, missed): cm [num_classes, num_classes] int64 counts, rows = ground truth, columns = prediction;
    missed [num_classes]: valid-gt pixels predicted ``ignore`` (no prediction), a miss of their gt class.

    Pixels whose gt is ``ignore`` are left out. Sum both over frames to accumulate.
    """
    pred = np.asarray(pred_labels).ravel()
    gt = np.asarray(gt_labels).ravel()
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt have different sizes: {np.asarray(pred_labels).shape} vs {np.asarray(gt_labels).shape}")
    keep = gt != ignore
    pred, gt = pred[keep].astype(np.int64), gt[keep].astype(np.int64)
    for name, a, allowed in (("gt_labels", gt, ()), ("pred_labels", pred, (ignore,))):
        bad = ((a < 0) | (a >= num_classes)) & ~np.isin(a, allowed)
        if bad.any():
            raise ValueError(f"{name} has values outside 0..{num_classes - 1} (e.g. {a[bad][0]})")
    hit = pred != ignore
    cm = np.bincount(gt[hit] * num_classes + pred[hit], minlength=num_classes ** 2).reshape(num_classes, num_classes)
    missed = np.bincount(gt[~hit], minlength=num_classes)
    return cm, missed


def miou_from_confusion(cm: np.ndarray, missed: np.ndarray | None = None) -> tuple[float, dict[int, float]]:
    """Mean IoU over classes present in gt or pred: IoU_c = TP / (TP + FP + FN)."""
    cm = np.asarray(cm, dtype=np.int64)
    missed = np.zeros(len(cm), np.int64) if missed is None else np.asarray(missed, np.int64)
    tp = np.diag(cm)
    gt_count = cm.sum(1) + missed
    pred_count = cm.sum(0)
    union = gt_count + pred_count - tp
    present = np.nonzero(union > 0)[0]
    if len(present) == 0:
        raise ValueError("no labelled pixels: mIoU is undefined")
    per_class = {int(c): float(tp[c] / union[c]) for c in present}
    return float(np.mean(list(per_class.values()))), per_class


def miou(pred_labels, gt_labels, num_classes: int, ignore: int = -1) -> tuple[float, dict[int, float]]:
    """(mIoU, {class id: IoU}) over classes present in gt or pred (pixels with gt == ``ignore`` are skipped).

    Inputs are integer arrays of the same shape (any shape; numpy or anything ``np.asarray`` takes).
    """
    cm, missed = confusion_matrix(pred_labels, gt_labels, num_classes, ignore)
    return miou_from_confusion(cm, missed)
