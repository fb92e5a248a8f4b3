"""UF1 / UAR / accuracy on hand-computed cases, the breakdowns, bad input, and the evaluate module offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeling_mer.evaluation.metrics import compute_mer_metrics, confusion_matrix

NAMES = ["negative", "positive", "surprise"]
METRIC_DIR = Path(__file__).resolve().parents[1] / "modeling_mer" / "evaluation" / "mer_metric"


def test_hand_computed_case():
    # true:  n n n n p p s s ; pred: n n n p p n s p
    refs = [0, 0, 0, 0, 1, 1, 2, 2]
    preds = [0, 0, 0, 1, 1, 0, 2, 1]
    m = compute_mer_metrics(refs, preds, NAMES)
    # negative: TP3 FP1 FN1 -> F1 6/8, recall 3/4; positive: TP1 FP2 FN1 -> F1 2/5, recall 1/2;
    # surprise: TP1 FP0 FN1 -> F1 2/3, recall 1/2
    assert m["per_class"]["negative"]["f1"] == pytest.approx(0.75)
    assert m["per_class"]["positive"]["f1"] == pytest.approx(0.4)
    assert m["per_class"]["surprise"]["f1"] == pytest.approx(2 / 3)
    assert m["uf1"] == pytest.approx((0.75 + 0.4 + 2 / 3) / 3)
    assert m["uar"] == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["confusion_matrix"] == [[3, 1, 0], [1, 1, 0], [0, 1, 1]]
    assert m["per_class"]["positive"]["precision"] == pytest.approx(1 / 3)


def test_perfect_and_all_one_class():
    assert compute_mer_metrics([0, 1, 2], [0, 1, 2], NAMES)["uf1"] == 1.0
    m = compute_mer_metrics([0, 1, 2, 0], [0, 0, 0, 0], NAMES)  # always "negative"
    assert m["uar"] == pytest.approx(1 / 3)
    assert m["uf1"] == pytest.approx((2 * 2 / (2 * 2 + 2 + 0)) / 3)  # only negative has F1 > 0


def test_pooling_differs_from_averaging_folds():
    refs, preds, folds = [0, 1, 2, 0, 1, 2], [0, 1, 2, 1, 1, 1], ["a", "a", "a", "b", "b", "b"]
    m = compute_mer_metrics(refs, preds, NAMES, folds=folds)
    assert m["per_fold"]["a"]["uf1"] == 1.0
    assert m["per_fold"]["b"]["accuracy"] == pytest.approx(1 / 3)
    pooled = compute_mer_metrics(refs, preds, NAMES)["uf1"]
    assert m["uf1"] == pytest.approx(pooled)
    assert pooled != pytest.approx((m["per_fold"]["a"]["uf1"] + m["per_fold"]["b"]["uf1"]) / 2)


def test_absent_class_is_left_out_of_a_subset_not_counted_zero():
    m = compute_mer_metrics([0, 1], [0, 1], NAMES, datasets=["casme2", "casme2"])
    assert m["per_class"]["surprise"]["f1"] is None and m["per_class"]["surprise"]["support"] == 0
    assert m["uf1"] == 1.0 and m["per_dataset"]["casme2"]["uar"] == 1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="differ in length"):
        compute_mer_metrics([0, 1], [0], NAMES)
    with pytest.raises(ValueError, match="predictions hold class index 3"):
        compute_mer_metrics([0, 1], [0, 3], NAMES)
    with pytest.raises(ValueError, match="no predictions"):
        compute_mer_metrics([], [], NAMES)
    with pytest.raises(ValueError, match="per_fold: 1 group labels for 2"):
        compute_mer_metrics([0, 1], [0, 1], NAMES, folds=["a"])
    assert confusion_matrix([2], [0], 3).tolist() == [[0, 0, 0], [0, 0, 0], [1, 0, 0]]


def test_evaluate_module_loads_offline_and_matches(monkeypatch):
    evaluate = pytest.importorskip("evaluate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(str(METRIC_DIR))
    refs, preds = [0, 0, 0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 0, 2, 1]
    out = metric.compute(predictions=preds, references=refs, label_names=NAMES, folds=list("aabbccdd"))
    direct = compute_mer_metrics(refs, preds, NAMES, folds=list("aabbccdd"))
    assert out["uf1"] == pytest.approx(direct["uf1"]) and out["per_fold"] == direct["per_fold"]
    with pytest.raises(ValueError, match="label_names"):
        metric.compute(predictions=[0], references=[0])
