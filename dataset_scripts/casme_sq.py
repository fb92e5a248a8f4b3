"""CAS(ME)^2 (Qu et al., IEEE TAC 2018) long videos as distributed, for spotting: one example per video.

Layout: `rawpic/s15/15_0101disgustingteeth/img1.jpg` (frames numbered from 1 as in the sheet; some copies
zero-pad to three digits, `img001.jpg`), also `cropped/` (release="cropped"); 30 fps, 640x480. The
folder is `{folder_number}_{code}{description}`: the code comes from the expression name in the sheet's
`video` column (`anger1_1` = expression `anger1`, event 1) through sheet `naming rule2` (codes stored as
numbers, 101, or as text, '0101'); the folder number and its subject folder (`s15`) from sheet
`naming rule1`, which is aligned row by row with the code sheet (its participant column must agree).

The workbook `CAS(ME)^2code_final.xlsx` has three sheets and no header row: `CASFEcode_final` (some
versions `CASMEcode_final`; columns participant, video, onset, apex, offset, action units, emotion,
type, self report), `naming rule1` (folder number, folder, participant) and `naming rule2` (code, name).
Sheets are found by name, else by position. CSV copies work too: a `*code_final*.csv` (or the `sheet`
option) with `*naming*rule*1*.csv` and `*naming*rule*2*.csv` beside it, a header row allowed.

Event quirks (offset 0, apex 0, apex after offset) are resolved in `_long.py` and named in the build
notes. `video_id` is `{folder_number}_{code}` (15_0101), independent of how a copy spells the folder's
description; the subject is the subject folder (s15).
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
    event_type,
    is_blank,
    make_event,
    read_grids,
    sheet_key,
)
from ._records import MERDataError
from ._sheets import cell_text
from .registry import DATASETS

CODE_SHEETS = ("casfecodefinal", "casmecodefinal")
RULE1_SHEET, RULE2_SHEET = "namingrule1", "namingrule2"
EMOTIONS = frozenset({"negative", "positive", "surprise", "others"})
# code sheet columns (no header row)
PARTICIPANT, VIDEO, ONSET, APEX, OFFSET, AUS, EMOTION, TYPE = range(8)


def _number(value: Any) -> int | None:
    text = cell_text(value)
    return int(text) if re.fullmatch(r"\d+", text) else None


def _data_rows(grid: Grid) -> list[tuple[int, list[Any]]]:
    """(row index, cells) of a sheet without header; a CSV copy's header row (text such as 'participant'
    or 'code' where the data has a number) is passed over. Blank rows keep their place (naming rule1 is
    row-aligned with the code sheet)."""
    rows = [(i, list(r)) for i, r in enumerate(grid.rows)]
    if rows and not is_blank(rows[0][1]) and _number(rows[0][1][0]) is None:
        rows = rows[1:]
    return rows


class CASMESqSource(LongVideoSource):
    dataset = "casme_sq"
    fps = 30.0
    sheet_patterns = (r"CAS\(?ME\)?\^?2?.*code.*\.xlsx", r".*code_?final.*\.csv")
    release_folders: ClassVar[dict[str, tuple[str, ...]]] = {"raw": ("rawpic",), "cropped": ("cropped",)}
    folder_regex = r"s\d+"

    def _sheets(self) -> tuple[Grid, Grid, Grid]:
        path = self.sheet_path()
        if path.suffix.lower() == ".csv":
            code = read_grids(path)[0]
            rules = []
            for number in ("1", "2"):
                pattern = re.compile(rf".*naming[ _-]*rule[ _-]*{number}.*\.csv", re.IGNORECASE)
                found = sorted(p for p in path.parent.iterdir() if p.is_file() and pattern.fullmatch(p.name))
                if len(found) != 1:
                    raise MERDataError(
                        f"a CSV copy of the CAS(ME)^2 code sheet needs exactly one *naming*rule*{number}*.csv beside "
                        f"it, found {len(found)} in {path.parent}"
                    )
                rules.append(read_grids(found[0])[0])
            return code, rules[0], rules[1]
        grids = read_grids(path)
        by_name = {sheet_key(g.name): g for g in grids}
        code = next((by_name[k] for k in CODE_SHEETS if k in by_name), None)
        rule1, rule2 = by_name.get(RULE1_SHEET), by_name.get(RULE2_SHEET)
        if code is None or rule1 is None or rule2 is None:
            if len(grids) < 3:
                names = ", ".join(repr(g.name) for g in grids)
                raise MERDataError(
                    "the CAS(ME)^2 workbook needs three sheets: CASFEcode_final (or CASMEcode_final), "
                    f"naming rule1 and naming rule2; it has {names}",
                    where=str(path),
                )
            code, rule1, rule2 = code or grids[0], rule1 or grids[1], rule2 or grids[2]
            self.notes.append(
                f"casme_sq: sheets taken by position in {path.name}: code {code.name!r}, naming rule1 {rule1.name!r}, "
                f"naming rule2 {rule2.name!r}."
            )
        return code, rule1, rule2

    def _codes(self, rule2: Grid) -> dict[str, str]:
        """Expression name (disgust1) -> four-digit code ('0101'), from 101 or '0101'."""
        codes: dict[str, str] = {}
        for index, row in _data_rows(rule2):
            if is_blank(row):
                continue
            code, name = cell_text(row[0] if row else None), cell_text(row[1] if len(row) > 1 else None)
            try:
                number = float(code)
            except ValueError:
                number = float("nan")
            if not (number == number and number.is_integer() and 0 < number < 10000) or not name:
                raise MERDataError(f"naming rule2 rows are (code, name), got ({code!r}, {name!r})", where=rule2.where(index))
            codes[name.lower()] = f"{int(number):04d}"
        return codes

    def _video_folder(self, subject_dir: Path, prefix: str, where: str, cache: dict[Path, list[str]]) -> Path:
        if subject_dir not in cache:
            cache[subject_dir] = sorted(p.name for p in subject_dir.iterdir() if p.is_dir()) if subject_dir.is_dir() else []
        if not subject_dir.is_dir():
            raise MERDataError(f"missing subject folder {subject_dir}", where=where)
        # 15_0101 must not match 15_01010...: the code is followed by the description (letters)
        matches = [n for n in cache[subject_dir] if re.fullmatch(re.escape(prefix) + r"(\D.*)?", n)]
        if len(matches) != 1:
            what = "no folder" if not matches else f"{len(matches)} folders ({', '.join(matches)})"
            raise MERDataError(f"missing frame folder: {what} named {prefix}<description> in {subject_dir}", where=where)
        return subject_dir / matches[0]

    def read(self) -> list:
        code_grid, rule1, rule2 = self._sheets()
        codes = self._codes(rule2)
        root, _ = self.frame_root()
        code_rows = _data_rows(code_grid)
        rule_rows = _data_rows(rule1)
        if not any(not is_blank(r) for _, r in code_rows):
            raise MERDataError("the CAS(ME)^2 code sheet holds no rows", where=code_grid.label)
        listing: dict[Path, list[str]] = {}
        folders: dict[tuple[str, str], Path | None] = {}
        entries = []
        for position, (index, row) in enumerate(code_rows):
            if is_blank(row):
                continue
            where = code_grid.where(index)
            video = cell_text(row[VIDEO] if len(row) > VIDEO else None)
            expression = video.rsplit("_", 1)[0] if "_" in video else video
            key: tuple[str, str] = ("?", video or "?")
            folder = None
            try:
                if not re.fullmatch(r"[A-Za-z]+\d*_\d+", video):
                    raise MERDataError(f"video must name an expression and an event such as anger1_1, got {video!r}", where=where)
                code = codes.get(expression.lower())
                if code is None:
                    raise MERDataError(
                        f"unknown expression {expression!r}: naming rule2 has no code for it "
                        f"(it names {', '.join(sorted(codes))})",
                        where=where,
                    )
                if position >= len(rule_rows):
                    raise MERDataError(f"naming rule1 has no row for this row (it has {len(rule_rows)} rows)", where=where)
                rule_index, rule = rule_rows[position]
                rule_where = rule1.where(rule_index)
                number = _number(rule[0] if rule else None)
                subject = cell_text(rule[1] if len(rule) > 1 else None) or (f"s{number}" if number is not None else "")
                if number is None or not re.fullmatch(r"s\d+", subject, re.IGNORECASE):
                    raise MERDataError(f"naming rule1 rows are (folder number, folder such as s15, participant), got {rule!r}",
                                       where=rule_where)
                key = (subject, f"{number}_{code}")
                participant = _number(row[PARTICIPANT] if row else None)
                rule_participant = _number(rule[2] if len(rule) > 2 else None)
                if participant is None:
                    raise MERDataError(f"participant must be a number, got {row[PARTICIPANT] if row else None!r}", where=where)
                if rule_participant is not None and rule_participant != participant:
                    raise MERDataError(
                        f"participant {participant} disagrees with naming rule1 ({rule_where}: participant "
                        f"{rule_participant}); the two sheets must be row-aligned",
                        where=where,
                    )
                emotion = cell_text(row[EMOTION] if len(row) > EMOTION else None)
                if emotion.lower() not in EMOTIONS:
                    raise MERDataError(f"unknown emotion {emotion!r} (known: {', '.join(sorted(EMOTIONS))})", where=where)
                event = make_event(
                    row[ONSET] if len(row) > ONSET else None,
                    row[APEX] if len(row) > APEX else None,
                    row[OFFSET] if len(row) > OFFSET else None,
                    event_type(row[TYPE] if len(row) > TYPE else None, where),
                    cell_text(row[AUS] if len(row) > AUS else None),
                    emotion,
                    where,
                    self.quirks,
                )
                if key not in folders:  # looked up once per video: a missing folder is one error, at its first row
                    try:
                        folders[key] = self._video_folder(root / subject, key[1], where, listing)
                    except MERDataError as exc:
                        folders[key] = None
                        raise exc
                folder = folders[key]
                item: Event | MERDataError = event
            except MERDataError as exc:
                item = exc
            entries.append((key, folder, item, where))
        return self.group(iter(entries))


class CASMESq(LongVideoBuilder):
    """CAS(ME)^2 long videos (spotting): 95 labelled videos of 22 subjects, 357 events (57 micro)."""

    SOURCE = CASMESqSource
    DESCRIPTION = DATASETS["casme_sq"].card_text  # the registry owns the texts
    CITATION = DATASETS["casme_sq"].citation
    HOMEPAGE = DATASETS["casme_sq"].homepage
    LICENSE = DATASETS["casme_sq"].license_text
