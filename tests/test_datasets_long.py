"""CAS(ME)^2 and SAMM Long Videos read from official-layout trees built from their real annotation rows."""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from long_trees import (
    build,
    casme_sq_rows,
    casme_sq_rule1,
    samm_lv_rows,
    write_casme_sq_tree,
    write_samm_lv_tree,
)

from dataset_scripts import load_mer_dataset
from dataset_scripts._long import NOT_ANNOTATED, round_half_up
from dataset_scripts._records import MERDataError
from dataset_scripts._skips import skipped_clips
from dataset_scripts.casme_sq import CASMESq
from dataset_scripts.registry import DATASETS
from dataset_scripts.samm_lv import SAMMLV


def events_of(ds) -> list[dict]:
    return [event for events in ds["events"] for event in events]


def by_video(ds) -> dict[str, dict]:
    return {row["video_id"]: row for row in ds}


def casme_subset(participants: set[int]) -> tuple[list, list]:
    """The code rows and row-aligned naming rule1 rows of some participants."""
    pairs = [(r, q) for r, q in zip(casme_sq_rows(), casme_sq_rule1()) if r[0] in participants]
    return [r for r, _ in pairs], [q for _, q in pairs]


@pytest.fixture(scope="module")
def casme_full(tmp_path_factory):
    root = write_casme_sq_tree(tmp_path_factory.mktemp("casme_sq"))
    return build(CASMESq, root, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def samm_full(tmp_path_factory):
    root = write_samm_lv_tree(tmp_path_factory.mktemp("samm_lv"))
    return build(SAMMLV, root, tmp_path_factory.mktemp("cache"))


# -- the whole datasets ---------------------------------------------------------------------------


def test_casme_sq_counts_match_the_tables(casme_full):
    ds = casme_full
    events = events_of(ds)
    assert len(ds) == 95 and len(set(ds["subject"])) == 22
    assert len(events) == 357 and Counter(e["type"] for e in events) == {"macro": 300, "micro": 57}
    assert sum(any(e["type"] == "micro" for e in v) for v in ds["events"]) == 33
    assert Counter(e["emotion"] for e in events) == {"negative": 126, "positive": 124, "others": 82, "surprise": 25}
    assert set(ds["fps"]) == {30.0} and set(ds["dataset"]) == {"casme_sq"}
    micro = [e["offset"] - e["onset"] for e in events if e["type"] == "micro"]
    assert sum(micro) / len(micro) == pytest.approx(12.58, abs=0.01)  # the README's 12.6 frames


def test_casme_sq_example_layout(casme_full):
    video = by_video(casme_full)["15_0401"]  # s15 anger1 -> code 0401 -> rawpic/s15/15_0401girlcrashing
    assert video["subject"] == "s15"
    assert video["frames"][0].endswith("rawpic/s15/15_0401girlcrashing/img1.jpg")
    assert [int(Path(p).stem[3:]) for p in video["frames"]] == video["frame_numbers"]
    assert video["num_frames"] == len(video["frames"])
    assert video["events"][0] == {"onset": 557, "apex": 572, "offset": 608, "type": "macro",
                                  "action_units": "4+10+14", "emotion": "negative"}


def test_casme_sq_quirks(casme_full):
    videos = by_video(casme_full)
    # offset 0 (participant 1, anger2_1: 2155, 2163, 0): the event ends at its apex, as MEGC's code does
    assert {"onset": 2155, "apex": 2163, "offset": 2163}.items() <= videos["15_0402"]["events"][0].items()
    # apex 0 (participant 17 = s34, anger1_1: 1763, 0, 1787): not annotated
    (event,) = [e for e in videos["34_0401"]["events"] if e["onset"] == 1763]
    assert event["apex"] == NOT_ANNOTATED and event["offset"] == 1787
    # apex after the offset (participant 11 = s27, disgust1_5: 1221, 1230, 1224): interval kept, apex -1
    (event,) = [e for e in videos["27_0101"]["events"] if e["onset"] == 1221]
    assert (event["apex"], event["offset"]) == (NOT_ANNOTATED, 1224)
    # events sorted although the sheet is not (participant 2 = s16, disgust2: 187, 173, ...)
    for row in casme_full:
        onsets = [e["onset"] for e in row["events"]]
        assert onsets == sorted(onsets)
    assert [e["onset"] for e in videos["16_0102"]["events"]][:2] == [173, 187]
    notes = casme_full.info.description
    assert "44 event(s) have offset 0" in notes and "3 event(s) give an apex outside" in notes
    assert "row 170 (onset 1221, apex 1230, offset 1224)" in notes  # the sheet row that was changed
    assert "95 video folder(s) have gaps" in notes  # the endpoints-only tree: never silent


def test_samm_lv_counts_match_the_table(samm_full):
    ds = samm_full
    events = events_of(ds)
    assert len(ds) == 147 and len(set(ds["subject"])) == 30
    assert len(events) == 502 and Counter(e["type"] for e in events) == {"macro": 343, "micro": 159}
    assert sum(any(e["type"] == "micro" for e in v) for v in ds["events"]) == 79
    assert set(ds["fps"]) == {200.0} and {e["emotion"] for e in events} == {""}


def test_samm_lv_quirks(samm_full):
    videos = by_video(samm_full)
    first = videos["006_1"]
    assert first["subject"] == "006" and first["frames"][0].endswith("SAMM_longvideos/006_1/006_1_0001.jpg")
    # 566.4, 647.6, 743.2 rounded half up; sorted: 324 (row 4) comes first
    assert [e["onset"] for e in first["events"]] == sorted(e["onset"] for e in first["events"])
    (event,) = [e for e in first["events"] if e["action_units"] == "4(B/C)+7B"]
    assert (event["onset"], event["apex"], event["offset"]) == (566, 648, 743)
    # onset 0 (011_6_10: 0, 3323, 4123.4): starts at the first frame
    (event,) = [e for e in videos["011_6"]["events"] if e["apex"] == 3323]
    assert (event["onset"], event["offset"]) == (1, 4123)
    # apex -1 (010_1_3: 89, -1, 209)
    (event,) = [e for e in videos["010_1"]["events"] if e["onset"] == 89]
    assert event["apex"] == NOT_ANNOTATED
    notes = samm_full.info.description
    assert "177 row(s) give fractional frame numbers" in notes
    assert "10 event(s) have onset 0" in notes and "6 event(s) have no annotated apex" in notes


def test_round_half_up():
    assert [round_half_up(x) for x in (566.4, 566.5, 2.5, 647.6, 3.0, -1.0)] == [566, 567, 3, 648, 3, -1]


# -- distributed variants -------------------------------------------------------------------------


def test_casme_sq_variants(tmp_path):
    rows, rule1 = casme_subset({1})
    wanted = {("s15", "15_0401"), ("s15", "15_0101")}
    reference = None
    for name, options in {
        "plain": {},
        "casme_sheet_text_codes": {"code_sheet": "CASMEcode_final", "codes_as_text": True},
        "padded_full": {"pad": 3, "frames": "full"},
        "csv": {"as_csv": True},
    }.items():
        root = write_casme_sq_tree(tmp_path / name, rows=rows, rule1=rule1, videos=wanted, **options)
        ds = build(CASMESq, root, tmp_path / "cache", on_error="skip")
        got = {row["video_id"]: row["events"] for row in ds}
        assert set(got) == {"15_0401", "15_0101"}, name
        reference = reference or got
        assert got == reference, name
        if name == "padded_full":
            video = by_video(ds)["15_0401"]
            assert video["frames"][0].endswith("img001.jpg") and video["frame_numbers"][:3] == [1, 2, 3]
            assert "have gaps" not in ds.info.description
        assert len(skipped_clips(ds)) == 5  # the other 5 videos of s15 have no folder here
    # the cropped release, chosen explicitly
    root = write_casme_sq_tree(tmp_path / "cropped", rows=rows, rule1=rule1, videos=wanted, release="cropped")
    ds = build(CASMESq, root, tmp_path / "cache", on_error="skip", release="cropped")
    assert "/cropped/s15/" in ds[0]["frames"][0]


def test_casme_sq_sheets_by_position_are_noted(tmp_path):
    rows, rule1 = casme_subset({1})
    root = write_casme_sq_tree(tmp_path / "t", rows=rows, rule1=rule1, code_sheet="Sheet1")
    ds = build(CASMESq, root, tmp_path / "cache")
    assert "sheets taken by position" in ds.info.description and len(ds) == 7


def test_samm_lv_variants(tmp_path):
    header, rows = samm_lv_rows()
    rows = [r for r in rows if r[0] == "006"]
    results = []
    for name, options in {
        "v3": {},
        "v1_name": {"sheet_name": "SAMM_LongVideos_V1_Release.xlsx"},
        "no_notes": {"notes": False},
        "csv": {"as_csv": True},
    }.items():
        root = write_samm_lv_tree(tmp_path / name, rows=rows, **options)
        ds = build(SAMMLV, root, tmp_path / "cache")
        assert len(ds) == 7, name
        results.append(list(ds["events"]))
    assert all(r == results[0] for r in results)


def test_load_mer_dataset_dispatches_long_sets(tmp_path, capsys):
    assert DATASETS["casme_sq"].kind == DATASETS["samm_lv"].kind == "long"
    assert "research" in DATASETS["casme_sq"].license_text and DATASETS["samm_lv"].research_only
    rows, rule1 = casme_subset({1})
    root = write_casme_sq_tree(tmp_path / "t", rows=rows, rule1=rule1, videos={("s15", "15_0401")})
    ds = load_mer_dataset("casme_sq", data_dir=root, cache_dir=str(tmp_path / "cache"), on_error="skip")
    assert list(ds["video_id"]) == ["15_0401"]
    assert "Skipped 6 clip(s)" in capsys.readouterr().out
    assert len(skipped_clips(ds)) == 6


# -- bad input: one line naming the file and row, skip continues ------------------------------------


def _casme_bad(tmp_path, edit, videos=None):
    rows, rule1 = casme_subset({1})
    rows = [list(r) for r in rows]
    edit(rows, rule1)
    return write_casme_sq_tree(tmp_path / "t", rows=rows, rule1=rule1, videos=videos)


CASME_BAD = {
    # row index in participant 1's rows (sheet row = index + 1), edit, what the message says
    "malformed onset": (3, lambda rows, rule1: rows[3].__setitem__(2, "abc"), "onset must be a frame number, got 'abc'"),
    # a row naming no known video cannot take a video down with it: the video keeps its other events
    "unknown expression": (0, lambda rows, rule1: rows[0].__setitem__(1, "anger9_1"), "unknown expression 'anger9'"),
    "unknown type": (0, lambda rows, rule1: rows[0].__setitem__(7, "mega-expression"), "unknown expression type"),
    "unknown emotion": (0, lambda rows, rule1: rows[0].__setitem__(6, "joyful"), "unknown emotion 'joyful'"),
    "onset after offset": (1, lambda rows, rule1: rows[1].__setitem__(4, 2800), "onset 2854 is after offset 2800"),
    "offset and apex missing": (2, lambda rows, rule1: rows[2].__setitem__(3, 0), "no apex to end the event at"),
    "rule1 misaligned": (5, lambda rows, rule1: rule1[5].__setitem__(2, 2), "disagrees with naming rule1"),
    "past the last frame": (0, lambda rows, rule1: rows[0].__setitem__(4, 10**9), "lie outside the frames on disk"),
}


@pytest.mark.parametrize("case", sorted(CASME_BAD))
def test_casme_sq_bad_rows(tmp_path, case):
    index, edit, message = CASME_BAD[case]
    root = _casme_bad(tmp_path, edit)
    with pytest.raises(MERDataError) as caught:
        build(CASMESq, root, tmp_path / "cache")
    text = str(caught.value)
    assert "\n" not in text and message in text
    assert f"CAS(ME)^2code_final.xlsx sheet 'CASFEcode_final' row {index + 1}:" in text
    ds = build(CASMESq, root, tmp_path / "cache", on_error="skip")
    (bad,) = skipped_clips(ds)
    assert message in bad["reason"] and bad["where"].endswith(f"row {index + 1}")
    assert len(ds) == (7 if case == "unknown expression" else 6)  # s15's other videos (7 in all) are built


def test_casme_sq_missing_folder_and_frame(tmp_path):
    rows, rule1 = casme_subset({1})
    root = write_casme_sq_tree(tmp_path / "t", rows=rows, rule1=rule1, videos={("s15", "15_0401"), ("s15", "15_0402")})
    with pytest.raises(MERDataError, match=r"row 8: missing frame folder: no folder named 15_0101<description>"):
        build(CASMESq, root, tmp_path / "cache")
    (root / "rawpic/s15/15_0401girlcrashing/img572.jpg").unlink()  # the apex of row 1
    ds = build(CASMESq, root, tmp_path / "cache", on_error="skip")
    assert list(ds["video_id"]) == ["15_0402"]
    reasons = {b["clip_id"]: (b["where"], b["reason"]) for b in skipped_clips(ds)}
    where, reason = reasons["15_0401"]
    assert where.endswith("row 1") and "apex frame 572 is missing from" in reason and "\n" not in reason
    assert len(reasons) == 6  # 15_0401 and the five videos without a folder


def test_a_huge_offset_allocates_nothing(tmp_path):
    rows, rule1 = casme_subset({1})
    rows = [list(r) for r in rows]
    rows[0][4] = 2**31 - 1
    root = write_casme_sq_tree(tmp_path / "t", rows=rows, rule1=rule1, videos={("s15", "15_0401")})
    from dataset_scripts._long import make_long_example

    source = CASMESq(data_dir=str(root), cache_dir=str(tmp_path / "c")).source()
    (spec,) = [s for s in source.read() if getattr(s, "video_id", "") == "15_0401"]
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(MERDataError, match=r"row 1: event frames 557\.\.2147483647 lie outside"):
        make_long_example(spec)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2_000_000 and time.perf_counter() - start < 1.0
    rows[0][4] = 2**31  # beyond int32: a bad cell
    root = write_casme_sq_tree(tmp_path / "u", rows=rows, rule1=rule1, videos={("s15", "15_0401")})
    with pytest.raises(MERDataError, match="row 1: offset 2147483648 is beyond any frame"):
        build(CASMESq, root, tmp_path / "cache")


SAMM_BAD = {
    "duration": (lambda r: r.__setitem__(6, 999), "Duration 999 disagrees with Offset - Onset + 1 = 177.8"),
    "filename": (lambda r: r.__setitem__(1, "006-1-1"), "Filename must be <subject>_<video>_<event>"),
    "apex text": (lambda r: r.__setitem__(4, "n/a"), "apex must be a frame number, got 'n/a'"),
    "negative onset": (lambda r: r.__setitem__(3, -5), "onset must be a frame number (or -1: not annotated), got -5"),
    "type": (lambda r: r.__setitem__(7, "Meso"), "unknown expression type 'Meso'"),
    "subject mismatch": (lambda r: r.__setitem__(0, "007"), "Filename 006_1_1 does not belong to Subject 007"),
}


@pytest.mark.parametrize("case", sorted(SAMM_BAD))
def test_samm_lv_bad_rows(tmp_path, case):
    edit, message = SAMM_BAD[case]
    header, rows = samm_lv_rows()
    rows = [list(r) for r in rows if r[0] == "006"]
    edit(rows[0])  # 006_1_1, Excel row 11 (nine notes, the column row)
    root = write_samm_lv_tree(tmp_path / "t", rows=rows)
    with pytest.raises(MERDataError) as caught:
        build(SAMMLV, root, tmp_path / "cache")
    text = str(caught.value)
    assert "\n" not in text and message in text
    assert "SAMM_LongVideos_V3_Release.xlsx sheet 'FACS_Movement_Only' row 11:" in text
    ds = build(SAMMLV, root, tmp_path / "cache", on_error="skip")
    (bad,) = skipped_clips(ds)
    assert bad["where"].endswith("row 11") and message in bad["reason"]
    assert len(ds) == 7 - (0 if case == "filename" else 1)


def test_samm_lv_missing_video_folder(tmp_path):
    header, rows = samm_lv_rows()
    rows = [r for r in rows if r[0] == "006"]
    root = write_samm_lv_tree(tmp_path / "t", rows=rows, videos={"006_1", "006_2"})
    with pytest.raises(MERDataError, match=r"row 21: missing frame folder .*006_3"):
        build(SAMMLV, root, tmp_path / "cache")
    ds = build(SAMMLV, root, tmp_path / "cache", on_error="skip")
    assert sorted(ds["video_id"]) == ["006_1", "006_2"]
    assert sorted(b["clip_id"] for b in skipped_clips(ds)) == ["006_3", "006_4", "006_5", "006_6", "006_7"]


def test_no_sheet_says_what_it_looked_for(tmp_path):
    (tmp_path / "rawpic" / "s15").mkdir(parents=True)
    with pytest.raises(MERDataError, match="no casme_sq coding sheet found"):
        build(CASMESq, tmp_path, tmp_path / "cache")


def test_a_damaged_workbook_is_one_line(tmp_path):
    root = write_samm_lv_tree(tmp_path / "t", rows=[r for r in samm_lv_rows()[1] if r[0] == "006"])
    (root / "SAMM_LongVideos_V3_Release.xlsx").write_bytes(b"PK\x03\x04 not a workbook")
    with pytest.raises(MERDataError, match=r"SAMM_LongVideos_V3_Release\.xlsx: cannot read the sheet") as caught:
        build(SAMMLV, root, tmp_path / "cache")
    assert "\n" not in str(caught.value)


def test_hidden_sheets_are_passed_over(tmp_path):
    import openpyxl

    rows, rule1 = casme_subset({1})
    root = write_casme_sq_tree(tmp_path / "t", rows=rows, rule1=rule1, code_sheet="Sheet1")
    path = root / "CAS(ME)^2code_final.xlsx"
    book = openpyxl.load_workbook(path)
    hidden = book.create_sheet("scratch", 0)  # a hidden first sheet must not be taken for the code sheet
    hidden.append([99, "junk_1", 1, 2, 3])
    hidden.sheet_state = "hidden"
    book.save(path)
    ds = build(CASMESq, root, tmp_path / "cache")
    assert len(ds) == 7 and "code 'Sheet1'" in ds.info.description
