"""`evaluate` metric module for micro-expression spotting in long videos (MEGC): F1 at IoU >= 0.5, STRS.

Load it offline from its folder (the Hub is never contacted):

    metric = evaluate.load("path/to/modeling_mer/evaluation/spot_metric")
    metric.compute(
        predictions=[[{"onset": 10, "offset": 22, "type": "micro", "score": 0.9, "emotion": ""}], []],
        references=[[{"onset": 11, "offset": 23, "type": "micro", "emotion": "positive"}], []],
    )

One example is one video: its predicted intervals and its ground-truth intervals (inclusive frame
ranges). The folder is self-contained (this file and `spot_figures.py`, numpy only). See README.md.
"""

import datasets
import evaluate

from .spot_figures import compute_spotting_metrics

_DESCRIPTION = """MEGC long-video spotting: a predicted interval is a true positive when it matches, one to one,
a ground-truth interval of the same type with inclusive-frame IoU >= 0.5; TP/FP/FN pooled over all
videos; precision, recall and F1 for micro-expressions, macro-expressions and overall; with emotions,
the spot-then-recognise score STRS = F1_spot x F1_analysis."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: per video, a list of {onset, offset, type ("micro"/"macro"), score, emotion ("" if none)}.
    references: per video, a list of {onset, offset, type, emotion}.
    video_ids: optional names of the videos (for error messages).
    folds: optional fold of each video (e.g. the held-out subject) -> per_fold.
    dataset_names: optional dataset of each video -> per_dataset.
    emotion_classes: optional class set of the STRS analysis (default: the ground truth's emotions).
    iou_threshold: default 0.5.
Returns:
    dict with f1_overall, f1_micro, f1_macro, precision, recall, tp, fp, fn, micro, macro, num_videos,
    per_fold / per_dataset when asked, and strs, f1_analysis, precision_analysis, recall_analysis,
    per_emotion when predictions carry emotions.
"""

_CITATION = """@article{liong2023spot,
  title={Spot-then-recognize: A micro-expression analysis network for seamless evaluation of long videos},
  author={Liong, Gen-Bing and See, John and Chan, Chee-Seng},
  journal={Signal Processing: Image Communication}, volume={110}, pages={116875}, year={2023}}"""

_PREDICTION = {
    "onset": datasets.Value("int64"),
    "offset": datasets.Value("int64"),
    "type": datasets.Value("string"),
    "score": datasets.Value("float64"),
    "emotion": datasets.Value("string"),
}
_REFERENCE = {
    "onset": datasets.Value("int64"),
    "offset": datasets.Value("int64"),
    "type": datasets.Value("string"),
    "emotion": datasets.Value("string"),
}


class SpotMetric(evaluate.Metric):
    """Pooled MEGC spotting F1 (micro, macro, overall) and STRS."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.List(_PREDICTION), "references": datasets.List(_REFERENCE)}
            ),
        )

    def _compute(self, predictions, references, video_ids=None, folds=None, dataset_names=None,
                 emotion_classes=None, iou_threshold=0.5):
        return compute_spotting_metrics(
            predictions, references, video_ids=video_ids, folds=folds, dataset_names=dataset_names,
            emotion_classes=emotion_classes, iou_threshold=iou_threshold,
        )
