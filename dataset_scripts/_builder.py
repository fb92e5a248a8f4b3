"""Machinery shared by the real-dataset builders (CASME II, SAMM, SMIC-HS, MEGC2019 composite).

The datasets arrive as folders the user unpacked by hand, with coding sheets in slightly different
shapes. Everything that is the same across them lives here, so that each dataset module only says how its
sheet and folders are named:

* reading a coding sheet (.xlsx as distributed, or .csv) and locating its column row wherever it is;
* finding the sheet and the frame folders below the folder the user pointed at;
* listing a clip's frames in frame order (numeric, never lexicographic);
* turning one clip into an example, with a clear error naming the file and sheet row when input is bad;
* the builder base class, which owns `on_error` ("raise" or "skip") and the skip report.

The skip report is kept on the built dataset itself: `dataset.info.description` ends with a line
`skipped_clips_json: [...]` (read it back with `skipped_clips(dataset)`), so it survives the Arrow cache
and is there again when a second call reuses the cache.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import datasets
import numpy as np
from PIL import Image

from .common import mer_features

logger = datasets.logging.get_logger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
ON_ERROR_CHOICES = ("raise", "skip")
RELEASE_CHOICES = ("auto", "raw", "cropped")
SKIP_MARKER = "skipped_clips_json: "
HEADER_SEARCH_ROWS = 40
SEARCH_DEPTH = 3

# Canonical column -> accepted spellings after normalisation (lower case, letters and digits only).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "subject": ("subject", "sub"),
    "filename": ("filename", "clip", "clipname"),
    "onset": ("onsetframe", "onset"),
    "apex": ("apexframe", "apex"),
    "offset": ("offsetframe", "offset"),
    "action_units": ("actionunits", "aus", "au"),
    "emotion": ("estimatedemotion", "emotion"),
}
REQUIRED_COLUMNS = ("subject", "filename", "onset", "apex", "offset", "emotion")
MISSING_APEX_CELLS = frozenset({"/", "", "-", "nan", "none"})


class MERDataError(ValueError):
    """Bad input on disk; the message names the file (and the sheet row) at fault."""


# --------------------------------------------------------------------------------------------------
# Clip descriptions
# --------------------------------------------------------------------------------------------------


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
    """A clip that cannot be used; raised in `on_error="raise"` mode, reported in skip mode."""

    name: str
    where: str
    reason: str

    def error(self) -> MERDataError:
        return MERDataError(f"{self.where}: {self.reason}")

    def as_dict(self) -> dict[str, str]:
        return {"clip": self.name, "where": self.where, "reason": self.reason}


def normalise_emotion(text: str) -> str:
    return " ".join(str(text).strip().lower().split())


# --------------------------------------------------------------------------------------------------
# Sheets
# --------------------------------------------------------------------------------------------------


@dataclass
class SheetRow:
    """The cells of one data row under canonical column names; `where` is 'file row N' (1-based)."""

    cells: dict[str, Any]
    where: str


def _normalise_header(cell: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(cell).lower()) if cell is not None else ""


def _read_grids(path: Path) -> list[list[Sequence[Any]]]:
    """All worksheets of an .xlsx (values, not formulas) or the single grid of a .csv."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            import openpyxl

            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                return [list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets]
            finally:
                book.close()
        if suffix == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as handle:
                return [list(csv.reader(handle))]
    except MERDataError:
        raise
    except Exception as exc:  # openpyxl/csv raise many types for a damaged file; name the file
        raise MERDataError(f"{path}: cannot read the coding sheet ({type(exc).__name__}: {exc})") from exc
    raise MERDataError(f"{path}: unsupported sheet format {suffix!r}; expected .xlsx or .csv")


def _match_header(row: Sequence[Any]) -> dict[str, int] | None:
    names = [_normalise_header(cell) for cell in row]
    columns: dict[str, int] = {}
    for canonical, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in names:
                columns[canonical] = names.index(alias)
                break
    return columns if all(name in columns for name in REQUIRED_COLUMNS) else None


