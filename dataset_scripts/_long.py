"""What the long-video (spotting) builders share: one example per long video, with its events.

CAS(ME)^2 (`casme_sq.py`) and SAMM Long Videos (`samm_lv.py`) are read like the clip datasets (the same
`MERDataError`, `BadClip` skip records, skip report and cache key of `_builder`), but one example is a
whole recording: its frame files in order (paths only: a long video is never decoded at build time, its
folder is listed once) and every annotated event in it (CONTRACTS §4):

    dataset, subject, video_id, fps, num_frames, frames (paths), frame_numbers,
    events: [{onset, apex (-1 = not annotated), offset, type ("micro"/"macro"), action_units, emotion}]

A dataset may add event fields of its own (`LongVideoBuilder.EVENT_EXTRAS`, strings, "" when its sheet has
no such column): CAS(ME)^3 Part A's events carry `objective_class`.

The quirks of the distributed sheets are resolved here, the same way for both datasets:

* fractional frame numbers (SAMM-LV, 566.4) are rounded half up (566.5 -> 567);
* apex 0 or -1 means "not annotated" and becomes -1; an apex outside [onset, offset] (three CAS(ME)^2
  rows have it one to six frames after the offset) is kept out too (-1) and named in the build notes;
* offset 0 (44 CAS(ME)^2 macro rows: "not annotated") becomes the apex, as the MEGC ground-truth code
  does ("take apex if offset is 0": the event is onset..apex); with no apex either the row is bad;
* onset 0 (10 SAMM-LV macro rows, expressions already under way when the recording starts) becomes the
  video's first frame. MEGC's public spotting code drops these 10 rows from its ground truth ("ignore
  the samples that is extremely long"); they are kept here (the frames are expressive, and a spotter
  trained with them as background would learn the wrong thing) and counted in the notes;
* a Duration column is checked against Offset - Onset + 1 (on the values as written);
* events are sorted by onset (the sheets are not).

A frame range is checked against the frames on disk without enumerating it (an offset of 10**9 costs
nothing): it must lie within the first and last frame of the folder, and its onset, offset and apex
frames must exist. Frames missing elsewhere (gaps in the numbering) are allowed, since `frame_numbers`
carries them, and counted in the build notes, those inside events separately.
"""

from __future__ import annotations

import bisect
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import datasets

from modeling_mer.video_io import list_frame_folder

from ._builder import BuildPlan, MERBuilder, MERBuilderConfig
from ._layout import find_frame_root, find_sheet
from ._records import BadClip, MERDataError
from ._sheets import HEADER_SEARCH_ROWS, _normalise_header, cell_text
from ._skips import build_description, format_skip_report

logger = datasets.logging.get_logger(__name__)

EVENT_TYPES = ("micro", "macro")
INT32_MAX = 2**31 - 1
NOT_ANNOTATED = -1
DURATION_TOLERANCE = 0.01  # frames: Excel hands over 177.79999999999998 for 177.8


def long_features(event_extras: Sequence[str] = ()) -> datasets.Features:
    """The columns of one long video (CONTRACTS §4), events with the dataset's own extra string fields."""
    event = {
        "onset": datasets.Value("int32"),
        "apex": datasets.Value("int32"),
        "offset": datasets.Value("int32"),
        "type": datasets.Value("string"),
        "action_units": datasets.Value("string"),
        "emotion": datasets.Value("string"),
        **{name: datasets.Value("string") for name in event_extras},
    }
    return datasets.Features(
        {
            "dataset": datasets.Value("string"),
            "subject": datasets.Value("string"),
            "video_id": datasets.Value("string"),
            "fps": datasets.Value("float32"),
            "num_frames": datasets.Value("int32"),
            "frames": datasets.List(datasets.Value("string")),
            "frame_numbers": datasets.List(datasets.Value("int32")),
            "events": datasets.List(event),
        }
    )


# -- sheets ---------------------------------------------------------------------------------------


