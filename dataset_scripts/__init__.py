"""Micro-expression datasets as `datasets` builders, and one entry point to load them.

    from dataset_scripts import load_mer_dataset
    ds = load_mer_dataset("casme2", data_dir="~/data/CASME2")             # 5class, frames embedded
    ds = load_mer_dataset("composite", data_dir={"casme2": ..., "samm": ..., "smic": ...})
    ds = load_mer_dataset("synthetic")                                     # built-in, no download

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

import datasets

from ._records import MERDataError
from ._skips import format_skip_report, skipped_clips
from .casme2 import CASME2
from .composite import MEGC2019Composite
from .samm import SAMM
from .smic import SMIC

BUILDERS: dict[str, type[datasets.GeneratorBasedBuilder]] = {
    "casme2": CASME2,
    "samm": SAMM,
    "smic": SMIC,
    "composite": MEGC2019Composite,
}
DATASET_NAMES = (*BUILDERS, "synthetic")
OPTIONS = ("lazy", "spot_apex", "release", "sheet")

__all__ = [
    "BUILDERS",
    "CASME2",
    "DATASET_NAMES",
    "MEGC2019Composite",
    "MERDataError",
    "SAMM",
    "SMIC",
    "load_mer_dataset",
    "skipped_clips",
]


def _make_builder(
    name: str, data_dir: Any, class_set: str | None, cache_dir: str | None, on_error: str, options: dict[str, Any]
) -> datasets.GeneratorBasedBuilder:
    if name == "synthetic":
        from .synthetic import SyntheticMER

        if data_dir is not None:
            raise ValueError("the synthetic set is generated, it takes no data_dir")
        if on_error != "raise":
            options = {**options, "on_error": on_error}
        if class_set is not None:
            options = {**options, "class_set": class_set}
        return SyntheticMER(cache_dir=cache_dir, **options)
    builder_class = BUILDERS.get(name)
    if builder_class is None:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for {name}; the options are {', '.join(OPTIONS)}")
    class_set = class_set or builder_class.DEFAULT_CLASS_SET
    # Absolute paths, so that the cache key does not depend on the working folder; whether data_dir has
    # the right form for the dataset is the builder's check (made once, there).
    if isinstance(data_dir, Mapping):
        data_dir = {key: os.path.abspath(os.path.expanduser(os.fspath(v))) for key, v in data_dir.items()}
    elif data_dir is not None:
        data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    return builder_class(data_dir=data_dir, cache_dir=cache_dir, class_set=class_set, on_error=on_error, **options)


def load_mer_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None = None,
    class_set: str | None = None,
    cache_dir: str | None = None,
    on_error: str = "raise",
    split: str | None = "train",
    streaming: bool = False,
    **options: Any,
) -> datasets.Dataset | datasets.DatasetDict | datasets.IterableDataset | datasets.IterableDatasetDict:
    """Build (or reuse from the cache) one micro-expression dataset and return its split.

    name: casme2, samm, smic, composite or synthetic. class_set: 5class (CASME II, SAMM default), 3class
    (SMIC-HS, composite default) or all (the builders' configs). on_error: "raise" or "skip". split: as in
    `datasets.load_dataset`: "train" (the only split; LOSO folds are made by subject later; slices such as
    "train[:10]" work), or None for a DatasetDict. streaming=True: nothing is built or cached, clips are
    read while iterating (an IterableDataset). Options: lazy (store frame paths, not bytes), spot_apex
    (estimate a missing apex by optical flow; False: the midpoint), release ("auto", "raw", "cropped"),
    sheet (the coding sheet's path); synthetic: its generator's knobs.
    """
    if split is not None and str(split).split("[")[0].strip() != "train":
        raise ValueError(f"split={split!r}: the micro-expression datasets have one split, 'train' (or None for all)")
    builder = _make_builder(name, data_dir, class_set, cache_dir, on_error, options)
    if streaming:
        if split is not None and split != "train":
            raise ValueError(f"split={split!r}: slices need streaming=False (stream 'train' and use .take(n))")
        return builder.as_streaming_dataset(split=split)
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
