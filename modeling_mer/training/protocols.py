"""Evaluation protocols: which clips train and which are tested, fold by fold. One registry entry each.

    loso       leave one subject out, on one dataset (CASME II, SAMM, SMIC-HS, synthetic)
    composite  MEGC2019: LOSO over the subjects of the three datasets together; figures overall and per dataset
    hde        MEGC2018 holdout-database evaluation: train on every dataset but one, test on that one, in turn
    cross      train on the datasets named by `train_on`, test on those named by `test_on` (A -> B)

A protocol is a `Protocol` in `PROTOCOLS`: its folds, its command-line rules (one dataset or several,
whether it takes --train_on/--test_on), its description for metrics.json, the console and the card.
train.py's --protocol choices and help are the registry's keys and descriptions; adding a protocol is
one `register_protocol(Protocol(...))`.

A subject is a (dataset, subject) pair: composite subjects of different datasets never merge. Every
protocol's folds are checked: no subject on both sides of a fold, every tested clip tested once.
This module imports no third-party package at import time (train.py reads it before its heavy imports).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Fold:
    """One split: `name` is what is held out (a subject, `dataset/subject` in composites, or a dataset)."""

    index: int
    name: str
    dataset: str  # the held-out clips' dataset ("" when they span several)
    subject: str  # the held-out subject ("" when a whole dataset is held out)
    train: list[int]
    test: list[int]
    val: list[int] = field(default_factory=list)  # training subjects set aside to choose the epoch


def subject_keys(subjects: Sequence[str], datasets: Sequence[str] | None) -> list[str]:
    """A subject key per clip: `dataset/subject` when several datasets are mixed, else `subject`."""
    if datasets is not None and len(set(datasets)) > 1:
        return [f"{d}/{s}" for d, s in zip(datasets, subjects)]
    return [str(s) for s in subjects]


def loso_folds(subjects: Sequence[str], datasets: Sequence[str] | None = None) -> list[Fold]:
    """One fold per subject (sorted), holding out all of that subject's clips."""
    if len(subjects) == 0:
        raise ValueError("loso_folds: the dataset has no clips")
    keys = subject_keys(subjects, datasets)
    names = sorted(set(keys))
    if len(names) < 2:
        raise ValueError(f"leave-one-subject-out needs at least 2 subjects, got {names}")
    folds = []
    for index, name in enumerate(names):
        test = [i for i, k in enumerate(keys) if k == name]
        train = [i for i, k in enumerate(keys) if k != name]
        first = test[0]
        dataset = str(datasets[first]) if datasets is not None else ""
        folds.append(Fold(index, name, dataset, str(subjects[first]), train, test))
    return folds


def holdout_database_folds(datasets: Sequence[str]) -> list[Fold]:
    """MEGC2018 HDE: one fold per dataset (sorted), testing on it after training on all the others."""
    names = sorted(set(datasets))
    if len(names) < 2:
        raise ValueError(f"holdout-database evaluation needs at least 2 datasets, got {names}")
    return [
        Fold(
            index,
            name,
            name,
            "",
            [i for i, d in enumerate(datasets) if d != name],
            [i for i, d in enumerate(datasets) if d == name],
        )
        for index, name in enumerate(names)
    ]


def cross_dataset_fold(datasets: Sequence[str], train_on: Sequence[str], test_on: Sequence[str]) -> Fold:
    """Train on the clips of `train_on`, test on those of `test_on`: one fold."""
    present = sorted(set(datasets))
    for option, names in (("train_on", train_on), ("test_on", test_on)):
        if not names:
            raise ValueError(f"--protocol cross needs --{option} (datasets present: {', '.join(present)})")
        missing = sorted(set(names) - set(present))
        if missing:
            raise ValueError(f"--{option} {' '.join(missing)}: not in the data (present: {', '.join(present)})")
    both = sorted(set(train_on) & set(test_on))
    if both:
        raise ValueError(f"--train_on and --test_on share {', '.join(both)}: a dataset's subjects would be on both sides")
    test_name = "+".join(sorted(test_on))
    return Fold(
        0,
        f"{'+'.join(sorted(train_on))}->{test_name}",
        test_name if len(test_on) == 1 else "",
        "",
        [i for i, d in enumerate(datasets) if d in set(train_on)],
        [i for i, d in enumerate(datasets) if d in set(test_on)],
    )


