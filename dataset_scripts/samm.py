"""SAMM (Davison et al., IEEE TAC 2018) as distributed: `SAMM/006/006_1_2/006_05562.jpg` and the sheet.

The sheet `SAMM_Micro_FACS_Codes_v2.xlsx` starts with 13 preamble rows before its column row (Subject,
Filename, Inducement Code, Onset Frame, Apex Frame, Offset Frame, Duration, Micro, Action Units,
Estimated Emotion, ...); the column row is searched for, so the variant with the column row first works
too. Subjects are written 6 or '006' and live in folder 006.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from ._builder import SingleSourceBuilder
from ._records import MERDataError, quote
from ._sources import SheetSource
from .common import CLASS_SETS
from .registry import DATASETS


class SAMMSource(SheetSource):
    dataset = "samm"
    fps = 200.0
    emotions = frozenset(
        {"anger", "contempt", "happiness", "surprise", "other", "disgust", "fear", "sadness"}
    )
    sheet_patterns = (r"SAMM.*\.xlsx", r"SAMM.*\.csv")
    release_folders: ClassVar[dict[str, tuple[str, ...]]] = {"raw": ("SAMM",), "cropped": ("SAMM_CROP", "SAMM_cropped")}
    subject_regex = r"\d{3}"

    def subject_id(self, cell: Any, where: str) -> str:
        match = re.fullmatch(r"(\d+)(?:\.0)?", str(cell).strip()) if cell is not None else None
        if match is None:
            raise MERDataError(f"Subject must be a number such as 6 or 006, got {quote(cell)}", where=where)
        return f"{int(match.group(1)):03d}"


class SAMM(SingleSourceBuilder):
    """SAMM; class set 5class (default), or all (eight emotions)."""

    SOURCE = SAMMSource
    DEFAULT_CLASS_SET = "5class"
    CLASS_SET_LABELS: ClassVar[dict[str, list[str]]] = {"5class": CLASS_SETS["samm_5class"]}
    DESCRIPTION = DATASETS["samm"].card_text  # the registry owns the texts (dataset_scripts/registry.py)
    CITATION = DATASETS["samm"].citation
    HOMEPAGE = DATASETS["samm"].homepage
    LICENSE = DATASETS["samm"].license_text
