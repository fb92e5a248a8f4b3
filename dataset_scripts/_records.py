"""What the builders pass between their stages: a clip to read, a clip that cannot be used, the error.

A bad clip is a structured record (dataset, subject, clip, where, reason), never a message to be parsed
back: the composite indexes bad clips by (subject, clip) and the skip report stores the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class MERDataError(ValueError):
    """Bad input on disk; the message names the file (and the sheet row) at fault.

    Raised as `MERDataError(reason, where=...)` the message is "<where>: <reason>" and both parts stay
    available as attributes, so that a skip record is made from them without parsing the text.
    """

    def __init__(self, reason: str, *, where: str | None = None):
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}" if where else reason)

    def __reduce__(self):  # pickles with its fields (datasets may carry it across processes)
        return (_rebuild_error, (self.reason, self.where))


def _rebuild_error(reason: str, where: str | None) -> MERDataError:
    return MERDataError(reason, where=where)


QUOTE_LIMIT = 80  # characters of a cell value or file name quoted in a message


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr(value)` cut to `limit` characters: a 1 MB cell or a 5,000-character name stays readable in a
    message and in the skip report."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(str(value)):,} characters)"


def os_error(exc: OSError, where: str | None) -> MERDataError:
    """An operating-system error met on a dataset path (name too long, permission denied, ...) as a
    dataset error naming the row or folder, so that on_error="skip" can leave the clip out."""
    name = f" {quote(str(exc.filename), 2 * QUOTE_LIMIT)}" if exc.filename is not None else ""
    reason = exc.strerror or type(exc).__name__
    return MERDataError(f"cannot read{name}: {reason} (errno {exc.errno})" if exc.errno else f"cannot read{name}: {reason}", where=where)


def normalise_emotion(text: str) -> str:
    return " ".join(str(text).strip().lower().split())


@dataclass(frozen=True)
class ClipSpec:
    """One annotated clip, before its frames are read.

    `onset`/`offset` are None for SMIC-HS, whose clip is the whole folder; `apex` is None when the sheet
    has no apex (`/` in CASME II, always in SMIC-HS).
    """

    dataset: str
    subject: str
    clip_id: str
    folder: Path
    frame_root: Path
    onset: int | None
    apex: int | None
    offset: int | None
    fps: float
    action_units: str
    emotion: str
    where: str

    @property
    def emotion_key(self) -> str:
        return normalise_emotion(self.emotion)

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.clip_id}"


@dataclass(frozen=True)
class BadClip:
    """A clip that cannot be used; raised in `on_error="raise"` mode, reported in skip mode.

    `clip_id` is empty when a whole subject's clips cannot be listed (e.g. SMIC's `micro` is a file).
    """

    dataset: str
    subject: str
    clip_id: str
    where: str
    reason: str

    @property
    def name(self) -> str:
        return "/".join(part for part in (self.dataset, self.subject, self.clip_id) if part)

    @classmethod
    def from_error(cls, dataset: str, subject: str, clip_id: str, where: str, error: MERDataError) -> BadClip:
        """The record of a clip that failed with `error` (its reason without a repeated `where`)."""
        reason = error.reason if error.where == where else str(error)
        return cls(dataset, subject, clip_id, where, reason)

    def error(self) -> MERDataError:
        return MERDataError(self.reason, where=self.where)

    def as_dict(self) -> dict[str, str]:
        return {
            "clip": self.name,
            "dataset": self.dataset,
            "subject": self.subject,
            "clip_id": self.clip_id,
            "where": self.where,
            "reason": self.reason,
        }
