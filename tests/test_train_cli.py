"""train.py's command line (issue 20 items 3-4): bad values refused at parse time, in one line and under a
second of CPU; Trainer-style aliases; choices from the registries (and the mirrors read before the heavy
imports equal their owners); nothing written for a refused run; the leakage guard."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import FAST, tiny_synthetic

import train
from modeling_mer.training import leakage, recognition, run_options, tracking

REPO = Path(__file__).resolve().parents[1]

BAD = {  # argument -> what the one line must say
    ("--epochs", "0"): "--epochs/--num_train_epochs: must be >= 1, got 0",
    ("--epochs", "-1"): "must be >= 1, got -1",
    ("--num_train_epochs", "0"): "must be >= 1, got 0",
    ("--batch_size", "0"): "--batch_size/--per_device_train_batch_size: must be >= 1",
    ("--num_frames", "0"): "--num_frames: must be >= 1",
    ("--image_size", "0"): "--image_size: must be >= 1",
    ("--image_size", "47"): "--image_size 47 is not a multiple of tiny's patch size 8",
    ("--lr", "0"): "--lr/--learning_rate: must be in (0, inf)",
    ("--learning_rate", "nan"): "must be in (0, inf)",
    ("--dropout", "1"): "--dropout: must be in [0, 1)",
    ("--warmup_ratio", "2"): "--warmup_ratio: must be in [0, 1]",
    ("--gradient_accumulation_steps", "0"): "must be >= 1",
    ("--val_subjects", "-1"): "--val_subjects: must be >= 0",
    ("--stop_after", "0"): "--stop_after: must be >= 1",
    ("--crop", "foo"): "--crop: must be dlib, dlib-landmarks, dlib-box, haar, none or x,y,w,h",
    ("--crop", "1,2,0,4"): "--crop: must be",
    ("--model", "tinyy"): "'tinyy' is not a preset (tiny, mer-micro, mer-b16-224, slstt-b16-384)",
    ("--flow", "optiflow"): "'optiflow' is not a flow method (farneback, dis, tvl1",
    ("--synthetic_clips", "4"): "--synthetic_clips: synthetic: clips_per_subject must be a multiple of 3",
    ("--protocol", "hde"): "--protocol hde mixes datasets: it needs --dataset composite",
}


def _run_cli(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    """train.py in a fresh interpreter; returns the process and the CPU seconds it used (robust to load)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "train.py", *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return proc, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.mark.parametrize("bad", list(BAD), ids=[" ".join(b) for b in BAD])
def test_bad_arguments_are_refused_in_one_line_before_the_imports(bad, tmp_path):
    proc, cpu = _run_cli(*bad, "--output_dir", str(tmp_path / "run"))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error: ") and BAD[bad] in lines[0], proc.stderr
    assert cpu < 1.0, f"{' '.join(bad)}: {cpu:.2f} s of CPU"
    assert not (tmp_path / "run").exists()


def test_help_answers_in_under_a_second_of_cpu():
    proc, cpu = _run_cli("--help")
    assert proc.returncode == 0 and "--num_train_epochs" in proc.stdout and "--allow_overlap" in proc.stdout
    assert cpu < 1.0, f"--help: {cpu:.2f} s of CPU"


