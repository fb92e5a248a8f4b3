"""Spotting over CAS(ME)^2, SAMM Long Videos and CAS(ME)^3 Part A together (`--dataset long_composite`):
official-layout trees with small frames, subjects keyed by (dataset, subject), each video in its own frame
numbering (SAMM-LV's 200 fps brought to the 30 Hz feature rate), one event schema whatever parts are given,
metrics per dataset and pooled."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from long_trees import CASME3_A_ROWS, write_casme3_a_tree, write_casme_sq_tree, write_samm_lv_tree
from PIL import Image

import train
from dataset_scripts import load_mer_dataset
from dataset_scripts._records import MERDataError
from dataset_scripts.registry import DATASETS
from modeling_mer.evaluation import card_mer
from modeling_mer.training import protocols, spotting

# Two CAS(ME)^2 participants (folders s15, s16) and two SAMM-LV subjects, one short video each, frame numbers
# as the sheets write them (CAS(ME)^2 from 1 at 30 fps, SAMM-LV from 1 at 200 fps).
CASME_ROWS = [
    [1, "anger1_1", 30, 36, 42, "4", "negative", "micro-expression", "anger"],
    [1, "anger1_2", 100, 112, 130, "12", "positive", "macro-expression", "happy"],
    [2, "disgust1_1", 40, 46, 52, "9", "negative", "micro-expression", "disgust"],
    [2, "disgust1_2", 110, 122, 140, "12", "positive", "macro-expression", "happy"],
]
CASME_RULE1 = [[15, "s15", 1], [15, "s15", 1], [16, "s16", 2], [16, "s16", 2]]
SAMM_ROWS = [
    ["006", "006_1_1", 1, 200, 230, 260, 61, "Micro - 1/2", "4", None],
    ["006", "006_1_2", 1, 600, 680, 800, 201, "Macro", "12", None],
    ["007", "007_1_1", 1, 300, 330, 360, 61, "Micro - 1/2", "4", None],
    ["007", "007_1_2", 1, 700, 780, 900, 201, "Macro", "12", None],
]


def _jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _animate(folder: Path, events: list[tuple[int, int]]) -> None:
    """Every frame of `folder` a 64 px texture; inside an event a patch of it shifts by a few pixels."""
    rng = np.random.default_rng(0)
    texture = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    still, moved = _jpeg(texture), texture.copy()
    moved[20:44, 20:44] = np.roll(texture[20:44, 20:44], 3, axis=1)
    moving = _jpeg(moved)
    for path in sorted(folder.iterdir()):
        number = int(_frame_number(path.stem))
        path.unlink()  # the tree's frames are hard links of one file
        path.write_bytes(moving if any(a <= number <= b for a, b in events) else still)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("long_composite")
    casme = write_casme_sq_tree(root / "casme_sq", rows=CASME_ROWS, rule1=CASME_RULE1, frames="full")
    samm = write_samm_lv_tree(root / "samm_lv", rows=SAMM_ROWS, frames="full")
    for folder in (casme / "rawpic").glob("*/*"):
        rows = [r for r, q in zip(CASME_ROWS, CASME_RULE1) if folder.parent.name == q[1]]
        _animate(folder, [(r[2], r[4]) for r in rows])
    for folder in (samm / "SAMM_longvideos").iterdir():
        rows = [r for r in SAMM_ROWS if r[1].startswith(folder.name + "_")]
        _animate(folder, [(r[3], r[5]) for r in rows])
    return casme, samm


def _frame_number(stem: str) -> str:
    return stem.rsplit("_", 1)[-1].removeprefix("img")


def test_load_both_datasets_with_their_own_subjects_fps_and_numbering(trees, tmp_path):
    casme, samm = trees
    ds = load_mer_dataset("long_composite", data_dir={"casme_sq": casme, "samm_lv": samm}, cache_dir=str(tmp_path))
    rows = {(r["dataset"], r["video_id"]): r for r in ds}
    assert sorted(rows) == [("casme_sq", "15_0401"), ("casme_sq", "16_0101"), ("samm_lv", "006_1"), ("samm_lv", "007_1")]
    assert {r["fps"] for k, r in rows.items() if k[0] == "samm_lv"} == {200.0}
    assert {r["fps"] for k, r in rows.items() if k[0] == "casme_sq"} == {30.0}
    samm_video = rows[("samm_lv", "006_1")]
    assert samm_video["frame_numbers"][0] == 1 and samm_video["frame_numbers"][-1] == 820
    assert [(e["onset"], e["offset"], e["type"]) for e in samm_video["events"]] == [(200, 260, "micro"), (600, 800, "macro")]
    alone = load_mer_dataset("long_composite", data_dir={"samm_lv": samm}, cache_dir=str(tmp_path / "alone"))
    assert set(alone["dataset"]) == {"samm_lv"} and "casme_sq" in alone.info.description
    with pytest.raises(ValueError, match="needs data_dir="):
        load_mer_dataset("long_composite", data_dir=str(casme), cache_dir=str(tmp_path / "bad"))
    with pytest.raises(ValueError, match="unknown long_composite part"):
        load_mer_dataset("long_composite", data_dir={"casme2": casme}, cache_dir=str(tmp_path / "bad2"))
    bad = tmp_path / "bad_samm"
    write_samm_lv_tree(bad, rows=[SAMM_ROWS[0], ["006", "006_1_2", 1, "x", 230, 260, 61, "Micro - 1/2", "4", None]])
    with pytest.raises(MERDataError, match="SAMM_LongVideos_V3_Release.xlsx"):
        load_mer_dataset("long_composite", data_dir={"casme_sq": casme, "samm_lv": bad}, cache_dir=str(tmp_path / "c3"))


EVENT_FIELDS = {"onset", "apex", "offset", "type", "action_units", "emotion", "objective_class"}


def _events(ds) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in ds:
        out.setdefault(row["dataset"], []).extend(row["events"])
    return out


def test_three_parts_in_one_schema_with_subjects_keyed_by_dataset(trees, tmp_path):
    casme, samm = trees
    casme3 = write_casme3_a_tree(tmp_path / "casme3_a", depth=False)
    ds = load_mer_dataset("long_composite", data_dir={"casme_sq": casme, "samm_lv": samm, "casme3_a": casme3},
                          cache_dir=str(tmp_path / "all"))
    assert Counter(ds["dataset"]) == {"casme_sq": 2, "samm_lv": 2, "casme3_a": 4}
    events = _events(ds)
    assert {name: len(e) for name, e in events.items()} == {"casme_sq": 4, "samm_lv": 4, "casme3_a": len(CASME3_A_ROWS)}
    # one event schema for every part: CAS(ME)^3's objective_class, "" where the part has no such column
    assert set(ds.features["events"].feature) == EVENT_FIELDS
    assert all(set(e) == EVENT_FIELDS for part in events.values() for e in part)
    assert {e["objective_class"] for part in ("casme_sq", "samm_lv") for e in events[part]} == {""}
    assert sorted(e["objective_class"] for e in events["casme3_a"]) == sorted(str(r[6]) for r in CASME3_A_ROWS)
    casme3_video = next(r for r in ds if r["video_id"] == "spNO.1_a")
    assert casme3_video["fps"] == 30.0 and casme3_video["frame_numbers"][0] == 101  # its own numbering, gaps kept
    assert 120 not in casme3_video["frame_numbers"]
    # subjects keyed by (dataset, subject), by the clip protocols and by the spotting runner alike
    keys = {"casme_sq/s15", "casme_sq/s16", "samm_lv/006", "samm_lv/007", "casme3_a/spNO.1", "casme3_a/spNO.2",
            "casme3_a/spNO.3"}
    assert set(protocols.subject_keys(ds["subject"], ds["dataset"])) == keys
    videos = [SimpleNamespace(dataset=d, subject=s) for d, s in zip(ds["dataset"], ds["subject"])]
    assert set(spotting.subject_keys(videos)) == keys
    notes = ds.info.description
    assert "casme3_a: frames from each video's color/ folder" in notes and "absent from data_dir" not in notes
    cited = card_mer.citations(["long_composite"])[1:]  # after SLSTT's: the parts', from their registry entries
    assert cited == [DATASETS[name].citation for name in ("casme_sq", "samm_lv", "casme3_a")]

    # a subset (CAS(ME)^3 with SAMM-LV): the same schema, the absent part named in the notes
    subset = load_mer_dataset("long_composite", data_dir={"casme3_a": casme3, "samm_lv": samm},
                              cache_dir=str(tmp_path / "subset"))
    assert Counter(subset["dataset"]) == {"samm_lv": 2, "casme3_a": 4}
    assert subset.features == ds.features
    assert _events(subset) == {"samm_lv": events["samm_lv"], "casme3_a": events["casme3_a"]}
    assert "Datasets absent from data_dir: casme_sq." in subset.info.description
    # without CAS(ME)^3 at all the schema still carries objective_class (one schema for the name)
    casme_only = load_mer_dataset("long_composite", data_dir={"casme_sq": casme}, cache_dir=str(tmp_path / "c"))
    assert casme_only.features == ds.features and _events(casme_only) == {"casme_sq": events["casme_sq"]}


def test_the_parser_takes_the_parts_folders_and_the_composite_protocol(trees, capsys):
    casme, samm = trees
    run = train.parse_args(["--task", "spot", "--dataset", "long_composite", "--data_dir", f"casme_sq={casme}",
                            f"samm_lv={samm}", "casme3_a=/c3"])
    assert run.data_dir == {"casme_sq": str(casme), "samm_lv": str(samm), "casme3_a": "/c3"}
    assert run.protocol == "composite"
    with pytest.raises(SystemExit):
        train.parse_args(["--task", "spot", "--dataset", "long_composite", "--data_dir", str(casme)])
    assert ("--data_dir: long_composite takes NAME=DIR for the parts you have, any of casme_sq=DIR samm_lv=DIR "
            "casme3_a=DIR") in capsys.readouterr().err


def candidates_folds(out: Path) -> list[str]:
    return sorted(set(pd.read_csv(out / "candidates.csv", dtype={"fold": str})["fold"]))


def test_loso_over_both_datasets_end_to_end(trees, tmp_path, capsys):
    casme, samm = trees
    out = tmp_path / "run"
    train.main(["--task", "spot", "--dataset", "long_composite", "--data_dir", f"casme_sq={casme}", f"samm_lv={samm}",
                "--crop", "none", "--model", "tiny", "--epochs", "2", "--batch_size", "8", "--no_final_model",
                "--cache_dir", str(tmp_path / "cache"), "--output_dir", str(out), "--report_to", "none"])
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["per_dataset"]) == {"casme_sq", "samm_lv"}
    assert set(metrics["per_fold"]) == {"casme_sq/s15", "casme_sq/s16", "samm_lv/006", "samm_lv/007"}, metrics["per_fold"]
    assert set(candidates_folds(out)) == set(metrics["per_fold"])  # the runner's folds are the metric's subject keys
    pooled = metrics["tp"] + metrics["fn"]
    assert pooled == 8 == sum(m["tp"] + m["fn"] for m in metrics["per_dataset"].values())
    assert sum(m["tp"] + m["fp"] for m in metrics["per_dataset"].values()) == metrics["tp"] + metrics["fp"]
    assert set(metrics["baseline"]["per_dataset"]) == {"casme_sq", "samm_lv"}
    assert "per dataset: casme_sq F1" in printed
    # every interval in its own video's frame numbering: SAMM-LV's sheet numbers (1..820 at 200 fps), not
    # feature-frame indices at 30 Hz
    candidates = pd.read_csv(out / "candidates.csv", dtype={"video": str, "subject": str})
    intervals = candidates[candidates["type"].isin(["micro", "macro"])]
    last = {"006_1": 820, "007_1": 920, "15_0401": 150, "16_0101": 160}
    for r in intervals.to_dict("records"):
        assert 1 <= r["onset"] <= r["offset"] <= last[r["video"]]
    samm_rows = intervals[intervals["dataset"] == "samm_lv"]
    assert len(samm_rows) and samm_rows["offset"].max() > 150  # beyond any 30 Hz feature index of these videos
