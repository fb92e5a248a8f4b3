"""Sources: one per dataset, plain Python (no `datasets` machinery) so that the composite can reuse them.

A source reads one dataset's annotations below `data_dir` into `ClipSpec`s, and `BadClip` records for
the rows that cannot be used; reading frames is left to the builder.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from ._clips import check_spec
from ._layout import find_frame_root, find_sheet
from ._records import BadClip, ClipSpec, MERDataError, normalise_emotion
from ._sheets import cell_text, parse_frame_cell, read_sheet


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
            raise MERDataError(f"unknown emotion {text!r} for {self.dataset} (known: {known})", where=where)
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
        specs: list[ClipSpec | BadClip] = []
        first_row: dict[tuple[str, str], str] = {}
        for row in rows:
            clip = cell_text(row.cells["filename"])
            subject = cell_text(row.cells["subject"])
            try:
                subject = self.subject_id(row.cells["subject"], row.where)
                if not clip:
                    raise MERDataError("empty Filename cell", where=row.where)
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
                earlier = first_row.setdefault((subject, clip), row.where)
                if earlier != row.where:
                    raise MERDataError(f"clip {subject}/{clip} is annotated twice (also {earlier})", where=row.where)
                specs.append(spec)
            except MERDataError as exc:
                specs.append(BadClip.from_error(self.dataset, subject or "?", clip or "?", row.where, exc))
        return specs
