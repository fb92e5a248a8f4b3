"""The skip report: what a build or the preprocessing left out and why, kept on the dataset itself.

One record type (`BadClip`, stored as its `as_dict()`: clip, dataset, subject, clip_id, where, reason) and
one marker: `dataset.info.description` ends with a line `skipped_clips_json: [...]`. The builders write
it (`build_description`), `preprocess_dataset(on_error="skip")` adds its own records to the same line
(`record_skips`, where="preprocessing"), and `skipped_clips(dataset)` is the one reader, so the report
survives the Arrow cache and the preprocessing of a built set.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

import datasets

from ._records import BadClip

SKIP_MARKER = "skipped_clips_json: "


def build_description(text: str, notes: list[str], skipped: list[BadClip]) -> str:
    lines = [text.strip(), *notes, f"{len(skipped)} clip(s) skipped because of bad input."]
    lines.append(SKIP_MARKER + json.dumps([bad.as_dict() for bad in skipped]))
    return "\n".join(lines)


def skipped_clips(dataset: datasets.Dataset) -> list[dict[str, str]]:
    """The clips left out of a build made with on_error="skip": {"clip", "where", "reason", ...} each."""
    for line in (dataset.info.description or "").splitlines():
        if line.startswith(SKIP_MARKER):
            return json.loads(line[len(SKIP_MARKER):])
    return []


def record_skips(dataset: datasets.Dataset, skipped: Sequence[dict[str, str]] | Sequence[BadClip]) -> datasets.Dataset:
    """Add `skipped` to the skip report of `dataset` (the same marker line, after what is there); returns it."""
    entries = skipped_clips(dataset) + [s.as_dict() if isinstance(s, BadClip) else dict(s) for s in skipped]
    entries = list({json.dumps(e, sort_keys=True): e for e in entries}.values())  # a record once
    lines = [line for line in (dataset.info.description or "").splitlines() if not line.startswith(SKIP_MARKER)]
    dataset.info.description = "\n".join([*lines, SKIP_MARKER + json.dumps(entries)])
    return dataset


def format_skip_report(skipped: Sequence[dict[str, str]] | Sequence[BadClip]) -> str:
    entries = [s.as_dict() if isinstance(s, BadClip) else s for s in skipped]
    lines = [f"Skipped {len(entries)} clip(s):"]
    lines += [f"  - {e['clip']}: {e['reason']} ({e['where']})" for e in entries]
    return "\n".join(lines)


def excluded_note(class_set: str, excluded: Counter[str]) -> list[str]:
    """A note naming the clips a class set leaves out by design (not errors, but never silent)."""
    if not excluded:
        return []
    counts = ", ".join(f"{emotion} {n}" for emotion, n in sorted(excluded.items()))
    return [f"Class set {class_set} leaves out {sum(excluded.values())} clip(s) of other emotions: {counts}."]
