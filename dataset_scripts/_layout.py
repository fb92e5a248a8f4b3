"""Finding the coding sheet and the frame folders below the folder the user unpacked."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets

from ._records import MERDataError

logger = datasets.logging.get_logger(__name__)

RELEASE_CHOICES = ("auto", "raw", "cropped")
SEARCH_DEPTH = 3


def check_release(release: str) -> None:
    if release not in RELEASE_CHOICES:
        raise MERDataError(f"release must be one of {RELEASE_CHOICES}, got {release!r}")


def walk_dirs(root: Path, depth: int = SEARCH_DEPTH) -> Iterator[Path]:
    """Folders below `root` (root included), breadth first, at most `depth` levels down.

    Each real folder is visited once: a symlink back to a folder already seen (a loop, or two links to
    one place) is passed over, so nothing below it is found twice.
    """
    seen: set[Path] = set()
    level = [root]
    for _ in range(depth + 1):
        following: list[Path] = []
        for folder in sorted(level):
            try:
                real = folder.resolve(strict=True)
            except (OSError, RuntimeError):  # a dangling link, or a loop resolve cannot settle
                continue
            if real in seen:
                continue
            seen.add(real)
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
    check_release(release)
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
