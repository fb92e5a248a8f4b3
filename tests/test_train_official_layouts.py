"""train.py on the MEGC2019 composite read from folders in the official on-disk layouts.

The other train tests replace the loader; this one goes through the real builders (CASME II xlsx with
unnamed columns, SAMM with its preamble, SMIC-HS without a sheet, the shipped composite list), the
processor and the LOSO loop, on two real subjects of each dataset with tiny generated frames.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from dataset_trees import casme2_tree, composite_rows, rows_of_subjects, samm_tree, smic_tree, table

import train

SUBJECTS = {"casme2": ["1", "2"], "samm": ["006", "007"], "smic": ["s1", "s2"]}


@pytest.mark.slow
def test_composite_loso_from_official_layouts(tmp_path):
    casme2_tree(tmp_path / "CASME2", rows_of_subjects(table("casme2_coding"), SUBJECTS["casme2"]))
    samm_tree(tmp_path / "SAMM", rows_of_subjects(table("samm_coding"), SUBJECTS["samm"]))
    smic_tree(tmp_path / "SMIC", rows_of_subjects(table("smic_hs_coding"), SUBJECTS["smic"]))
    out = tmp_path / "run"
    metrics = train.main([
        "--dataset", "composite",
        "--data_dir", f"casme2={tmp_path / 'CASME2'}", f"samm={tmp_path / 'SAMM'}", f"smic={tmp_path / 'SMIC'}",
        "--crop", "none", "--epochs", "1", "--image_size", "32", "--num_frames", "2",
        "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"), "--no_final_model",
    ])  # fmt: skip

    # Exactly the official composite rows of the subjects present, one fold per subject.
    subjects = {"casme2": {"sub01", "sub02"}, "samm": {"6", "7"}, "smic": set(SUBJECTS["smic"])}  # as the list writes them
    expected = [row for row in composite_rows() if row[1] in subjects[row[0]]]
    predictions = pd.read_csv(out / "predictions.csv", dtype=str)
    assert len(predictions) == len(expected) == metrics["num_samples"]
    assert predictions.groupby("dataset").size().to_dict() == {
        name: sum(1 for row in expected if row[0] == name) for name in SUBJECTS
    }
    official = {(dataset, clip): label for dataset, _, clip, label in expected}
    assert {(r.dataset, r.clip_id): int(r.label) for r in predictions.itertuples()} == official
    assert metrics["num_folds"] == 6 and predictions["fold"].nunique() == 6
    for fold, held_out in predictions.groupby("fold"):
        assert held_out["subject"].nunique() == 1, fold

    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["per_dataset"]) == {"casme2", "samm", "smic"}
    assert saved["protocol"] == "composite" and saved["selection_touched_held_out"] is False


@pytest.mark.slow
def test_holdout_database_and_cross_dataset_from_official_layouts(tmp_path):
    casme2_tree(tmp_path / "CASME2", rows_of_subjects(table("casme2_coding"), SUBJECTS["casme2"]))
    samm_tree(tmp_path / "SAMM", rows_of_subjects(table("samm_coding"), SUBJECTS["samm"]))
    smic_tree(tmp_path / "SMIC", rows_of_subjects(table("smic_hs_coding"), SUBJECTS["smic"]))
    dirs = [f"casme2={tmp_path / 'CASME2'}", f"samm={tmp_path / 'SAMM'}", f"smic={tmp_path / 'SMIC'}"]
    common = ["--dataset", "composite", "--crop", "none", "--epochs", "1", "--image_size", "32",
              "--num_frames", "2", "--cache_dir", str(tmp_path / "cache"), "--no_final_model"]  # fmt: skip

    # MEGC2018 HDE: one fold per dataset, each testing exactly that dataset's clips
    metrics = train.main([*common, "--protocol", "hde", "--data_dir", *dirs, "--output_dir", str(tmp_path / "hde")])
    predictions = pd.read_csv(tmp_path / "hde" / "predictions.csv", dtype=str)
    assert metrics["num_folds"] == 3 and sorted(predictions["fold"].unique()) == ["casme2", "samm", "smic"]
    assert (predictions["fold"] == predictions["dataset"]).all()
    assert set(metrics["per_dataset"]) == {"casme2", "samm", "smic"} and metrics["protocol"] == "hde"
    assert "holdout-database" in metrics["protocol_description"]
    card = (tmp_path / "hde" / "metrics.json").read_text()
    assert '"protocol": "hde"' in card

    # train on CASME II, test on SAMM: only SAMM's clips are predicted
    metrics = train.main([*common, "--protocol", "cross", "--train_on", "casme2", "--test_on", "samm",
                          "--data_dir", *dirs[:2], "--output_dir", str(tmp_path / "cross")])  # fmt: skip
    predictions = pd.read_csv(tmp_path / "cross" / "predictions.csv", dtype=str)
    assert set(predictions["dataset"]) == {"samm"} and set(predictions["fold"]) == {"casme2->samm"}
    assert metrics["num_samples"] == len(predictions) and metrics["test_on"] == ["samm"]
