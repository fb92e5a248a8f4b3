"""SAMM Long Videos (Yap et al., FG 2020) as distributed, for spotting: one example per video.

Layout: `SAMM_longvideos/006_1/006_1_0001.jpg` (frame numbers from 1, four digits or more: the longest
video has 13,057 frames), grayscale, 200 fps, 2040x1088. Sheet: `SAMM_LongVideos_V3_Release.xlsx` (also
V1, V2), worksheet `FACS_Movement_Only` (else the first worksheet with a column row): nine rows of notes
(title, symbol key, AU help, "Subjects with Apex Frame not annotated were labelled as -1"), then the
column row (Subject, Filename, Inducement Code, Onset, Apex, Offset, Duration, Type, Action Units,
Notes), then one row per event. `Filename` 006_1_3 is event 3 of video 006_1, whose subject is 006.
A CSV copy of the worksheet works too (the column row is searched for wherever it is).

Event quirks (fractional frames, onset 0, apex -1, the Duration check) are resolved in `_long.py` and
named in the build notes. The worksheet has no emotion column: `emotion` is "" unless the sheet has an
"Estimated Emotion" (or "Emotion") column.
"""

from __future__ import annotations

import re
from typing import ClassVar

from ._long import (
    Event,
    LongVideoBuilder,
    LongVideoSource,
    cell,
    event_type,
    find_columns,
    is_blank,
    make_event,
    read_grids,
    sheet_key,
)
from ._records import MERDataError
from ._sheets import cell_text
from .registry import DATASETS

WORKSHEET = "facsmovementonly"
ALIASES: dict[str, tuple[str, ...]] = {
    "subject": ("subject",),
    "filename": ("filename",),
    "onset": ("onset", "onsetframe"),
    "apex": ("apex", "apexframe"),
    "offset": ("offset", "offsetframe"),
    "duration": ("duration",),
    "type": ("type", "movementtype"),
    "action_units": ("actionunits", "aus", "au"),
    "emotion": ("estimatedemotion", "emotion"),
}
REQUIRED = ("subject", "filename", "onset", "apex", "offset", "type")


class SAMMLVSource(LongVideoSource):
    dataset = "samm_lv"
    fps = 200.0
    sheet_patterns = (r"SAMM.*Long.*\.xlsx", r"SAMM.*Long.*\.csv", r"SAMM[_ -]?LV.*\.(xlsx|csv)")
    release_folders: ClassVar[dict[str, tuple[str, ...]]] = {
        "raw": ("SAMM_longvideos", "SAMM_Long_Videos", "SAMM_LongVideos", "SAMMLV"),
        "cropped": ("SAMM_longvideos_cropped", "SAMM_LongVideos_cropped"),
    }
    folder_regex = r"\d{3}_\d+"

    def read(self) -> list:
        path = self.sheet_path()
        grids = read_grids(path)
        ordered = sorted(grids, key=lambda g: sheet_key(g.name) != WORKSHEET)  # FACS_Movement_Only first
        for grid in ordered:
            found = find_columns(grid, ALIASES, REQUIRED)
            if found is not None:
                break
        else:
            raise MERDataError(
                "no column row (Subject, Filename, Onset, Apex, Offset, Type) in the first rows of any worksheet",
                where=str(path),
            )
        header, columns = found
        root, _ = self.frame_root()
        entries = []
        for index in range(header + 1, len(grid.rows)):
            row = grid.rows[index]
            if is_blank(row):
                continue
            where = grid.where(index)
            filename = cell_text(cell(row, columns["filename"]))
            key = ("?", filename or "?")
            folder = None
            try:
                match = re.fullmatch(r"((\d+)_\d+)_\d+", filename)
                if match is None:
                    raise MERDataError(f"Filename must be <subject>_<video>_<event> such as 006_1_3, got {filename!r}", where=where)
                subject_cell = cell_text(cell(row, columns["subject"]))
                if not re.fullmatch(r"\d+", subject_cell):
                    raise MERDataError(f"Subject must be a number such as 006, got {subject_cell!r}", where=where)
                subject = f"{int(match.group(2)):03d}"  # the video named by Filename owns the row
                video = match.group(1)
                key = (subject, video)
                if int(match.group(2)) != int(subject_cell):
                    raise MERDataError(f"Filename {filename} does not belong to Subject {subject_cell}", where=where)
                event: Event | MERDataError = make_event(
                    cell(row, columns["onset"]),
                    cell(row, columns["apex"]),
                    cell(row, columns["offset"]),
                    event_type(cell(row, columns["type"]), where),
                    cell_text(cell(row, columns.get("action_units"))),
                    cell_text(cell(row, columns.get("emotion"))),
                    where,
                    self.quirks,
                    duration_cell=cell(row, columns.get("duration")),
                )
                folder = root / video
            except MERDataError as exc:
                event = exc
            entries.append((key, folder, event, where))
        if not entries:
            raise MERDataError("the SAMM-LV sheet has a column row but no events", where=grid.label)
        return self.group(iter(entries))


class SAMMLV(LongVideoBuilder):
    """SAMM Long Videos (spotting): 147 videos of 30 subjects, 502 events (159 micro)."""

    SOURCE = SAMMLVSource
    DESCRIPTION = DATASETS["samm_lv"].card_text  # the registry owns the texts
    CITATION = DATASETS["samm_lv"].citation
    HOMEPAGE = DATASETS["samm_lv"].homepage
    LICENSE = DATASETS["samm_lv"].license_text
