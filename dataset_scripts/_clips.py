"""Turning one clip into an example: its frames in frame order, the checks, the apex.

Every check here is defined once and raises `MERDataError` naming the sheet row (or clip folder) and
the file at fault. Frame files are listed by `modeling_mer.video_io` (the same suffixes and numbering
that `predict` uses on a user's folder).
"""

from __future__ import annotations

import io
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modeling_mer.video_io import check_one_size, list_frame_folder

from ._records import ClipSpec, MERDataError, os_error, quote


def list_frames(folder: Path, where: str) -> dict[int, Path]:
    """Frame number -> file, from the last run of digits in each image file name."""
    try:
        if not folder.is_dir():
            raise MERDataError(f"missing clip folder {folder}", where=where)
        files, numbers = list_frame_folder(folder)
    except OSError as exc:  # name too long, permission denied...: this clip cannot be read, others may
        raise os_error(exc, where) from exc
    except ValueError as exc:
        raise MERDataError(str(exc), where=where) from exc
    return dict(zip(numbers, files))


def read_frame(path: Path, where: str, decode: bool) -> tuple[bytes, tuple[int, int]]:
    """The file's bytes and (width, height), after checking the image opens (and fully decodes when
    `decode`; without it a truncated file is found when the frame is first decoded, naming the file)."""
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            if decode:
                image.load()
            size = image.size
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for damaged files
        raise MERDataError(f"unreadable image {path} ({type(exc).__name__}: {exc})", where=where) from exc
    return data, size


def _decode_rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def check_apex(apex: int, onset: int, offset: int, where: str) -> None:
    if not onset <= apex <= offset:
        raise MERDataError(f"apex {apex} lies outside the clip [{onset}, {offset}]", where=where)


def check_spec(spec: ClipSpec) -> None:
    """Sheet-level checks that need no frames."""
    if spec.onset is not None and spec.offset is not None:
        if spec.onset >= spec.offset:
            raise MERDataError(f"onset {spec.onset} is not before offset {spec.offset}", where=spec.where)
        if spec.apex is not None:
            check_apex(spec.apex, spec.onset, spec.offset, spec.where)


def estimate_apex(frame_bytes: list[bytes], numbers: list[int], use_spotting: bool, where: str) -> int:
    """Apex frame number for a clip without one: optical-flow spotting, or the midpoint when turned off."""
    if not use_spotting:
        return numbers[(len(numbers) - 1) // 2]
    from modeling_mer.apex_spotting import spot_apex  # lazily: it loads opencv

    try:
        index = int(spot_apex([_decode_rgb(data) for data in frame_bytes]))
    except ValueError as exc:  # e.g. frames of different sizes: name the clip, never fall back silently
        raise MERDataError(f"apex spotting failed ({exc})", where=where) from exc
    if not 0 <= index < len(numbers):
        raise MERDataError(f"apex spotting returned index {index} for a clip of {len(numbers)} frames", where=where)
    return numbers[index]


def check_frame_range(available: dict[int, Path], onset: int, offset: int, spec: ClipSpec) -> None:
    """Every frame onset..offset exists, checked against the files found before anything is enumerated:
    a typo such as offset 10**9, or a stray image9999999999.bmp in a folder-bounded clip, is one line
    naming the row or the file (the range itself is never listed)."""
    first, last = min(available), max(available)
    if onset < first or offset > last:
        outside = f"offset {offset} is after" if offset > last else f"onset {onset} is before"
        raise MERDataError(
            f"{outside} the frames in {spec.folder} ({len(available)} files numbered {first}..{last}): "
            "the sheet's frame range does not fit the clip folder",
            where=spec.where,
        )
    inside = sorted(n for n in available if onset <= n <= offset)
    missing = (offset - onset + 1) - len(inside)
    if missing == 0:
        return
    gaps = [(b - a, a, b) for a, b in zip(inside, inside[1:]) if b - a > 1]
    shown = ", ".join(str(n) for n in islice((n for _, a, b in gaps for n in range(a + 1, b)), 5))
    size, a, b = max(gaps)
    stray = ""
    if size - 1 > len(inside):  # the jump is longer than the clip: a stray file, not a few lost frames
        lone = available[b] if b == inside[-1] else available[a] if a == inside[0] else None
        culprit = f": is {quote(lone.name)} a stray file?" if lone is not None else ""
        stray = f"; the frame numbers jump from {a} ({available[a].name}) to {b} ({available[b].name}){culprit}"
    raise MERDataError(
        f"{missing:,} missing frame(s) in {spec.folder} between onset {onset} and offset {offset}: {shown}"
        f"{' ...' if missing > 5 else ''}{stray}",
        where=spec.where,
    )


def make_example(spec: ClipSpec, label: str, *, lazy: bool, spot_apex: bool) -> dict[str, Any]:
    """Read one clip's frames onset..offset (inclusive, in frame order) into a schema row."""
    check_spec(spec)
    available = list_frames(spec.folder, spec.where)
    onset = spec.onset if spec.onset is not None else min(available)
    offset = spec.offset if spec.offset is not None else max(available)
    if onset >= offset:
        raise MERDataError(f"clip folder {spec.folder} holds a single frame", where=spec.where)
    check_frame_range(available, onset, offset, spec)
    numbers = list(range(onset, offset + 1))
    paths = [available[n] for n in numbers]
    need_pixels = spec.apex is None and spot_apex
    read = [read_frame(p, spec.where, decode=not lazy or need_pixels) for p in paths]
    data = [d for d, _ in read]
    try:
        check_one_size([size for _, size in read], numbers, str(spec.folder))
    except ValueError as exc:
        raise MERDataError(str(exc), where=spec.where) from exc
    if spec.apex is None:
        apex, apex_source = estimate_apex(data, numbers, spot_apex, spec.where), "estimated"
    else:
        apex, apex_source = spec.apex, "annotated"
    check_apex(apex, onset, offset, spec.where)
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
