"""`train.py --task spot --model ...`: spotting presets by name, a saved spotter as the starting model
(fine-tuned per fold, under the leakage guard), anything else refused in one line at parse time."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

import train
from modeling_mer import MERConfig, MERForVideoClassification, MERSpottingConfig, MERSpottingProcessor
from modeling_mer.configuration_spotting import SPOTTING_PRESETS
from modeling_mer.modeling_spotting import MERForExpressionSpotting
from modeling_mer.training import leakage, run_options
from modeling_mer.training.spotting import SpottingTask, starting_point


def _refused(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def spotter_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spotter")
    torch.manual_seed(0)
    MERForExpressionSpotting(MERSpottingConfig.from_preset("tiny", train_datasets=["casme_sq"])).save_pretrained(folder)
    MERSpottingProcessor(crop="none", lag=0.3, flow_size=32).save_pretrained(folder)
    return folder


def test_the_mirror_of_the_spotting_presets_matches_its_owner():
    assert run_options.SPOTTING_PRESET_NAMES == tuple(SPOTTING_PRESETS)
    assert run_options.SPOTTING_MODEL_TYPE == MERSpottingConfig.model_type
    assert run_options.SPOT_PRESET in SPOTTING_PRESETS


def test_spotting_presets_by_name_and_the_default():
    default = train.parse_args(["--task", "spot", "--dataset", "synthetic_long"])
    assert (default.model, default.epochs, default.lr) == (run_options.SPOT_PRESET, run_options.SPOT_DEFAULTS["epochs"], 1e-3)
    for name in SPOTTING_PRESETS:
        assert train.parse_args(["--task", "spot", "--dataset", "synthetic_long", "--model", name]).model == name


def test_what_is_not_a_spotter_is_refused_at_parse_time(capsys, tmp_path):
    line = _refused(capsys, ["--task", "spot", "--dataset", "synthetic_long", "--model", "mer-micro"])
    assert "--task spot takes a spotting preset (tiny, spot-small)" in line and "mer-micro is a recognition preset" in line
    line = _refused(capsys, ["--model", "spot-small"])  # the other way round
    assert "recognition preset" in line and "spot-small is a spotting preset" in line
    line = _refused(capsys, ["--task", "spot", "--dataset", "synthetic_long", "--model", "spot-smal"])
    assert "'spot-smal' is not a preset" in line and "a spotting preset for --task spot (tiny, spot-small)" in line
    recogniser = tmp_path / "rec"
    MERForVideoClassification(MERConfig.from_preset("tiny", labels=["a", "b"], num_frames=2)).save_pretrained(recogniser)
    capsys.readouterr()  # the save's progress bars
    line = _refused(capsys, ["--task", "spot", "--dataset", "synthetic_long", "--model", str(recogniser)])
    assert "(tiny, spot-small)" in line and "of type 'mer'" in line
    (tmp_path / "empty").mkdir()
    line = _refused(capsys, ["--task", "spot", "--dataset", "synthetic_long", "--model", str(tmp_path / "empty")])
    assert "holds no config.json" in line


def test_a_saved_spotter_passes_the_leakage_guard_as_a_recogniser_does(capsys, spotter_dir):
    capsys.readouterr()
    line = _refused(capsys, ["--task", "spot", "--dataset", "casme_sq", "--data_dir", str(spotter_dir),
                             "--model", str(spotter_dir)])
    assert "was trained on casme_sq, which this run evaluates" in line and "--allow_overlap" in line
    run = train.parse_args(["--task", "spot", "--dataset", "casme_sq", "--data_dir", str(spotter_dir),
                            "--model", str(spotter_dir), "--allow_overlap"])
    assert run.model == str(spotter_dir)
    assert train.parse_args(["--task", "spot", "--dataset", "synthetic_long", "--model", str(spotter_dir)]).epochs == run_options.SPOT_DEFAULTS["epochs"]


def test_a_saved_spotter_starts_every_fold_with_its_weights_and_feature_settings(spotter_dir):
    run = SimpleNamespace(model=str(spotter_dir), dataset="synthetic_long", crop="none", flow=None, head_motion=None,
                          test_on=None, allow_overlap=False)
    config, processor, shared = starting_point(run)
    assert shared == [] and config.train_datasets == ["casme_sq", "synthetic_long"]
    assert (processor.lag, processor.flow_size, processor.crop) == (0.3, 32, "none")  # the saved processor's features
    saved = MERForExpressionSpotting.from_pretrained(spotter_dir)
    task = SpottingTask()
    config.micro_half_width = 0.123  # the task sets the half widths from the fold's data
    model = task.build_model(run, SimpleNamespace(config=config), 0)
    assert model.config.micro_half_width == 0.123
    for name, tensor in saved.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor)
    overlapping = SimpleNamespace(**{**vars(run), "dataset": "casme_sq"})
    with pytest.raises(leakage.LeakageError, match="trained on casme_sq"):  # a Hub id is checked here, once read
        starting_point(overlapping)
    assert starting_point(SimpleNamespace(**{**vars(overlapping), "allow_overlap": True}))[2] == ["casme_sq"]
    # a preset starts from scratch
    config, processor, shared = starting_point(SimpleNamespace(**{**vars(run), "model": "tiny"}))
    assert config.window == SPOTTING_PRESETS["tiny"]["window"] and processor.lag == 0.2 and shared == []


def test_a_config_of_another_model_type_is_refused_when_loaded(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit"}))
    run = SimpleNamespace(model=str(tmp_path), dataset="synthetic_long", crop="none", flow=None, head_motion=None,
                          test_on=None, allow_overlap=False)
    with pytest.raises(ValueError, match=r"of type 'vit', not a spotter: --task spot takes a spotting preset \(tiny, spot-small\)"):
        starting_point(run)
