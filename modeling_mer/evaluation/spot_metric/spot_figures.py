"""MEGC spotting figures: interval matching at IoU >= 0.5, pooled TP/FP/FN, F1 per expression type, STRS.

Definitions (MEGC2019-2025 long-video spotting, MEGC2023-24 spot-then-recognise):

* Intervals are inclusive frame ranges: [onset, offset] covers offset - onset + 1 frames, and
  IoU = |A n B| / |A u B| counted in frames (two one-frame intervals on the same frame have IoU 1).
* A prediction is a true positive when it is matched to a ground-truth interval **of the same type**
  ("micro" or "macro") in the same video with IoU >= 0.5. Matching is one-to-one: a prediction matches
  at most one ground truth and a ground truth at most one prediction. Order: every (prediction, ground
  truth) pair at or above the threshold is sorted by IoU (highest first), ties by the prediction's score
  (highest first), then by onset of the prediction and of the ground truth; pairs are taken greedily
  when neither side is taken yet. Unmatched predictions are false positives, unmatched ground truths
  false negatives.
* TP, FP and FN are pooled over all videos (of all LOSO folds) before precision, recall and F1 are
  computed: `micro` counts micro-expressions only, `macro` macro-expressions only, `overall` both.
  An undefined ratio (0 / 0) is reported as 0, the MEGC convention (a model that spots nothing scores 0).
  Per-fold and per-dataset breakdowns recount the same matches on their videos.
* STRS = F1_spot x F1_analysis. F1_spot is the overall spotting F1. F1_analysis is computed on the
  spotted true positives only, each pairing the predicted emotion with its ground truth's emotion: for
  every emotion class c of the class set, P_c = TP_c / (TP_c + FP_c), R_c = TP_c / (TP_c + FN_c) (0 when
  undefined); P and R are the means over classes and F1_analysis = 2PR / (P + R) (0 when P + R = 0).
  The class set is `emotion_classes` when given, otherwise the emotions of all ground-truth events
  (the public script's default); true positives whose ground truth has no emotion (or one outside the
  set) are left out of the analysis.

Where the public evaluation code differs, and why this module does not copy it:

* The spotting script distributed with MEGC baselines and reused by later spotting code (``cal_TP`` /
  ``spotting_evaluation``) counts, per ground truth, the predictions overlapping it at IoU >= 0.5, then
  TP = ground truths with at least one, FP = predictions - (sum of those counts). A second prediction on
  an already-found expression is therefore neither a TP nor an FP (duplicates are free), and a
  prediction that overlaps two ground truths counts twice (FP can go negative). It also ignores the
  type: a micro prediction on a macro-expression counts. Here matching is one-to-one and per type.
* The public STRS script (``strs_metric.Evaluator``, Liong et al. 2023):
  - its matching loop does not stop after a match, so one prediction can take several ground truths
    (several TPs from one interval); predictions are matched in file order, so an earlier prediction
    with a lower IoU can take a ground truth from a better one;
  - it iterates over the subjects that have predictions and, within them, the videos that have ground
    truth: a subject with no prediction contributes no false negatives, and predictions in a video
    without ground truth are never counted as false positives; here every video given is counted;
  - per class, ``confusion_matrix(gt, pred).ravel()`` raises when only one label value is present and
    the bare ``except`` sets TP = FP = FN = 0: a class predicted correctly on every spotted TP scores
    precision and recall 0; here the counts are taken directly;
  - its "UAR analysis" is the mean of the per-class precisions (a typo); F1_analysis divides by zero
    when P + R = 0; ``DataFrame.append`` was removed in pandas 2, so it no longer runs.
  On its own README example (five intervals, three spotted, one emotion right) both give STRS 0.2.

This file needs numpy only, so the `evaluate` module folder around it works copied anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

TYPES = ("micro", "macro")
IOU_THRESHOLD = 0.5


def interval_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """IoU of two inclusive frame ranges [onset, offset] (counted in frames)."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    union = (a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter
    return inter / union