@pytest.mark.parametrize("argv", [["--help"], ["--epochs", "0"], ["--model", "tinyy"]])
def test_help_and_a_refused_argument_import_neither_torch_nor_transformers(argv):
    """The run configuration (run_config, run_options, run_rules, leakage) answers on the standard library."""
    code = ("import atexit, runpy, sys\n"
            f"sys.argv = ['train.py', *{argv!r}]\n"
            "atexit.register(lambda: print('HEAVY=' + ','.join(m for m in ('torch', 'transformers', 'cv2', 'datasets') "
            "if m in sys.modules), file=sys.stderr))\n"
            "runpy.run_path('train.py', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == (0 if argv == ["--help"] else 2), proc.stderr
    assert proc.stderr.splitlines()[-1] == "HEAVY=", proc.stderr


def test_trainer_spellings_and_resolved_defaults():
    run = train.parse_args(["--num_train_epochs", "3", "--learning_rate", "5e-4", "--per_device_train_batch_size", "2"])
    assert (run.epochs, run.lr, run.batch_size) == (3, 5e-4, 2)
    demo = train.parse_args([])  # the demo's policy, resolved once
    assert (demo.model, demo.protocol, demo.crop, demo.lr, demo.epochs) == ("tiny", "loso", "none", 2e-3, 20)
    assert (demo.image_size, demo.num_frames, demo.encoding) == (48, 4, "uv")
    assert train.parse_args(["--epochs", "5"]).run_args()["epochs"] == 5
    assert train.parse_args(["--model", "user/some-model"]).model == "user/some-model"  # a Hub id is allowed
    hyphens = train.parse_args(["--output-dir", "x-y", "--num-train-epochs=4", "--no-final-model"])  # mer-predict's style
    assert (hyphens.output_dir, hyphens.epochs, hyphens.no_final_model) == ("x-y", 4, True)


def test_choices_come_from_the_registries_and_the_mirrors_match_their_owners():
    from dataset_scripts import DATASET_NAMES
    from modeling_mer import face_crop, frame_sampling, optical_flow, processing_mer
    from modeling_mer.configuration_mer import AGGREGATIONS, PRESETS
    from modeling_mer.training.protocols import PROTOCOLS
    from modeling_mer.training.tasks import TASKS

    choices = {a.dest: a.choices for a in train.build_parser()._actions if a.choices}
    assert tuple(choices["dataset"]) == tuple(DATASET_NAMES) and tuple(choices["protocol"]) == tuple(PROTOCOLS)
    assert tuple(choices["task"]) == tuple(TASKS) and tuple(choices["report_to"]) == tracking.REPORT_TO_CHOICES
    assert run_options.PRESET_PATCH_SIZES == {k: v["vision_config"]["patch_size"] for k, v in PRESETS.items()}
    assert run_options.CROP_CHOICES == face_crop.CROPS and train.CROP_CHOICES == face_crop.CROPS
    assert set(run_options.FLOW_CHOICES) <= set(optical_flow.FLOW_METHODS)
    assert run_options.HEAD_MOTION_CHOICES == optical_flow.HEAD_MOTIONS
    assert run_options.ENCODING_CHOICES == processing_mer.ENCODINGS
    assert run_options.INPUT_MODE_CHOICES == processing_mer.INPUT_MODES
    assert run_options.SAMPLING_CHOICES == frame_sampling.SAMPLINGS
    assert run_options.AGGREGATION_CHOICES == tuple(AGGREGATIONS)


def test_a_run_that_fails_on_its_data_leaves_no_folder(tmp_path):
    from dataset_scripts import MERDataError

    out = tmp_path / "run"
    with pytest.raises((MERDataError, ValueError, FileNotFoundError)):
        train.main(["--dataset", "casme2", "--data_dir", str(tmp_path / "nonexistent"), "--output_dir", str(out),
                    "--report_to", "tensorboard" if tracking.resolve_report_to(None) else "none"])
    assert not out.exists()


# --------------------------------------------------------------------------------------- leakage guard
def _saved_model(folder: Path, train_datasets: list[str]) -> Path:
    from modeling_mer import MERConfig, MERForVideoClassification, MERImageProcessor

    config = MERConfig.from_preset("tiny", labels=["negative", "positive", "surprise"], num_frames=2,
                                   vision_config={"image_size": 32})
    config.train_datasets = train_datasets
    MERForVideoClassification(config).save_pretrained(folder)
    MERImageProcessor(image_size=32, num_frames=2, encoding="uv", crop="none").save_pretrained(folder)
    return folder


def test_a_starting_model_trained_on_the_evaluated_data_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "demo_model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"train_datasets": ["synthetic"], "vision_config": {"patch_size": 8}}))
    proc, _ = _run_cli("--model", str(folder), "--output_dir", str(tmp_path / "run"))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "was trained on synthetic" in proc.stderr and "--allow_overlap" in proc.stderr
    assert not (tmp_path / "run").exists()
    composite = train.parse_args(["--model", str(folder), "--dataset", "composite", "--data_dir", "casme2=a",
                                  "samm=b", "smic=c"])  # other data: allowed
    assert composite.model == str(folder)
    (folder / "config.json").write_text(json.dumps({"train_datasets": ["composite"]}))
    with pytest.raises(SystemExit):  # the composite's parts are its datasets
        train.parse_args(["--model", str(folder), "--dataset", "casme2", "--data_dir", "x"])
    assert leakage.overlap(["composite"], train.parse_args(["--allow_overlap", "--model", str(folder)])) == []


@pytest.mark.slow
def test_allow_overlap_labels_the_run_optimistic_everywhere(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)
    model = _saved_model(tmp_path / "start", ["synthetic"])
    out = tmp_path / "run"
    metrics = train.main([*FAST, "--epochs", "1", "--model", str(model), "--allow_overlap", "--output_dir", str(out)])
    assert metrics["optimistic"] and not metrics["selection_touched_held_out"]
    assert metrics["starting_model_overlap"] == ["synthetic"] and metrics["note"].startswith("OPTIMISTIC")
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["optimistic"] and "OPTIMISTIC" in stored["note"]
    console = capsys.readouterr().out
    assert "WARNING: OPTIMISTIC" in console and "[OPTIMISTIC: the starting model was trained" in console
    card = (out / "README.md").read_text()
    assert "optimistic" in card.split("---")[1].lower() and "OPTIMISTIC" in card
