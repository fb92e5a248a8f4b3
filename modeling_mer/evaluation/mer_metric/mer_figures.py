"""The one place where UF1, UAR, accuracy, per-class, per-fold and per-dataset figures are computed.

MEGC convention: the predictions of every leave-one-subject-out fold are pooled first, then
UF1 = mean over classes of F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c) and UAR = mean over classes of
recall_c = TP_c / N_c. A fold holds one subject with a handful of clips, so per-fold macro scores are
noisy and are reported only as a breakdown, never averaged into the headline figure.

Classes that never occur and are never predicted in a subset (common in one fold) have no F1 or
recall: they are left out of that subset's means and reported as `None`, rather than counted as 0
(which would punish a fold for a class its subject never showed) or 1.

The counting is scikit-learn's (`confusion_matrix`, `precision_recall_fscore_support` with
`zero_division=nan`, so an undefined figure stays undefined). This file needs numpy and scikit-learn
only: it sits beside the `evaluate` module (`mer_metric.py`) so that the folder works on its own,
copied anywhere, without this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm


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
    if refs.size == 0:  # scikit-learn refuses empty input; an empty subset is all zeros
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    return skm.confusion_matrix(refs, preds, labels=np.arange(num_classes)).astype(np.int64)


def _optional(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _scores(refs: np.ndarray, preds: np.ndarray, label_names: Sequence[str]) -> dict[str, Any]:
    """UF1, UAR, accuracy and the per-class table of one subset of the predictions."""
    labels = np.arange(len(label_names))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        refs, preds, labels=labels, average=None, zero_division=np.nan
    )
    predicted = np.bincount(preds, minlength=len(labels))
    per_class = {
        name: {
            "f1": _optional(f1[c]),
            "recall": _optional(recall[c]),
            "precision": _optional(precision[c]),
            "support": int(support[c]),
            "predicted": int(predicted[c]),
        }
        for c, name in enumerate(label_names)
    }
    defined_f1, defined_recall = f1[~np.isnan(f1)], recall[~np.isnan(recall)]
    return {
        "uf1": float(defined_f1.mean()) if defined_f1.size else None,
        "uar": float(defined_recall.mean()) if defined_recall.size else None,
        "accuracy": float(skm.accuracy_score(refs, preds)) if refs.size else None,
        "num_samples": int(refs.size),
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
    result = _scores(refs, preds, label_names)
    result["confusion_matrix"] = confusion_matrix(refs, preds, num_classes).tolist()
    for key, groups in (("per_fold", folds), ("per_dataset", datasets)):
        if groups is None:
            continue
        groups = np.asarray([str(g) for g in groups])
        if groups.size != refs.size:
            raise ValueError(f"{key}: {groups.size} group labels for {refs.size} predictions")
        result[key] = {
            str(group): _scores(refs[groups == group], preds[groups == group], label_names)
            for group in sorted(set(groups.tolist()))
        }
    return result


__all__ = ["compute_mer_metrics", "confusion_matrix"]
