"""The builder package's own structure: one frame listing shared with predict, a cache key computed from
every module, structured skip records."""

from __future__ import annotations

import pickle
from pathlib import Path

from dataset_trees import frame_bytes

import dataset_scripts
from dataset_scripts._builder import source_files, source_hash
from dataset_scripts._clips import list_frames
from dataset_scripts._records import BadClip, MERDataError
from modeling_mer.video_io import IMAGE_SUFFIXES, list_frame_folder


def test_cache_key_covers_every_module_and_what_it_imports() -> None:
    package = Path(dataset_scripts.__file__).parent
    hashed = set(source_files())
    own = {p.resolve() for p in package.iterdir() if p.suffix in (".py", ".csv")}
    assert own <= hashed, f"left out of the cache key: {sorted(p.name for p in own - hashed)}"
    names = {p.name for p in hashed}
    assert {"video_io.py", "optical_flow.py", "configuration_mer.py"} <= names  # imported from modeling_mer
    assert "modeling_mer.py" not in names  # what the builders never import does not invalidate their cache
    assert len(source_hash()) == 16


def test_builders_list_frames_like_predict(tmp_path: Path) -> None:
    for number, suffix in enumerate(sorted(IMAGE_SUFFIXES), start=8):
        (tmp_path / f"img{number}{suffix}").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a frame")
    files, numbers = list_frame_folder(tmp_path)
    assert list_frames(tmp_path, "sheet row 2") == dict(zip(numbers, files))
    assert len(files) == len(IMAGE_SUFFIXES)  # .webp, .pgm, .ppm too: what predict reads, the builders read


def test_frame_listing_errors_name_the_row(tmp_path: Path) -> None:
    (tmp_path / "img1.jpg").write_bytes(frame_bytes("JPEG"))
    (tmp_path / "frame1.png").write_bytes(frame_bytes("PNG"))
    try:
        list_frames(tmp_path, "sheet.xlsx row 4")
    except MERDataError as error:
        assert str(error).startswith("sheet.xlsx row 4: ") and "same number" in str(error)
        assert error.where == "sheet.xlsx row 4"
    else:
        raise AssertionError("two frames numbered 1 were accepted")


def test_skip_records_are_structured() -> None:
    error = MERDataError("missing clip folder /x", where="s.xlsx row 3")
    bad = BadClip.from_error("casme2", "sub01", "EP02_01f", "s.xlsx row 3", error)
    assert bad.as_dict() == {
        "clip": "casme2/sub01/EP02_01f", "dataset": "casme2", "subject": "sub01", "clip_id": "EP02_01f",
        "where": "s.xlsx row 3", "reason": "missing clip folder /x",
    }
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.where, again.reason) == (str(error), error.where, error.reason)