@dataclass
class Grid:
    """One worksheet (or a CSV file) as rows of cells; `label` names it in messages ('file sheet X')."""

    name: str
    rows: list[Sequence[Any]]
    label: str

    def where(self, index: int) -> str:
        """'<file> [sheet S] row N' for the 0-based row `index` (N is the spreadsheet's 1-based row)."""
        return f"{self.label} row {index + 1}"


OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a legacy Excel (.xls, BIFF) workbook
ZIP_MAGIC = b"PK\x03\x04"  # an .xlsx workbook


def _read_xls(path: Path) -> list[Grid]:
    """Every visible worksheet of a legacy .xls workbook (xlrd); error cells as their text ('#N/A')."""
    try:
        import xlrd
    except ImportError as exc:
        raise MERDataError("reading an .xls workbook needs xlrd: pip install xlrd", where=str(path)) from exc
    book = xlrd.open_workbook(str(path), on_demand=True)
    try:
        grids = []
        for index in range(book.nsheets):
            sheet = book.sheet_by_index(index)
            if sheet.visibility != 0:  # 1 hidden, 2 very hidden
                continue
            rows = []
            for r in range(sheet.nrows):
                values, types = sheet.row_values(r), sheet.row_types(r)
                rows.append([xlrd.error_text_from_code.get(v, "#ERROR") if t == xlrd.XL_CELL_ERROR else v
                             for v, t in zip(values, types)])
            grids.append(Grid(sheet.name, rows, f"{path} sheet {sheet.name!r}"))
        return grids
    finally:
        book.release_resources()


