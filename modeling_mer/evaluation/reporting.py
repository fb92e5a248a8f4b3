"""Outputs of a LOSO run: metrics.json, predictions.csv, figures, the model card, the Hub upload.

Every output says which protocol produced it and whether model selection touched the held-out subject
(`--select_on_test`, see `modeling_mer.training.selection`), because those numbers are optimistic and
must never be compared with honest ones unlabelled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .metrics import compute_mer_metrics  # noqa: E402

# Only these files of the output folder go to the Hub: never dataset frames, flow caches or checkpoints.
HUB_FILES = [
    "README.md", "config.json", "model.safetensors", "preprocessor_config.json", "*.py",
    "metrics.json", "predictions.csv", "confusion_matrix.png", "per_subject.png", "run_args.json",
]


def pooled_metrics(
    predictions: pd.DataFrame, label_names: list[str], info: dict[str, Any], by_dataset: bool | None = None
) -> dict[str, Any]:
    """compute_mer_metrics on the pooled predictions, plus the run's protocol and selection labels.

    `info` holds at least `protocol`, `optimistic` (the figures overestimate: selection touched the held-out
    subject, or the starting model had seen the evaluated data) and `note` (what the selection was, in
    words); `select_on_test` says whether the selection touched the held-out subject (default: `optimistic`).
    Per-dataset figures come with `by_dataset` (the protocols that mix datasets) when several are present.
    """
    if by_dataset is None:
        by_dataset = info["protocol"] in ("composite", "hde", "cross")
    by_dataset = by_dataset and predictions["dataset"].nunique() > 1
    metrics = compute_mer_metrics(
        predictions["label"].tolist(),
        predictions["prediction"].tolist(),
        label_names,
        folds=predictions["fold"].tolist(),
        datasets=predictions["dataset"].tolist() if by_dataset else None,
    )
    metrics.update(info)
    metrics["num_folds"] = int(predictions["fold"].nunique())
    metrics["label_names"] = list(label_names)
    metrics["optimistic"] = bool(info["optimistic"])
    metrics["selection_touched_held_out"] = bool(info.get("select_on_test", metrics["optimistic"]))
    return metrics


def summary_line(metrics: dict[str, Any]) -> str:
    """The console line; optimistic runs say so first."""
    head = ""
    if metrics.get("selection_touched_held_out", metrics["optimistic"]):
        head = "[OPTIMISTIC: selected on the held-out subject] "
    elif metrics["optimistic"]:
        head = "[OPTIMISTIC: the starting model was trained on the evaluated data] "
    line = (
        f"{head}{metrics['protocol']} on {metrics['dataset']}: UF1 {metrics['uf1']:.4f}  UAR {metrics['uar']:.4f}  "
        f"accuracy {metrics['accuracy']:.4f}  ({metrics['num_samples']} clips, {metrics['num_folds']} folds)"
    )
    for name, part in (metrics.get("per_dataset") or {}).items():
        line += f"\n    {name}: UF1 {part['uf1']:.4f}  UAR {part['uar']:.4f}  ({part['num_samples']} clips)"
    return line


def plot_confusion(metrics: dict[str, Any], path: Path) -> None:
    matrix = np.asarray(metrics["confusion_matrix"])
    names = metrics["label_names"]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.2 * len(names) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    title = f"{metrics['dataset']} {metrics['protocol']}: UF1 {metrics['uf1']:.3f}"
    ax.set_title(title + (" (optimistic)" if metrics["optimistic"] else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_per_subject(predictions: pd.DataFrame, path: Path) -> None:
    correct = (predictions["label"] == predictions["prediction"]).groupby(predictions["fold"])
    accuracy, counts = correct.mean(), correct.size()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.25 * len(accuracy) + 2), 3.5))
    ax.bar(range(len(accuracy)), accuracy.values)
    ax.set_xticks(range(len(accuracy)), [f"{k} ({counts[k]})" for k in accuracy.index], rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy on the held-out subject")
    ax.set_title("per held-out subject (clips)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_reports(output_dir: Path, predictions: pd.DataFrame, metrics: dict[str, Any]) -> None:
    """predictions.csv, metrics.json and the two figures."""
    predictions.to_csv(output_dir / "predictions.csv", index=False)
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_confusion(metrics, output_dir / "confusion_matrix.png")
    plot_per_subject(predictions, output_dir / "per_subject.png")


__all__ = [
    "HUB_FILES",
    "plot_confusion",
    "plot_per_subject",
    "pooled_metrics",
    "summary_line",
    "write_reports",
]
