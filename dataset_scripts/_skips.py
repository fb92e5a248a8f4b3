"""The skip report: what a build left out and why, kept on the built dataset itself.

`dataset.info.description` ends with a line `skipped_clips_json: [...]` (read it back with
`skipped_clips(dataset)`), so the report survives the Arrow cache and is there again when a second call
reuses the cache. Each entry is a `BadClip.as_dict()`: clip, dataset, subject, clip_id, where, reason.
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