def read_grids(path: Path) -> list[Grid]:
    """Every visible worksheet of an .xlsx or .xls, by name, or the single grid of a .csv (named after the file).

    A workbook is read by what it holds, not by its suffix: an .xls that is really an .xlsx (renamed when
    converted), or the other way round, reads all the same.
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".xls", ".xlsx", ".xlsm"):
            with open(path, "rb") as handle:
                magic = handle.read(8)
            if magic == OLE2_MAGIC or (suffix == ".xls" and not magic.startswith(ZIP_MAGIC)):
                return _read_xls(path)
            import openpyxl

            # openpyxl refuses the .xls suffix whatever the content: an .xlsx renamed .xls is handed over as bytes
            source = io.BytesIO(path.read_bytes()) if suffix == ".xls" else path
            book = openpyxl.load_workbook(source, read_only=True, data_only=True)
            try:
                return [
                    Grid(sheet.title, list(sheet.iter_rows(values_only=True)), f"{path} sheet {sheet.title!r}")
                    for sheet in book.worksheets
                    if getattr(sheet, "sheet_state", "visible") == "visible"
                ]
            finally:
                book.close()
        if suffix == ".csv":
            import csv

            with open(path, newline="", encoding="utf-8-sig") as handle:
                return [Grid(path.stem, list(csv.reader(handle)), str(path))]
    except MERDataError:
        raise
    except Exception as exc:  # openpyxl/xlrd/csv raise many types for a damaged file; name the file
        raise MERDataError(f"cannot read the sheet ({type(exc).__name__}: {exc})", where=str(path)) from exc
    raise MERDataError(f"unsupported sheet format {suffix!r}; expected .xlsx, .xls or .csv", where=str(path))


def sheet_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_blank(row: Sequence[Any]) -> bool:
    return all(cell is None or str(cell).strip() == "" for cell in row)


def find_columns(
    grid: Grid, aliases: dict[str, tuple[str, ...]], required: Sequence[str]
) -> tuple[int, dict[str, int]] | None:
    """(index of the column row, canonical name -> column) of the first row naming every required column."""
    for index, row in enumerate(grid.rows[:HEADER_SEARCH_ROWS]):
        names = [_normalise_header(cell) for cell in row]
        columns = {}
        for canonical, spellings in aliases.items():
            for spelling in spellings:
                if spelling in names:
                    columns[canonical] = names.index(spelling)
                    break
        if all(name in columns for name in required):
            return index, columns
    return None


def cell(row: Sequence[Any], column: int | None) -> Any:
    return row[column] if column is not None and column < len(row) else None


# -- frame numbers --------------------------------------------------------------------------------


def round_half_up(number: float) -> int:
    """566.4 -> 566, 566.5 -> 567 (Python's round() would give 566 for 566.5: banker's rounding)."""
    return math.floor(number + 0.5)


def frame_value(value: Any, column: str, where: str) -> float:
    """A frame cell as a number (fractional allowed), or a one-line error naming the row."""
    if isinstance(value, bool):
        value = None
    text = "" if value is None else str(value).strip()
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not math.isfinite(number):
        raise MERDataError(f"{column} must be a frame number, got {value!r}", where=where)
    if number < 0 and number != -1:
        raise MERDataError(f"{column} must be a frame number (or -1: not annotated), got {value!r}", where=where)
    if number > INT32_MAX:
        raise MERDataError(f"{column} {value!r} is beyond any frame of a video", where=where)
    return number


# -- events and videos ----------------------------------------------------------------------------


@dataclass
class Event:
    """One annotated event as the sheet gives it, quirks resolved (see the module docstring).

    `onset` is 0 when the sheet's onset is 0 (the example makes it the video's first frame).
    """

    onset: int
    apex: int
    offset: int
    type: str
    action_units: str
    emotion: str
    where: str
    extras: dict[str, str] = field(default_factory=dict)  # the dataset's own fields (EVENT_EXTRAS)

    def as_feature(self, first_frame: int) -> dict[str, Any]:
        onset = self.onset if self.onset > 0 else first_frame
        apex = self.apex if self.apex == NOT_ANNOTATED or onset <= self.apex <= self.offset else NOT_ANNOTATED
        return {
            "onset": onset,
            "apex": apex,
            "offset": self.offset,
            "type": self.type,
            "action_units": self.action_units,
            "emotion": self.emotion,
            **self.extras,
        }


@dataclass
class QuirkCounts:
    """How many rows each quirk touched, for the build notes (nothing is changed silently)."""

    fractional: int = 0
    apex_missing: int = 0
    apex_outside: list[str] = field(default_factory=list)
    offset_missing: int = 0
    onset_zero: int = 0

    def notes(self, dataset: str) -> list[str]:
        notes = []
        if self.fractional:
            notes.append(f"{dataset}: {self.fractional} row(s) give fractional frame numbers, rounded half up.")
        if self.apex_missing:
            notes.append(f"{dataset}: {self.apex_missing} event(s) have no annotated apex (0 or -1 in the sheet): apex -1.")
        if self.apex_outside:
            shown = "; ".join(self.apex_outside[:5]) + (" ..." if len(self.apex_outside) > 5 else "")
            notes.append(
                f"{dataset}: {len(self.apex_outside)} event(s) give an apex outside [onset, offset]; their apex "
                f"is treated as not annotated (-1) and their interval kept as written: {shown}."
            )
        if self.offset_missing:
            notes.append(
                f"{dataset}: {self.offset_missing} event(s) have offset 0 (not annotated); their offset is their "
                "apex, as in the MEGC ground-truth code."
            )
        if self.onset_zero:
            notes.append(
                f"{dataset}: {self.onset_zero} event(s) have onset 0 (under way when the recording starts); their "
                "onset is the video's first frame (MEGC's public evaluation code leaves these rows out)."
            )
        return notes


def event_type(value: Any, where: str) -> str:
    """'micro-expression', 'Micro - 1/2', 'micro' -> 'micro'; 'macro-expression', 'Macro' -> 'macro'."""
    text = cell_text(value).lower()
    for kind in EVENT_TYPES:
        if text.startswith(kind):
            return kind
    raise MERDataError(f"unknown expression type {value!r} (expected micro-... or macro-...)", where=where)


def make_event(
    onset_cell: Any,
    apex_cell: Any,
    offset_cell: Any,
    kind: str,
    action_units: str,
    emotion: str,
    where: str,
    quirks: QuirkCounts,
    duration_cell: Any = None,
    extras: dict[str, str] | None = None,
) -> Event:
    """An event from its sheet cells, every quirk resolved or a one-line error naming `where`."""
    onset_raw = frame_value(onset_cell, "onset", where)
    apex_raw = frame_value(apex_cell, "apex", where)
    offset_raw = frame_value(offset_cell, "offset", where)
    if onset_raw == -1 or offset_raw == -1:
        raise MERDataError(f"onset and offset must be frame numbers, got {onset_cell!r} and {offset_cell!r}", where=where)
    if duration_cell is not None and cell_text(duration_cell) != "":
        duration = frame_value(duration_cell, "Duration", where)
        expected = offset_raw - onset_raw + 1
        if abs(duration - expected) > DURATION_TOLERANCE:
            raise MERDataError(
                f"Duration {cell_text(duration_cell)} disagrees with Offset - Onset + 1 = {expected:g}", where=where
            )
    if any(not float(x).is_integer() for x in (onset_raw, apex_raw, offset_raw)):
        quirks.fractional += 1
    onset, apex, offset = (round_half_up(x) for x in (onset_raw, apex_raw, offset_raw))
    if apex <= 0:
        apex = NOT_ANNOTATED
        quirks.apex_missing += 1
    if offset == 0:
        if apex == NOT_ANNOTATED:
            raise MERDataError("offset is 0 (not annotated) and there is no apex to end the event at", where=where)
        offset = apex
        quirks.offset_missing += 1
    if onset == 0:
        quirks.onset_zero += 1
    if onset > offset:
        raise MERDataError(f"onset {onset} is after offset {offset}", where=where)
    if apex != NOT_ANNOTATED and (apex > offset or (onset > 0 and apex < onset)):  # onset 0: checked at the video
        quirks.apex_outside.append(f"{where} (onset {onset}, apex {apex}, offset {offset})")
        apex = NOT_ANNOTATED
    return Event(onset, apex, offset, kind, action_units, emotion, where, dict(extras or {}))


@dataclass
class LongVideoSpec:
    """One long video before its folder is listed: where its frames are and its events."""

    dataset: str
    subject: str
    video_id: str
    folder: Path
    fps: float
    events: list[Event]
    where: str  # the sheet row of its first event

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.video_id}"


@dataclass
class FrameGaps:
    """Frames missing from folders (a gap in the numbering), for the build notes."""

    videos: int = 0
    missing: int = 0
    inside_events: int = 0
    examples: list[str] = field(default_factory=list)

    def notes(self, dataset: str) -> list[str]:
        if not self.videos:
            return []
        return [
            f"{dataset}: {self.videos} video folder(s) have gaps in their frame numbering ({self.missing} frame(s) "
            f"missing, {self.inside_events} of them inside annotated events; frame_numbers shows where): "
            + "; ".join(self.examples[:5]) + (" ..." if len(self.examples) > 5 else "")
        ]


def make_long_example(spec: LongVideoSpec, gaps: FrameGaps | None = None) -> dict[str, Any]:
    """List the video's folder once and check every event against it; frames stay paths (never decoded)."""
    if not spec.folder.is_dir():
        raise MERDataError(f"missing frame folder {spec.folder}", where=spec.where)
    try:
        files, numbers = list_frame_folder(spec.folder)
    except (ValueError, OSError) as exc:
        raise MERDataError(str(exc), where=spec.where) from exc
    first, last = numbers[0], numbers[-1]
    present = set(numbers)
    events = []
    for event in spec.events:
        row = event.as_feature(first)
        if row["onset"] < first or row["offset"] > last:
            raise MERDataError(
                f"event frames {row['onset']}..{row['offset']} lie outside the frames on disk "
                f"({first}..{last} in {spec.folder})",
                where=event.where,
            )
        for name in ("onset", "apex", "offset"):
            if row[name] != NOT_ANNOTATED and row[name] not in present:
                raise MERDataError(f"{name} frame {row[name]} is missing from {spec.folder}", where=event.where)
        events.append(row)
    events.sort(key=lambda e: (e["onset"], e["offset"], e["type"]))
    missing = (last - first + 1) - len(numbers)
    if missing and gaps is not None:
        gaps.videos += 1
        gaps.missing += missing
        for e in events:  # frames present within [onset, offset] by bisection: never enumerates the range
            inside = bisect.bisect_right(numbers, e["offset"]) - bisect.bisect_left(numbers, e["onset"])
            gaps.inside_events += (e["offset"] - e["onset"] + 1) - inside
        gaps.examples.append(f"{spec.video_id}: {missing} of {first}..{last}")  # folder names repeat (color/)
    return {
        "dataset": spec.dataset,
        "subject": spec.subject,
        "video_id": spec.video_id,
        "fps": spec.fps,
        "num_frames": len(files),
        "frames": [str(p) for p in files],
        "frame_numbers": numbers,
        "events": events,
    }


