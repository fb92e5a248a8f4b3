"""Bad inputs the builders meet in real copies: each is said exactly, never silently accepted (issue 15)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import datasets
import openpyxl
import pytest
from dataset_trees import casme2_tree, rows_of_subjects, smic_tree, table
from PIL import Image

from dataset_scripts import MERDataError, load_mer_dataset, skipped_clips
from modeling_mer.processing_mer import MERImageProcessor
from modeling_mer.training.preprocessing import preprocess_dataset
from modeling_mer.video_io import load_clip

datasets.disable_progress_bars()

TWO_CLIPS = [r for r in table("casme2_coding") if r["Subject"] == "1" and r["Filename"] in ("EP02_01f", "EP03_02")]
SHEET = "CASME2-coding-20140508.xlsx"


def _append_row(root: Path, change: dict[str, object] | None = None) -> None:
    path = root / SHEET
    book = openpyxl.load_workbook(path)
    header = [c.value for c in book.active[1]]
    row = [c.value for c in book.active[2]]
    for column, value in (change or {}).items():
        row[header.index(column)] = value
    book.active.append(row)
    book.save(path)


def test_identical_duplicate_row_is_built_once_and_said(tmp_path: Path) -> None:
    root = casme2_tree(tmp_path / "data", TWO_CLIPS)
    _append_row(root)  # row 4 repeats row 2
    ds = load_mer_dataset("casme2", root, cache_dir=str(tmp_path / "cache"), lazy=True, spot_apex=False)
    assert sorted(ds["clip_id"]) == ["EP02_01f", "EP03_02"] and skipped_clips(ds) == []
    assert f"clip sub01/EP02_01f is annotated identically in 2 rows ({root / SHEET} row 2; " in ds.info.description


def test_conflicting_rows_skip_the_clip_and_no_row_wins(tmp_path: Path) -> None:
    root = casme2_tree(tmp_path / "data", TWO_CLIPS)
    _append_row(root, {"Estimated Emotion": "disgust"})
    ds = load_mer_dataset("casme2", root, cache_dir=str(tmp_path / "cache"), lazy=True, on_error="skip")
    assert ds["clip_id"] == ["EP03_02"]
    [report] = skipped_clips(ds)
    assert (report["subject"], report["clip_id"], report["where"]) == ("sub01", "EP02_01f", f"{root / SHEET} row 4")
    assert "annotated 2 times with different values" in report["reason"] and "disgust" in report["reason"]


def test_sheet_path_leaving_the_subject_is_refused_in_skip_mode_too(tmp_path: Path) -> None:
    rows = rows_of_subjects(table("casme2_coding"), ["1", "2"])
    root = casme2_tree(tmp_path / "data", rows, frames=False)
    other = next(r for r in rows if r["Subject"] == "2")["Filename"]
    book = openpyxl.load_workbook(root / SHEET)
    book.active.cell(row=2, column=2, value=f"../sub02/{other}")
    book.save(root / SHEET)
    from dataset_scripts.casme2 import CASME2Source

    bad = [s for s in CASME2Source(root).specs() if not hasattr(s, "folder")]
    assert len(bad) == 1 and bad[0].subject == "sub01" and "not a clip folder name" in bad[0].reason


def test_symlink_loop_finds_the_sheet_once(tmp_path: Path) -> None:
    root = casme2_tree(tmp_path / "data", TWO_CLIPS)
    os.symlink(root, root / "loop")
    ds = load_mer_dataset("casme2", root, cache_dir=str(tmp_path / "cache"), lazy=True, spot_apex=False)
    assert len(ds) == 2


def test_smic_micro_that_is_a_file_is_an_error_or_a_reported_skip(tmp_path: Path) -> None:
    rows = rows_of_subjects(table("smic_hs_coding"), ["s1", "s2"])
    root = smic_tree(tmp_path / "data", [r for r in rows if r["Subject"] == "s1"])
    (root / "HS" / "s2").mkdir()
    (root / "HS" / "s2" / "micro").write_text("not a folder")
    with pytest.raises(MERDataError, match=r"folder .*s2: .*s2/micro is a file, not a folder of emotion folders"):
        load_mer_dataset("smic", root, cache_dir=str(tmp_path / "c1"), lazy=True, spot_apex=False)
    ds = load_mer_dataset("smic", root, cache_dir=str(tmp_path / "c2"), lazy=True, spot_apex=False, on_error="skip")
    assert set(ds["subject"]) == {"s1"}
    assert [(s["clip"], s["subject"]) for s in skipped_clips(ds)] == [("smic/s2", "s2")]


def _truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(buffer, format="JPEG")
    data = buffer.getvalue()
    return data[: len(data) // 2]


def test_truncated_jpeg_is_named_when_decoded(tmp_path: Path) -> None:
    root = casme2_tree(tmp_path / "data", TWO_CLIPS[:1])
    clip = root / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    good = Image.effect_noise((64, 64), 60).convert("RGB")
    for path in clip.iterdir():
        good.save(path, format="JPEG")
    (clip / "img59.jpg").write_bytes(_truncated_jpeg())
    with pytest.raises(MERDataError, match=r"row 2: unreadable image .*img59\.jpg"):  # embedded: decoded at build
        load_mer_dataset("casme2", root, cache_dir=str(tmp_path / "c1"))
    ds = load_mer_dataset("casme2", root, cache_dir=str(tmp_path / "c2"), lazy=True)  # lazy: headers only
    processor = MERImageProcessor(image_size=16, num_frames=2, crop="none")
    with pytest.raises(ValueError, match=r"casme2/sub01/EP02_01f: .*img59\.jpg.*cannot decode image"):
        preprocess_dataset(ds, processor)
    frames = load_clip(clip)  # predict's reading of a folder names the file too
    with pytest.raises(ValueError, match=r"img59\.jpg\): cannot decode image: image file is truncated"):
        frames[frames.frame_numbers.index(59)]
