"""Issue 21, case 9: a config.json (or preprocessor_config.json) that is valid JSON but not an object --
a list, a string, a number, null, a boolean -- is one line naming the file, wherever it is read."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modeling_mer import MERConfig, MERForVideoClassification
from modeling_mer.cli.predict import main
from modeling_mer.processing_mer import MERImageProcessor

REPO = Path(__file__).resolve().parents[1]
SHAPES = {"[1, 2]": "array", '"mer"': "string", "3": "number", "null": "null", "true": "boolean"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("config_model") / "model"
    torch.manual_seed(0)
    config = MERConfig.from_preset("tiny", labels=["negative", "positive", "surprise"])
    MERForVideoClassification(config).save_pretrained(folder)
    MERImageProcessor(image_size=32, num_frames=config.num_frames, crop="none").save_pretrained(folder)
    frames = folder.parent / "frames"
    frames.mkdir()
    from PIL import Image

    for i in range(6):
        Image.new("RGB", (32, 32), (i * 20, 90, 90)).save(frames / f"img{i}.png")
    return folder


def _copy_with(saved: Path, tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(saved, folder)
    (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("text", list(SHAPES))
def test_case9_config_of_any_json_shape_from_pretrained(saved, tmp_path, text):
    folder = _copy_with(saved, tmp_path, "config.json", text)
    with pytest.raises(OSError) as err:
        MERConfig.from_pretrained(folder)
    assert str(err.value) == f"{folder / 'config.json'} holds a JSON {SHAPES[text]}, not an object of config fields"
    with pytest.raises(OSError, match="not an object of config fields"):
        MERForVideoClassification.from_pretrained(folder)


@pytest.mark.parametrize("name", ["config.json", "preprocessor_config.json"])
@pytest.mark.parametrize("text", list(SHAPES))
def test_case9_mer_predict_is_one_line(saved, tmp_path, capsys, name, text):
    folder = _copy_with(saved, tmp_path, name, text)
    code = main([str(saved.parent / "frames"), "--model", str(folder)])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    errors = [line for line in captured.err.splitlines() if not line.startswith("note:")]
    assert len(errors) == 1 and errors[0].startswith("error: "), captured.err
    assert f"{folder / name} holds a JSON {SHAPES[text]}, not an object" in errors[0]


def test_case9_train_model_folder_is_one_line(saved, tmp_path):
    folder = _copy_with(saved, tmp_path, "config.json", "[1, 2]")
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--model", str(folder), "--output_dir", str(out)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=tmp_path,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith(
        f"--model {folder}: {folder / 'config.json'} holds a JSON array, not an object of config fields"
    ), done.stderr
    assert not out.exists()


def test_run_args_json_of_another_shape_is_one_line(tmp_path):
    """--resume reads output_dir/run_args.json: a list there is named, not a TypeError traceback."""
    from modeling_mer.training.checkpoints import RunStateError, check_run_args

    (tmp_path / "folds").mkdir()
    (tmp_path / "folds" / "fold_000.csv").write_text("fold,label\n")  # a finished fold: a previous run
    (tmp_path / "run_args.json").write_text("[1, 2]")
    with pytest.raises(RunStateError) as err:
        check_run_args(tmp_path, {"epochs": 1}, resume=True, write=False)
    assert str(err.value) == f"{tmp_path / 'run_args.json'}: holds a JSON list, not the run's settings (an object)"
