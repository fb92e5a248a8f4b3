"""Issue 21, cases 19-20: a cut or emptied Arrow file in the datasets cache -- the built set, the flow
table, the frame-embedding store -- is named on stderr, removed and computed again by the next run."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import numpy as np
import pytest
from dataset_trees import casme2_tree, table

from dataset_scripts import load_mer_dataset
from dataset_scripts._cache import arrow_problem, map_cache_files
from modeling_mer import MERConfig, MERForVideoClassification
from modeling_mer.processing_mer import MERImageProcessor
from modeling_mer.training.features import EMBEDDINGS, frame_embedding_store
from modeling_mer.training.preprocessing import preprocess_dataset

datasets.disable_progress_bars()

SMALL = {"num_subjects": 2, "clips_per_subject": 3, "num_frames": 6, "image_size": 32}
DAMAGE = {"emptied": lambda size: 0, "cut in half": lambda size: size // 2}


def damage(path: Path, how: str) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(DAMAGE[how](path.stat().st_size))


def synthetic(cache: Path) -> datasets.Dataset:
    return load_mer_dataset("synthetic", cache_dir=str(cache), class_set="3class", **SMALL)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, datasets.Dataset]:
    cache = tmp_path_factory.mktemp("synthetic_cache")
    return cache, synthetic(cache)


def test_arrow_check_tells_whole_from_cut_files(tmp_path):
    data = datasets.Dataset.from_dict({"x": list(range(5000))})
    data.save_to_disk(tmp_path / "d")
    [path] = (tmp_path / "d").glob("*.arrow")
    assert arrow_problem(path) is None and arrow_problem(path, 5000) is None
    assert "holds 5,000 rows where 6,000 were written" in arrow_problem(path, 6000)
    damage(path, "cut in half")
    assert "Expected to be able to read" in arrow_problem(path)


# ------------------------------------------------------------------------------- case 20: the built set
@pytest.mark.parametrize("how", list(DAMAGE))
def test_case20_damaged_built_set_is_named_and_rebuilt(built, tmp_path, capsys, how):
    cache, reference = built
    work = tmp_path / "cache"
    import shutil

    shutil.copytree(cache, work)
    [arrow] = [p for p in work.rglob("*.arrow") if ".incomplete" not in str(p)]
    damage(arrow, how)
    capsys.readouterr()
    again = synthetic(work)
    err = capsys.readouterr().err
    assert f"warning: the built dataset in {arrow.parent} is damaged ({arrow.name}: " in err, err
    assert "it is removed and built again" in err and err.count("warning:") == 1
    assert again["clip_id"] == reference["clip_id"] and again["label"] == reference["label"]
    assert arrow_problem(arrow, len(reference)) is None
    synthetic(work)  # the rebuilt cache is whole: reused silently
    assert "warning" not in capsys.readouterr().err


def test_case20_a_real_dataset_build_cut_in_half_is_rebuilt(tmp_path, capsys):
    rows = [r for r in table("casme2_coding") if r["Subject"] == "1"][:3]
    root = casme2_tree(tmp_path / "data", rows)
    first = load_mer_dataset("casme2", root, cache_dir=str(tmp_path / "cache"), class_set="all", spot_apex=False)
    clips, frame = first["clip_id"], first[0]["frames"][0]
    del first  # read before the cut: a file cut under a live memory map is a bus error when read
    [arrow] = list((tmp_path / "cache").rglob("*.arrow"))
    damage(arrow, "cut in half")
    again = load_mer_dataset("casme2", root, cache_dir=str(tmp_path / "cache"), class_set="all", spot_apex=False)
    assert "warning: the built dataset in" in capsys.readouterr().err
    assert again["clip_id"] == clips and again[0]["frames"][0] == frame


# ------------------------------------------------------------------------------ case 19: the flow table
@pytest.mark.parametrize("num_proc", [1, 2])
@pytest.mark.parametrize("how", list(DAMAGE))
def test_case19_damaged_flow_table_is_named_and_computed_again(built, tmp_path, capsys, how, num_proc):
    _, raw = built
    scale = 1.0 + num_proc + list(DAMAGE).index(how) / 2  # a cache of its own for each case
    processor = MERImageProcessor(image_size=32, num_frames=3, crop="none", encoding="uv", spot_size=16, uv_scale=scale)
    first = preprocess_dataset(raw, processor, num_proc=num_proc)
    files = [Path(f["filename"]) for f in first.cache_files]
    assert len(files) == num_proc and all(f.parent == Path(raw.cache_files[0]["filename"]).parent for f in files)
    reference = np.array(first.with_format("numpy")["flow"])
    del first
    damage(files[-1], how)
    capsys.readouterr()
    again = preprocess_dataset(raw, processor, num_proc=num_proc)
    err = capsys.readouterr().err
    assert f"warning: the cached flow table {files[0].parent}" in err, err
    assert "is removed and computed again" in err and err.count("warning:") == 1
    assert np.array_equal(np.asarray(again.with_format("numpy")["flow"]), reference)
    assert all(arrow_problem(f) is None for f in files)
    for group in map_cache_files(files[0] if num_proc == 1 else str(files[0]).split("_00000_of_")[0] + ".arrow").values():
        assert all(arrow_problem(f) is None for f in group)
    preprocess_dataset(raw, processor, num_proc=num_proc)
    assert "warning" not in capsys.readouterr().err


# -------------------------------------------------------------------------- the frame-embedding store
@pytest.mark.parametrize("how", list(DAMAGE))
def test_damaged_feature_store_is_named_and_computed_again(tmp_path, capsys, how):
    rng = np.random.default_rng(0)
    features = datasets.Features({"flow": datasets.Array4D((3, 2, 32, 32), "float16")})
    data = datasets.Dataset.from_dict({"flow": (rng.standard_normal((6, 3, 2, 32, 32))).astype(np.float16)}, features=features)
    config = MERConfig.from_preset("tiny", labels=["a", "b", "c"], num_frames=3, freeze_spatial=True)
    model = MERForVideoClassification(config)
    processor = MERImageProcessor(image_size=32, num_frames=3, crop="none", encoding="uv")
    first, report = frame_embedding_store(data, model, processor, mirrored=False, cache_dir=tmp_path)
    path = Path(report["path"])
    reference = np.array(first.with_format("numpy")[EMBEDDINGS])
    del first
    damage(path, how)
    capsys.readouterr()
    again, report = frame_embedding_store(data, model, processor, mirrored=False, cache_dir=tmp_path)
    err = capsys.readouterr().err
    assert f"warning: the cached frame-embedding store {path} is damaged" in err, err
    assert not report["reused"] and report["frames_encoded"] == 6 * 3
    assert np.array_equal(np.asarray(again.with_format("numpy")[EMBEDDINGS]), reference)
    _, report = frame_embedding_store(data, model, processor, mirrored=False, cache_dir=tmp_path)
    assert report["reused"] and "warning" not in capsys.readouterr().err
    assert os.path.getsize(path) > 0


def test_a_builder_used_directly_repairs_its_cache_too(tmp_path, capsys):
    """CASME2(...).download_and_prepare(), without load_mer_dataset, finds the damaged file as well."""
    from dataset_scripts.casme2 import CASME2

    rows = [r for r in table("casme2_coding") if r["Subject"] == "1"][:2]
    root = casme2_tree(tmp_path / "data", rows)
    options = {"data_dir": str(root), "cache_dir": str(tmp_path / "cache"), "config_name": "all", "spot_apex": False}
    CASME2(**options).download_and_prepare()
    [arrow] = list((tmp_path / "cache").rglob("*.arrow"))
    damage(arrow, "emptied")
    builder = CASME2(**options)
    builder.download_and_prepare()
    assert "warning: the built dataset in" in capsys.readouterr().err
    assert len(builder.as_dataset(split="train")) == 2
