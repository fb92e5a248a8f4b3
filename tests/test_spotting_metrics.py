"""MEGC spotting metrics against hand-computed cases; STRS on a worked example; the evaluate module."""

from pathlib import Path

import pytest

from modeling_mer.evaluation.spotting_metrics import (
    compute_spotting_metrics,
    compute_spotting_metrics_from_rows,
    interval_iou,
    match_video,
)

METRIC_DIR = Path(__file__).resolve().parents[1] / "modeling_mer" / "evaluation" / "spot_metric"


def iv(onset, offset, kind="micro", score=0.0, emotion=""):
    return {"onset": onset, "offset": offset, "type": kind, "score": score, "emotion": emotion}


def test_iou_counts_inclusive_frames():
    assert interval_iou((10, 19), (15, 24)) == pytest.approx(5 / 15)  # 15..19 of 10..24
    assert interval_iou((10, 10), (10, 10)) == 1.0  # one frame each, the same frame
    assert interval_iou((1, 4), (2, 4)) == pytest.approx(3 / 4)
    assert interval_iou((0, 9), (10, 19)) == 0.0  # adjacent: no common frame
    assert interval_iou((0, 9), (0, 4)) == 0.5  # exactly at the threshold


def test_threshold_is_inclusive_and_types_must_agree():
    m = compute_spotting_metrics([[iv(0, 4)]], [[iv(0, 9)]])  # IoU 0.5 exactly: a TP
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 0)
    m = compute_spotting_metrics([[iv(0, 3)]], [[iv(0, 9)]])  # IoU 0.4: FP + FN
    assert (m["tp"], m["fp"], m["fn"]) == (0, 1, 1)
    m = compute_spotting_metrics([[iv(0, 9, "micro")]], [[iv(0, 9, "macro")]])  # right place, wrong type
    assert (m["tp"], m["fp"], m["fn"]) == (0, 1, 1)
    assert m["micro"]["fp"] == 1 and m["macro"]["fn"] == 1


def test_matching_is_one_to_one():
    # two predictions on one expression: one TP, one FP (the MEGC baseline script counts the second as nothing)
    m = compute_spotting_metrics([[iv(0, 9, score=0.2), iv(1, 10, score=0.9)]], [[iv(0, 9)]])
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 0)
    # one prediction over two overlapping expressions (IoU 9/11 with each): one TP, one FN
    assert interval_iou((1, 10), (0, 9)) == pytest.approx(9 / 11) == interval_iou((1, 10), (2, 11))
    m = compute_spotting_metrics([[iv(1, 10)]], [[iv(0, 9), iv(2, 11)]])
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 1)


def test_greedy_order_is_by_iou():
    # P0 overlaps G0 at 10/15 and G1 at 1.0; P1 overlaps G1 at 7/13 and G0 at 7/18 (< 0.5). Greedy by IoU:
    # P0-G1 first, then P1 finds G1 taken -> 1 TP. (In file order, as the public STRS script matches, P0
    # would take G0 and P1 G1 -> 2 TP: greedy by IoU is not a maximum matching; the order is documented.)
    preds, refs = [iv(10, 19), iv(13, 22)], [iv(5, 19), iv(10, 19)]
    assert interval_iou((10, 19), (5, 19)) == pytest.approx(10 / 15)
    assert interval_iou((13, 22), (10, 19)) == pytest.approx(7 / 13)
    assert interval_iou((13, 22), (5, 19)) == pytest.approx(7 / 18)
    assert match_video(preds, refs) == [(0, 1, 1.0)]


def test_counts_are_pooled_over_videos_not_averaged():
    preds = [[iv(0, 9)], [iv(100, 109), iv(200, 209)]]
    refs = [[iv(0, 9), iv(50, 59)], []]
    m = compute_spotting_metrics(preds, refs, folds=["s1", "s2"], dataset_names=["a", "a"])
    assert (m["tp"], m["fp"], m["fn"]) == (1, 2, 1)
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == pytest.approx(1 / 2)
    assert m["f1_overall"] == pytest.approx(0.4)  # 2 * (1/3) * (1/2) / (5/6); a per-video mean would give 1/3
    assert m["f1_micro"] == pytest.approx(0.4) and m["f1_macro"] == 0.0
    assert m["per_fold"]["s1"]["f1_overall"] == pytest.approx(2 / 3)
    assert (m["per_fold"]["s2"]["tp"], m["per_fold"]["s2"]["fp"]) == (0, 2)
    assert m["per_dataset"]["a"]["f1_overall"] == m["f1_overall"]


def test_micro_macro_and_overall():
    preds = [[iv(0, 9, "micro"), iv(100, 159, "macro"), iv(300, 359, "macro")]]
    refs = [[iv(1, 10, "micro"), iv(100, 160, "macro"), iv(500, 520, "micro")]]
    m = compute_spotting_metrics(preds, refs)
    assert (m["micro"]["tp"], m["micro"]["fp"], m["micro"]["fn"]) == (1, 0, 1)
    assert (m["macro"]["tp"], m["macro"]["fp"], m["macro"]["fn"]) == (1, 1, 0)
    assert m["f1_micro"] == pytest.approx(2 / 3) and m["f1_macro"] == pytest.approx(2 / 3)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 1) and m["f1_overall"] == pytest.approx(2 / 3)


