"""The Task seam: what differs between learning tasks, behind one interface the runner drives.

The runner (`modeling_mer.training.runner`) owns what every task shares: the run configuration, the folds
(by subject, from the protocol registry), a fresh model per fold, the epochs (checkpointed, resumable,
stoppable), epoch selection, fold files, pooling, the final model and the card. A `Task` owns what is
specific to one kind of label:

    recognize   one emotion label per clip (`modeling_mer.training.recognition.RecognitionTask`)
    spot        intervals in long videos (registered by the spotting module when it exists)

The runner calls, in this order:

    data = task.prepare(run, accelerator)                       once per run
    for each fold:
        model = task.build_model(run, data, seed)               a fresh model
        loader = task.make_loader(run, data, rows, train, seed) the fold's training / validation / test rows
        task.begin_fold(run, data, train_rows, seed)           optional: per-fold state
        loss = task.loss(model, batch, data, epoch)             every training step
        frame = task.predict(accelerator, model, loader, data, rows)   one fold's prediction rows
        score = task.epoch_score(frame, data)                   epoch selection (validation subjects)
    metrics = task.pooled_metrics(pooled, data, info)           metrics.json
    task.summary_line(metrics); task.write_reports(...); task.card_results(metrics)

A new task is one class and one entry in `TASKS` (train.py's --task choices come from its keys). Entries
may be the class itself or a "module:Class" string imported on first use, so that `train.py --help`
lists every task without importing any of them.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # annotations only: this module is read at parse time, before the heavy imports
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader


@dataclass
class TaskData:
    """What `Task.prepare` returns and every other method receives.

    meta: one row per example (columns "dataset", "subject", and whatever the task's reports need), in
        the order of `examples`: fold rows index both.
    config: the model's `PreTrainedConfig` (saved with the final model).
    processor: the model's processor (saved with the final model).
    examples: what the task's loaders read (e.g. a memory-mapped table of stored flow).
    info: task facts for metrics.json and the console (e.g. the classes, the feature store's report).
    """

    meta: pd.DataFrame
    config: Any
    processor: Any
    examples: Any
    info: dict[str, Any] = field(default_factory=dict)


class Task(abc.ABC):
    """One kind of label, from data to the card. Subclasses set `name` and implement every abstract method."""

    name: ClassVar[str]  # "recognize" | "spot": train.py --task NAME
    score_name: ClassVar[str] = "score"  # what `epoch_score` is (trackers log <fold>/epoch/val_<score_name>)
    held_out_score_name: ClassVar[str] = "score"  # what `held_out_score` is (<fold>/epoch/held_out_<name>)
    example_word: ClassVar[str] = "examples"  # the console's word for one example ("clips", "videos")

    @abc.abstractmethod
    def prepare(self, run: Any, accelerator: Any) -> TaskData:
        """Load the dataset(s) named by `run` and compute what is stored once (flow, features), on the main
        process first so the others reuse the cache. Owns the data, the config and the processor."""

    @abc.abstractmethod
    def build_model(self, run: Any, data: TaskData, seed: int) -> torch.nn.Module:
        """A fresh model for one fold (called right after the runner seeds with `seed`). Owns the head."""

    @abc.abstractmethod
    def make_loader(self, run: Any, data: TaskData, rows: list[int], train: bool, seed: int) -> DataLoader:
        """A loader over `rows` of `data.examples` (shuffled when `train`); the runner prepares it."""

    @abc.abstractmethod
    def loss(self, model: torch.nn.Module, batch: Any, data: TaskData, epoch: int = 0) -> torch.Tensor:
        """The training objective of one batch in `epoch`. Owns the targets, their weights and any
        augmentation (state for the fold, such as class weights, is set in `begin_fold`)."""

    @abc.abstractmethod
    def predict(self, accelerator: Any, model: torch.nn.Module, loader: DataLoader, data: TaskData,
                rows: list[int]) -> pd.DataFrame:
        """One fold's prediction rows (gathered from every process once each): what a prediction is. The
        runner adds the columns "fold" and "epoch" and writes them to folds/fold_NNN.csv."""

    @abc.abstractmethod
    def epoch_score(self, predictions: pd.DataFrame, data: TaskData) -> float:
        """The score that chooses the epoch on validation subjects: higher is better."""

    @abc.abstractmethod
    def pooled_metrics(self, predictions: pd.DataFrame, data: TaskData, info: dict[str, Any]) -> dict[str, Any]:
        """The figures of the pooled predictions of every fold, merged with the run's `info` (protocol,
        selection, optimistic...): the content of metrics.json."""

    @abc.abstractmethod
    def summary_line(self, metrics: dict[str, Any]) -> str:
        """The console's result line(s); an optimistic run says so first."""

    @abc.abstractmethod
    def write_reports(self, output_dir: Path, predictions: pd.DataFrame, metrics: dict[str, Any]) -> None:
        """predictions.csv, metrics.json and the task's figures in `output_dir` (main process only)."""

    @abc.abstractmethod
    def card_results(self, metrics: dict[str, Any]) -> list:
        """The model card's results: a list of huggingface_hub `EvalResult`s (the model-index)."""

    # Optional hooks, with the defaults most tasks want ------------------------------------------------
    def begin_fold(self, run: Any, data: TaskData, rows: list[int], seed: int) -> None:  # noqa: B027 (optional hook)
        """Called before a fold trains on `rows` (e.g. class weights of the fold's training examples)."""

    def held_out_score(self, predictions: pd.DataFrame, data: TaskData) -> float:
        """--select_on_test's score on the held-out subject itself (optimistic); default: `epoch_score`."""
        return self.epoch_score(predictions, data)

    def fold_scores(self, predictions: pd.DataFrame, data: TaskData) -> dict[str, float | None]:
        """Per-fold figures for the trackers (name -> value); the console prints the first."""
        return {}

    def describe(self, data: TaskData) -> str:
        """What the data is, for the console's first line (e.g. the classes and the clip geometry)."""
        return f"{len(data.meta)} examples"

    def export_model(self, model: torch.nn.Module) -> Any:
        """The model to save as the released model (e.g. undo a training-only wrapper)."""
        return model

    def card_run(self, run: Any, data: TaskData) -> dict[str, Any]:
        """Settings the model card describes, beyond the run configuration (e.g. the processor's)."""
        return {}

    def model_card(self, run: Any, data: TaskData, metrics: dict[str, Any], repo_or_path: str) -> Any:
        """A whole model card (huggingface_hub `ModelCard`) for a task whose model is not the package's;
        None (the default): the package's card (`evaluation.hub_card.render_card`) with `card_results`."""
        return None


class TaskRegistry(MutableMapping):
    """name -> Task class; an entry may be "module:Class", imported on first access (keys stay cheap)."""

    def __init__(self, entries: dict[str, type[Task] | str]):
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> type[Task]:
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __setitem__(self, name: str, task: type[Task] | str) -> None:
        self._entries[name] = task

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def register(self, name: str, task: type[Task] | str) -> None:
        self._entries[name] = task


TASKS = TaskRegistry({
    "recognize": "modeling_mer.training.recognition:RecognitionTask",
    "spot": "modeling_mer.training.spotting:SpottingTask",
})


def register_task(task: type[Task] | str, name: str | None = None) -> None:
    """Add a task: `register_task(MyTask)` (its `name`), or `register_task("pkg.mod:MyTask", "mine")` (lazy)."""
    if name is None:
        if isinstance(task, str):
            raise ValueError("register_task: a 'module:Class' entry needs its name")
        name = task.name
    TASKS.register(name, task)


__all__ = ["TASKS", "Task", "TaskData", "TaskRegistry", "register_task"]
