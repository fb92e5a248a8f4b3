"""`evaluate` metric module for micro-expression recognition: UF1, UAR, accuracy (MEGC convention).

Load it offline from its folder (the Hub is never contacted):

    metric = evaluate.load("path/to/modeling_mer/evaluation/mer_metric")
    metric.compute(predictions=[...], references=[...], label_names=["negative", "positive", "surprise"])

The folder is self-contained: this file and `mer_figures.py` (numpy and scikit-learn), the same code behind
every figure of `modeling_mer`, which need not be installed; README.md is its metric card. `evaluate`
finds a folder's module as `<folder>/<folder name>.py`: a copy under another folder name loads by this
file's path, `evaluate.load("any/name/mer_metric.py")`. Pool the predictions of every fold before
computing.
"""

import datasets
import evaluate

from .mer_figures import compute_mer_metrics

_DESCRIPTION = """UF1 (macro F1) and UAR (macro recall) over pooled predictions, plus accuracy, per-class
figures and, given `folds` / `dataset_names`, per-fold and per-dataset breakdowns."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class indices.
    references: true class indices.
    label_names: class names in index order (required: it fixes the number of classes).
    folds: optional fold id of each clip (e.g. the held-out subject).
    dataset_names: optional source dataset of each clip (composite).
Returns:
    dict with uf1, uar, accuracy, num_samples, per_class, confusion_matrix, and per_fold / per_dataset.
"""

_CITATION = """@article{zhang2022slstt,
  title={Short and Long Range Relation Based Spatio-Temporal Transformer for Micro-Expression Recognition},
  author={Zhang, Liangfei and Hong, Xiaopeng and Arandjelovi{\\'c}, Ognjen and Zhao, Guoying},
  journal={IEEE Transactions on Affective Computing}, year={2022}}"""


class MERMetric(evaluate.Metric):
    """Pooled MEGC-style UF1/UAR for micro-expression recognition."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, label_names=None, folds=None, dataset_names=None):
        if label_names is None:
            raise ValueError("mer_metric needs label_names=[...] (class names in index order)")
        return compute_mer_metrics(references, predictions, label_names, folds=folds, datasets=dataset_names)
