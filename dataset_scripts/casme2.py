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
from ._records import MERDataError
from ._sources import SheetSource
from .common import CLASS_SETS


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
            raise MERDataError(f"Subject must be a number such as 1 or sub01, got {cell!r}", where=where)
        return f"sub{int(match.group(1)):02d}"


class CASME2(SingleSourceBuilder):
    """CASME II; class set 5class (default), or all (seven emotions)."""

    SOURCE = CASME2Source
    DEFAULT_CLASS_SET = "5class"
    CLASS_SET_LABELS: ClassVar[dict[str, list[str]]] = {"5class": CLASS_SETS["casme2_5class"]}
    DESCRIPTION = "CASME II spontaneous micro-expressions (26 subjects, 200 fps), read from the user's copy."
    CITATION = (
        "@article{yan2014casme2, title={CASME II: An Improved Spontaneous Micro-Expression Database and the "
        "Baseline Evaluation}, author={Yan, Wen-Jing and Li, Xiaobai and Wang, Su-Jing and Zhao, Guoying and "
        "Liu, Yong-Jin and Chen, Yu-Hsin and Fu, Xiaolan}, journal={PLoS ONE}, volume={9}, number={1}, "
        "year={2014}}"
    )
    HOMEPAGE = "http://casme.psych.ac.cn/casme/e2"
    LICENSE = "CASME II licence agreement (Institute of Psychology, CAS): research use only, no redistribution"
