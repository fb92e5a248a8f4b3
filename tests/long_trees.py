"""Official-layout trees of the long-video datasets, built from their real annotation rows.

The rows are the published ground truth in tests/data/metadata (casme_sq_*.csv, samm_lv_codes.csv);
the sheets are written with openpyxl as distributed (CAS(ME)^2: three sheets, no header row; SAMM-LV:
nine note rows before the column row) and the frames are one tiny JPEG, hard-linked under every frame
name a test needs, so that a tree of every video is made in about a second.

frames="endpoints" writes, per video, frame 1, the last frame (20 after the last event) and each
event's onset, apex and offset: what the builder checks (a range is never enumerated), with gaps
elsewhere that the build notes report. frames="full" writes every frame 1..last of the chosen videos.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

METADATA = Path(__file__).resolve().parent / "data" / "metadata"
CASME_SQ_SUFFIXES = {
    "0101": "disgustingteeth", "0102": "eatingworms", "0401": "girlcrashing", "0402": "beatingpregnantwoman",
    "0502": "funnyerrors", "0503": "unnyfarting", "0505": "funnyinnovations", "0507": "climbingthewall",
    "0508": "funnydunkey",
}
SAMM_LV_NOTES = [
    ["SAMM Long Videos - FACS coding of movements"],
    ["Symbol key"],
    ["L = Left, R = Right, A-E = intensity"],
    ["AU help"],
    [None],
    ["Onset, Apex and Offset are frame numbers"],
    [None],
    ["Subjects with Apex Frame not annotated were labelled as -1"],
    [None],
]
TAIL = 20  # frames after a video's last event


def _csv(name: str) -> list[dict[str, str]]:
    with open(METADATA / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _num(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def build(cls, data_dir: Path, cache: Path, **options):
    """The `train` split of long-video builder `cls` on `data_dir`; the MERDataError the generator raised
    comes out as itself (datasets wraps it)."""
    from dataset_scripts._records import MERDataError

    builder = cls(data_dir=str(data_dir), cache_dir=str(cache), **options)
    try:
        builder.download_and_prepare()
    except Exception as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, MERDataError) else None
        if cause is not None:
            raise cause from None
        raise
    return builder.as_dataset(split="train")


def casme_sq_rows() -> list[list[Any]]:
    """The code sheet's rows: participant, video, onset, apex, offset, AUs, emotion, type, self report."""
    rows = []
    for r in _csv("casme_sq_code_final.csv"):
        aus = int(r["action_units"]) if r["action_units"].isdigit() else r["action_units"]  # Excel stores 38 as a number
        rows.append([int(r["participant"]), r["video"], int(r["onset"]), int(r["apex"]), int(r["offset"]), aus,
                     r["emotion"], r["type"], r["self_report"]])
    return rows


def casme_sq_rule1() -> list[list[Any]]:
    return [[int(r["folder_number"]), r["folder"], int(r["participant"])] for r in _csv("casme_sq_naming_rule1.csv")]


def casme_sq_rule2() -> list[list[str]]:
    return [[r["code"], r["name"]] for r in _csv("casme_sq_naming_rule2.csv")]


