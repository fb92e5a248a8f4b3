"""Two processes on CPU (gloo, `accelerate launch --multi_gpu --num_processes 2`) give the pooled metrics of one.

Same global batch (2 per process x 2 = 4), no dropout: the gradients are averaged over the same clips,
flips are keyed on the clip not the process, and `gather_for_metrics` must drop the padding that
even_batches adds to the 6-clip test folds (3 batches of 2 over 2 processes).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_train import tiny_synthetic

import train
from modeling_mer.training import recognition

REPO = Path(__file__).resolve().parents[1]
COMMON = ["--image_size", "32", "--num_frames", "2", "--epochs", "2", "--lr", "3e-3", "--dropout", "0",
          "--synthetic_clips", "6", "--no_final_model", "--seed", "5"]
LAUNCHER = """import sys
sys.path[:0] = [{repo!r}, {tests!r}]
import train
from test_train import tiny_synthetic
from modeling_mer.training import recognition
recognition.load_mer_dataset = tiny_synthetic
train.main(sys.argv[1:])
"""


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, monkeypatch):
    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)
    one = tmp_path / "one"
    single = train.main([*COMMON, "--batch_size", "4", "--output_dir", str(one)])

    launcher = tmp_path / "launch_train.py"
    launcher.write_text(LAUNCHER.format(repo=str(REPO), tests=str(REPO / "tests")))
    two = tmp_path / "two"
    with socket.socket() as probe:  # a free port: a fixed one collides with other runs on a shared machine
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               port, str(launcher), *COMMON, "--batch_size", "2", "--output_dir", str(two)]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    errors = [line for line in done.stderr.splitlines() if "Error" in line or "error" in line]
    assert done.returncode == 0, "\n".join(errors[-20:]) + "\n" + done.stderr[-1500:]
    assert "2 process(es)" in done.stdout

    double = json.loads((two / "metrics.json").read_text())
    for key in ("uf1", "uar", "accuracy", "num_samples", "confusion_matrix"):
        assert double[key] == single[key], key
    a, b = pd.read_csv(one / "predictions.csv"), pd.read_csv(two / "predictions.csv")
    assert len(b) == 9 * 2 and (a["clip_id"] == b["clip_id"]).all() and (a["prediction"] == b["prediction"]).all()
    np.testing.assert_allclose(a.filter(like="prob_").to_numpy(), b.filter(like="prob_").to_numpy(), atol=1e-4)
