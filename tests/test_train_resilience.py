"""train.py survives kills and bad starts (issue 15): the fault-injection test, a failed start that does
not lock the folder, changed settings on --resume in one line, --on_error skip through preprocessing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from test_train import FAST, tiny_synthetic

import train
from modeling_mer.training import recognition
from modeling_mer.training.checkpoints import RunStateError, check_run_args

REPO = Path(__file__).resolve().parents[1]
# A tiny LOSO run: 3 subjects x 3 clips of the synthetic set, 16 px, 2 frames, 2 epochs, then the final model.
FAULT_ARGS = ["--synthetic_subjects", "3", "--synthetic_clips", "3", "--epochs", "2", "--image_size", "16",
              "--num_frames", "2"]
KINDS = {  # every instant at which a run makes state visible (tests/fault_injection.py names them), each hit by a kill
    "run_args:before_replace", "run_args:after_replace", "checkpoint:mkdir", "checkpoint:write",
    "checkpoint:before_replace", "checkpoint:after_replace", "checkpoint:before_remove", "fold_file:before_replace",
    "fold_file:after_replace", "reports:before_replace", "reports:after_replace", "final_model:before_replace",
    "final_model:after_replace", "final_marker:before_replace", "final_marker:after_replace", "card:before_replace",
    "card:after_replace",
}
SAME = ["model.safetensors", "config.json", "preprocessor_config.json", "predictions.csv", "final_model.json"]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the driver forks one child per run")
def test_sigkill_at_every_phase_then_resume_gives_identical_predictions_and_model(tmp_path):
    """One driver process forks a run per kill (tests/fault_injection.py); all of them share the datasets
    cache, so the flow is computed once. Each run is SIGKILLed at its target; the next resumes."""
    spec = {"argv": [*FAULT_ARGS, "--cache_dir", str(tmp_path / "cache")], "work": str(tmp_path), "min_kills": 20}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, str(REPO / "tests" / "fault_injection.py"), str(tmp_path / "spec.json")],
                   check=True, env=env, timeout=540)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["reference"]["ended"] == "exit 0", (tmp_path / "reference.log").read_text()[-3000:]
    runs = result["runs"]
    kills = [r for r in runs if r["target"] is not None]
    logs = "\n".join(p.read_text()[-1500:] for p in sorted(tmp_path.glob("run_*.log"))[-2:])
    assert [r["ended"] for r in kills] == ["signal 9"] * len(kills) and runs[-1] == {**runs[-1], "ended": "exit 0"}, logs
    assert len(kills) >= 20 and {t.split(" ")[0] for t in result["targets"]} == KINDS
    assert Counter(t.split(" ")[0] for t in result["timeline"]).keys() == KINDS  # no phase left unlisted
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    for name in SAME + sorted(p.relative_to(reference).as_posix() for p in (reference / "folds").iterdir()):
        assert (killed / name).read_bytes() == (reference / name).read_bytes(), f"{name} differs after the kills"
    leftovers = [p.name for p in killed.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == [], leftovers
    assert len(list((killed / "checkpoints" / "loso" / "checkpoints").iterdir())) == 2
    print(f"fault injection: {len(kills)} kills, {sum(r['seconds'] for r in runs):.1f} s in the runs")


@pytest.fixture
def patched(monkeypatch):
    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)


def test_argument_problems_are_named_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit):
        train.main(["--synthetic_clips", "4", "--output_dir", str(out)])
    assert "--synthetic_clips: synthetic: clips_per_subject must be a multiple of 3" in capsys.readouterr().err
    assert not out.exists()


def test_a_run_that_failed_early_does_not_lock_its_folder(tmp_path, patched, monkeypatch):
    out = tmp_path / "run"

    def broken(*args, **kwargs):
        raise RuntimeError("the data went away")

    monkeypatch.setattr(recognition, "load_mer_dataset", broken)
    with pytest.raises(RuntimeError):
        train.main([*FAST, "--output_dir", str(out), "--epochs", "1", "--no_final_model"])
    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)
    # corrected arguments, without --resume: the folder holds no finished work, so it is not a previous run
    assert train.main([*FAST, "--output_dir", str(out), "--epochs", "1", "--no_final_model", "--stop_after", "1"]) is None
    with pytest.raises(RunStateError) as refused:  # now it does: other settings are refused in one line
        train.main([*FAST, "--output_dir", str(out), "--epochs", "2", "--no_final_model", "--resume"])
    assert "\n" not in str(refused.value) and "--epochs 1 (now 2)" in str(refused.value)


def test_on_error_skip_covers_preprocessing(tmp_path, monkeypatch):
    def one_clip_changes_size(*args, **kwargs):
        data = tiny_synthetic(*args, **kwargs)
        small = io.BytesIO()
        Image.new("RGB", (24, 24)).save(small, format="PNG")

        def shrink(row, index):
            if index == 4:
                row["frames"] = row["frames"][:-1] + [{"bytes": small.getvalue(), "path": None}]
            return row

        return data.map(shrink, with_indices=True)

    monkeypatch.setattr(recognition, "load_mer_dataset", one_clip_changes_size)
    args = [*FAST, "--epochs", "1", "--no_final_model"]
    with pytest.raises(ValueError, match=r"preprocessing clip synthetic/synth_s02/c01: .*one size"):
        train.main([*args, "--output_dir", str(tmp_path / "strict")])
    metrics = train.main([*args, "--output_dir", str(tmp_path / "skip"), "--on_error", "skip"])
    [skipped] = metrics["skipped_clips"]
    assert (skipped["clip"], skipped["where"]) == ("synthetic/synth_s02/c01", "preprocessing")
    assert json.loads((tmp_path / "skip" / "metrics.json").read_text())["skipped_clips"] == [skipped]
    predictions = pd.read_csv(tmp_path / "skip" / "predictions.csv", dtype=str)
    assert len(predictions) == 8 and not ((predictions["subject"] == "synth_s02") & (predictions["clip_id"] == "c01")).any()


def test_the_command_line_refuses_changed_settings_in_one_line(tmp_path, monkeypatch):
    """`python train.py ... --resume` with other settings: the refusal is one line, not a traceback."""
    import runpy

    out = tmp_path / "run"
    args = [*FAST, "--output_dir", str(out), "--epochs", "1"]
    check_run_args(out, train.parse_args(args).run_args(), False, True)
    (out / "folds").mkdir()
    (out / "folds" / "fold_000.csv").write_text("fold\n")  # finished work: now it is a previous run
    monkeypatch.setattr(sys, "argv", ["train.py", *FAST, "--output_dir", str(out), "--epochs", "2", "--resume"])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(REPO / "train.py"), run_name="__main__")
    message = str(stopped.value.code)
    assert message.startswith("train.py: error: --resume: the run in") and "--epochs 1 (now 2)" in message
    assert "\n" not in message


def test_issue_reproduction_an_empty_checkpoint_folder_costs_nothing(tmp_path, patched, capsys):
    """--stop_after 3, then `mkdir checkpoint_3` (what a kill inside a checkpoint write used to leave), then
    --resume: the run goes on from checkpoint_2 and no complete checkpoint is lost on the way."""
    args = [*FAST, "--output_dir", str(tmp_path / "run"), "--no_final_model"]
    assert train.main([*args, "--stop_after", "3"]) is None
    folder = tmp_path / "run" / "checkpoints" / "loso" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint_1", "checkpoint_2"]
    (folder / "checkpoint_3").mkdir()
    assert train.main([*args, "--resume", "--stop_after", "1"]) is None
    printed = capsys.readouterr().out
    assert "removed what a stopped run left half-written: checkpoint_3" in printed
    assert "resumed 1 from checkpoint_2" in printed
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint_2", "checkpoint_3"]
    assert json.loads((folder / "checkpoint_3" / "progress.json").read_text())["epoch"] == 1
    assert train.main([*args, "--resume"])["uf1"] >= 0