def read_sheet(path: Path) -> list[SheetRow]:
    """Read a coding sheet, finding its column row wherever it is (SAMM has 13 preamble rows).

    Unnamed columns are ignored; blank rows are not clips and are passed over.
    """
    for grid in _read_grids(path):
        for header_index, row in enumerate(grid[:HEADER_SEARCH_ROWS]):
            columns = _match_header(row)
            if columns is None:
                continue
            rows = []
            for index in range(header_index + 1, len(grid)):
                raw = grid[index]
                if all(cell is None or str(cell).strip() == "" for cell in raw):
                    continue
                cells = {name: (raw[col] if col < len(raw) else None) for name, col in columns.items()}
                rows.append(SheetRow(cells, f"{path} row {index + 1}"))
            return rows
    wanted = ", ".join(COLUMN_ALIASES[name][0] for name in REQUIRED_COLUMNS)
    raise MERDataError(
        f"{path}: no column row found in the first {HEADER_SEARCH_ROWS} rows of any worksheet "
        f"(looked for a row naming the columns {wanted}; spaces and case do not matter, "
        "'Emotion' may stand for 'Estimated Emotion')"
    )


def parse_frame_cell(value: Any, column: str, where: str, *, optional: bool = False) -> int | None:
    """An integer frame number from a sheet cell (Excel hands over floats like 46.0)."""
    text = "" if value is None else str(value).strip()
    if optional and text.lower() in MISSING_APEX_CELLS:
        return None
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not number.is_integer() or number < 0:
        raise MERDataError(f"{where}: {column} must be a non-negative frame number, got {value!r}")
    return int(number)


def cell_text(value: Any) -> str:
    """Text of a cell as written ('' for empty; 12.0 from Excel becomes '12')."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# --------------------------------------------------------------------------------------------------
# Finding things below the folder the user unpacked
# --------------------------------------------------------------------------------------------------


def walk_dirs(root: Path, depth: int = SEARCH_DEPTH) -> Iterator[Path]:
    """Folders below `root` (root included), breadth first, at most `depth` levels down."""
    level = [root]
    for _ in range(depth + 1):
        following: list[Path] = []
        for folder in sorted(level):
            yield folder
            try:
                following.extend(entry for entry in folder.iterdir() if entry.is_dir())
            except OSError:
                continue
        level = following


def find_sheet(data_dir: Path, patterns: Sequence[str], what: str, explicit: str | None) -> Path:
    """The coding sheet: `explicit` if given, else the single file matching `patterns` below data_dir."""
    if explicit is not None:
        path = Path(explicit)
        path = path if path.is_absolute() else data_dir / path
        if not path.is_file():
            raise MERDataError(f"{what} coding sheet {path} (the `sheet` option) does not exist")
        return path
    regexes = [re.compile(pattern, re.IGNORECASE) for pattern in patterns]
    found: list[Path] = []
    for folder in walk_dirs(data_dir, depth=2):
        for entry in sorted(folder.iterdir()):
            if entry.is_file() and not entry.name.startswith("~$") and any(r.fullmatch(entry.name) for r in regexes):
                found.append(entry)
    if not found:
        raise MERDataError(
            f"no {what} coding sheet found in {data_dir} or two levels below it "
            f"(looked for file names matching {', '.join(patterns)}); pass sheet=<path> to name it"
        )
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise MERDataError(f"several {what} coding sheets found ({names}); pass sheet=<path> to choose one")
    return found[0]


def has_subjects(folder: Path, subject_re: re.Pattern[str]) -> bool:
    """Whether `folder` holds at least one subject folder (so a same-named parent is not mistaken for it)."""
    try:
        return any(p.is_dir() and subject_re.fullmatch(p.name) for p in folder.iterdir())
    except OSError:
        return False


def find_frame_root(
    data_dir: Path, release: str, folder_names: dict[str, Sequence[str]], subject_regex: str, what: str
) -> tuple[Path, str]:
    """The folder holding the subject folders, and which release ("raw" or "cropped") it is.

    With release="auto" and both releases unpacked, the raw one is used (the processor crops faces
    itself); the choice is logged.
    """
    if release not in RELEASE_CHOICES:
        raise MERDataError(f"release must be one of {RELEASE_CHOICES}, got {release!r}")
    wanted = {name.lower(): kind for kind, names in folder_names.items() for name in names}
    subject_re = re.compile(subject_regex, re.IGNORECASE)
    found: dict[str, Path] = {}
    for folder in walk_dirs(data_dir):
        kind = wanted.get(folder.name.lower())
        if kind is not None and kind not in found and release in ("auto", kind) and has_subjects(folder, subject_re):
            found[kind] = folder
    if not found and has_subjects(data_dir, subject_re):
        return data_dir, release if release != "auto" else "raw"
    for kind in ("raw", "cropped"):
        if kind in found:
            if release == "auto" and len(found) > 1:
                logger.info(f"{what}: both releases found, using the raw one at {found[kind]}")
            return found[kind], kind
    looked = " or ".join(
        name for kind, names in folder_names.items() if release in ("auto", kind) for name in names
    )
    raise MERDataError(
        f"no {what} frame folder found below {data_dir}: looked for a folder named {looked} "
        f"(up to {SEARCH_DEPTH} levels down), or subject folders matching {subject_regex} directly in it"
    )


# --------------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------------


def list_frames(folder: Path, where: str) -> dict[int, Path]:
    """Frame number -> file, from the last run of digits in each image file name."""
    if not folder.is_dir():
        raise MERDataError(f"{where}: missing clip folder {folder}")
    frames: dict[int, Path] = {}
    for entry in folder.iterdir():
        if entry.suffix.lower() not in IMAGE_SUFFIXES or not entry.is_file():
            continue
        digits = re.findall(r"\d+", entry.stem)
        if not digits:
            raise MERDataError(f"{where}: image {entry} has no frame number in its name")
        number = int(digits[-1])
        if number in frames:
            raise MERDataError(f"{where}: frames {frames[number]} and {entry} share frame number {number}")
        frames[number] = entry
    if not frames:
        raise MERDataError(f"{where}: clip folder {folder} holds no image files")
    return frames


def read_frame(path: Path, where: str, decode: bool) -> bytes:
    """The file's bytes, after checking the image opens (and fully decodes when `decode`)."""
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            if decode:
                image.load()
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for damaged files
        raise MERDataError(f"{where}: unreadable image {path} ({type(exc).__name__}: {exc})") from exc
    return data


