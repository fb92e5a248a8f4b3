"""Builds on multi-subject trees in the official layouts: examples, frame order, cache, errors, skip mode."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import datasets
import pytest
from dataset_trees import (
    casme2_tree,
    frame_bytes,
    moving_frame,
    rows_of_subjects,
    samm_tree,
    smic_tree,
    table,
)

import dataset_scripts
from dataset_scripts import MERDataError, load_mer_dataset, skipped_clips

datasets.disable_progress_bars()

CASME2_ROWS = rows_of_subjects(table("casme2_coding"), ["1", "2"])
SLASH = "EP19_06f"  # sub01, frames 36..161: apex "/" in the sheet, estimated by apex spotting


def _paths(dataset: datasets.Dataset, index: int) -> list[str]:
    undecoded = dataset.cast_column("frames", datasets.List(datasets.Image(decode=False)))
    return [frame["path"] for frame in undecoded[index]["frames"]]


@pytest.fixture(scope="module")
def casme2_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = casme2_tree(tmp_path_factory.mktemp("casme2"), CASME2_ROWS, slash_apex=[SLASH], margin=2)
    clip = root / "CASME2_RAW_selected" / "sub01" / SLASH
    for n in range(36, 162):  # a bright square that moves until frame 46 and then rests there
        (clip / f"img{n}.jpg").write_bytes(moving_frame(n - 36))
    return root


def test_casme2_build_examples_in_frame_order(casme2_root: Path, tmp_path: Path) -> None:
    ds = load_mer_dataset("casme2", casme2_root, cache_dir=str(tmp_path))
    five = [r for r in CASME2_ROWS if r["Emotion"] not in ("sadness", "fear")]
    assert len(ds) == len(five) == 22
    assert Counter(ds.features["label"].int2str(ds["label"])) == Counter(r["Emotion"] for r in five)
    assert set(ds["subject"]) == {"sub01", "sub02"} and set(ds["fps"]) == {200.0}
    for i, row in enumerate(five):
        example = ds[i]
        onset, offset = int(row["OnsetFrame"]), int(row["OffsetFrame"])
        assert (example["clip_id"], example["onset"], example["offset"]) == (row["Filename"], onset, offset)
        assert example["frame_numbers"] == list(range(onset, offset + 1))  # margin frames left out
        assert (example["emotion"], example["action_units"]) == (row["Emotion"], row["Aus"])
        if row["Filename"] != SLASH:
            assert (example["apex"], example["apex_source"]) == (int(row["ApexFrame"]), "annotated")
    crossing = next(i for i, r in enumerate(five) if int(r["OnsetFrame"]) < 100 < int(r["OffsetFrame"]))
    names = _paths(ds, crossing)
    assert names == [f"sub01/{five[crossing]['Filename']}/img{n}.jpg" for n in ds[crossing]["frame_numbers"]]
    assert ds[0]["frames"][0].size == (8, 8)
    slash = ds[[r["Filename"] for r in five].index(SLASH)]
    assert slash["apex_source"] == "estimated" and 37 <= slash["apex"] <= 161


def test_missing_apex_midpoint_when_spotting_is_off(casme2_root: Path, tmp_path: Path) -> None:
    ds = load_mer_dataset("casme2", casme2_root, cache_dir=str(tmp_path), spot_apex=False, lazy=True)
    slash = ds[[c for c in ds["clip_id"]].index(SLASH)]
    assert (slash["apex"], slash["apex_source"]) == (36 + (161 - 36) // 2, "estimated")
    assert all(Path(p).is_file() for p in slash["frames"]) and slash["frames"][0].endswith("img36.jpg")


def test_cache_is_reused_without_rebuilding(casme2_root: Path, tmp_path: Path, monkeypatch) -> None:
    first = load_mer_dataset("casme2", casme2_root, cache_dir=str(tmp_path), class_set="all", lazy=True, spot_apex=False)
    assert len(first) == len(CASME2_ROWS)

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached build was regenerated")

    monkeypatch.setattr(dataset_scripts._builder, "make_example", no_rebuild)
    second = load_mer_dataset("casme2", casme2_root, cache_dir=str(tmp_path), class_set="all", lazy=True, spot_apex=False)
    assert second["clip_id"] == first["clip_id"] and second.cache_files == first.cache_files
    with pytest.raises(datasets.exceptions.DatasetGenerationError) as rebuilt:  # another option: another build
        load_mer_dataset("casme2", casme2_root, cache_dir=str(tmp_path), class_set="5class", lazy=True, spot_apex=False)
    assert "regenerated" in str(rebuilt.value.__cause__)


def test_samm_build(tmp_path: Path) -> None:
    rows = rows_of_subjects(table("samm_coding"), ["006", "007"])
    root = samm_tree(tmp_path / "data", rows, margin=3)
    ds = load_mer_dataset("samm", root, cache_dir=str(tmp_path / "cache"), class_set="all")
    assert len(ds) == len(rows) and set(ds["subject"]) == {"006", "007"}
    assert ds.features["label"].names == sorted({r["Emotion"].lower() for r in rows})
    first = ds[0]
    assert first["frame_numbers"][0] == 5562 and first["frame_numbers"][-1] == 5632
    assert _paths(ds, 0)[0] == "006/006_1_2/006_05562.jpg" and first["frames"][0].mode == "L"


def test_smic_cropped_build_midpoint_matches_table(tmp_path: Path) -> None:
    rows = rows_of_subjects(table("smic_hs_coding"), ["s1", "s2"])
    root = smic_tree(tmp_path / "data", rows, cropped=True)
    smic_tree(tmp_path / "data", rows[:1])  # the raw release too: release= picks one
    ds = load_mer_dataset("smic", root, cache_dir=str(tmp_path / "cache"), spot_apex=False, release="cropped")
    assert len(ds) == len(rows) and set(ds["fps"]) == {100.0}
    by_clip = {r["Filename"]: r for r in rows}
    for example in ds:
        row = by_clip[example["clip_id"]]
        assert (example["onset"], example["apex"], example["offset"]) == tuple(
            int(row[c]) for c in ("OnsetFrame", "ApexFrame", "OffsetFrame")
        )  # the table's SMIC apex is floor((onset + offset) / 2)
        assert example["apex_source"] == "estimated" and example["emotion"] == row["Emotion"]
    assert _paths(ds, 0)[0].startswith("s1/micro/negative/s1_ne_01/reg_image")
    assert "cropped release" in ds.info.description


# -- bad input --------------------------------------------------------------------------------------

ONE_CLIP = [r for r in CASME2_ROWS if r["Filename"] == "EP02_01f"]  # sub01, frames 46..86, apex 59


def _edit_sheet(root: Path, column: str, value: object) -> None:
    import openpyxl

    path = root / "CASME2-coding-20140508.xlsx"
    book = openpyxl.load_workbook(path)
    sheet = book.active
    index = [c.value for c in sheet[1]].index(column) + 1
    sheet.cell(row=2, column=index, value=value)
    book.save(path)


CLIP = Path("CASME2_RAW_selected") / "sub01" / "EP02_01f"
BAD_INPUTS = {
    "missing folder": (lambda r: (r / CLIP).rename(r / "moved"), r"row 2: missing clip folder .*EP02_01f"),
    "missing frame": (lambda r: (r / CLIP / "img60.jpg").unlink(), r"row 2: 1 missing frame\(s\) .*: 60"),
    "unreadable image": (
        lambda r: (r / CLIP / "img50.jpg").write_bytes(b"not a jpeg"),
        r"row 2: unreadable image .*img50\.jpg",
    ),
    "onset after offset": (lambda r: _edit_sheet(r, "OnsetFrame", 90), r"row 2: onset 90 is not before offset 86"),
    "apex outside": (lambda r: _edit_sheet(r, "ApexFrame", 99), r"row 2: apex 99 lies outside the clip \[46, 86\]"),
    "unknown emotion": (lambda r: _edit_sheet(r, "Estimated Emotion", "hapiness"), r"row 2: unknown emotion 'hapiness'"),
}


def _conflicting_row(root: Path) -> None:
    import openpyxl

    path = root / "CASME2-coding-20140508.xlsx"
    book = openpyxl.load_workbook(path)
    book.active.append([c.value if c.value != "happiness" else "disgust" for c in book.active[2]])
    book.save(path)


def _two_sizes(root: Path) -> None:
    from PIL import Image

    Image.new("RGB", (10, 8), 128).save(root / CLIP / "img70.jpg")


BAD_INPUTS["clip annotated twice, differently"] = (
    _conflicting_row,
    r"row 3: clip sub01/EP02_01f is annotated 2 times with different values \(row 2: .*happiness.*; row 3: .*disgust",
)
BAD_INPUTS["path outside the subject"] = (
    lambda r: _edit_sheet(r, "Filename", "../sub02/EP01_11f"),
    r"row 2: Filename '\.\./sub02/EP01_11f' is not a clip folder name",
)
BAD_INPUTS["frames of two sizes"] = (_two_sizes, r"row 2: .*EP02_01f: frame 24 \(frame number 70\) is 10x8")


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_file_and_row(tmp_path: Path, case: str) -> None:
    root = casme2_tree(tmp_path / "data", ONE_CLIP)
    damage, message = BAD_INPUTS[case]
    damage(root)
    cache = tmp_path / "cache"
    with pytest.raises(MERDataError, match=message) as error:
        load_mer_dataset("casme2", root, cache_dir=str(cache))
    assert "CASME2-coding-20140508.xlsx row" in str(error.value)
    leftovers = [p for p in cache.rglob("*") if p.name == "dataset_info.json" or p.name.endswith(".incomplete")]
    assert leftovers == [], "a failed build left a half-written cache"


def test_failed_build_leaves_no_cache_and_retry_builds(tmp_path: Path) -> None:
    root = casme2_tree(tmp_path / "data", ONE_CLIP)
    (root / CLIP / "img60.jpg").unlink()
    with pytest.raises(MERDataError):
        load_mer_dataset("casme2", root, cache_dir=str(tmp_path / "cache"), lazy=True)
    (root / CLIP / "img60.jpg").write_bytes(frame_bytes("JPEG"))
    ds = load_mer_dataset("casme2", root, cache_dir=str(tmp_path / "cache"), lazy=True)
    assert ds[0]["frame_numbers"] == list(range(46, 87))


def test_skip_mode_reports_every_skipped_clip(tmp_path: Path, capsys) -> None:
    rows = rows_of_subjects(table("casme2_coding"), ["1"])
    root = casme2_tree(tmp_path / "data", rows)
    clips = root / "CASME2_RAW_selected" / "sub01"
    (clips / "EP03_02" / "img140.jpg").unlink()
    (clips / "EP04_02" / "img30.jpg").write_bytes(b"broken")
    _edit_sheet(root, "Estimated Emotion", "hapiness")  # EP02_01f, sheet row 2
    ds = load_mer_dataset("casme2", root, cache_dir=str(tmp_path / "cache"), on_error="skip", lazy=True)
    five = [r for r in rows if r["Emotion"] not in ("sadness", "fear")]
    assert len(ds) == len(five) - 3 and not {"EP02_01f", "EP03_02", "EP04_02"} & set(ds["clip_id"])
    report = skipped_clips(ds)
    assert [s["clip"] for s in report] == ["casme2/sub01/EP02_01f", "casme2/sub01/EP03_02", "casme2/sub01/EP04_02"]
    assert "unknown emotion" in report[0]["reason"] and "missing frame" in report[1]["reason"]
    assert "unreadable image" in report[2]["reason"] and report[1]["where"].endswith("row 3")
    printed = capsys.readouterr().out
    assert "Skipped 3 clip(s)" in printed and "img30.jpg" in printed
    again = load_mer_dataset("casme2", root, cache_dir=str(tmp_path / "cache"), on_error="skip", lazy=True)
    assert skipped_clips(again) == report and "Skipped 3 clip(s)" in capsys.readouterr().out
    assert json.loads(json.dumps(report)) == report


def test_load_mer_dataset_arguments(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'casme3'"):
        load_mer_dataset("casme3", tmp_path)
    with pytest.raises(ValueError, match="needs data_dir"):
        load_mer_dataset("samm")
    with pytest.raises(ValueError, match="a mapping"):
        load_mer_dataset("composite", tmp_path)
    with pytest.raises(ValueError, match="unknown option.s. frames_per_clip for smic"):
        load_mer_dataset("smic", tmp_path, frames_per_clip=3)
