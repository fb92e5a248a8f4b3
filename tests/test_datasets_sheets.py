"""Full-table checks: every row of the real annotation tables, read from sheets in the official shapes.

These build no Arrow files: the builders' plans (which clips, which labels) are compared with the
tables in tests/data/metadata, so the whole of CASME II, SAMM and SMIC-HS is covered in seconds.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from dataset_trees import casme2_tree, samm_tree, smic_tree, table

from dataset_scripts import CASME2, SAMM, SMIC, MERDataError
from dataset_scripts._records import ClipSpec
from dataset_scripts._sheets import read_sheet
from dataset_scripts.casme2 import CASME2Source
from dataset_scripts.samm import SAMMSource

CASME2_SLASH = ("EP03_02", "EP19_06f")  # two real clip names whose ApexFrame cells are written "/"


def _sheet_only_casme2(root: Path, sheet: str = "xlsx") -> Path:
    """The full CASME II sheet beside an empty frame folder (plans need no frames)."""
    casme2_tree(root, table("casme2_coding"), sheet=sheet, slash_apex=CASME2_SLASH, frames=False)
    return root


@pytest.fixture(scope="module")
def casme2_full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sheet_only_casme2(tmp_path_factory.mktemp("casme2"))


def _plan_labels(builder) -> Counter[str]:
    return Counter(label for _, label in builder.plan().clips)


def test_casme2_sheet_class_sets_match_table(casme2_full: Path, tmp_path: Path) -> None:
    rows = table("casme2_coding")
    emotions = Counter(r["Emotion"] for r in rows)
    five = CASME2(data_dir=str(casme2_full), cache_dir=str(tmp_path), class_set="5class")
    assert five.info.features["label"].names == ["disgust", "happiness", "repression", "surprise", "others"]
    assert _plan_labels(five) == {k: v for k, v in emotions.items() if k not in ("sadness", "fear")}
    assert sum(_plan_labels(five).values()) == 249
    assert any("fear 2, sadness 4" in note for note in five.plan().notes)
    every = CASME2(data_dir=str(casme2_full), cache_dir=str(tmp_path), class_set="all")
    assert every.info.features["label"].names == sorted(emotions)
    assert _plan_labels(every) == emotions and len(every.plan().clips) == 255


def test_casme2_sheet_cells_as_written(casme2_full: Path) -> None:
    specs = CASME2Source(casme2_full).specs()
    assert all(isinstance(s, ClipSpec) for s in specs)
    rows = table("casme2_coding")
    for spec, row in zip(specs, rows):
        assert (spec.subject, spec.clip_id) == (f"sub{int(row['Subject']):02d}", row["Filename"])
        assert (spec.onset, spec.offset) == (int(row["OnsetFrame"]), int(row["OffsetFrame"]))
        assert spec.action_units == row["Aus"] and spec.emotion == row["Emotion"]
        expected_apex = None if row["Filename"] in CASME2_SLASH else int(row["ApexFrame"])
        assert spec.apex == expected_apex
    assert {"4+L10", "R4"} <= {s.action_units for s in specs}
    assert specs[0].where.endswith("CASME2-coding-20140508.xlsx row 2")


def test_casme2_csv_sheet_reads_like_xlsx(casme2_full: Path, tmp_path: Path) -> None:
    from_csv = CASME2Source(_sheet_only_casme2(tmp_path, sheet="csv")).specs()
    from_xlsx = CASME2Source(casme2_full).specs()
    key = lambda s: (s.subject, s.clip_id, s.onset, s.apex, s.offset, s.action_units, s.emotion)  # noqa: E731
    assert [key(s) for s in from_csv] == [key(s) for s in from_xlsx]


@pytest.mark.parametrize("preamble", [True, False])
def test_samm_sheet_finds_column_row(tmp_path: Path, preamble: bool) -> None:
    rows = table("samm_coding")
    samm_tree(tmp_path, rows, preamble=preamble, frames=False)
    five = SAMM(data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"))
    emotions = Counter(r["Emotion"].lower() for r in rows)
    assert _plan_labels(five) == {k: emotions[k] for k in ("anger", "contempt", "happiness", "surprise", "other")}
    assert len(five.plan().clips) == 136
    every = SAMM(data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), class_set="all")
    assert len(every.plan().clips) == 159 and every.info.features["label"].names == sorted(emotions)
    first = every.plan().clips[0][0]
    assert (first.subject, first.clip_id, first.onset, first.apex, first.offset) == ("006", "006_1_2", 5562, 5588, 5632)
    assert first.emotion == "Anger"
    assert first.where.endswith(f"row {15 if preamble else 2}")


def test_smic_folders_match_table(tmp_path: Path) -> None:
    rows = table("smic_hs_coding")
    smic_tree(tmp_path, rows, frames=False)
    (tmp_path / "HS" / "s7").mkdir()  # a subject with no micro folder is named in the notes
    builder = SMIC(data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"))
    plan = builder.plan()
    assert _plan_labels(builder) == Counter(r["Emotion"] for r in rows)
    got = {(s.subject, s.clip_id, s.emotion) for s, _ in plan.clips}
    assert got == {(r["Subject"], r["Filename"], r["Emotion"]) for r in rows}
    assert len({s.subject for s, _ in plan.clips}) == 16
    assert any("s7" in note for note in plan.notes)


def test_sheet_without_column_row_names_the_file(tmp_path: Path) -> None:
    import openpyxl

    path = tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["Subject", "Filename", "Onset", "Offset"])  # no apex, no emotion
    book.active.append([6, "006_1_2", 1, 2])
    book.save(path)
    with pytest.raises(MERDataError, match=r"SAMM_Micro_FACS_Codes_v2\.xlsx: no column row found"):
        read_sheet(path)


def test_missing_sheet_and_frames_say_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "CASME2_RAW_selected").mkdir()
    with pytest.raises(MERDataError, match=r"no casme2 coding sheet found .*CASME2"):
        CASME2Source(tmp_path).specs()
    empty = tmp_path / "empty"
    samm_tree(empty, table("samm_coding")[:1])
    (empty / "SAMM").rename(empty / "elsewhere")
    with pytest.raises(MERDataError, match=r"no samm frame folder found .* looked for a folder named SAMM"):
        SAMMSource(empty).specs()
    with pytest.raises(MERDataError, match="is not a folder"):
        SAMMSource(tmp_path / "nope")


def test_two_sheets_are_ambiguous(casme2_full: Path, tmp_path: Path) -> None:
    root = _sheet_only_casme2(tmp_path)
    (root / "CASME2-coding-20190701.xlsx").write_bytes((root / "CASME2-coding-20140508.xlsx").read_bytes())
    with pytest.raises(MERDataError, match="several casme2 coding sheets"):
        CASME2Source(root).specs()
    chosen = CASME2Source(root, sheet="CASME2-coding-20190701.xlsx").specs()
    assert len(chosen) == 255


def test_bad_options_are_refused(casme2_full: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="class set '3class' is not defined for casme2"):
        CASME2(data_dir=str(casme2_full), cache_dir=str(tmp_path), class_set="3class")
    with pytest.raises(ValueError, match="on_error must be one of"):
        CASME2(data_dir=str(casme2_full), cache_dir=str(tmp_path), on_error="ignore")
    with pytest.raises(ValueError, match="needs data_dir"):
        CASME2(cache_dir=str(tmp_path)).plan()
