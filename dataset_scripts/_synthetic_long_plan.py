"""The timing of the long synthetic videos: CAS(ME)^2's real annotation rows, and which windows are rendered.

One concern: reading dataset_scripts/casme_sq_code_final.csv (the MEGC ground truth) as the casme_sq builder
reads its sheet (offset 0 read as the apex) and choosing, per synthetic subject, the real videos and the
window of `num_frames` frames where their events are densest (micro-expressions first). Rendering them is
`_synthetic_long_video`'s; the set and its builder are `_synthetic_long`'s.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Any

from ._long import Event, QuirkCounts, event_type, make_event

ROWS_FILE = Path(__file__).with_name("casme_sq_code_final.csv")
WINDOW_MARGIN = 30  # frames kept before the first and after the last event of a window
MAX_SUBJECTS = 22


@lru_cache(maxsize=1)
def real_videos() -> dict[tuple[int, str], tuple[Event, ...]]:
    """(participant, expression) -> its events, read from CAS(ME)^2's rows as the casme_sq builder reads them."""
    videos: dict[tuple[int, str], list[Event]] = {}
    quirks = QuirkCounts()
    with open(ROWS_FILE, newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            where = f"{ROWS_FILE.name} row {number}"
            event = make_event(row["onset"], row["apex"], row["offset"], event_type(row["type"], where),
                               row["action_units"], row["emotion"], where, quirks)
            videos.setdefault((int(row["participant"]), row["video"].rsplit("_", 1)[0]), []).append(event)
    return {key: tuple(sorted(events, key=lambda e: (e.onset, e.offset))) for key, events in videos.items()}


def _window(events: tuple[Event, ...], num_frames: int | None) -> tuple[int, int, list[Event]]:
    """(first real frame, length, events inside) of the window holding the most micro-, then all events."""
    if num_frames is None:
        return 1, max(e.offset for e in events) + WINDOW_MARGIN, list(events)
    starts = {max(1, e.onset - WINDOW_MARGIN) for e in events}
    starts |= {max(1, e.offset + WINDOW_MARGIN - num_frames + 1) for e in events}

    def inside(start: int) -> list[Event]:
        return [e for e in events if e.onset >= start and e.offset <= start + num_frames - 1 - WINDOW_MARGIN // 3]

    best = max(sorted(starts), key=lambda s: (sum(e.type == "micro" for e in inside(s)), len(inside(s)), -s))
    return best, num_frames, inside(best)


def plan_videos(num_subjects: int, videos_per_subject: int, num_frames: int | None) -> list[dict[str, Any]]:
    """Which real videos are rendered: participants ranked by their videos holding a micro-expression
    (then by events), each with its own `videos_per_subject` videos ranked the same way."""
    videos = real_videos()
    per_participant: dict[int, list[str]] = {}
    for participant, expression in videos:
        per_participant.setdefault(participant, []).append(expression)

    def video_rank(key: tuple[int, str]) -> tuple:
        events = videos[key]
        return (-sum(e.type == "micro" for e in events), -len(events), key[1])

    def participant_rank(p: int) -> tuple:
        keys = [(p, x) for x in per_participant[p]]
        return (-sum(any(e.type == "micro" for e in videos[k]) for k in keys), -sum(len(videos[k]) for k in keys), p)

    plan = []
    for index, participant in enumerate(sorted(per_participant, key=participant_rank)[:num_subjects]):
        keys = sorted(((participant, x) for x in per_participant[participant]), key=video_rank)[:videos_per_subject]
        for key in keys:
            start, length, events = _window(videos[key], num_frames)
            plan.append({"subject": index, "participant": participant, "expression": key[1], "start": start,
                         "num_frames": length, "events": events})
    return plan


__all__ = ["MAX_SUBJECTS", "ROWS_FILE", "WINDOW_MARGIN", "plan_videos", "real_videos"]