def _interval(row: Mapping[str, Any], where: str) -> tuple[int, int]:
    try:
        onset, offset = int(row["onset"]), int(row["offset"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: needs integer onset and offset, got {dict(row)!r}") from None
    if offset < onset:
        raise ValueError(f"{where}: offset {offset} comes before onset {onset}")
    return onset, offset


def _type(row: Mapping[str, Any], where: str) -> str:
    kind = str(row.get("type", "")).lower()
    kind = {"micro-expression": "micro", "macro-expression": "macro"}.get(kind, kind)
    if kind not in TYPES:
        raise ValueError(f"{where}: type must be one of {list(TYPES)}, got {row.get('type')!r}")
    return kind


def match_video(
    predictions: Sequence[Mapping[str, Any]],
    references: Sequence[Mapping[str, Any]],
    iou_threshold: float = IOU_THRESHOLD,
    where: str = "video",
) -> list[tuple[int, int, float]]:
    """One-to-one matches of one video as (prediction index, reference index, IoU), same type only.

    Greedy over the candidate pairs sorted by IoU (desc), prediction score (desc), prediction onset,
    reference onset: the order documented at the top of this module.
    """
    preds = [(_interval(p, f"{where}: prediction {i}"), _type(p, f"{where}: prediction {i}"),
              float(p.get("score", 0.0) or 0.0)) for i, p in enumerate(predictions)]
    refs = [(_interval(r, f"{where}: ground truth {j}"), _type(r, f"{where}: ground truth {j}"))
            for j, r in enumerate(references)]
    pairs = []
    for i, (pi, pt, score) in enumerate(preds):
        for j, (rj, rt) in enumerate(refs):
            if pt != rt:
                continue
            iou = interval_iou(pi, rj)
            if iou >= iou_threshold:
                pairs.append((-iou, -score, pi[0], rj[0], i, j))
    pairs.sort()
    used_p, used_r, matches = set(), set(), []
    for neg_iou, _, _, _, i, j in pairs:
        if i in used_p or j in used_r:
            continue
        used_p.add(i)
        used_r.add(j)
        matches.append((i, j, -neg_iou))
    return sorted(matches)


def prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    """Precision, recall, F1 from pooled counts (0 when undefined, the MEGC convention)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": int(tp), "fp": int(fp), "fn": int(fn)}


def _figures(counts: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """counts[type] = [tp, fp, fn] -> the flat MEGC figures (overall first)."""
    total = sum(counts.values())
    overall = prf(*total)
    out: dict[str, Any] = {
        "f1_overall": overall["f1"], "precision": overall["precision"], "recall": overall["recall"],
        "tp": overall["tp"], "fp": overall["fp"], "fn": overall["fn"],
    }
    for kind in TYPES:
        figures = prf(*counts[kind])
        out[f"f1_{kind}"] = figures["f1"]
        out[kind] = figures
    return out


def analysis_figures(pairs: Sequence[tuple[str, str]], classes: Iterable[str]) -> dict[str, Any]:
    """Macro precision/recall of (true emotion, predicted emotion) pairs and F1_analysis = 2PR/(P+R)."""
    classes = list(dict.fromkeys(classes))
    pairs = [(t, p) for t, p in pairs if t in classes]
    per_class = {}
    for c in classes:
        tp = sum(1 for t, p in pairs if t == c and p == c)
        fp = sum(1 for t, p in pairs if t != c and p == c)
        fn = sum(1 for t, p in pairs if t == c and p != c)
        per_class[c] = prf(tp, fp, fn)
    precision = float(np.mean([v["precision"] for v in per_class.values()])) if classes else 0.0
    recall = float(np.mean([v["recall"] for v in per_class.values()])) if classes else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1_analysis": f1, "precision_analysis": precision, "recall_analysis": recall,
            "num_analysed": len(pairs), "per_emotion": per_class}


def compute_spotting_metrics(
    predictions: Sequence[Sequence[Mapping[str, Any]]],
    references: Sequence[Sequence[Mapping[str, Any]]],
    video_ids: Sequence[str] | None = None,
    folds: Sequence[Any] | None = None,
    dataset_names: Sequence[str] | None = None,
    emotion_classes: Sequence[str] | None = None,
    iou_threshold: float = IOU_THRESHOLD,
) -> dict[str, Any]:
    """MEGC spotting figures over videos, pooled.

    predictions[v] / references[v]: the intervals of video v, each a mapping with onset, offset (inclusive
    frame numbers), type ("micro"/"macro"; "micro-expression" accepted), optional score (predictions) and
    emotion (both; STRS is computed when any prediction carries one). A video with no ground truth (or no
    prediction) is an empty list and still counts its false positives (or negatives).
    folds / dataset_names: one value per video for the per_fold / per_dataset breakdowns.
    Returns f1_overall, f1_micro, f1_macro, precision, recall, tp, fp, fn (overall), `micro` and `macro`
    dicts, num_videos, and per_fold / per_dataset when asked; with emotions also strs, f1_analysis, ...
    """
    if len(predictions) != len(references):
        raise ValueError(f"predictions cover {len(predictions)} videos, references {len(references)}")
    n = len(references)
    if video_ids is not None and len(video_ids) != n:
        raise ValueError(f"video_ids: {len(video_ids)} names for {n} videos")
    names = [str(v) for v in video_ids] if video_ids is not None else [f"video {i}" for i in range(n)]
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    per_video, emotion_pairs, any_emotion = [], [], False
    for v in range(n):
        counts = {kind: np.zeros(3, dtype=np.int64) for kind in TYPES}
        matches = match_video(predictions[v], references[v], iou_threshold, where=names[v])
        matched_p, matched_r = {i for i, _, _ in matches}, {j for _, j, _ in matches}
        for i, p in enumerate(predictions[v]):
            counts[_type(p, names[v])][0 if i in matched_p else 1] += 1
            any_emotion = any_emotion or bool(p.get("emotion"))
        for j, r in enumerate(references[v]):
            if j not in matched_r:
                counts[_type(r, names[v])][2] += 1
        for i, j, _ in matches:
            truth = references[v][j].get("emotion") or ""
            if truth:
                emotion_pairs.append((v, str(truth), str(predictions[v][i].get("emotion") or "")))
        per_video.append(counts)

    def pooled(indices: Iterable[int]) -> dict[str, Any]:
        indices = list(indices)
        counts = {kind: sum((per_video[v][kind] for v in indices), np.zeros(3, dtype=np.int64)) for kind in TYPES}
        return {**_figures(counts), "num_videos": len(indices)}

    result = pooled(range(n))
    if any_emotion:
        classes = list(emotion_classes) if emotion_classes is not None else sorted(
            {str(r["emotion"]) for refs in references for r in refs if r.get("emotion")})
        analysis = analysis_figures([(t, p) for _, t, p in emotion_pairs], classes)
        result.update(analysis)
        result["strs"] = result["f1_overall"] * analysis["f1_analysis"]
    for key, groups in (("per_fold", folds), ("per_dataset", dataset_names)):
        if groups is None:
            continue
        if len(groups) != n:
            raise ValueError(f"{key}: {len(groups)} group labels for {n} videos")
        result[key] = {str(g): pooled(v for v in range(n) if groups[v] == g) for g in dict.fromkeys(groups)}
    return result


def compute_spotting_metrics_from_rows(
    predictions: Iterable[Mapping[str, Any]],
    references: Iterable[Mapping[str, Any]],
    videos: Sequence[str] | None = None,
    folds: Mapping[str, Any] | None = None,
    datasets: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """The same from flat rows (a `predictions.csv` and a ground-truth table), each with a `video` key.

    `videos`: the evaluated videos (default: every video named in either table), so that a video with
    ground truth and no prediction, or the reverse, is counted. folds / datasets map a video to its group.
    """
    preds, refs = list(predictions), list(references)
    for name, rows in (("predictions", preds), ("references", refs)):
        for k, row in enumerate(rows):
            if "video" not in row:
                raise ValueError(f"{name} row {k}: no 'video' key in {dict(row)!r}")
    videos = list(dict.fromkeys([str(r["video"]) for r in refs] + [str(p["video"]) for p in preds])) \
        if videos is None else [str(v) for v in videos]
    known = set(videos)
    stray = sorted({str(p["video"]) for p in preds} - known)
    if stray:
        raise ValueError(f"predictions name videos that are not evaluated: {stray[:5]}")
    by_pred = {v: [] for v in videos}
    by_ref = {v: [] for v in videos}
    for p in preds:
        by_pred[str(p["video"])].append(p)
    for r in refs:
        if str(r["video"]) in known:
            by_ref[str(r["video"])].append(r)
    return compute_spotting_metrics(
        [by_pred[v] for v in videos], [by_ref[v] for v in videos], video_ids=videos,
        folds=[folds[v] for v in videos] if folds is not None else None,
        dataset_names=[datasets[v] for v in videos] if datasets is not None else None, **kwargs,
    )
