"""datasets-native loading: the class sets as builder configs, split= and streaming=, and the Parquet
layout that push_dataset_to_hub uploads, read back by `datasets.load_dataset` offline."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
from dataset_trees import casme2_tree, rows_of_subjects, table
from PIL import Image

from dataset_scripts import CASME2, SAMM, SMIC, MEGC2019Composite, load_mer_dataset
from dataset_scripts.hub import write_parquet_folder

datasets.disable_progress_bars()

ROWS = rows_of_subjects(table("casme2_coding"), ["1", "9"])  # sub09 has a "fear" clip: outside 5class


@pytest.fixture(scope="module")
def casme2_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return casme2_tree(tmp_path_factory.mktemp("casme2"), ROWS)


def test_builder_configs_are_the_class_sets() -> None:
    assert [c.name for c in CASME2.BUILDER_CONFIGS] == ["5class", "all"] and CASME2.DEFAULT_CONFIG_NAME == "5class"
    assert [c.name for c in SAMM.BUILDER_CONFIGS] == ["5class", "all"]
    assert [c.name for c in SMIC.BUILDER_CONFIGS] == ["3class", "all"] and SMIC.DEFAULT_CONFIG_NAME == "3class"
    assert [c.name for c in MEGC2019Composite.BUILDER_CONFIGS] == ["3class"]
    assert all(c.class_set == c.name for b in (CASME2, SAMM, SMIC) for c in b.BUILDER_CONFIGS)
    assert "repression" in CASME2.BUILDER_CONFIGS[0].description


def test_synthetic_configs_are_its_modes(tmp_path: Path) -> None:
    from dataset_scripts.synthetic import SyntheticMER

    assert [c.name for c in SyntheticMER.BUILDER_CONFIGS] == ["demo", "realistic"]
    by_name = SyntheticMER(config_name="realistic", cache_dir=str(tmp_path))
    by_mode = SyntheticMER(mode="realistic", cache_dir=str(tmp_path))
    assert by_name.config.mode == by_mode.config.mode == "realistic" and by_name.cache_dir == by_mode.cache_dir
    assert SyntheticMER(cache_dir=str(tmp_path)).config.name == "demo"


def test_builder_class_route_with_a_config_name(casme2_root: Path, tmp_path: Path) -> None:
    """`CASME2(config_name=...)` is the route datasets >= 4 leaves (loading scripts are refused)."""
    five = CASME2(data_dir=str(casme2_root), cache_dir=str(tmp_path))
    every = CASME2(config_name="all", data_dir=str(casme2_root), cache_dir=str(tmp_path))
    same = CASME2(class_set="all", data_dir=str(casme2_root), cache_dir=str(tmp_path))
    assert (five.config.name, every.config.name, same.config.name) == ("5class", "all", "all")
    assert every.cache_dir == same.cache_dir != five.cache_dir
    five.download_and_prepare()
    every.download_and_prepare()
    names5 = five.as_dataset(split="train").features["label"].names
    names_all = every.as_dataset(split="train").features["label"].names
    assert names5 == ["disgust", "happiness", "repression", "surprise", "others"] and "fear" in names_all
    assert len(every.as_dataset(split="train")) == len(ROWS) > len(five.as_dataset(split="train"))
    with pytest.raises(ValueError, match="disagree"):
        CASME2(config_name="5class", class_set="all", data_dir=str(casme2_root), cache_dir=str(tmp_path))


def test_split_and_streaming(casme2_root: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    full = load_mer_dataset("casme2", casme2_root, cache_dir=cache, class_set="all", spot_apex=False)
    head = load_mer_dataset("casme2", casme2_root, cache_dir=cache, class_set="all", spot_apex=False, split="train[:3]")
    assert head["clip_id"] == full["clip_id"][:3]
    every = load_mer_dataset("casme2", casme2_root, cache_dir=cache, class_set="all", spot_apex=False, split=None)
    assert isinstance(every, datasets.DatasetDict) and list(every) == ["train"] and len(every["train"]) == len(full)
    stream = load_mer_dataset("casme2", casme2_root, class_set="all", spot_apex=False, streaming=True,
                              cache_dir=str(tmp_path / "never"))
    assert isinstance(stream, datasets.IterableDataset)
    first = next(iter(stream))
    assert first["clip_id"] == full[0]["clip_id"] and first["frame_numbers"] == full[0]["frame_numbers"]
    assert np.array_equal(np.asarray(first["frames"][0]), np.asarray(full[0]["frames"][0]))
    assert not (tmp_path / "never").exists() or not any((tmp_path / "never").rglob("*.arrow"))  # nothing built
    with pytest.raises(ValueError, match="split='test': the micro-expression datasets have one split"):
        load_mer_dataset("casme2", casme2_root, cache_dir=cache, split="test")


@pytest.mark.parametrize("lazy", [False, True])
def test_parquet_folder_loads_back_with_load_dataset(casme2_root: Path, tmp_path: Path, lazy: bool) -> None:
    """The layout push_dataset_to_hub uploads, read by `datasets.load_dataset` exactly as from the Hub."""
    built = load_mer_dataset("casme2", casme2_root, cache_dir=str(tmp_path / "cache"), lazy=lazy, spot_apex=False)
    folder = write_parquet_folder(built, tmp_path / "casme2-private", max_shard_bytes=20_000)
    shards = sorted(p.name for p in (folder / "data").glob("*.parquet"))
    assert len(shards) > 1 and shards[0] == f"train-00000-of-{len(shards):05d}.parquet"
    card = (folder / "README.md").read_text()
    assert "license: other" in card and "Research use only" in card and "yan2014casme2" in card
    loaded = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "hf"))
    assert loaded.features == datasets.Features({**built.features, "frames": datasets.List(datasets.Image())})
    assert loaded.features["label"].names == built.features["label"].names
    plain = [c for c in built.column_names if c != "frames"]
    assert loaded.select_columns(plain).to_list() == built.select_columns(plain).to_list()
    raw = loaded.cast_column("frames", datasets.List(datasets.Image(decode=False)))
    assert all(frame["bytes"] for row in raw["frames"] for frame in row)  # embedded, even from a lazy build
    for got, want in zip(loaded[0]["frames"], built[0]["frames"]):  # a lazy build holds the frame paths
        assert np.array_equal(np.asarray(got), np.asarray(Image.open(want) if lazy else want))
