"""Issue 21, cases 1-5: sheets and frame folders that would exhaust memory, OS errors on paths, hidden
worksheets, huge cells: each is one line naming the row or file, and skippable where it is one clip's."""

from __future__ import annotations

import csv
import errno
import tracemalloc
from pathlib import Path

import datasets
import openpyxl
import pytest
from dataset_trees import casme2_tree, smic_tree, table

from dataset_scripts import MERDataError, load_mer_dataset, skipped_clips

datasets.disable_progress_bars()

TWO_CLIPS = [r for r in table("casme2_coding") if r["Subject"] == "1" and r["Filename"] in ("EP02_01f", "EP03_02")]
SHEET = "CASME2-coding-20140508.xlsx"
SMIC_TWO = [r for r in table("smic_hs_coding") if r["Subject"] == "s1"][:2]


def _set_cell(root: Path, row: int, column: str, value: object) -> None:
    path = root / SHEET
    book = openpyxl.load_workbook(path)
    header = [c.value for c in book.active[1]]
    book.active.cell(row=row, column=header.index(column) + 1, value=value)
    book.save(path)


def _load(root: Path, tmp_path: Path, name: str = "casme2", **kwargs):
    return load_mer_dataset(name, root, cache_dir=str(tmp_path / "cache"), lazy=True, spot_apex=False, **kwargs)


def _one_line(err: pytest.ExceptionInfo, limit: int = 400) -> str:
    text = str(err.value)
    assert "\n" not in text and len(text) < limit, text[:1000]
    return text


def _peak_mib(fn) -> tuple[object, float]:
    """fn()'s result (or the exception it raised) and the peak MiB traced while it ran. Call it after a
    first, untraced run: imports under tracemalloc are slow and would be counted."""
    tracemalloc.start()
    try:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - returned for the caller to check
            result = exc
        return result, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------- case 1: offset 10**9
def test_case1_offset_far_past_the_frames_is_one_line_naming_the_row(tmp_path):
    root = casme2_tree(tmp_path / "data", TWO_CLIPS)
    _set_cell(root, 2, "OffsetFrame", 10**9)
    with pytest.raises(MERDataError):
        _load(root, tmp_path / "first")
    error, peak = _peak_mib(lambda: _load(root, tmp_path))
    assert isinstance(error, MERDataError), error
    text = " ".join(str(error).split())
    assert str(error).count("\n") == 0 and f"{root / SHEET} row 2" in text and "offset 1000000000 is after" in text
    assert peak < 20, peak  # nothing proportional to 10**9 was made
    ds = _load(root, tmp_path / "skip", on_error="skip")
    assert ds["clip_id"] == ["EP03_02"]
    [report] = skipped_clips(ds)
    assert report["where"] == f"{root / SHEET} row 2" and "offset 1000000000" in report["reason"]


# ------------------------------------------------------------------------ case 2: a stray frame file
def test_case2_stray_frame_in_a_smic_folder_is_one_line_naming_the_file(tmp_path):
    root = smic_tree(tmp_path / "data", SMIC_TWO)
    clip = root / "HS" / "s1" / "micro" / SMIC_TWO[0]["Emotion"] / SMIC_TWO[0]["Filename"]
    first = sorted(clip.iterdir())[0]
    (clip / "image9999999999.bmp").write_bytes(first.read_bytes())
    with pytest.raises(MERDataError):
        _load(root, tmp_path / "first", "smic")
    error, peak = _peak_mib(lambda: _load(root, tmp_path, "smic"))
    assert isinstance(error, MERDataError), error
    assert str(error).count("\n") == 0 and "'image9999999999.bmp' a stray file" in str(error), str(error)
    assert str(clip) in str(error) and len(str(error)) < 600
    assert peak < 20, peak
    ds = _load(root, tmp_path / "skip", "smic", on_error="skip")
    assert ds["clip_id"] == [SMIC_TWO[1]["Filename"]]
    assert "image9999999999.bmp" in skipped_clips(ds)[0]["reason"]


# --------------------------------------------------------- case 3: OS errors on paths are dataset errors
def test_case3_a_5000_character_filename_is_a_skippable_row_error(tmp_path):
    root = casme2_tree(tmp_path / "data", TWO_CLIPS)
    _set_cell(root, 2, "Filename", "E" * 5000)
    with pytest.raises(MERDataError) as err:
        _load(root, tmp_path)
    text = _one_line(err)
    assert f"{root / SHEET} row 2" in text and "longer than a folder name can be" in text and "5,000 characters" in text
    ds = _load(root, tmp_path / "skip", on_error="skip")
    assert ds["clip_id"] == ["EP03_02"]
    [report] = skipped_clips(ds)
    assert len(report["reason"]) < 300 and report["where"] == f"{root / SHEET} row 2"


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("is_dir", OSError(errno.ENAMETOOLONG, "File name too long")),
        ("iterdir", PermissionError(errno.EACCES, "Permission denied")),
        ("read_bytes", PermissionError(errno.EACCES, "Permission denied")),
    ],
)
def test_case3_os_errors_on_a_clip_path_are_skippable(tmp_path, monkeypatch, where, error):
    """The OS refusing a clip's folder or frame (simulated: tests run as root, where chmod stops nothing)."""
    root = casme2_tree(tmp_path / "data", TWO_CLIPS)
    bad = root / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    original = getattr(Path, where)

    def refuse(self, *args, **kwargs):
        if self == bad or self.parent == bad:
            error.filename = str(self)
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, where, refuse)
    with pytest.raises(MERDataError) as err:
        _load(root, tmp_path)
    text = _one_line(err)
    assert f"{root / SHEET} row 2" in text and error.strerror in text and str(bad) in text
    ds = _load(root, tmp_path / "skip", on_error="skip")
    assert ds["clip_id"] == ["EP03_02"]
    assert error.strerror in skipped_clips(ds)[0]["reason"]


