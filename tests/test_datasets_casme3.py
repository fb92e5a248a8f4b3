"""CAS(ME)^3 Part A long videos read from a generated tree in the distributed layout.

No real CAS(ME)^3 annotation rows are available to this project: the rows (tests/long_trees.py,
CASME3_A_ROWS) are made up in the documented format (tests/data/metadata/README.md, "Long videos"), the
sheet is a real legacy .xls written with xlwt and read with xlrd, and the frame folders have what the
real ones have: unpadded numbers starting above 1, gaps, depth maps beside the colour frames.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from long_trees import CASME3_A_FIRST, CASME3_A_HEADER, CASME3_A_ROWS, write_casme3_a_tree
from long_trees import build as build_long

import train
from dataset_scripts import load_mer_dataset
from dataset_scripts._long import NOT_ANNOTATED
from dataset_scripts._records import MERDataError
from dataset_scripts._skips import skipped_clips
from dataset_scripts.casme3_a import CASME3A, subject_name
from dataset_scripts.registry import DATASETS, dataset_names

SHEET = "CAS(ME)3_part_A_v2.xls"


def build(data_dir: Path, cache: Path, **options):
    return build_long(CASME3A, data_dir, cache, **options)


def by_video(ds) -> dict[str, dict]:
    return {row["video_id"]: row for row in ds}


def rows_with(edits: dict[int, dict[int, object]]) -> list[list]:
    """CASME3_A_ROWS with cells replaced: {row index: {column index: value}} (sheet row = index + 2)."""
    rows = [list(r) for r in CASME3_A_ROWS]
    for index, cells in edits.items():
        for column, value in cells.items():
            rows[index][column] = value
    return rows


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    root = write_casme3_a_tree(tmp_path_factory.mktemp("casme3_a"))
    return build(root, tmp_path_factory.mktemp("cache"))


def test_one_example_per_video_with_real_frame_numbers(full):
    videos = by_video(full)
    assert sorted(videos) == ["spNO.1_a", "spNO.1_b", "spNO.2_a", "spNO.3_c"]
    assert set(full["dataset"]) == {"casme3_a"} and set(full["fps"]) == {30.0}
    video = videos["spNO.1_a"]
    assert video["subject"] == "spNO.1"
    # colour frames only (depth/<n>.png is beside them), in numeric order, named by their real numbers
    assert all("/part_A/data/part_A/spNO.1/a/color/" in p and p.endswith(".jpg") for p in video["frames"])
    assert [int(Path(p).stem) for p in video["frames"]] == video["frame_numbers"]
    numbers = video["frame_numbers"]
    assert numbers[0] == CASME3_A_FIRST and numbers[-1] == 245 + 20 and video["num_frames"] == len(numbers)
    assert 119 in numbers and not {120, 121, 122, 210} & set(numbers) and 123 in numbers  # the gaps are kept
    assert video["events"] == [
        {"onset": 130, "apex": 136, "offset": 142, "type": "micro", "action_units": "4+7", "emotion": "disgust",
         "objective_class": "1"},
        {"onset": 200, "apex": 215, "offset": 245, "type": "macro", "action_units": "6+12", "emotion": "happy",
         "objective_class": "2"},
    ]
    # events sorted by onset although the sheet is not (spNO.2 a: 160 then 112)
    assert [e["onset"] for e in videos["spNO.2_a"]["events"]] == [112, 160]
    notes = full.info.description
    assert "4 video folder(s) have gaps in their frame numbering (13 frame(s) missing, 4 of them inside" in notes
    assert "spNO.1_a: 4 of 101..265" in notes and "depth/ maps are not read" in notes
    assert skipped_clips(full) == []


@pytest.mark.parametrize("variant", ["xlsx", "csv", "xlsx_named_xls", "title_rows", "spellings", "renamed"])
def test_sheet_variants_give_the_same_dataset(full, tmp_path, variant):
    options: dict = {
        "xlsx": {"sheet_format": "xlsx"},
        "csv": {"sheet_format": "csv"},
        "xlsx_named_xls": {"sheet_format": "xlsx_named_xls"},  # converted, then renamed back to .xls
        "title_rows": {"title_rows": 2},
        # Subject as spNO.1 / 1 / SPNO.1 / spNO1 / 2.0-like numbers, type in any case: one video each
        "spellings": {"rows": rows_with({0: {0: "1", 8: "MICRO-EXPRESSION"}, 1: {0: "SPNO.1", 8: "macro-expression"},
                                          2: {0: "spNO1"}, 3: {0: 2, 8: "micro-Expression"}, 5: {0: "spno.03"}})},
        "renamed": {"header": ["subject", "Video", "onset", "apex frame", "Offset Frame", "Action Units",
                               "Objective Class", "Emotion", "Type"]},
    }[variant]
    root = write_casme3_a_tree(tmp_path / "t", **options)
    ds = build(root, tmp_path / "cache")
    assert by_video(ds).keys() == by_video(full).keys()
    assert [v["events"] for v in ds] == [v["events"] for v in full], variant
    assert [v["frame_numbers"] for v in ds] == [v["frame_numbers"] for v in full]


def test_subject_spellings():
    assert [subject_name(x, "w") for x in ("spNO.1", "spno.12", "SPNO.007", "spNO1", "sp NO. 4", 3.0, "05")] == [
        "spNO.1", "spNO.12", "spNO.7", "spNO.1", "spNO.4", "spNO.3", "spNO.5"]
    with pytest.raises(MERDataError, match=r"w: Subject must be spNO.<number> or a number, got 'subject 1'"):
        subject_name("subject 1", "w")


def test_a_missing_optional_column_is_noted_and_a_missing_required_one_named(tmp_path):
    header = [h for h in CASME3_A_HEADER if h != "Objective class"]
    rows = [[c for k, c in enumerate(r) if k != 6] for r in CASME3_A_ROWS]
    ds = build(write_casme3_a_tree(tmp_path / "no_class", rows=rows, header=header), tmp_path / "c1")
    assert {e["objective_class"] for v in ds["events"] for e in v} == {""} and len(ds) == 4
    assert 'no Objective class column: those event fields are ""' in ds.info.description
    header = [h if h != "Expression type" else "Expression" + " kind" for h in CASME3_A_HEADER]  # renamed beyond recognition
    root = write_casme3_a_tree(tmp_path / "no_type", header=header, title_rows=1)
    for on_error in ("raise", "skip"):  # no rows to skip without the column: an error either way
        with pytest.raises(MERDataError) as caught:
            build(root, tmp_path / "c2", on_error=on_error)
        text = str(caught.value)
        assert "\n" not in text and f"{SHEET} sheet 'Sheet1' row 2: the column row has no Expression type column" in text
        assert "'Expression kind'" in text  # what it has


ALL = {"spNO.1_a", "spNO.1_b", "spNO.2_a", "spNO.3_c"}
VIDEO_OF_ROW = ["spNO.1_a", "spNO.1_a", "spNO.1_b", "spNO.2_a", "spNO.2_a", "spNO.3_c"]  # of CASME3_A_ROWS
# index in CASME3_A_ROWS (sheet row = index + 2), its edited cells, the tree's options, the video skipped, what
# the one line says
BAD = {
    "video folder missing": (2, {}, {"videos": {("spNO.1", "a"), ("spNO.2", "a"), ("spNO.3", "c")}}, "spNO.1_b",
                             "missing video folder"),
    "subject folder missing": (5, {}, {"videos": {("spNO.1", "a"), ("spNO.1", "b"), ("spNO.2", "a")}}, "spNO.3_c",
                               "missing subject folder: no folder for spNO.3"),
    "onset in a gap": (3, {2: 121, 3: 130, 4: 140}, {}, "spNO.2_a", "onset frame 121 is missing from"),
    "offset in a gap": (4, {4: 210}, {}, "spNO.2_a", "offset frame 210 is missing from"),
    "apex in a gap": (1, {3: 210}, {}, "spNO.1_a", "apex frame 210 is missing from"),
    "offset past the last frame": (2, {4: 400}, {"last": {("spNO.1", "b"): 172}}, "spNO.1_b",
                                   "event frames 140..400 lie outside the frames on disk (101..172"),
    "onset before the first frame": (5, {2: 50}, {}, "spNO.3_c",
                                     "event frames 50..163 lie outside the frames on disk (101..183"),
    "bad subject": (2, {0: "participant one"}, {}, "b", "Subject must be spNO.<number> or a number, got 'participant one'"),
    "bad filename": (2, {1: "b c"}, {}, "spNO.1_b c", "Filename must name a video folder such as a, got 'b c'"),
    "unknown type": (2, {8: "Meso-expression"}, {}, "spNO.1_b", "unknown expression type 'Meso-expression'"),
    "malformed onset": (2, {2: "n/a"}, {}, "spNO.1_b", "onset must be a frame number, got 'n/a'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_rows_are_one_line_naming_file_and_row_and_skip_goes_on(tmp_path, case):
    index, edits, tree, skipped, message = BAD[case]
    root = write_casme3_a_tree(tmp_path / "t", rows=rows_with({index: edits}), **tree)
    with pytest.raises(MERDataError) as caught:
        build(root, tmp_path / "cache")
    text = str(caught.value)
    assert "\n" not in text and message in text, text
    assert f"{SHEET} sheet 'Sheet1' row {index + 2}:" in text
    ds = build(root, tmp_path / "cache", on_error="skip")
    (bad,) = skipped_clips(ds)
    assert bad["clip_id"] == skipped and bad["where"].endswith(f"row {index + 2}") and message in bad["reason"]
    assert set(ds["video_id"]) == ALL - {VIDEO_OF_ROW[index]}  # the others are built (a bad Subject or Filename
    # cell leaves its video, spNO.1_b, without rows)


def test_an_apex_outside_its_event_is_kept_out_and_named(tmp_path):
    root = write_casme3_a_tree(tmp_path / "t", rows=rows_with({0: {3: 150}}))  # apex 150 after offset 142
    ds = build(root, tmp_path / "cache")
    (event,) = [e for e in by_video(ds)["spNO.1_a"]["events"] if e["onset"] == 130]
    assert (event["onset"], event["apex"], event["offset"]) == (130, NOT_ANNOTATED, 142)
    assert "1 event(s) give an apex outside [onset, offset]" in ds.info.description
    assert "row 2 (onset 130, apex 150, offset 142)" in ds.info.description


def test_a_missing_color_folder_is_not_replaced_by_depth(tmp_path):
    root = write_casme3_a_tree(tmp_path / "t")
    color = root / "part_A/data/part_A/spNO.1/b/color"
    for path in color.iterdir():
        path.unlink()
    color.rmdir()  # depth/ is still there: its PNGs must not become the frames
    with pytest.raises(MERDataError, match=r"row 4: missing frame folder .*spNO.1/b/color \(the RGB frames; depth/"):
        build(root, tmp_path / "cache")


def test_a_damaged_xls_is_one_line(tmp_path):
    root = write_casme3_a_tree(tmp_path / "t")
    (root / "part_A" / SHEET).write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 not a workbook")
    with pytest.raises(MERDataError, match=r"CAS\(ME\)3_part_A_v2\.xls: cannot read the sheet") as caught:
        build(root, tmp_path / "cache")
    assert "\n" not in str(caught.value)


def test_registered_as_a_long_dataset_and_taken_by_the_spotting_task(tmp_path):
    spec = DATASETS["casme3_a"]
    assert spec.kind == "long" and spec.class_sets == ("all",) and spec.research_only and "casme3_a" in dataset_names("long")
    assert (CASME3A.CITATION, CASME3A.LICENSE, CASME3A.DESCRIPTION) == (spec.citation, spec.license_text, spec.card_text)
    root = write_casme3_a_tree(tmp_path / "t", videos={("spNO.1", "a")})
    ds = load_mer_dataset("casme3_a", data_dir=root, cache_dir=str(tmp_path / "cache"), on_error="skip")
    assert list(ds["video_id"]) == ["spNO.1_a"] and len(skipped_clips(ds)) == 3
    run = train.parse_args(["--task", "spot", "--dataset", "casme3_a", "--data_dir", str(root)])
    assert (run.dataset, run.data_dir) == ("casme3_a", str(root))
    with pytest.raises(ValueError, match="needs data_dir"):
        load_mer_dataset("casme3_a", cache_dir=str(tmp_path / "c2"))
    with pytest.raises(MERDataError, match="distributed uncropped"):
        load_mer_dataset("casme3_a", data_dir=root, cache_dir=str(tmp_path / "c3"), release="cropped")