FoldMaker = Callable[[Sequence[str], Sequence[str], Sequence[str], Sequence[str]], list[Fold]]


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol.

    name: `--protocol NAME`.
    description: one line for metrics.json, the console and the card; may use {train_on} and {test_on}.
    folds: (subjects, datasets, train_on, test_on) -> the folds, one value per clip in the first two.
    several_datasets: True: it needs a multi-dataset set (--dataset composite) and reports per dataset;
        False: it runs on one dataset.
    train_test: it takes --train_on and --test_on (both required).
    default: the protocol chosen when --protocol is not given (one per value of several_datasets).
    """

    name: str
    description: str
    folds: FoldMaker
    several_datasets: bool = False
    train_test: bool = False
    default: bool = False

    def describe(self, train_on: Sequence[str] = (), test_on: Sequence[str] = ()) -> str:
        return self.description.format(train_on="+".join(train_on), test_on="+".join(test_on))


PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(protocol: Protocol) -> Protocol:
    """Add a protocol to `PROTOCOLS` (and so to train.py's --protocol choices)."""
    if protocol.default and any(
        p.default and p.several_datasets == protocol.several_datasets and p.name != protocol.name
        for p in PROTOCOLS.values()
    ):
        raise ValueError(f"protocol {protocol.name}: another protocol is already the default for its kind of data")
    PROTOCOLS[protocol.name] = protocol
    return protocol


def _one_dataset_loso(subjects, datasets, train_on, test_on) -> list[Fold]:
    if len(set(datasets)) > 1:
        raise ValueError("--protocol loso is for one dataset; for several use composite, hde or cross")
    return loso_folds(subjects, datasets)


def _composite_loso(subjects, datasets, train_on, test_on) -> list[Fold]:
    if len(set(datasets)) < 2:
        raise ValueError(f"--protocol composite needs clips of several datasets, got {sorted(set(datasets))}")
    return loso_folds(subjects, datasets)


register_protocol(Protocol("loso", "leave-one-subject-out", _one_dataset_loso, default=True))
register_protocol(Protocol(
    "composite", "leave-one-subject-out over the subjects of all datasets (MEGC2019 composite)", _composite_loso,
    several_datasets=True, default=True,
))
register_protocol(Protocol(
    "hde", "holdout-database evaluation (MEGC2018 HDE): train on all datasets but one, test on it, in turn",
    lambda subjects, datasets, train_on, test_on: holdout_database_folds(datasets), several_datasets=True,
))
register_protocol(Protocol(
    "cross", "cross-dataset: train on {train_on}, test on {test_on}",
    lambda subjects, datasets, train_on, test_on: [cross_dataset_fold(datasets, train_on, test_on)],
    several_datasets=True, train_test=True,
))


def default_protocol(several_datasets: bool) -> str:
    return next(p.name for p in PROTOCOLS.values() if p.default and p.several_datasets == several_datasets)


def cli_problem(name: str, dataset: str, several_datasets: bool, train_on: Sequence[str] | None,
                test_on: Sequence[str] | None) -> str | None:
    """The command-line rule `--protocol name` breaks with this data, in one line; None when it fits."""
    protocol = PROTOCOLS[name]
    if protocol.several_datasets and not several_datasets:
        return f"--protocol {name} mixes datasets: it needs --dataset composite, got --dataset {dataset}"
    if not protocol.several_datasets and several_datasets:
        others = ", ".join(p.name for p in PROTOCOLS.values() if p.several_datasets)
        return f"--protocol {name} is for one dataset; for --dataset {dataset} use --protocol {others}"
    if (train_on or test_on) and not protocol.train_test:
        takers = ", ".join(p.name for p in PROTOCOLS.values() if p.train_test)
        return f"--train_on / --test_on apply only to --protocol {takers}"
    if protocol.train_test and not (train_on and test_on):
        return f"--protocol {name} needs --train_on and --test_on (dataset names, e.g. casme2 and samm)"
    return None


def make_folds(
    protocol: str,
    subjects: Sequence[str],
    datasets: Sequence[str],
    train_on: Sequence[str] = (),
    test_on: Sequence[str] = (),
) -> list[Fold]:
    """The folds of `protocol` over clips given by their subject and dataset, checked for leaks."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    folds = PROTOCOLS[protocol].folds(subjects, datasets, train_on, test_on)
    check_folds(folds, subject_keys(subjects, datasets))
    return folds


def check_folds(folds: Sequence[Fold], keys: Sequence[str]) -> None:
    """No subject on both sides of a fold; no clip tested twice."""
    tested: set[int] = set()
    for fold in folds:
        leaked = {keys[i] for i in [*fold.train, *fold.val]} & {keys[i] for i in fold.test}
        if leaked:
            raise AssertionError(f"fold {fold.name}: subject(s) {sorted(leaked)} on both sides")
        if tested & set(fold.test):
            raise AssertionError(f"fold {fold.name}: clips tested by an earlier fold")
        tested |= set(fold.test)


def validation_split(fold: Fold, keys: Sequence[str], num_subjects: int, seed: int) -> Fold:
    """Move `num_subjects` whole subjects (drawn from the seed) from the fold's training rows to `val`.

    The held-out clips are untouched: the epoch is then chosen on subjects the fold trains without, so
    the tested subjects stay unseen until their final predictions.
    """
    subjects = sorted({keys[i] for i in fold.train})
    if not 0 < num_subjects < len(subjects):
        raise ValueError(
            f"--val_subjects {num_subjects}: fold {fold.name} has {len(subjects)} training subjects; "
            "keep at least one for training"
        )
    import numpy as np

    chosen = set(np.random.default_rng([seed, fold.index]).choice(subjects, num_subjects, replace=False))
    return replace(
        fold,
        train=[i for i in fold.train if keys[i] not in chosen],
        val=[i for i in fold.train if keys[i] in chosen],
    )


def describe(protocol: str, train_on: Sequence[str] = (), test_on: Sequence[str] = ()) -> str:
    """One line for metrics.json, the console and the model card."""
    return PROTOCOLS[protocol].describe(train_on, test_on)


__all__ = [
    "Fold",
    "PROTOCOLS",
    "Protocol",
    "cli_problem",
    "default_protocol",
    "check_folds",
    "cross_dataset_fold",
    "describe",
    "holdout_database_folds",
    "loso_folds",
    "make_folds",
    "register_protocol",
    "subject_keys",
    "validation_split",
]
