"""Sources: one per dataset, plain Python (no `datasets` machinery) so that the composite can reuse them.

A source reads one dataset's annotations below `data_dir` into `ClipSpec`s, and `BadClip` records for
the rows that cannot be used; reading frames is left to the builder.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import datasets

from ._clips import check_spec
from ._layout import find_frame_root, find_sheet
from ._records import BadClip, ClipSpec, MERDataError, normalise_emotion, quote
from ._sheets import cell_text, parse_frame_cell, read_sheet

logger = datasets.logging.get_logger(__name__)
NAME_MAX = 255  # bytes in one file or folder name on the file systems datasets live on


class ClipSource(ABC):
    """Reads one dataset's annotations below `data_dir` into ClipSpecs (and BadClips)."""

    dataset: ClassVar[str]
    fps: ClassVar[float]
    emotions: ClassVar[frozenset[str]]

    def __init__(self, data_dir: str | os.PathLike[str], release: str = "auto", sheet: str | None = None):
        self.data_dir = Path(data_dir).expanduser()
        if not self.data_dir.is_dir():
            raise MERDataError(f"{self.dataset} data_dir {self.data_dir} is not a folder")
        self.release = release
        self.sheet = sheet
        self._specs: list[ClipSpec | BadClip] | None = None
        self.notes: list[str] = []  # what the build report must say about this source (never silent)

    @property
    def frame_root(self) -> Path:
        return self._frame_root()[0]

    @abstractmethod
    def _frame_root(self) -> tuple[Path, str]: ...

    @abstractmethod
    def _read_specs(self) -> list[ClipSpec | BadClip]: ...

    def specs(self) -> list[ClipSpec | BadClip]:
        if self._specs is None:
            self._specs = self._read_specs()
        return self._specs

    def subject_present(self, subject: str) -> bool:
        """Whether the subject's folder exists (the composite accepts partial downloads)."""
        return (self.frame_root / subject).is_dir()

    def checked_emotion(self, text: str, where: str) -> str:
        if normalise_emotion(text) not in self.emotions:
            known = ", ".join(sorted(self.emotions))
            raise MERDataError(f"unknown emotion {quote(text)} for {self.dataset} (known: {known})", where=where)
        return text


class SheetSource(ClipSource):
    """A dataset described by a coding sheet (CASME II, SAMM)."""

    sheet_patterns: ClassVar[tuple[str, ...]]
    release_folders: ClassVar[dict[str, tuple[str, ...]]]
    subject_regex: ClassVar[str]

    @abstractmethod
    def subject_id(self, cell: Any, where: str) -> str:
        """The subject's folder name from its sheet cell."""

    def _frame_root(self) -> tuple[Path, str]:
        if not hasattr(self, "_root_cache"):
            self._root_cache = find_frame_root(
                self.data_dir, self.release, self.release_folders, self.subject_regex, self.dataset
            )
        return self._root_cache

    def sheet_path(self) -> Path:
        return find_sheet(self.data_dir, self.sheet_patterns, self.dataset, self.sheet)

    def _read_specs(self) -> list[ClipSpec | BadClip]:
        path = self.sheet_path()
        rows = read_sheet(path)
        if not rows:
            raise MERDataError("the coding sheet has a column row but no clips", where=str(path))
        root = self.frame_root
        read: list[tuple[tuple[str, str] | None, ClipSpec | BadClip]] = []
        for row in rows:
            clip = cell_text(row.cells["filename"])
            subject = cell_text(row.cells["subject"])
            key = None
            try:
                subject = self.subject_id(row.cells["subject"], row.where)
                check_clip_name(clip, row.where)
                key = (subject, clip)
                spec = ClipSpec(
                    dataset=self.dataset,
                    subject=subject,
                    clip_id=clip,
                    folder=root / subject / clip,
                    frame_root=root,
                    onset=parse_frame_cell(row.cells["onset"], "OnsetFrame", row.where),
                    apex=parse_frame_cell(row.cells["apex"], "ApexFrame", row.where, optional=True),
                    offset=parse_frame_cell(row.cells["offset"], "OffsetFrame", row.where),
                    fps=self.fps,
                    action_units=cell_text(row.cells.get("action_units")),
                    emotion=self.checked_emotion(cell_text(row.cells["emotion"]), row.where),
                    where=row.where,
                )
                check_spec(spec)
                read.append((key, spec))
            except MERDataError as exc:
                read.append((key, BadClip.from_error(self.dataset, subject or "?", clip or "?", row.where, exc)))
        return self._merge_repeated_rows(read)

    def _merge_repeated_rows(
        self, read: list[tuple[tuple[str, str] | None, ClipSpec | BadClip]]
    ) -> list[ClipSpec | BadClip]:
        """One entry per clip. A row repeating an earlier one exactly is dropped and named in the notes;
        rows giving one clip different annotations make the clip bad (no row wins)."""
        groups: dict[tuple[str, str], list[ClipSpec | BadClip]] = {}
        for key, entry in read:
            if key is not None:
                groups.setdefault(key, []).append(entry)
        specs: list[ClipSpec | BadClip] = []
        for key, entry in read:
            group = groups.get(key) if key is not None else None
            if group is None or len(group) == 1:
                specs.append(entry)
                continue
            if entry is not group[0]:
                continue  # the clip's entry was made at its first row
            first = group[0]
            wheres = [e.where for e in group]
            if all(isinstance(e, ClipSpec) for e in group) and len({_annotation(e) for e in group}) == 1:
                specs.append(first)
                note = (
                    f"{self.dataset} clip {key[0]}/{key[1]} is annotated identically in {len(group)} rows "
                    f"({'; '.join(wheres)}); it is built once."
                )
                logger.warning(note)
                self.notes.append(note)
                continue
            details = "; ".join(
                f"{_row_label(e.where)}: "
                + (_describe(e) if isinstance(e, ClipSpec) else e.reason)
                for e in group
            )
            specs.append(
                BadClip(
                    self.dataset, key[0], key[1], group[-1].where,
                    f"clip {key[0]}/{key[1]} is annotated {len(group)} times with different values ({details}); "
                    "correct the sheet so that one row describes it",
                )
            )
        return specs


def check_clip_name(clip: str, where: str) -> None:
    """A sheet's Filename names a folder inside its subject's folder: never a path that leaves it."""
    if not clip:
        raise MERDataError("empty Filename cell", where=where)
    if len(clip.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise MERDataError(
            f"Filename {quote(clip)} is longer than a folder name can be ({NAME_MAX} bytes)", where=where
        )
    if clip in (".", "..") or any(sep in clip for sep in ("/", "\\", "\0")) or Path(clip).is_absolute():
        raise MERDataError(
            f"Filename {quote(clip)} is not a clip folder name (a path outside the subject's folder is refused: "
            "a clip of another subject would leak across leave-one-subject-out folds)",
            where=where,
        )


def _row_label(where: str) -> str:
    """'row 3' from 'path/sheet.xlsx row 3'."""
    return where[where.rfind(" row ") + 1 :] if " row " in where else where


def _annotation(spec: ClipSpec) -> tuple:
    return (spec.onset, spec.apex, spec.offset, spec.emotion_key, spec.action_units)


def _describe(spec: ClipSpec) -> str:
    apex = "/" if spec.apex is None else spec.apex
    return f"onset {spec.onset}, apex {apex}, offset {spec.offset}, {spec.emotion}, AUs {spec.action_units or '-'}"
