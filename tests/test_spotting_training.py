"""Spotting end to end on generated long videos: stored features, LOSO training with honest selection,
the training-free baseline on the same folds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling_mer import MERSpottingConfig, MERSpottingProcessor
from modeling_mer.training import spotting
from modeling_mer.training.spotting import FeatureStore, run_loso, synthetic_videos, validation_subjects


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    store = FeatureStore(tmp_path_factory.mktemp("spot_store"), MERSpottingProcessor(crop="none"))
    return synthetic_videos(3, 1, store, num_frames=360, width=96, height=72), store


def test_features_are_stored_once(videos, tmp_path):
    vids, store = videos
    assert store.computed == 3 and len(list(store.folder.glob("*.npz"))) == 3
    again = synthetic_videos(3, 1, store, num_frames=360, width=96, height=72)
    assert store.reused == 3 and store.computed == 3
    np.testing.assert_array_equal(again[0].flow, vids[0].flow)
    labels = vids[0].labels()
    for e in vids[0].events:
        assert (labels[e["onset"]:e["offset"] + 1] == spotting.LABEL_OF[e["type"]]).all()
    assert (labels > 0).sum() == sum(e["offset"] - e["onset"] + 1 for e in vids[0].events)  # no overlaps here


def test_validation_subjects_never_hold_the_held_out_one():
    subjects = [f"s{i}" for i in range(9)]
    for held_out in subjects:
        val = validation_subjects(subjects, held_out)
        assert held_out not in val and len(val) == 2
    assert {s for h in subjects for s in validation_subjects(subjects, h)} == set(subjects)
    with pytest.raises(ValueError, match="needs >= 3 subjects"):
        validation_subjects(["a", "b"], "a")


def test_loso_spots_the_held_out_videos_and_selects_honestly(videos, monkeypatch):
    vids, _ = videos
    seen = []
    choose = spotting.choose_thresholds

    def recording_choose(probabilities, chosen_videos, config):
        seen.append({v.subject for v in chosen_videos})
        return choose(probabilities, chosen_videos, config)

    monkeypatch.setattr(spotting, "choose_thresholds", recording_choose)
    torch.set_num_threads(1)
    result = run_loso(vids, MERSpottingConfig.from_preset("tiny"), MERSpottingProcessor(crop="none"), steps=160,
                      eval_every=40, batch_size=8, log=lambda _: None)
    folds = [f["fold"] for f in result["folds"]]
    assert folds == ["s00", "s01", "s02"]
    # each fold chose its checkpoint and thresholds on its validation subject, never on the held-out one
    assert seen == [{f["validation_subjects"][0]} for f in result["folds"] for _ in range(4)]
    assert all(f["fold"] not in f["validation_subjects"] for f in result["folds"])
    spotter, baseline = result["metrics"]["spotter"], result["metrics"]["baseline"]
    assert spotter["num_videos"] == 3 and set(spotter["per_fold"]) == {"s00", "s01", "s02"}
    assert spotter["tp"] + spotter["fn"] == sum(len(v.events) for v in vids)
    assert spotter["f1_overall"] >= 0.5, spotter  # the generated expressions are found
    assert not spotter["optimistic"] and "validation" in spotter["selection"]
    rows = result["predictions"]
    assert set(rows["method"]) == {"spotter", "baseline"} and (rows["offset"] >= rows["onset"]).all()
    assert set(rows.columns) >= {"video", "onset", "offset", "type", "score", "fold"}
    assert baseline["tp"] + baseline["fn"] == spotter["tp"] + spotter["fn"]


def test_select_on_test_is_labelled_optimistic(videos):
    vids, _ = videos
    result = run_loso(vids, MERSpottingConfig.from_preset("tiny"), MERSpottingProcessor(crop="none"),
                      methods=("baseline",), select_on_test=True, log=lambda _: None)
    assert result["metrics"]["baseline"]["optimistic"] and "optimistic" in result["metrics"]["baseline"]["selection"]
