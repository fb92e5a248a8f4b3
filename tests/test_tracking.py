"""Experiment tracking (--report_to): the tracker choice, the scalars a tiny run writes to TensorBoard, the
hyperparameters, accelerate's checkpoint chatter silenced, and a --help that imports nothing heavy."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_train import FAST, tiny_synthetic

import train
from modeling_mer.training import recognition, tracking
from modeling_mer.training.tracking import fold_tag, hyperparameters, resolve_report_to

REPO = Path(__file__).resolve().parents[1]


def test_report_to_resolution(monkeypatch):
    installed = {"tensorboard": True, "wandb": False, "trackio": True}
    monkeypatch.setattr(tracking, "tracker_installed", lambda name: installed[name])
    assert resolve_report_to(None) == ["tensorboard"]  # the default: local files only
    assert resolve_report_to(["all"]) == ["tensorboard", "trackio"] and resolve_report_to(["none"]) == []
    assert resolve_report_to(["trackio", "tensorboard", "trackio"]) == ["trackio", "tensorboard"]
    with pytest.raises(ValueError, match="--report_to wandb: not installed; pip install wandb"):
        resolve_report_to(["wandb"])
    with pytest.raises(ValueError, match="cannot be combined"):
        resolve_report_to(["none", "tensorboard"])
    installed["tensorboard"] = False
    assert resolve_report_to(None) == []  # no tensorboard: nothing is written, nothing remote


def test_argument_errors_name_report_to(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--report_to", "comet"])
    assert "--report_to" in capsys.readouterr().err


def test_tags_and_hyperparameters():
    assert fold_tag("casme2/sub01") == "fold_casme2_sub01" and fold_tag("x", final=True) == "final"
    values = hyperparameters({"lr": 0.001, "data_dir": {"casme2": "/d"}, "fold": None, "crop": [1, 2, 3, 4],
                              "resume": False})
    assert values == {"crop": "[1, 2, 3, 4]", "data_dir": '{"casme2": "/d"}', "fold": "none", "lr": 0.001,
                      "resume": False}


def scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list[tuple[int, float]]] = {}
    for events in logdir.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events.parent), size_guidance={"scalars": 0})
        accumulator.Reload()
        for name in accumulator.Tags()["scalars"]:
            found.setdefault(name, []).extend((e.step, e.value) for e in accumulator.Scalars(name))
    return found


@pytest.mark.slow
def test_a_tiny_run_writes_the_expected_tensorboard_scalars(tmp_path, monkeypatch, caplog):
    pytest.importorskip("tensorboard")
    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        metrics = train.main([*FAST, "--output_dir", str(out), "--val_subjects", "1"])
    assert not any("to make room for new checkpoint" in r.getMessage() for r in caplog.records)
    found = scalars(out / "logs")
    folds = ["fold_synth_s01", "fold_synth_s02", "fold_synth_s03"]
    for prefix in [*folds, "final"]:
        for name in ("train/loss", "train/lr", "epoch/train_loss"):
            assert f"{prefix}/{name}" in found, (prefix, name, sorted(found))
    for prefix in folds:
        assert len(found[f"{prefix}/epoch/train_loss"]) == 2 and len(found[f"{prefix}/epoch/val_uf1"]) == 2
        assert f"{prefix}/test/accuracy" in found and f"{prefix}/test/uf1" in found
    assert found["pooled/uf1"] == [(found["pooled/uf1"][0][0], pytest.approx(metrics["uf1"]))]
    assert found["pooled/uar"][0][1] == pytest.approx(metrics["uar"])
    steps = [s for s, _ in found["fold_synth_s01/train/loss"] + found["fold_synth_s02/train/loss"]]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # one increasing step over the run
    lrs = [v for _, v in found["fold_synth_s01/train/lr"]]
    assert max(lrs) <= 3e-3 + 1e-9 and lrs[-1] < max(lrs)  # warmup then decay
    hparams = list((out / "logs").rglob("hparams.yml"))
    assert hparams and "lr: 0.003" in hparams[0].read_text()


def test_report_to_none_writes_no_logs_and_tracking_changes_no_prediction(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)
    runs = {}
    for report_to in ("none", "tensorboard"):
        out = tmp_path / report_to
        train.main([*FAST, "--epochs", "1", "--output_dir", str(out), "--report_to", report_to, "--no_final_model"])
        runs[report_to] = (out / "predictions.csv").read_text()
        assert (out / "logs").exists() == (report_to == "tensorboard")
    assert runs["none"] == runs["tensorboard"]


# train.py imports the light modules of modeling_mer (run configuration, registries) without the package's
# __init__; what must stay out is everything that costs seconds.
HEAVY = ("torch", "transformers", "datasets", "accelerate", "numpy", "pandas", "cv2", "modeling_mer.modeling_mer",
         "modeling_mer.configuration_mer")


def test_help_imports_nothing_heavy_and_keeps_the_layout():
    """`train.py --help` answers before the seconds-long imports; the usage text keeps its line breaks."""
    code = ("import runpy, sys\nsys.argv = ['train.py', '--help']\n"
            "try:\n    runpy.run_path('train.py', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ""})
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout[-300:]
    assert "--report_to" in proc.stdout and "--dataset" in proc.stdout
    assert "--model mer-b16-224 \\\n        --pretrained_spatial" in proc.stdout  # the docstring, as written
    assert seconds < 30  # generous: a shared machine; the point is the import list above
