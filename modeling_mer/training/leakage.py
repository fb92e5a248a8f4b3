"""The leakage guard: a starting model (--model) trained on the data a run evaluates is refused.

    check_overlap(run)            LeakageError (one line) unless --allow_overlap, which labels the run OPTIMISTIC
    overlap(train_datasets, run)  the datasets both in a model's training data and in what the run evaluates

A saved model says what it was trained on in its config.json (`train_datasets`); `saved_model_config`
reads a --model folder's config.json (the rules read its model_type and patch size from it too). A Hub
model is checked once its config is loaded (recognition's and spotting's starting points call
`check_overlap` with its `train_datasets`). Composite datasets count by their parts. Standard library
only at import time (the registry is imported when called).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .run_options import PRESET_PATCH_SIZES, RunConfig


class LeakageError(ValueError):
    """The starting model was trained on the data this run evaluates (see `check_overlap`)."""


def saved_model_config(model: str) -> dict[str, Any] | None:
    """The config.json of a --model folder (None for presets and Hub ids)."""
    path = Path(os.path.expanduser(model)) / "config.json"
    if model in PRESET_PATCH_SIZES or not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"--model {model}: {path} is unreadable ({err})") from None
    if not isinstance(config, dict):  # a list, a number...: valid JSON, not a config
        kind = {"list": "array", "str": "string", "int": "number", "float": "number", "bool": "boolean"}.get(type(config).__name__, "null")
        raise ValueError(f"--model {model}: {path} holds a JSON {kind}, not an object of config fields")
    return config


def evaluated_datasets(run: RunConfig) -> set[str]:
    """The datasets whose clips a run tests (a composite's parts included)."""
    from dataset_scripts.registry import expand_parts

    return set(expand_parts(run.test_on or [run.dataset]))


def overlap(train_datasets: list[str] | None, run: RunConfig) -> list[str]:
    """Datasets both in a starting model's training data and in what this run evaluates."""
    from dataset_scripts.registry import expand_parts

    return sorted(set(expand_parts(list(train_datasets or []))) & evaluated_datasets(run))


def check_overlap(run: RunConfig, train_datasets: list[str] | None = None) -> list[str]:
    """The leakage guard: a starting model trained on the evaluated data is refused (ValueError, one line)
    unless --allow_overlap, which labels the run optimistic. Reads a folder's config.json when
    `train_datasets` is not given (a Hub model is checked once its config is loaded). Returns the overlap."""
    if train_datasets is None:
        train_datasets = (saved_model_config(run.model) or {}).get("train_datasets")
    shared = overlap(train_datasets, run)
    if shared and not run.allow_overlap:
        raise LeakageError(
            f"--model {run.model} was trained on {', '.join(shared)}, which this run evaluates: its figures would "
            "be optimistic (the test subjects were seen); start from another model, or pass --allow_overlap to "
            "run it labelled OPTIMISTIC"
        )
    return shared


__all__ = ["LeakageError", "check_overlap", "evaluated_datasets", "overlap", "saved_model_config"]