# -- sources and the builder ----------------------------------------------------------------------


class LongVideoSource:
    """Reads one long-video dataset below `data_dir` into LongVideoSpecs and BadClips (one per bad video)."""

    dataset: ClassVar[str]
    fps: ClassVar[float]
    sheet_patterns: ClassVar[tuple[str, ...]]
    release_folders: ClassVar[dict[str, tuple[str, ...]]]
    folder_regex: ClassVar[str]  # the names of the folders directly below the frame root

    def __init__(self, data_dir: str | Path, release: str = "auto", sheet: str | None = None):
        self.data_dir = Path(data_dir).expanduser()
        if not self.data_dir.is_dir():
            raise MERDataError(f"{self.dataset} data_dir {self.data_dir} is not a folder")
        self.release = release
        self.sheet = sheet
        self.notes: list[str] = []
        self.quirks = QuirkCounts()

    def frame_root(self) -> tuple[Path, str]:
        if not hasattr(self, "_root"):
            self._root = find_frame_root(self.data_dir, self.release, self.release_folders, self.folder_regex, self.dataset)
        return self._root

    def sheet_path(self) -> Path:
        return find_sheet(self.data_dir, self.sheet_patterns, self.dataset, self.sheet)

    def read(self) -> list[LongVideoSpec | BadClip]:
        """Every video of the sheet, in sheet order of first appearance."""
        raise NotImplementedError

    def group(
        self, rows: Iterator[tuple[tuple[str, str], Path | None, Event | MERDataError, str]]
    ) -> list[LongVideoSpec | BadClip]:
        """Rows -> one entry per video; a video with a bad row is one BadClip naming that row (and how many
        more are bad): its other events alone would teach a spotter that the bad row's expression is
        background."""
        order: list[tuple[str, str]] = []
        events: dict[tuple[str, str], list[Event]] = {}
        errors: dict[tuple[str, str], list[MERDataError]] = {}
        folders: dict[tuple[str, str], Path | None] = {}
        firsts: dict[tuple[str, str], str] = {}
        for key, folder, item, where in rows:
            if key not in firsts:
                order.append(key)
                firsts[key] = where
                events[key], errors[key] = [], []
            if folders.get(key) is None:
                folders[key] = folder
            if isinstance(item, MERDataError):
                errors[key].append(item)
            else:
                events[key].append(item)
        out: list[LongVideoSpec | BadClip] = []
        for key in order:
            subject, video = key
            if errors[key]:
                first = errors[key][0]
                more = len(errors[key]) - 1
                reason = first.reason + (f" (and {more} more bad row(s) in this video)" if more else "")
                out.append(BadClip(self.dataset, subject, video, first.where or firsts[key], reason))
            elif folders[key] is None:  # the source could not name a folder: it said why in an error
                raise AssertionError(f"{self.dataset} {subject}/{video}: no folder and no error")
            else:
                out.append(LongVideoSpec(self.dataset, subject, video, folders[key], self.fps, events[key], firsts[key]))
        return out


