"""Builds the official on-disk layouts of CASME II, SAMM and SMIC-HS in a temporary folder.

The rows come from the real annotation tables in tests/data/metadata (copied from the project's shared/metadata) (real subjects, clip names, frame
numbers and emotions); the frames are tiny generated images and the coding sheets are written with
openpyxl in the shapes the datasets ship (CASME II: unnamed columns and `/` apex cells; SAMM: 13
preamble rows before the column row).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import openpyxl
from PIL import Image

METADATA = Path(__file__).resolve().parent / "data" / "metadata"


def table(name: str) -> list[dict[str, str]]:
    """Rows of one metadata CSV (casme2_coding, samm_coding, smic_hs_coding) as dicts of strings."""
    with open(METADATA / f"{name}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def composite_rows() -> list[tuple[str, str, str, int]]:
    with open(METADATA / "megc2019_composite_3class.csv", newline="", encoding="utf-8") as handle:
        return [(d, s, c, int(label)) for d, s, c, label in csv.reader(handle)]


@cache
def frame_bytes(fmt: str, mode: str = "RGB", value: int = 128) -> bytes:
    """A tiny 8x8 image, encoded once and reused for every frame file."""
    image = Image.new(mode, (8, 8), value)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def moving_frame(index: int, fmt: str = "JPEG") -> bytes:
    """A 32x32 frame whose bright square moves with `index` (for apex spotting)."""
    pixels = np.zeros((32, 32, 3), np.uint8)
    shift = min(index, 10)
    pixels[8 + shift : 16 + shift, 8:16] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _write_frames(folder: Path, names: Iterable[str], data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(data)


def _write_xlsx(path: Path, rows: Sequence[Sequence[object]]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(list(row))
    book.save(path)


def _write_csv(path: Path, rows: Sequence[Sequence[object]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def casme2_tree(
    root: Path,
    rows: Sequence[dict[str, str]],
    *,
    release: str = "raw",
    sheet: str = "xlsx",
    slash_apex: Iterable[str] = (),
    margin: int = 0,
    frames: bool = True,
) -> Path:
    """CASME2_RAW_selected/sub01/EP02_01f/img46.jpg (or Cropped/.../reg_img46.jpg) + CASME2-coding sheet.

    `slash_apex`: Filenames whose ApexFrame cell is written `/`. `margin`: extra frames on each side of
    the clip, as in recordings that run past the annotated offset. `frames=False` writes only the sheet
    and the subject folders (enough for plans, which read no frames).
    """
    slash = set(slash_apex)
    folder, prefix = ("CASME2_RAW_selected", "img") if release == "raw" else ("Cropped", "reg_img")
    for row in rows:
        onset, offset = int(row["OnsetFrame"]), int(row["OffsetFrame"])
        clip = root / folder / f"sub{int(row['Subject']):02d}" / row["Filename"]
        if not frames:
            clip.parent.mkdir(parents=True, exist_ok=True)
            continue
        numbers = range(max(onset - margin, 0), offset + margin + 1)
        _write_frames(clip, (f"{prefix}{n}.jpg" for n in numbers), frame_bytes("JPEG"))
    header = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
              "Estimated Emotion"]
    body = [
        [int(r["Subject"]), r["Filename"], "x", int(r["OnsetFrame"]),
         "/" if r["Filename"] in slash else int(r["ApexFrame"]), int(r["OffsetFrame"]), None, r["Aus"],
         r["Emotion"]]
        for r in rows
    ]
    if sheet == "xlsx":
        _write_xlsx(root / "CASME2-coding-20140508.xlsx", [header, *body])
    else:
        _write_csv(root / "CASME2-coding-20140508.csv", [[h or "" for h in header], *body])
    return root


SAMM_COLUMNS = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
                "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]


def samm_tree(
    root: Path, rows: Sequence[dict[str, str]], *, preamble: bool = True, margin: int = 0, frames: bool = True
) -> Path:
    """SAMM/006/006_1_2/006_05562.jpg (grayscale) + SAMM_Micro_FACS_Codes_v2.xlsx (13 preamble rows)."""
    (root / "SAMM").mkdir(parents=True, exist_ok=True)
    for row in rows:
        subject = row["Subject"]
        onset, offset = int(row["OnsetFrame"]), int(row["OffsetFrame"])
        clip = root / "SAMM" / subject / row["Filename"]
        if not frames:
            clip.parent.mkdir(parents=True, exist_ok=True)
            continue
        numbers = range(max(onset - margin, 0), offset + margin + 1)
        _write_frames(clip, (f"{subject}_{n:05d}.jpg" for n in numbers), frame_bytes("JPEG", "L"))
    lines: list[list[object]] = []
    if preamble:
        lines = [["SAMM Micro-Movement FACS Codes"], ["Version 2"], []] + [[f"note {i}"] for i in range(10)]
    lines.append(SAMM_COLUMNS)
    for r in rows:
        onset, apex, offset = int(r["OnsetFrame"]), int(r["ApexFrame"]), int(r["OffsetFrame"])
        lines.append([int(r["Subject"]), r["Filename"], 1, onset, apex, offset, offset - onset + 1,
                      "Micro - 1/2", "R12", r["Emotion"], "III", None])
    _write_xlsx(root / "SAMM_Micro_FACS_Codes_v2.xlsx", lines)
    return root


def smic_tree(root: Path, rows: Sequence[dict[str, str]], *, cropped: bool = False, frames: bool = True) -> Path:
    """HS/s1/micro/negative/s1_ne_01/image559740.bmp (or SMIC_all_cropped/HS/...); no sheet.

    `frames=False` makes the clip folders only (enough for plans, which read no frames).
    """
    (root / "SMIC_all_cropped" / "HS" if cropped else root / "HS").mkdir(parents=True, exist_ok=True)
    base = root / "SMIC_all_cropped" / "HS" if cropped else root / "HS"
    prefix = "reg_image" if cropped else "image"
    for row in rows:
        clip = base / row["Subject"] / "micro" / row["Emotion"] / row["Filename"]
        if not frames:
            clip.mkdir(parents=True, exist_ok=True)
            continue
        numbers = range(int(row["OnsetFrame"]), int(row["OffsetFrame"]) + 1)
        width = len(row["OnsetFrame"])  # SMIC numbers keep their leading zeros (image076518.bmp)
        _write_frames(clip, (f"{prefix}{n:0{width}d}.bmp" for n in numbers), frame_bytes("BMP"))
    return root


def rows_of_subjects(rows: Sequence[dict[str, str]], subjects: Iterable[str]) -> list[dict[str, str]]:
    wanted = set(subjects)
    return [r for r in rows if r["Subject"] in wanted]