# ---------------------------------------------------------------------------- case 4: hidden worksheets
def _add_sheet(root: Path, title: str, state: str, first: bool, emotion: str) -> None:
    """A copy of the clip rows with another emotion, as a worksheet `title` in `state`."""
    path = root / SHEET
    book = openpyxl.load_workbook(path)
    rows = [[c.value for c in row] for row in book.active.iter_rows()]
    sheet = book.create_sheet(title, 0 if first else None)
    for i, row in enumerate(rows):
        sheet.append(row if i == 0 else [*row[:-1], emotion])
    sheet.sheet_state = state
    book.active = [s.title for s in book.worksheets].index(book.worksheets[1 if first else 0].title)
    book.save(path)


def test_case4_a_hidden_outdated_first_worksheet_never_supplies_rows(tmp_path):
    root = casme2_tree(tmp_path / "data", TWO_CLIPS)
    _add_sheet(root, "old coding", "hidden", first=True, emotion="fear")
    ds = _load(root, tmp_path, class_set="all")
    assert sorted(ds["emotion"]) == sorted(r["Emotion"] for r in TWO_CLIPS) and "fear" not in ds["emotion"]


def test_case4_two_visible_candidate_worksheets_are_an_error_naming_both(tmp_path):
    root = casme2_tree(tmp_path / "data", TWO_CLIPS)
    _add_sheet(root, "coding v2", "visible", first=False, emotion="fear")
    with pytest.raises(MERDataError) as err:
        _load(root, tmp_path)
    text = _one_line(err)
    assert "'Sheet' and 'coding v2'" in text and str(root / SHEET) in text


def test_case4_a_column_row_only_on_a_hidden_sheet_is_named(tmp_path):
    root = casme2_tree(tmp_path / "data", TWO_CLIPS)
    book = openpyxl.load_workbook(root / SHEET)
    book.create_sheet("notes").append(["nothing here"])
    book.worksheets[0].sheet_state = "hidden"
    book.active = 1
    book.save(root / SHEET)
    with pytest.raises(MERDataError) as err:
        _load(root, tmp_path)
    assert "only on hidden worksheet(s) 'Sheet'" in _one_line(err)


# ----------------------------------------------------------------------------- case 5: a 1 MB cell
def _csv_tree(tmp_path: Path, emotion: str) -> Path:
    root = casme2_tree(tmp_path / "data", TWO_CLIPS, sheet="csv")
    path = root / "CASME2-coding-20140508.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[1][-1] = emotion
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return root


@pytest.mark.parametrize("sheet", ["xlsx", "csv"])
def test_case5_a_huge_cell_is_cut_in_the_error_and_the_skip_report(tmp_path, capsys, sheet):
    """A 1 MB cell in an .xlsx (Excel keeps 32,767 characters of it) or a 100,000-character .csv cell."""
    if sheet == "xlsx":
        root = casme2_tree(tmp_path / "data", TWO_CLIPS)
        _set_cell(root, 2, "Estimated Emotion", "x" * 1_000_000)
        size = "32,767"
    else:
        root, size = _csv_tree(tmp_path, "x" * 100_000), "100,000"
    with pytest.raises(MERDataError) as err:
        _load(root, tmp_path)
    text = _one_line(err)
    assert "row 2: unknown emotion 'xxxx" in text and f"… ({size} characters)" in text
    capsys.readouterr()
    ds = _load(root, tmp_path / "skip", on_error="skip")
    [report] = skipped_clips(ds)
    assert len(report["reason"]) < 300 and f"… ({size} characters)" in report["reason"]
    assert len(ds.info.description) < 5000 and len(capsys.readouterr().out) < 2000


def test_case5_a_csv_cell_past_the_reader_limit_is_one_line_naming_the_sheet(tmp_path):
    root = _csv_tree(tmp_path, "x" * 1_000_000)
    with pytest.raises(MERDataError) as err:
        _load(root, tmp_path)
    assert str(root / "CASME2-coding-20140508.csv") in _one_line(err) and "field larger than field limit" in str(err.value)
