"""Which epoch's predictions a fold reports, and how long the released model trains.

Three strategies, one object, used by the fold loop, the final model and every report:

    fixed       train a fixed number of epochs, chosen before testing; report the last epoch (the default)
    validation  after every epoch, score UF1 on `val_subjects` training subjects set aside; report the
                held-out predictions of the best-scoring epoch; the final model trains for the folds'
                median choice (no held-out subject is left to choose on)
    held_out    OPTIMISTIC (the official code's practice, for comparison only): keep the epoch with the
                best accuracy on the held-out subject itself
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

STRATEGIES = ("fixed", "validation", "held_out")

NOTES = {
    "fixed": "No model selection on the held-out subject: a fixed number of epochs, chosen before testing.",
    "validation": (
        "No model selection on the held-out subject: each fold's epoch was chosen by UF1 on validation "
        "subjects set aside from its training subjects."
    ),
    "held_out": (
        "OPTIMISTIC: each fold's epoch was picked by its accuracy on the held-out subject (the official "
        "code's practice); these figures overestimate performance on unseen subjects."
    ),
}


@dataclass(frozen=True)
class EpochSelection:
    strategy: str
    epochs: int
    val_subjects: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown epoch selection {self.strategy!r}; choose from {', '.join(STRATEGIES)}")
        if (self.strategy == "validation") != (self.val_subjects > 0):
            raise ValueError("validation selection needs val_subjects > 0, and only it uses them")

    @classmethod
    def from_options(cls, epochs: int, val_subjects: int = 0, select_on_test: bool = False) -> EpochSelection:
        if val_subjects and select_on_test:
            raise ValueError(
                "--val_subjects chooses epochs on training subjects, --select_on_test on the held-out one: pick one"
            )
        strategy = "held_out" if select_on_test else "validation" if val_subjects else "fixed"
        return cls(strategy, epochs, val_subjects)

    @property
    def optimistic(self) -> bool:
        return self.strategy == "held_out"

    @property
    def scores_every_epoch(self) -> bool:
        return self.strategy != "fixed"

    def improved(self, score: float, best: dict[str, Any] | None) -> bool:
        """Strictly better than the best so far (ties keep the earlier epoch)."""
        return best is None or score > best["score"]

    def final_epochs(self, chosen: Sequence[int]) -> int:
        """Epochs of the model trained on every subject, given each fold's chosen (0-based) epoch."""
        if self.strategy == "validation" and len(chosen):
            import numpy as np

            return int(np.median(chosen)) + 1
        return self.epochs

    @property
    def description(self) -> str:
        if self.strategy == "validation":
            return f"epoch chosen on {self.val_subjects} validation subject(s) of each training fold (max {self.epochs})"
        if self.strategy == "held_out":
            return "best held-out epoch (optimistic)"
        return f"fixed {self.epochs} epochs"

    @property
    def note(self) -> str:
        return NOTES[self.strategy]


__all__ = ["EpochSelection", "NOTES", "STRATEGIES"]
