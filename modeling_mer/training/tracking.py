"""Experiment tracking for train.py (`--report_to`) through accelerate's trackers.

What is logged, and under which names (fold-aware, so the folds of one run never overwrite each other):

    <fold>/train/loss, <fold>/train/lr          every optimizer step (the loss averaged over processes)
    <fold>/epoch/train_loss                     every epoch; also <fold>/epoch/val_uf1 (--val_subjects) or
                                                <fold>/epoch/held_out_accuracy (--select_on_test)
    <fold>/test/accuracy, <fold>/test/uf1       once the fold has predicted its held-out clips
    pooled/uf1, pooled/uar, pooled/accuracy     the headline figures (and pooled/<dataset>/uf1 ... by dataset)
    the run's arguments                         as hyperparameters (TensorBoard's HParams tab, hparams.yml)

`<fold>` is `fold_<held-out name>` (e.g. `fold_sub01`), `final` for the model trained on all clips. The
step is the optimizer step counted over the whole invocation, increasing as wandb and trackio require.
The default writes local files only: TensorBoard event files under output_dir/logs when tensorboard is
installed, else nothing; wandb and trackio are used only when asked for.
"""

from __future__ import annotations

import importlib.util
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: train.py reads this module before its heavy imports
    import torch

TRACKERS = ("tensorboard", "wandb", "trackio")
REPORT_TO_CHOICES = (*TRACKERS, "all", "none")
FINAL_TAG = "final"


def tracker_installed(name: str) -> bool:
    """Whether the tracker's package can be imported (found without importing it: no cost)."""
    if name == "tensorboard":
        return any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))
    return importlib.util.find_spec(name) is not None


def resolve_report_to(requested: list[str] | None) -> list[str]:
    """`--report_to` -> the trackers to start.

    None (the default): ["tensorboard"] when it is installed, else [] (nothing is written anywhere else
    unless asked for). "all": every installed one of tensorboard, wandb, trackio. "none": []. A tracker
    asked for by name that is not installed is an error naming the package to install.
    """
    if requested is None:
        return ["tensorboard"] if tracker_installed("tensorboard") else []
    unknown = sorted(set(requested) - set(REPORT_TO_CHOICES))
    if unknown:
        raise ValueError(f"--report_to: unknown tracker(s) {unknown}; choose from {', '.join(REPORT_TO_CHOICES)}")
    if "none" in requested:
        if len(requested) > 1:
            raise ValueError("--report_to none cannot be combined with trackers")
        return []
    if "all" in requested:
        return [name for name in TRACKERS if tracker_installed(name)]
    missing = [name for name in requested if not tracker_installed(name)]
    if missing:
        raise ValueError(f"--report_to {' '.join(missing)}: not installed; pip install {' '.join(missing)}")
    return list(dict.fromkeys(requested))


def fold_tag(fold_name: str, final: bool = False) -> str:
    """The tag prefix of a fold: `fold_<name>` with anything but letters, digits, `.`, `-`, `_` replaced."""
    return FINAL_TAG if final else "fold_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", str(fold_name))


def hyperparameters(run_args: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """The run's arguments as tracker hyperparameters (scalars; lists and mappings as JSON, None as "none")."""
    values: dict[str, bool | int | float | str] = {}
    for key, value in sorted(run_args.items()):
        if value is None:
            values[key] = "none"
        elif isinstance(value, bool | int | float | str):
            values[key] = value
        else:
            values[key] = json.dumps(value, sort_keys=True, default=str)
    return values


def pooled_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """pooled/uf1, pooled/uar, pooled/accuracy and, for protocols that mix datasets, pooled/<dataset>/..."""
    values = {f"pooled/{k}": metrics[k] for k in ("uf1", "uar", "accuracy") if metrics.get(k) is not None}
    for name, part in (metrics.get("per_dataset") or {}).items():
        values.update({f"pooled/{name}/{k}": part[k] for k in ("uf1", "uar", "accuracy") if part.get(k) is not None})
    return values


class RunTracker:
    """Counts optimizer steps and sends scalars to the accelerator's trackers (none: nothing is computed).

    `enabled` must be the same on every process: the per-step loss is averaged with a collective call.
    """

    def __init__(self, accelerator: Any, enabled: bool) -> None:
        self.accelerator = accelerator
        self.enabled = enabled
        self.step = 0

    def train_step(self, prefix: str, loss: torch.Tensor, lr: float) -> None:
        self.step += 1
        if self.enabled:
            mean = self.accelerator.reduce(loss.detach().float().reshape(1), reduction="mean")
            self.accelerator.log({f"{prefix}/train/loss": float(mean), f"{prefix}/train/lr": float(lr)}, step=self.step)

    def log(self, values: dict[str, float | None]) -> None:
        if self.enabled:
            self.accelerator.log({k: float(v) for k, v in values.items() if v is not None}, step=self.step)


__all__ = [
    "REPORT_TO_CHOICES",
    "RunTracker",
    "TRACKERS",
    "fold_tag",
    "hyperparameters",
    "pooled_scalars",
    "resolve_report_to",
    "tracker_installed",
]
