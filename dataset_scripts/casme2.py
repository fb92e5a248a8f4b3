"""CASME II (Yan et al., PLoS ONE 2014) as distributed: raw or cropped frame folders and the coding sheet.

Layouts: `CASME2_RAW_selected/sub01/EP02_01f/img46.jpg` and `Cropped/sub01/EP02_01f/reg_img46.jpg`; the
numbers in the file names are the absolute frame numbers the sheet uses. The sheet
`CASME2-coding-*.xlsx` has unnamed columns between the named ones, `/` where no apex was coded (the
apex is then estimated) and AU strings such as `4+L10`.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from ._builder import SingleSourceBuilder
from ._records import MERDataError, quote
from ._sources import SheetSource
from .common import CLASS_SETS
from .registry import DATASETS


class CASME2Source(SheetSource):
    dataset = "casme2"
    fps = 200.0
    emotions = frozenset({"happiness", "surprise", "disgust", "repression", "others", "sadness", "fear"})
    sheet_patterns = (r"CASME2?[-_ ]?coding.*\.xlsx", r"CASME2?[-_ ]?coding.*\.csv")
    release_folders: ClassVar[dict[str, tuple[str, ...]]] = {
        "raw": ("CASME2_RAW_selected", "CASME2_RAW"),
        "cropped": ("Cropped", "CASME2_Cropped"),
    }
    subject_regex = r"sub\d+"

    def subject_id(self, cell: Any, where: str) -> str:
        """Subject 1 (or '01', 'sub01') lives in folder sub01."""
        match = re.fullmatch(r"(?:sub)?\s*(\d+)(?:\.0)?", str(cell).strip(), re.IGNORECASE) if cell is not None else None
        if match is None:
            raise MERDataError(f"Subject must be a number such as 1 or sub01, got {quote(cell)}", where=where)
        return f"sub{int(match.group(1)):02d}"


class CASME2(SingleSourceBuilder):
    """CASME II; class set 5class (default), or all (seven emotions)."""

    SOURCE = CASME2Source
    DEFAULT_CLASS_SET = "5class"
    CLASS_SET_LABELS: ClassVar[dict[str, list[str]]] = {"5class": CLASS_SETS["casme2_5class"]}
    DESCRIPTION = DATASETS["casme2"].card_text  # the registry owns the texts (dataset_scripts/registry.py)
    CITATION = DATASETS["casme2"].citation
    HOMEPAGE = DATASETS["casme2"].homepage
    LICENSE = DATASETS["casme2"].license_text
