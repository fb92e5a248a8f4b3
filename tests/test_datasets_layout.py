"""The builder package's own structure: one frame listing shared with predict, a cache key per builder
computed from its own code and what it imports, structured skip records."""

from __future__ import annotations

import pickle
from pathlib import Path

from dataset_trees import frame_bytes

from dataset_scripts._clips import list_frames
from dataset_scripts._records import BadClip, MERDataError
from dataset_scripts._source_hash import source_files, source_hash
from modeling_mer.video_io import IMAGE_SUFFIXES, list_frame_folder


def names(module: str, leave_out: tuple[str, ...] = ()) -> set[str]:
    return {p.name for p in source_files(module, leave_out)}


def test_a_builders_cache_key_covers_its_own_code_and_what_it_imports() -> None:
    casme2 = names("dataset_scripts.casme2")
    assert {"casme2.py", "_builder.py", "_clips.py", "_sources.py", "_sheets.py", "registry.py"} <= casme2
    assert {"video_io.py", "apex_spotting.py", "optical_flow.py", "configuration_mer.py"} <= casme2  # from modeling_mer
    # What the CASME II build never runs does not invalidate its cache: the synthetic generators, the other
    # datasets, the model files no builder imports (the aggregators, the model).
    assert not casme2 & {"synthetic.py", "_face_renderer.py", "_synthetic_demo.py", "samm.py", "casme_sq.py",
                         "aggregators.py", "modeling_mer.py", "megc2019_composite_3class.csv"}
    # The composite's key covers its parts and the shipped official list it reads.
    assert {"composite.py", "casme2.py", "samm.py", "smic.py", "megc2019_composite_3class.csv"} <= names("dataset_scripts.composite")
    # Each synthetic mode: the builder, its own generator and the face renderer, none of the real builders.
    demo = names("dataset_scripts.synthetic", ("dataset_scripts._synthetic_realistic",))
    realistic = names("dataset_scripts.synthetic", ("dataset_scripts._synthetic_demo",))
    assert {"synthetic.py", "_synthetic_demo.py", "_face_renderer.py"} <= demo and "_synthetic_realistic.py" not in demo
    assert {"synthetic.py", "_synthetic_realistic.py", "_face_renderer.py"} <= realistic and "_synthetic_demo.py" not in realistic
    assert not (demo | realistic) & {"_builder.py", "casme2.py", "aggregators.py"}
    long = names("dataset_scripts._synthetic_long")
    assert {"_synthetic_long_plan.py", "_synthetic_long_video.py", "_face_renderer.py", "casme_sq_code_final.csv"} <= long
    assert not long & {"synthetic.py", "_synthetic_demo.py", "_synthetic_realistic.py", "aggregators.py"}
    assert len(source_hash("dataset_scripts.casme2")) == 16
    assert source_hash("dataset_scripts.casme2") != source_hash("dataset_scripts.samm")


def test_every_builder_is_keyed_on_its_own_module(tmp_path: Path) -> None:
    from dataset_scripts import CASME2, SAMM
    from dataset_scripts._synthetic_long import SyntheticLong
    from dataset_scripts.synthetic import SyntheticMER

    cache = str(tmp_path)
    for builder, module in ((CASME2, "dataset_scripts.casme2"), (SAMM, "dataset_scripts.samm")):
        assert builder(data_dir=str(tmp_path), cache_dir=cache).hash == source_hash(module)
    assert SyntheticLong(cache_dir=cache).hash == source_hash("dataset_scripts._synthetic_long")
    assert SyntheticMER(cache_dir=cache).hash == source_hash("dataset_scripts.synthetic", ["dataset_scripts._synthetic_realistic"])
    realistic = SyntheticMER(cache_dir=cache, mode="realistic").hash
    assert realistic == source_hash("dataset_scripts.synthetic", ["dataset_scripts._synthetic_demo"])
    assert realistic == SyntheticMER(cache_dir=cache, config_name="realistic").hash != SyntheticMER(cache_dir=cache).hash


def test_an_edit_changes_the_keys_of_the_builders_that_run_it_only(tmp_path: Path, monkeypatch) -> None:
    """The hash reads the files as they are now: editing the face renderer changes the synthetic keys, not
    CASME II's; editing an aggregator changes none."""
    import dataset_scripts._source_hash as keys

    modules = {"casme2": ("dataset_scripts.casme2", ()), "samm": ("dataset_scripts.samm", ()),
               "demo": ("dataset_scripts.synthetic", ("dataset_scripts._synthetic_realistic",)),
               "long": ("dataset_scripts._synthetic_long", ())}
    before = {name: keys.source_hash(*args) for name, args in modules.items()}
    read_bytes = Path.read_bytes

    def edited(target: str):
        def read(path: Path) -> bytes:
            return read_bytes(path) + (b"# edited\n" if path.name == target else b"")
        return read

    monkeypatch.setattr(Path, "read_bytes", edited("_face_renderer.py"))
    after = {name: keys.source_hash(*args) for name, args in modules.items()}
    assert [name for name in modules if after[name] != before[name]] == ["demo", "long"]
    monkeypatch.setattr(Path, "read_bytes", edited("aggregators.py"))
    assert {name: keys.source_hash(*args) for name, args in modules.items()} == before
    monkeypatch.setattr(Path, "read_bytes", edited("_sheets.py"))
    assert {name for name in modules if keys.source_hash(*modules[name]) != before[name]} == {"casme2", "samm", "long"}


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
