"""UF1 / UAR / accuracy on hand-computed cases, the breakdowns, bad input, and the evaluate module offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_evaluate_module_loads_from_a_copy_under_another_name(tmp_path, monkeypatch):
    """The folder stands alone: copied under another name (without this package's path), its file loads."""
    import shutil

    evaluate = pytest.importorskip("evaluate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    copy = tmp_path / "other_name"
    shutil.copytree(METRIC_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    metric = evaluate.load(str(copy / "mer_metric.py"))
    out = metric.compute(predictions=[0, 0, 1, 2, 2, 1], references=[0, 1, 1, 2, 2, 2], label_names=NAMES)
    assert out["uf1"] == pytest.approx(compute_mer_metrics([0, 1, 1, 2, 2, 2], [0, 0, 1, 2, 2, 1], NAMES)["uf1"])
    assert metric.description.startswith("UF1 (macro F1)")


def test_evaluate_module_has_its_metric_card():
    """README.md with evaluate's metric-card sections, and its example prints what it says."""
    import contextlib
    import io
    import re

    import yaml

    card = (METRIC_DIR / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["title"] == "mer_metric" and {"evaluate", "metric"} <= set(header["tags"]) and header["description"]
    for section in ("# Metric Card for mer_metric", "## Metric Description", "## How to Use", "### Inputs",
                    "### Output Values", "#### Values from Popular Papers", "### Examples", "## Limitations and Bias",
                    "## Citation", "## Further References"):
        assert re.search(rf"^{re.escape(section)}$", card, re.M), section
    (example,) = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    code, expected = example.rsplit("#", 1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace('"modeling_mer/evaluation/mer_metric"', repr(str(METRIC_DIR))), "card", "exec"), {})
    assert out.getvalue().split() == expected.split()


def _hand_written_scores(refs, preds, names):
    """The formulas the project used before scikit-learn (TP/FP/FN by hand), as the reference."""
    n = len(names)
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (np.asarray(refs), np.asarray(preds)), 1)
    tp, support, predicted = np.diag(matrix).astype(float), matrix.sum(1).astype(float), matrix.sum(0).astype(float)
    per_class, f1s, recalls = {}, [], []
    for c, name in enumerate(names):
        f1 = float(2 * tp[c] / (support[c] + predicted[c])) if support[c] + predicted[c] > 0 else None
        recall = float(tp[c] / support[c]) if support[c] > 0 else None
        precision = float(tp[c] / predicted[c]) if predicted[c] > 0 else None
        per_class[name] = {"f1": f1, "recall": recall, "precision": precision,
                           "support": int(support[c]), "predicted": int(predicted[c])}
        f1s += [f1] if f1 is not None else []
        recalls += [recall] if recall is not None else []
    total = int(matrix.sum())
    return {"uf1": float(np.mean(f1s)) if f1s else None, "uar": float(np.mean(recalls)) if recalls else None,
            "accuracy": float(tp.sum() / total) if total else None, "num_samples": total,
            "per_class": per_class}, matrix.tolist()


def _assert_same(got, want):
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, dict):
            _assert_same(got[key], value)
        elif value is None or isinstance(value, int):
            assert got[key] == value, key
        else:
            assert got[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize("seed", range(40))
def test_scikit_learn_figures_equal_the_hand_written_ones(seed):
    """Random pooled predictions, classes missing from folds, never predicted, or predicted but absent."""
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 6))
    names = [f"c{i}" for i in range(n_classes)]
    size = int(rng.integers(1, 40))
    refs = rng.integers(0, n_classes, size)
    preds = np.where(rng.random(size) < 0.5, refs, rng.integers(0, max(1, n_classes - 1), size))
    folds = rng.integers(0, 4, size).astype(str)
    got = compute_mer_metrics(refs.tolist(), preds.tolist(), names, folds=folds.tolist())
    want, matrix = _hand_written_scores(refs, preds, names)
    assert got["confusion_matrix"] == matrix
    _assert_same({k: got[k] for k in want}, want)
    for fold in set(folds.tolist()):
        mask = folds == fold
        _assert_same(got["per_fold"][fold], _hand_written_scores(refs[mask], preds[mask], names)[0])


METRIC_WITHOUT_PACKAGE = """
import json, sys
import evaluate


class BlockPackage:  # the package is installed here: hide it so only the copied folder can answer
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("modeling_mer", "dataset_scripts"):
            raise ImportError("blocked: " + name)


sys.meta_path.insert(0, BlockPackage())
try:
    import modeling_mer  # noqa: F401
    raise SystemExit("the package was importable")
except ImportError:
    pass
metric = evaluate.load(sys.argv[1])
out = metric.compute(predictions=[0, 0, 0, 1, 1, 0, 2, 1], references=[0, 0, 0, 0, 1, 1, 2, 2],
                     label_names=["negative", "positive", "surprise"])
print(json.dumps({"uf1": out["uf1"], "uar": out["uar"], "module": type(metric).__module__,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] == "modeling_mer")}))
"""


@pytest.mark.slow
def test_evaluate_module_works_copied_where_the_package_is_not_importable(tmp_path):
    """The folder alone (copied elsewhere) must carry everything: a fresh process with the package blocked."""
    pytest.importorskip("evaluate")
    folder = tmp_path / "mer_metric"
    shutil.copytree(METRIC_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-c", METRIC_WITHOUT_PACKAGE, str(folder)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    out = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == [] and "mer_metric" in out["module"]
    assert out["uf1"] == pytest.approx((0.75 + 0.4 + 2 / 3) / 3)
    assert out["uar"] == pytest.approx((0.75 + 0.5 + 0.5) / 3)