def _decode_rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def estimate_apex(frame_bytes: list[bytes], numbers: list[int], use_spotting: bool, where: str) -> int:
    """Apex frame number for a clip without one: optical-flow spotting, or the midpoint when turned off."""
    if not use_spotting:
        return numbers[(len(numbers) - 1) // 2]
    from modeling_mer.optical_flow import spot_apex  # lazily: it loads opencv

    try:
        index = spot_apex([_decode_rgb(data) for data in frame_bytes])
    except ValueError as exc:  # e.g. frames of different sizes: name the clip, never fall back silently
        raise MERDataError(f"{where}: apex spotting failed ({exc})") from exc
    if not 0 <= int(index) < len(numbers):
        raise MERDataError(f"{where}: apex spotting returned index {index} for a clip of {len(numbers)} frames")
    return numbers[int(index)]


def check_spec(spec: ClipSpec) -> None:
    """Sheet-level checks that need no frames."""
    if spec.onset is not None and spec.offset is not None:
        if spec.onset >= spec.offset:
            raise MERDataError(f"{spec.where}: onset {spec.onset} is not before offset {spec.offset}")
        if spec.apex is not None and not spec.onset <= spec.apex <= spec.offset:
            raise MERDataError(
                f"{spec.where}: apex {spec.apex} lies outside the clip [{spec.onset}, {spec.offset}]"
            )


def make_example(spec: ClipSpec, label: str, *, lazy: bool, spot_apex: bool) -> dict[str, Any]:
    """Read one clip's frames onset..offset (inclusive, in frame order) into a schema row."""
    check_spec(spec)
    available = list_frames(spec.folder, spec.where)
    onset = spec.onset if spec.onset is not None else min(available)
    offset = spec.offset if spec.offset is not None else max(available)
    if onset >= offset:
        raise MERDataError(f"{spec.where}: clip folder {spec.folder} holds a single frame")
    missing = [n for n in range(onset, offset + 1) if n not in available]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise MERDataError(
            f"{spec.where}: {len(missing)} missing frame(s) in {spec.folder} between onset {onset} "
            f"and offset {offset}: {shown}"
        )
    numbers = list(range(onset, offset + 1))
    paths = [available[n] for n in numbers]
    need_pixels = spec.apex is None and spot_apex
    data = [read_frame(p, spec.where, decode=not lazy or need_pixels) for p in paths]
    if spec.apex is None:
        apex, apex_source = estimate_apex(data, numbers, spot_apex, spec.where), "estimated"
    else:
        apex, apex_source = spec.apex, "annotated"
    if not onset <= apex <= offset:
        raise MERDataError(f"{spec.where}: apex {apex} lies outside the clip [{onset}, {offset}]")
    if lazy:
        frames: list[Any] = [str(p) for p in paths]
    else:
        frames = [{"bytes": d, "path": p.relative_to(spec.frame_root).as_posix()} for d, p in zip(data, paths)]
    return {
        "dataset": spec.dataset,
        "subject": spec.subject,
        "clip_id": spec.clip_id,
        "frames": frames,
        "frame_numbers": numbers,
        "onset": onset,
        "apex": apex,
        "apex_source": apex_source,
        "offset": offset,
        "fps": spec.fps,
        "action_units": spec.action_units,
        "emotion": spec.emotion,
        "label": label,
    }


# --------------------------------------------------------------------------------------------------
# Sources: one per dataset, plain Python so that the composite can reuse them
# --------------------------------------------------------------------------------------------------


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
            raise MERDataError(f"{where}: unknown emotion {text!r} for {self.dataset} (known: {known})")
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
            raise MERDataError(f"{path}: the coding sheet has a column row but no clips")
        root = self.frame_root
        specs: list[ClipSpec | BadClip] = []
        first_row: dict[tuple[str, str], str] = {}
        for row in rows:
            clip = cell_text(row.cells["filename"]) or "?"
            name = f"{self.dataset}/{cell_text(row.cells['subject']) or '?'}/{clip}"
            try:
                subject = self.subject_id(row.cells["subject"], row.where)
                name = f"{self.dataset}/{subject}/{clip}"
                if clip == "?":
                    raise MERDataError(f"{row.where}: empty Filename cell")
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
                    raise MERDataError(f"{row.where}: clip {subject}/{clip} is annotated twice (also {earlier})")
                specs.append(spec)
            except MERDataError as exc:
                specs.append(BadClip(name, row.where, str(exc).removeprefix(f"{row.where}: ")))
        return specs


# --------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------


@dataclass
class MERBuilderConfig(datasets.BuilderConfig):
    """Options of the real-dataset builders; every field enters the cache fingerprint.

    class_set: "5class" / "3class" / "all" (None: the dataset's default).
    on_error: "raise" stops at the first bad clip; "skip" leaves it out and reports it.
    lazy: store frame paths instead of embedded image bytes.
    spot_apex: estimate a missing apex with optical-flow spotting (False: the clip's midpoint).
    release: "auto", "raw" or "cropped" frame folders.
    sheet: path of the coding sheet when it cannot be found by name (composite: one per dataset).
    data_dirs: the composite's {"casme2": ..., "samm": ..., "smic": ...}.
    """

    class_set: str | None = None
    on_error: str = "raise"
    lazy: bool = False
    spot_apex: bool = True
    release: str = "auto"
    sheet: str | dict[str, str] | None = None
    data_dirs: dict[str, str] | None = None


@dataclass
class BuildPlan:
    """What a build will do: the clips with their class names, the bad clips, and notes for the report."""

    clips: list[tuple[ClipSpec, str]] = field(default_factory=list)
    bad: list[BadClip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


BUILDER_FILES = ("_builder.py", "common.py", "casme2.py", "samm.py", "smic.py", "composite.py",
                 "megc2019_composite_3class.csv")


def source_hash() -> str:
    """A short hash of the builder code and the shipped list, so a changed builder never reuses a stale cache."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in BUILDER_FILES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


class MERBuilder(datasets.GeneratorBasedBuilder):
    """Base of the real-dataset builders: one `train` split (LOSO folds are made by subject later)."""

    BUILDER_CONFIG_CLASS = MERBuilderConfig
    VERSION = datasets.Version("1.0.0")
    DEFAULT_CLASS_SET: ClassVar[str]
    CLASS_SET_LABELS: ClassVar[dict[str, list[str]]]
    DESCRIPTION: ClassVar[str]
    CITATION: ClassVar[str] = ""
    HOMEPAGE: ClassVar[str] = ""
    LICENSE: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("hash", source_hash())
        super().__init__(*args, **kwargs)

    # -- class set and plan -----------------------------------------------------------------------

    @property
    def class_set(self) -> str:
        return self.config.class_set or self.DEFAULT_CLASS_SET

    def _validate_options(self) -> None:
        if self.config.on_error not in ON_ERROR_CHOICES:
            raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {self.config.on_error!r}")
        if self.class_set not in {*self.CLASS_SET_LABELS, "all"}:
            choices = ", ".join([*self.CLASS_SET_LABELS, "all"])
            raise ValueError(f"class set {self.class_set!r} is not defined for {self.name}; choose from {choices}")

    def plan(self) -> BuildPlan:
        """The clips to build with their class names; computed once per builder."""
        raise NotImplementedError

    def label_names(self) -> list[str]:
        if self.class_set == "all":
            return sorted({label for _, label in self.plan().clips})
        return list(self.CLASS_SET_LABELS[self.class_set])

    # -- datasets hooks ---------------------------------------------------------------------------

    def _info(self) -> datasets.DatasetInfo:
        self._validate_options()
        return datasets.DatasetInfo(
            description=self.DESCRIPTION,
            features=mer_features(self.label_names(), lazy=self.config.lazy),
            citation=self.CITATION,
            homepage=self.HOMEPAGE,
            license=self.LICENSE,
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN)]

    def _generate_examples(self) -> Iterator[tuple[int, dict[str, Any]]]:
        plan = self.plan()
        skip = self.config.on_error == "skip"
        skipped: list[BadClip] = []
        for bad in plan.bad:
            if not skip:
                raise bad.error()
            skipped.append(bad)
        key = 0
        for spec, label in plan.clips:
            try:
                example = make_example(spec, label, lazy=self.config.lazy, spot_apex=self.config.spot_apex)
            except MERDataError as exc:
                if not skip:
                    raise
                skipped.append(BadClip(spec.name, spec.where, str(exc).removeprefix(f"{spec.where}: ")))
                continue
            yield key, example
            key += 1
        if key == 0:
            raise MERDataError(f"{self.name}: no usable clip ({len(skipped)} skipped); nothing to build")
        self.info.description = build_description(self.DESCRIPTION, plan.notes, skipped)
        if skipped:
            logger.info(format_skip_report(skipped))


class SingleSourceBuilder(MERBuilder):
    """A builder over one dataset folder (CASME II, SAMM, SMIC-HS)."""

    SOURCE: ClassVar[type[ClipSource]]

    def source(self) -> ClipSource:
        if getattr(self, "_mer_source", None) is None:
            if self.config.data_dir is None:
                raise ValueError(
                    f"{self.name} needs data_dir=<the folder you unpacked>: the dataset is licensed and "
                    "is never downloaded"
                )
            self._mer_source = self.SOURCE(self.config.data_dir, release=self.config.release, sheet=self.config.sheet)
        return self._mer_source

    def plan(self) -> BuildPlan:
        if getattr(self, "_mer_plan", None) is None:
            source = self.source()
            plan = BuildPlan()
            excluded: Counter[str] = Counter()
            for spec in source.specs():
                if isinstance(spec, BadClip):
                    plan.bad.append(spec)
                elif self.class_set == "all" or spec.emotion_key in self.CLASS_SET_LABELS[self.class_set]:
                    plan.clips.append((spec, spec.emotion_key))
                else:
                    excluded[spec.emotion_key] += 1
            plan.notes.append(f"Frames from the {source._frame_root()[1]} release.")
            plan.notes += excluded_note(self.class_set, excluded)
            self._mer_plan = plan
        return self._mer_plan


# --------------------------------------------------------------------------------------------------
# Skip report
# --------------------------------------------------------------------------------------------------


def build_description(text: str, notes: list[str], skipped: list[BadClip]) -> str:
    lines = [text.strip(), *notes, f"{len(skipped)} clip(s) skipped because of bad input."]
    lines.append(SKIP_MARKER + json.dumps([bad.as_dict() for bad in skipped]))
    return "\n".join(lines)


def skipped_clips(dataset: datasets.Dataset) -> list[dict[str, str]]:
    """The clips left out of a build made with on_error="skip": {"clip", "where", "reason"} each."""
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
