"""train.py's defaults for real datasets: without --model, the mer-micro preset and flow for real-scale
motion (flow_size, head-motion removal, the motion encoding); the synthetic demo keeps its own."""

from __future__ import annotations

import pytest

import train
from modeling_mer import MERConfig
from modeling_mer.training import run_options
from modeling_mer.training.run_setup import PROCESSOR_OPTIONS, build_processor

REAL = {"casme2": ["--data_dir", "x"], "samm": ["--data_dir", "x"], "smic": ["--data_dir", "x"],
        "composite": ["--data_dir", "casme2=a", "samm=b", "smic=c"]}


@pytest.mark.parametrize("dataset", sorted(REAL))
def test_real_datasets_without_model_get_the_micro_motion_defaults(dataset: str) -> None:
    args = train.parse_args(["--dataset", dataset, *REAL[dataset]])
    assert args.model == run_options.REAL_PRESET == "mer-micro"
    assert (args.encoding, args.flow_size, args.head_motion) == ("motion", 240, "affine")
    assert (args.epochs, args.lr) == (40, 1e-3)
    config = MERConfig.from_preset(args.model, labels=["a", "b", "c"])
    processor = build_processor(args.model, config, {k: getattr(args, k) for k in PROCESSOR_OPTIONS})
    assert (processor.image_size, processor.flow_size, processor.head_motion, processor.encoding) == (32, 240, "affine", "motion")
    assert processor.num_frames == config.num_frames == 4 and config.aggregation == "mean"


def test_explicit_choices_win_and_other_models_keep_their_settings() -> None:
    args = train.parse_args(["--dataset", "casme2", "--data_dir", "x", "--flow_size", "128", "--epochs", "5",
                             "--encoding", "hsv"])
    assert (args.model, args.flow_size, args.epochs, args.encoding, args.head_motion) == ("mer-micro", 128, 5, "hsv", "affine")
    tiny = train.parse_args(["--dataset", "casme2", "--data_dir", "x", "--model", "tiny"])
    assert (tiny.flow_size, tiny.head_motion, tiny.encoding, tiny.epochs) == (None, None, None, 12)
    demo = train.parse_args([])  # the built-in demo is unchanged
    assert (demo.model, demo.encoding, demo.uv_scale, demo.image_size, demo.flow_size) == ("tiny", "uv", 1.0, 48, None)


def test_realistic_synthetic_trains_like_a_real_dataset() -> None:
    args = train.parse_args(["--synthetic_mode", "realistic"])
    assert (args.model, args.encoding, args.flow_size, args.head_motion) == ("mer-micro", "motion", 240, "affine")
    assert args.crop == [80, 0, 480, 480]  # the square that holds the generated face (no detector in the loop)
    with pytest.raises(SystemExit):
        train.parse_args(["--dataset", "casme2", "--data_dir", "x", "--synthetic_mode", "realistic"])
    with pytest.raises(SystemExit):
        train.parse_args(["--synthetic_mode", "realistic", "--synthetic_clips", "6"])
