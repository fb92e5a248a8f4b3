"""The one place where UF1, UAR, accuracy, per-class, per-fold and per-dataset figures are computed.

MEGC convention: the predictions of every leave-one-subject-out fold are pooled first, then
UF1 = mean over classes of F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c) and UAR = mean over classes of
recall_c = TP_c / N_c. A fold holds one subject with a handful of clips, so per-fold macro scores are
noisy and are reported only as a breakdown, never averaged into the headline figure.

Classes that never occur and are never predicted in a subset (common in one fold) have no F1 or
recall: they are left out of that subset's means and reported as `None`, rather than counted as 0
(which would punish a fold for a class its subject never showed) or 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _check_inputs(references: Sequence[int], predictions: Sequence[int], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    refs = np.asarray(references, dtype=np.int64).reshape(-1)
    preds = np.asarray(predictions, dtype=np.int64).reshape(-1)
    if refs.shape != preds.shape:
        raise ValueError(f"references ({refs.size}) and predictions ({preds.size}) differ in length")
    for name, values in (("references", refs), ("predictions", preds)):
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError(f"{name} hold class index {int(bad[0])} outside 0..{num_classes - 1}")
    return refs, preds


def confusion_matrix(references: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows are true classes, columns predicted classes."""
    refs, preds = _check_inputs(references, predictions, num_classes)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (refs, preds), 1)
    return matrix


def _scores(matrix: np.ndarray, label_names: Sequence[str]) -> dict[str, Any]:
    """UF1, UAR, accuracy and the per-class table of one confusion matrix."""
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    f1_den = support + predicted  # 2TP + FP + FN
    per_class: dict[str, dict[str, Any]] = {}
    f1s, recalls = [], []
    for c, name in enumerate(label_names):
        f1 = float(2 * tp[c] / f1_den[c]) if f1_den[c] > 0 else None
        recall = float(tp[c] / support[c]) if support[c] > 0 else None
        precision = float(tp[c] / predicted[c]) if predicted[c] > 0 else None
        per_class[name] = {
            "f1": f1,
            "recall": recall,
            "precision": precision,
            "support": int(support[c]),
            "predicted": int(predicted[c]),
        }
        if f1 is not None:
            f1s.append(f1)
        if recall is not None:
            recalls.append(recall)
    total = int(matrix.sum())
    return {
        "uf1": float(np.mean(f1s)) if f1s else None,
        "uar": float(np.mean(recalls)) if recalls else None,
        "accuracy": float(tp.sum() / total) if total else None,
        "num_samples": total,
        "per_class": per_class,
    }


def compute_mer_metrics(
    references: Sequence[int],
    predictions: Sequence[int],
    label_names: Sequence[str],
    folds: Sequence[Any] | None = None,
    datasets: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Pooled UF1/UAR/accuracy with per-class, and optionally per-fold and per-dataset, breakdowns.

    Args:
        references, predictions: class indices of every clip, all folds pooled.
        label_names: class names in index order (their number fixes the classes).
        folds: the fold (e.g. held-out subject) of each clip, for `per_fold`.
        datasets: the source dataset of each clip (composite), for `per_dataset`.

    Returns a JSON-ready dict: `uf1`, `uar`, `accuracy`, `num_samples`, `per_class`,
    `confusion_matrix` (rows true), and `per_fold` / `per_dataset` (each entry the same figures on
    its subset, without its own confusion matrix) when the grouping is given.
    """
    num_classes = len(label_names)
    if num_classes < 2:
        raise ValueError(f"label_names must name at least 2 classes, got {list(label_names)}")
    refs, preds = _check_inputs(references, predictions, num_classes)
    if refs.size == 0:
        raise ValueError("no predictions to score")
    matrix = confusion_matrix(refs, preds, num_classes)
    result = _scores(matrix, label_names)
    result["confusion_matrix"] = matrix.tolist()
    for key, groups in (("per_fold", folds), ("per_dataset", datasets)):
        if groups is None:
            continue
        groups = [str(g) for g in groups]
        if len(groups) != refs.size:
            raise ValueError(f"{key}: {len(groups)} group labels for {refs.size} predictions")
        breakdown = {}
        for group in sorted(set(groups)):
            mask = np.array([g == group for g in groups])
            breakdown[group] = _scores(confusion_matrix(refs[mask], preds[mask], num_classes), label_names)
        result[key] = breakdown
    return result


__all__ = ["compute_mer_metrics", "confusion_matrix"]
