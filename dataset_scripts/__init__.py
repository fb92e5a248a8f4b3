"""Micro-expression datasets as `datasets` builders, and one entry point to load them.

    from dataset_scripts import load_mer_dataset
    ds = load_mer_dataset("casme2", data_dir="~/data/CASME2")             # 5class, frames embedded
    ds = load_mer_dataset("composite", data_dir={"casme2": ..., "samm": ..., "smic": ...})
    ds = load_mer_dataset("synthetic")                                     # built-in, no download

The datasets are the entries of `dataset_scripts.registry.DATASETS` (`DATASET_NAMES` lists them); a new one
is its builder file plus one `register_dataset` call. Importing this package imports neither `datasets`
nor torch: a builder is imported when its dataset is loaded.

A build is cached in Arrow under `cache_dir`, keyed on the builder code and every option (data folder,
class_set, on_error, lazy, spot_apex, release, sheet), so a second call with the same arguments reuses it.
The cache does not notice edits to the files on disk: delete the cache folder after changing them.
With on_error="skip", bad clips are left out, printed at the end, and kept in
`dataset.info.description` (read them with `skipped_clips(dataset)`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ._records import BadClip, MERDataError
from .registry import DATASETS, DatasetSpec, get_dataset, register_dataset

# Builders and helpers that import `datasets`, loaded on first use (module __getattr__).
_LAZY = {
    "CASME2": "dataset_scripts.casme2",
    "SAMM": "dataset_scripts.samm",
    "SMIC": "dataset_scripts.smic",
    "MEGC2019Composite": "dataset_scripts.composite",
    "skipped_clips": "dataset_scripts._skips",
    "record_skips": "dataset_scripts._skips",
    "format_skip_report": "dataset_scripts._skips",
}

__all__ = [
    "BUILDERS",
    "BadClip",
    "CASME2",
    "DATASETS",
    "DATASET_NAMES",
    "DatasetSpec",
    "MEGC2019Composite",
    "MERDataError",
    "SAMM",
    "SMIC",
    "load_mer_dataset",
    "format_skip_report",
    "record_skips",
    "register_dataset",
    "skipped_clips",
]


def __getattr__(name: str) -> Any:
    if name == "DATASET_NAMES":  # computed on each access: a dataset registered later is listed
        return tuple(DATASETS)
    if name == "BUILDERS":  # name -> builder class of every registered dataset (imports them all)
        return {key: spec.builder_class() for key, spec in DATASETS.items()}
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dataset_scripts' has no attribute {name!r}")


def _absolute(data_dir: Any) -> Any:
    # Absolute paths, so that the cache key does not depend on the working folder; whether data_dir has
    # the right form for the dataset is the builder's check (made once, there).
    if isinstance(data_dir, Mapping):
        return {key: os.path.abspath(os.path.expanduser(os.fspath(v))) for key, v in data_dir.items()}
    return None if data_dir is None else os.path.abspath(os.path.expanduser(os.fspath(data_dir)))


def _make_builder(spec: DatasetSpec, data_dir: Any, class_set: str | None, cache_dir: str | None, on_error: str,
                  options: dict[str, Any]) -> Any:
    if spec.options is not None:
        unknown = sorted(set(options) - set(spec.options))
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)} for {spec.name}; the options are {', '.join(spec.options)}")
    builder_class = spec.builder_class()
    if not spec.needs_data_dir:  # a generated set: only what differs from its defaults is handed over
        if data_dir is not None:
            raise ValueError(f"the {spec.name} set is generated, it takes no data_dir")
        if on_error != "raise":
            options = {**options, "on_error": on_error}
        if class_set is not None:
            options = {**options, "class_set": class_set}
        return builder_class(cache_dir=cache_dir, **options)
    class_set = class_set or getattr(builder_class, "DEFAULT_CLASS_SET", spec.default_class_set)
    return builder_class(data_dir=_absolute(data_dir), cache_dir=cache_dir, class_set=class_set, on_error=on_error, **options)


def load_mer_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None = None,
    class_set: str | None = None,
    cache_dir: str | None = None,
    on_error: str = "raise",
    split: str | None = "train",
    streaming: bool = False,
    **options: Any,
) -> Any:
    """Build (or reuse from the cache) one micro-expression dataset and return its split.

    name: a registered dataset (`DATASET_NAMES`: casme2, samm, smic, composite, synthetic, ...).
    class_set: 5class (CASME II, SAMM default), 3class (SMIC-HS, composite default) or all (the builders'
    configs; `DATASETS[name].class_sets`). on_error: "raise" or "skip". split: as in
    `datasets.load_dataset`: "train" (the only split; LOSO folds are made by subject later; slices such as
    "train[:10]" work), or None for a DatasetDict. streaming=True: nothing is built or cached, clips are
    read while iterating (an IterableDataset). Options: lazy (store frame paths, not bytes), spot_apex
    (estimate a missing apex by optical flow; False: the midpoint), release ("auto", "raw", "cropped"),
    sheet (the coding sheet's path); synthetic: its generator's knobs.
    Returns a `datasets.Dataset` (DatasetDict / IterableDataset as above).
    """
    import datasets

    from ._skips import format_skip_report, skipped_clips

    spec = get_dataset(name)
    if split is not None and str(split).split("[")[0].strip() != "train":
        raise ValueError(f"split={split!r}: the micro-expression datasets have one split, 'train' (or None for all)")
    builder = _make_builder(spec, data_dir, class_set, cache_dir, on_error, options)
    if streaming:
        if split is not None and split != "train":
            raise ValueError(f"split={split!r}: slices need streaming=False (stream 'train' and use .take(n))")
        return builder.as_streaming_dataset(split=split)
    from ._cache import repair_builder_cache

    repair_builder_cache(builder)  # a cut or emptied Arrow file in the cache: named, removed, built again
    try:
        builder.download_and_prepare()
    except datasets.exceptions.DatasetGenerationError as exc:
        # datasets wraps whatever the generator raised; a bad-input error is the one the user needs
        if isinstance(exc.__cause__, MERDataError):
            raise exc.__cause__ from None
        raise
    dataset = builder.as_dataset(split=split)
    skipped = skipped_clips(dataset if split is not None else dataset["train"])
    if skipped:
        print(format_skip_report(skipped))
    return dataset
