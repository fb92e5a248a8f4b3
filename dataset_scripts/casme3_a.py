"""CAS(ME)^3 Part A (Li et al., IEEE TPAMI 2022) long videos as distributed, for spotting: one example per video.

Layout: `part_A/data/part_A/spNO.1/a/color/133.jpg`: one folder per subject (`spNO.<n>`), one per video
(`a`, `b`, ...), the RGB frames in `color/` (`depth/<n>.png` holds the depth maps: never read, never taken
for frames). Frame files are numbered without padding; a video's numbers may start above 1 and have gaps
(frames dropped by the recorder). The events give frame numbers, i.e. file names, so the example keeps the
real numbers in `frame_numbers` (CONTRACTS §4) and an event's onset, apex and offset must be frames on disk:
an onset or offset that falls in a gap is a bad row (on_error="skip" leaves the video out). 30 fps.

Sheet: `CAS(ME)3_part_A_v2.xls` (legacy Excel, read with xlrd; an .xlsx or .csv copy of it works too), one
header row: Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion, Expression type
(`Micro-expression` / `Macro-expression`). The column row is searched for (rows above it, e.g. a title,
are passed over), columns are found by name in any order and spelling of case and punctuation, with a few
renamings accepted (`Type` for Expression type, `Action Units` for AU, `Video` for Filename). Subject,
Filename, Onset, Apex, Offset and Expression type are required; a sheet without AU, Objective class or
emotion builds with "" there and says so in the build notes.

Quirks, with the bad-input rules of the other long-video sets (one line naming the file and row;
on_error="skip" reports the video and goes on):

* Subject written `spNO.1`, `spno.1`, `spNO1` or `1` is subject `spNO.1` (one video whichever way each row
  writes it); the subject folder is found by its number (`spNO.01` on disk is `spNO.1`);
* the expression type in any case (`MICRO-EXPRESSION`, `micro-expression`; `Micro`, `Macro` too);
* an event whose video folder (or its `color/` folder) is missing is a bad row naming the folder;
* an onset, apex or offset that is not among the video's frames (a gap, or past the last frame) is a bad
  row naming the frame and the folder;
* an apex outside onset..offset is kept out (-1) with the interval as written, and named in the build notes,
  as for CAS(ME)^2 and SAMM-LV (`_long.py`), as are apex 0/-1, offset 0 and onset 0.

`video_id` is `<subject>_<video>` (`spNO.1_a`): the video letters repeat across subjects and a spotting
run keys videos by (dataset, video_id). Each event carries `objective_class` (as written, "" when absent)
besides the fields every long-video set has.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from ._long import (
    Event,
    Grid,
    LongVideoBuilder,
    LongVideoSource,
    cell,
    event_type,
    find_columns,
    is_blank,
    make_event,
    read_grids,
)
from ._records import MERDataError
from ._sheets import HEADER_SEARCH_ROWS, _normalise_header, cell_text
from .registry import DATASETS

ALIASES: dict[str, tuple[str, ...]] = {
    "subject": ("subject", "sub", "participant"),
    "filename": ("filename", "video", "videoname", "file"),
    "onset": ("onset", "onsetframe"),
    "apex": ("apex", "apexframe"),
    "offset": ("offset", "offsetframe"),
    "action_units": ("au", "aus", "actionunits", "actionunit"),
    "objective_class": ("objectiveclass", "objectiveclasses", "objective"),
    "emotion": ("emotion", "estimatedemotion", "emotions"),
    "type": ("expressiontype", "type", "expression", "movementtype"),
}
REQUIRED = ("subject", "filename", "onset", "apex", "offset", "type")
OPTIONAL = ("action_units", "objective_class", "emotion")
HEADINGS = {"subject": "Subject", "filename": "Filename", "onset": "Onset", "apex": "Apex", "offset": "Offset",
            "action_units": "AU", "objective_class": "Objective class", "emotion": "emotion",
            "type": "Expression type"}
SUBJECT_RE = re.compile(r"(?:sp\s*no\.?\s*)?0*(\d+)", re.IGNORECASE)
SUBJECT_FOLDER_RE = re.compile(r"spNO\.?0*(\d+)", re.IGNORECASE)
COLOR = "color"


def subject_name(value: Any, where: str) -> str:
    """'spNO.1', 'spno.1', 'spNO1', 1 (1.0 from Excel) or '01' -> 'spNO.1'; anything else is a bad row."""
    text = cell_text(value)
    match = SUBJECT_RE.fullmatch(text)
    if match is None:
        raise MERDataError(f"Subject must be spNO.<number> or a number, got {value!r}", where=where)
    return f"spNO.{int(match.group(1))}"


def _column_row(grid: Grid) -> tuple[int, dict[str, int]] | None:
    """The row naming most of the columns (at least two), for a message saying which are missing."""
    best: tuple[int, dict[str, int]] | None = None
    for index, row in enumerate(grid.rows[:HEADER_SEARCH_ROWS]):
        names = [_normalise_header(c) for c in row]
        columns = {canonical: names.index(s) for canonical, spellings in ALIASES.items()
                   for s in reversed(spellings) if s in names}
        if len(columns) >= 2 and (best is None or len(columns) > len(best[1])):
            best = index, columns
    return best


class CASME3ASource(LongVideoSource):
    dataset = "casme3_a"
    fps = 30.0
    sheet_patterns = (r"CAS\(?ME\)?\^?3.*part[ _-]?A.*\.(xls|xlsx|csv)",)
    release_folders: ClassVar[dict[str, tuple[str, ...]]] = {"raw": ("part_A", "partA", "part A")}
    folder_regex = SUBJECT_FOLDER_RE.pattern

    def __init__(self, data_dir: str | Path, release: str = "auto", sheet: str | None = None):
        super().__init__(data_dir, release=release, sheet=sheet)
        if release == "cropped":
            raise MERDataError("casme3_a: CAS(ME)^3 Part A is distributed uncropped; use release='raw' or 'auto'")

    def _columns(self, path: Path) -> tuple[Grid, int, dict[str, int]]:
        grids = read_grids(path)
        for grid in grids:
            found = find_columns(grid, ALIASES, REQUIRED)
            if found is not None:
                return grid, found[0], found[1]
        wanted = ", ".join(HEADINGS[c] for c in REQUIRED)
        for grid in grids:  # a column row lacking some column: say which, at that row
            near = _column_row(grid)
            if near is not None:
                index, columns = near
                missing = ", ".join(HEADINGS[c] for c in REQUIRED if c not in columns)
                seen = ", ".join(repr(cell_text(c)) for c in grid.rows[index] if cell_text(c))
                raise MERDataError(f"the column row has no {missing} column (it has {seen}); expected {wanted}",
                                   where=grid.where(index))
        raise MERDataError(f"no column row ({wanted}) in the first rows of any worksheet", where=str(path))

    def _subject_folders(self, root: Path) -> dict[int, list[Path]]:
        folders: dict[int, list[Path]] = {}
        for entry in sorted(root.iterdir()):
            match = SUBJECT_FOLDER_RE.fullmatch(entry.name)
            if match is not None and entry.is_dir():
                folders.setdefault(int(match.group(1)), []).append(entry)
        return folders

    @staticmethod
    def _child(folder: Path, name: str) -> Path | None:
        """`folder/name`, else the one entry of `folder` whose name differs only in case."""
        if (folder / name).is_dir():
            return folder / name
        found = [p for p in folder.iterdir() if p.is_dir() and p.name.lower() == name.lower()]
        return found[0] if len(found) == 1 else None

    def _video_folder(self, root: Path, subjects: dict[int, list[Path]], subject: str, video: str, where: str) -> Path:
        number = int(subject.split(".", 1)[1])
        candidates = subjects.get(number, [])
        if len(candidates) != 1:
            what = "no folder" if not candidates else f"{len(candidates)} folders ({', '.join(p.name for p in candidates)})"
            raise MERDataError(f"missing subject folder: {what} for {subject} in {root}", where=where)
        video_dir = self._child(candidates[0], video)
        if video_dir is None:
            raise MERDataError(f"missing video folder {candidates[0] / video}", where=where)
        color = self._child(video_dir, COLOR)
        if color is None:
            raise MERDataError(f"missing frame folder {video_dir / COLOR} (the RGB frames; depth/ holds depth maps, "
                               "which are not frames)", where=where)
        return color

    def read(self) -> list:
        path = self.sheet_path()
        grid, header, columns = self._columns(path)
        absent = [HEADINGS[c] for c in OPTIONAL if c not in columns]
        if absent:
            self.notes.append(f"casme3_a: the sheet has no {', '.join(absent)} column: those event fields are \"\".")
        root, _ = self.frame_root()
        subjects = self._subject_folders(root)
        self.notes.append("casme3_a: frames from each video's color/ folder (depth/ maps are not read).")
        folders: dict[tuple[str, str], Path | None] = {}
        entries = []
        for index in range(header + 1, len(grid.rows)):
            row = grid.rows[index]
            if is_blank(row):
                continue
            where = grid.where(index)
            video = cell_text(cell(row, columns["filename"]))
            key: tuple[str, str] = ("?", video or "?")
            folder = None
            try:
                subject = subject_name(cell(row, columns["subject"]), where)
                key = (subject, f"{subject}_{video or '?'}")
                if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", video):
                    raise MERDataError(f"Filename must name a video folder such as a, got {video!r}", where=where)
                event: Event | MERDataError = make_event(
                    cell(row, columns["onset"]),
                    cell(row, columns["apex"]),
                    cell(row, columns["offset"]),
                    event_type(cell(row, columns["type"]), where),
                    cell_text(cell(row, columns.get("action_units"))),
                    cell_text(cell(row, columns.get("emotion"))),
                    where,
                    self.quirks,
                    extras={"objective_class": cell_text(cell(row, columns.get("objective_class")))},
                )
                if key not in folders:  # looked up once per video: a missing folder is one error, at its first row
                    folders[key] = None
                    folders[key] = self._video_folder(root, subjects, subject, video, where)
                folder = folders[key]
            except MERDataError as exc:
                event = exc
            entries.append((key, folder, event, where))
        if not entries:
            raise MERDataError("the CAS(ME)^3 Part A sheet has a column row but no events", where=grid.label)
        return self.group(iter(entries))


class CASME3A(LongVideoBuilder):
    """CAS(ME)^3 Part A long videos (spotting), read from the user's licensed copy."""

    SOURCE = CASME3ASource
    EVENT_EXTRAS = ("objective_class",)
    DESCRIPTION = DATASETS["casme3_a"].card_text  # the registry owns the texts
    CITATION = DATASETS["casme3_a"].citation
    HOMEPAGE = DATASETS["casme3_a"].homepage
    LICENSE = DATASETS["casme3_a"].license_text