def samm_lv_rows() -> tuple[list[str], list[list[Any]]]:
    """The column row and the rows of FACS_Movement_Only (numbers as numbers, Subject as '006')."""
    with open(METADATA / "samm_lv_codes.csv", newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = []
        for r in reader:
            rows.append([r[0], r[1], int(r[2]), *(_num(x) for x in r[3:7]), r[7], r[8], r[9] or None])
    return header, rows


def tiny_jpeg(value: int = 128) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _write_frames(folder: Path, names: list[str], data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / names[0]
    source.write_bytes(data)
    for name in names[1:]:
        try:
            os.link(source, folder / name)
        except OSError:  # a file system without hard links (or at the link limit): copy
            (folder / name).write_bytes(data)


def _half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _needed(events: list[tuple[float, float, float]], frames: str) -> list[int]:
    """Frame numbers to write for a video whose events are (onset, apex, offset) as in the sheet."""
    ends = []
    for onset, apex, offset in events:
        onset, apex, offset = _half_up(onset), _half_up(apex), _half_up(offset)
        offset = offset if offset > 0 else apex
        ends.append((max(onset, 1), apex, offset))
    last = max(max(e) for e in ends) + TAIL
    if frames == "full":
        return list(range(1, last + 1))
    wanted = {1, last}
    for onset, apex, offset in ends:
        wanted.update(x for x in (onset, apex, offset) if x >= 1)
    return sorted(wanted)


def write_casme_sq_tree(
    root: Path,
    *,
    rows: list[list[Any]] | None = None,
    rule1: list[list[Any]] | None = None,
    rule2: list[list[Any]] | None = None,
    frames: str = "endpoints",
    videos: set[tuple[str, str]] | None = None,
    pad: int = 0,
    release: str = "rawpic",
    code_sheet: str = "CASFEcode_final",
    codes_as_text: bool = False,
    as_csv: bool = False,
) -> Path:
    """A CAS(ME)^2 copy: `CAS(ME)^2code_final.xlsx` (or CSV copies with a header row) and frame folders
    `rawpic/s15/15_0101disgustingteeth/img1.jpg` (`pad=3`: img001.jpg) for the videos in `videos`
    ((subject folder, video_id) such as ("s15", "15_0101"); None: every video of the rows)."""
    rows = casme_sq_rows() if rows is None else rows
    rule1 = casme_sq_rule1() if rule1 is None else rule1
    rule2 = casme_sq_rule2() if rule2 is None else rule2
    root.mkdir(parents=True, exist_ok=True)
    sheet_rule2 = [[code if codes_as_text else int(code), name] for code, name in rule2]
    if as_csv:
        for name, header, data in (
            ("casme_sq_code_final.csv",
             ["participant", "video", "onset", "apex", "offset", "action_units", "emotion", "type", "self_report"], rows),
            ("casme_sq_naming_rule1.csv", ["folder_number", "folder", "participant"], rule1),
            ("casme_sq_naming_rule2.csv", ["code", "name"], rule2),
        ):
            with open(root / name, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(data)
    else:
        import openpyxl

        book = openpyxl.Workbook()
        book.active.title = code_sheet
        for row in rows:
            book.active.append(row)
        for title, data in (("naming rule1", rule1), ("naming rule2", sheet_rule2)):
            sheet = book.create_sheet(title)
            for row in data:
                sheet.append(row)
        if codes_as_text:  # '0101' stored as text, as some copies do
            for row_cells in book["naming rule2"].iter_rows(min_col=1, max_col=1):
                row_cells[0].number_format = "@"
        book.save(root / "CAS(ME)^2code_final.xlsx")
    codes = {name: str(code).zfill(4) for code, name in rule2}
    by_video: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for row, rule in zip(rows, rule1):
        expression = str(row[1]).rsplit("_", 1)[0]
        if expression not in codes:
            continue
        key = (str(rule[1]), f"{rule[0]}_{codes[expression]}")
        try:
            by_video.setdefault(key, []).append((float(row[2]), float(row[3]), float(row[4])))
        except (TypeError, ValueError):
            continue
    data = tiny_jpeg()
    for (subject, video_id), events in by_video.items():
        if videos is not None and (subject, video_id) not in videos:
            continue
        code = video_id.split("_", 1)[1]
        folder = root / release / subject / f"{video_id}{CASME_SQ_SUFFIXES[code]}"
        numbers = [n for n in _needed(events, frames) if n < 10**6]
        _write_frames(folder, [f"img{n:0{pad}d}.jpg" for n in numbers], data)
    return root


def write_samm_lv_tree(
    root: Path,
    *,
    rows: list[list[Any]] | None = None,
    frames: str = "endpoints",
    videos: set[str] | None = None,
    sheet_name: str = "SAMM_LongVideos_V3_Release.xlsx",
    notes: bool = True,
    as_csv: bool = False,
) -> Path:
    """A SAMM-LV copy: the release workbook (sheet FACS_Movement_Only, nine note rows, column row in
    Excel row 10) or a CSV copy, and `SAMM_longvideos/006_1/006_1_0001.jpg` for the videos in `videos`
    (None: all)."""
    header, default_rows = samm_lv_rows()
    rows = default_rows if rows is None else rows
    root.mkdir(parents=True, exist_ok=True)
    grid = [*(SAMM_LV_NOTES if notes else []), header, *rows]
    if as_csv:
        with open(root / "SAMM_LongVideos_V3_Release.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(grid)
    else:
        import openpyxl

        book = openpyxl.Workbook()
        book.active.title = "FACS_Movement_Only"
        for row in grid:
            book.active.append(row)
        book.save(root / sheet_name)
    by_video: dict[str, list[tuple[float, float, float]]] = {}
    for row in rows:
        try:
            by_video.setdefault(str(row[1]).rsplit("_", 1)[0], []).append((float(row[3]), float(row[4]), float(row[5])))
        except (TypeError, ValueError):
            continue
    data = tiny_jpeg(90)
    for video, events in by_video.items():
        if videos is not None and video not in videos:
            continue
        numbers = [n for n in _needed(events, frames) if n < 10**6]
        _write_frames(root / "SAMM_longvideos" / video, [f"{video}_{n:04d}.jpg" for n in numbers], data)
    return root


# -- CAS(ME)^3 Part A ------------------------------------------------------------------------------
# No real CAS(ME)^3 annotation rows are available to this project: these rows are MADE UP, in the format
# documented in tests/data/metadata/README.md ("Long videos": header Subject, Filename, Onset, Apex, Offset,
# AU, Objective class, emotion, Expression type; frames part_A/data/part_A/spNO.1/a/color/<n>.jpg, unpadded
# numbers that may start above 1 and have gaps, depth/<n>.png beside color/). They test the reader, not
# the dataset's figures.
CASME3_A_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion", "Expression type"]
CASME3_A_ROWS: list[list[Any]] = [
    ["spNO.1", "a", 130, 136, 142, "4+7", 1, "disgust", "Micro-expression"],
    ["spNO.1", "a", 200, 215, 245, "6+12", 2, "happy", "Macro-expression"],
    ["spNO.1", "b", 140, 146, 152, "1+2", 3, "surprise", "Micro-expression"],
    ["spNO.2", "a", 160, 166, 171, "4", 4, "anger", "Micro-expression"],
    ["spNO.2", "a", 112, 125, 150, "12", 2, "happy", "Macro-expression"],
    ["spNO.3", "c", 150, 158, 163, "L12", 5, "others", "Micro-expression"],
]
CASME3_A_FIRST = 101  # the first frame number of every generated video (numbers start above 1)
CASME3_A_GAPS = (120, 121, 122, 210)  # frame numbers missing from every video (210 lies inside a macro event)


def casme3_a_videos(rows: list[list[Any]]) -> dict[tuple[str, str], list[tuple[int, int, int]]]:
    """(subject folder, video folder) -> events (onset, apex, offset) of rows whose cells are well formed."""
    out: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for row in rows:
        try:
            number = int(str(row[0]).lower().replace("spno.", "").replace("spno", ""))
            event = (int(row[2]), int(row[3]), int(row[4]))
        except (TypeError, ValueError):
            continue
        out.setdefault((f"spNO.{number}", str(row[1])), []).append(event)
    return out


def write_casme3_a_tree(
    root: Path,
    *,
    rows: list[list[Any]] | None = None,
    header: list[str] | None = None,
    sheet_format: str = "xls",
    title_rows: int = 0,
    videos: set[tuple[str, str]] | None = None,
    first: int = CASME3_A_FIRST,
    gaps: tuple[int, ...] = CASME3_A_GAPS,
    last: dict[tuple[str, str], int] | None = None,
    depth: bool = True,
) -> Path:
    """A CAS(ME)^3 Part A copy below `root`: `part_A/data/part_A/spNO.1/a/color/<n>.jpg` (numbers `first` ..
    TAIL after the video's last event, without `gaps`), `depth/<n>.png` beside it, and the sheet
    `part_A/CAS(ME)3_part_A_v2.xls` written with xlwt (sheet_format "xlsx": openpyxl; "csv"; "xlsx_named_xls":
    an .xlsx workbook saved under the .xls name), `title_rows` blank-titled rows above the column row.
    `videos`: the (subject folder, video folder) pairs to write frames for (None: every video of the rows);
    `last`: a video's last frame number where it is not TAIL frames after its last event."""
    rows = CASME3_A_ROWS if rows is None else rows
    header = CASME3_A_HEADER if header is None else header
    grid = [*([f"CAS(ME)^3 part A, title row {k + 1}"] for k in range(title_rows)), header, *rows]
    sheets = root / "part_A"
    sheets.mkdir(parents=True, exist_ok=True)
    name = "CAS(ME)3_part_A_v2"
    if sheet_format == "xls":
        import xlwt

        book = xlwt.Workbook()
        sheet = book.add_sheet("Sheet1")
        for r, row in enumerate(grid):
            for c, value in enumerate(row):
                if value is not None:
                    sheet.write(r, c, value)
        book.save(str(sheets / f"{name}.xls"))
    elif sheet_format in ("xlsx", "xlsx_named_xls"):
        import openpyxl

        book = openpyxl.Workbook()
        for row in grid:
            book.active.append(row)
        book.save(sheets / f"{name}.{'xlsx' if sheet_format == 'xlsx' else 'xls'}")
    elif sheet_format == "csv":
        with open(sheets / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(grid)
    else:
        raise ValueError(f"sheet_format {sheet_format!r}")
    color, png = tiny_jpeg(100), _tiny_png()
    for (subject, video), events in casme3_a_videos(rows).items():
        if videos is not None and (subject, video) not in videos:
            continue
        end = (last or {}).get((subject, video), max(max(e) for e in events) + TAIL)
        numbers = [n for n in range(first, end + 1) if n not in gaps]
        folder = sheets / "data" / "part_A" / subject / video
        _write_frames(folder / "color", [f"{n}.jpg" for n in numbers], color)
        if depth:
            _write_frames(folder / "depth", [f"{n}.png" for n in numbers], png)
    return root


def _tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), 7, np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()