@dataclass
class LongBuilderConfig(MERBuilderConfig):
    """The options of the long-video builders: on_error, release, sheet (lazy and spot_apex have no
    effect: frames are always stored as paths, and an unannotated apex stays -1)."""


class LongVideoBuilder(MERBuilder):
    """Base of the long-video builders: the clip builders' options, cache key and skip rules, one
    example per video (`long_features`). The only class set is "all" (events keep the sheet's words)."""

    BUILDER_CONFIG_CLASS = LongBuilderConfig
    BUILDER_CONFIGS: ClassVar[list[LongBuilderConfig]] = [
        LongBuilderConfig(name="all", class_set="all", description="every annotated event, as written")
    ]
    DEFAULT_CONFIG_NAME = "all"
    DEFAULT_CLASS_SET = "all"
    CLASS_SET_LABELS: ClassVar[dict[str, list[str]]] = {}
    SOURCE: ClassVar[type[LongVideoSource]]
    EVENT_EXTRAS: ClassVar[tuple[str, ...]] = ()  # event fields of this dataset beyond CONTRACTS §4 (strings)

    def _validate_options(self) -> None:
        if self.config.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be one of ('raise', 'skip'), got {self.config.on_error!r}")
        if self.class_set != "all":
            raise ValueError(f"{self.name}: a long-video set has one class set, 'all' (got {self.class_set!r})")
        if self.config.data_dir is None:
            raise ValueError(
                f"{self.name} needs data_dir=<the folder you unpacked>: the dataset is licensed and is never downloaded"
            )

    def label_names(self) -> list[str]:
        return []

    def source(self) -> LongVideoSource:
        if getattr(self, "_mer_source", None) is None:
            self._validate_options()
            self._mer_source = self.SOURCE(self.config.data_dir, release=self.config.release, sheet=self.config.sheet)
        return self._mer_source

    def plan(self) -> BuildPlan:
        if getattr(self, "_mer_plan", None) is None:
            source = self.source()
            plan = BuildPlan()
            for entry in source.read():
                if isinstance(entry, BadClip):
                    plan.bad.append(entry)
                else:
                    plan.clips.append((entry, ""))
            plan.notes.append(f"Frames from the {source.frame_root()[1]} release ({source.frame_root()[0]}).")
            plan.notes += source.notes
            plan.notes += source.quirks.notes(self.name)
            self._mer_plan = plan
        return self._mer_plan

    def _info(self) -> datasets.DatasetInfo:
        self._validate_options()
        return datasets.DatasetInfo(
            description=self.DESCRIPTION,
            features=long_features(self.EVENT_EXTRAS),
            citation=self.CITATION,
            homepage=self.HOMEPAGE,
            license=self.LICENSE,
        )

    def _generate_examples(self) -> Iterator[tuple[int, dict[str, Any]]]:
        plan = self.plan()
        skip = self.config.on_error == "skip"
        skipped: list[BadClip] = []
        for bad in plan.bad:
            if not skip:
                raise bad.error()
            skipped.append(bad)
        gaps = FrameGaps()
        key = 0
        for spec, _ in plan.clips:
            try:
                example = make_long_example(spec, gaps)
            except MERDataError as exc:
                if not skip:
                    raise
                where = exc.where or spec.where  # the event's row when one event is at fault
                skipped.append(BadClip.from_error(spec.dataset, spec.subject, spec.video_id, where, exc))
                continue
            yield key, example
            key += 1
        if key == 0:
            raise MERDataError(f"{self.name}: no usable video ({len(skipped)} skipped); nothing to build")
        self.info.description = build_description(self.DESCRIPTION, plan.notes + gaps.notes(self.name), skipped)
        if skipped:
            logger.info(format_skip_report(skipped))