def test_empty_predictions_and_no_ground_truth():
    m = compute_spotting_metrics([[], []], [[iv(0, 9)], [iv(5, 20, "macro")]])
    assert (m["tp"], m["fp"], m["fn"]) == (0, 0, 2) and m["f1_overall"] == 0.0 and m["precision"] == 0.0
    m = compute_spotting_metrics([[iv(0, 9)]], [[]])
    assert (m["tp"], m["fp"], m["fn"]) == (0, 1, 0) and m["recall"] == 0.0 and m["f1_overall"] == 0.0
    m = compute_spotting_metrics([[]], [[]])
    assert m["f1_overall"] == 0.0 and m["num_videos"] == 1


def test_rows_interface_counts_videos_without_predictions():
    preds = [{"video": "v1", **iv(0, 9)}]
    refs = [{"video": "v1", **iv(0, 9)}, {"video": "v2", **iv(0, 9)}]
    m = compute_spotting_metrics_from_rows(preds, refs, folds={"v1": "s1", "v2": "s2"})
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 1) and m["per_fold"]["s2"]["fn"] == 1
    with pytest.raises(ValueError, match="not evaluated"):
        compute_spotting_metrics_from_rows([{"video": "v9", **iv(0, 9)}], refs, videos=["v1", "v2"])


def test_strs_on_the_public_scripts_readme_example():
    # The STRS script's README example: five videos, one interval each. IoUs 26/76, 31/71 (misses),
    # 51/76, 46/76, 71/111 (hits): F1_spot = 0.6. Emotions of the 3 hits (truth -> predicted): others ->
    # others, repression -> happiness twice. Classes {happiness, others, repression}: P = (0 + 1 + 0) / 3,
    # R = (0 + 1 + 0) / 3, F1_analysis = 1/3, STRS = 0.2 (the script's printed value).
    rows = [("EP02_01f", (10, 70, "happiness"), (45, 85, "happiness")),
            ("EP03_02", (100, 170, "others"), (130, 160, "others")),
            ("EP04_02", (0, 70, "others"), (20, 75, "others")),
            ("EP01_11f", (20, 90, "happiness"), (45, 95, "repression")),
            ("EP02_04f", (70, 140, "happiness"), (30, 140, "repression"))]
    preds = [[iv(p[0], p[1], "macro", emotion=p[2])] for _, p, _ in rows]
    refs = [[iv(g[0], g[1], "macro", emotion=g[2])] for _, _, g in rows]
    m = compute_spotting_metrics(preds, refs, video_ids=[r[0] for r in rows])
    assert (m["tp"], m["fp"], m["fn"]) == (3, 2, 2) and m["f1_overall"] == pytest.approx(0.6)
    assert m["precision_analysis"] == pytest.approx(1 / 3) and m["recall_analysis"] == pytest.approx(1 / 3)
    assert m["f1_analysis"] == pytest.approx(1 / 3) and m["strs"] == pytest.approx(0.2)
    # all emotions right on the hits: F1_analysis 1 over the classes present (the public script's caught
    # exception scores a class predicted right every time as 0)
    right = [[dict(r[0])] for r in refs]
    m = compute_spotting_metrics(right, refs, emotion_classes=["others", "repression", "happiness"])
    assert m["f1_overall"] == 1.0 and m["per_emotion"]["others"]["precision"] == 1.0
    m = compute_spotting_metrics([[dict(refs[2][0])]], [refs[2]], emotion_classes=["others"])
    assert m["strs"] == 1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="clipA: prediction 0: offset 3 comes before onset 9"):
        compute_spotting_metrics([[iv(9, 3)]], [[]], video_ids=["clipA"])
    with pytest.raises(ValueError, match="ground truth 0: type must be one of"):
        compute_spotting_metrics([[]], [[iv(0, 3, "blink")]])
    with pytest.raises(ValueError, match="2 videos, references 1"):
        compute_spotting_metrics([[], []], [[]])
    assert compute_spotting_metrics([[iv(0, 9, "micro-expression")]], [[iv(0, 9)]])["tp"] == 1


def test_evaluate_module_loads_offline_and_matches(monkeypatch):
    evaluate = pytest.importorskip("evaluate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(str(METRIC_DIR))
    preds = [[iv(0, 9, score=0.5, emotion="positive"), iv(40, 49, score=0.1, emotion="negative")], []]
    refs = [[{k: v for k, v in iv(1, 10, emotion="positive").items() if k != "score"}],
            [{k: v for k, v in iv(5, 50, "macro", emotion="negative").items() if k != "score"}]]
    out = metric.compute(predictions=preds, references=refs, folds=["s1", "s2"])
    direct = compute_spotting_metrics(preds, refs, folds=["s1", "s2"])
    assert out["f1_overall"] == pytest.approx(direct["f1_overall"]) == pytest.approx(0.5)  # TP 1, FP 1, FN 1
    assert out["per_fold"] == direct["per_fold"] and out["strs"] == pytest.approx(direct["strs"])
