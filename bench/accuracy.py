"""What each part of the model contributes: LOSO UF1/UAR of ablations on the built-in synthetic set.

Every variant runs the same protocol through `train.main` (leave one subject out, a fixed number of
epochs, no selection on the held-out subject) with the same seed(s), epochs and synthetic set; only the
named part changes:

    transformer  the full model: optical flow, several frames, temporal transformer
    lstm         the same with the SLSTT-LSTM aggregator
    mean         the same with SLSTT-Mean (the average of the frame embeddings)
    apex         one flow image (onset -> apex): no temporal model at all
    frames       raw frames instead of optical flow (the appearance, not the motion)

The synthetic set is built so that a single frame says nothing about the class (see
`dataset_scripts/synthetic.py`), so `frames` should stay near chance (1/3) while flow variants do not.

    python bench/accuracy.py --json bench/results/accuracy_synthetic.json

`--realistic` measures instead what train.py's default for real datasets (the `mer-micro` preset, flow at
up to 240 px on the face crop, head motion removed, encoding "motion") reaches on the realistic synthetic
set (CASME II's camera, 26 subjects, 5 classes and counts, motion of 0.3-3 px), one LOSO run per seed,
next to linear baselines on the same set and folds (class-balanced logistic regression on onset->apex
flow pooled to 16x16, standardised): the issue's recipe (flow at 128 px, no head-motion removal), the
same on the processor's flow (240 px, affine head motion removed), and apex-frame pixels (appearance only,
which must stay at chance, 0.2):

    python bench/accuracy.py --realistic --seeds 0 1 2 --json bench/results/accuracy_realistic.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE.parent)):  # runnable as a script from anywhere
    if _path not in sys.path:
        sys.path.insert(0, _path)

import torch  # noqa: E402
from _common import machine_info, now_iso, write_json  # noqa: E402

VARIANTS: dict[str, tuple[str, list[str]]] = {
    "transformer": ("flow, {T} frames, temporal transformer", ["--aggregation", "transformer"]),
    "lstm": ("flow, {T} frames, LSTM (SLSTT-LSTM)", ["--aggregation", "lstm"]),
    "mean": ("flow, {T} frames, mean of frame embeddings (SLSTT-Mean)", ["--aggregation", "mean"]),
    "apex": ("flow, 1 apex frame, no temporal model", ["--aggregation", "mean", "--num_frames", "1"]),
    "frames": ("raw frames instead of flow, {T} frames, temporal transformer",
               ["--aggregation", "transformer", "--input_mode", "frames"]),
}
METRICS = ("uf1", "uar", "accuracy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    p.add_argument("--output_dir", default="runs/bench-accuracy", help="train.py runs and the shared flow cache")
    p.add_argument("--model", default="tiny", help="train.py --model (a preset)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="one LOSO run per seed and variant")
    p.add_argument("--num_frames", type=int, default=4, help="frames of the multi-frame variants")
    p.add_argument("--image_size", type=int, default=32)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None, help="train.py --lr (default: train.py's)")
    p.add_argument("--synthetic_subjects", type=int, default=6)
    p.add_argument("--synthetic_clips", type=int, default=9, help="clips per subject (a multiple of 3)")
    p.add_argument("--synthetic_seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the results (JSON) here; the table goes next to it (.md)")
    p.add_argument("--quiet", action="store_true", help="hide train.py's console output")
    p.add_argument("--realistic", action="store_true",
                   help="train.py's real-data default on the realistic synthetic set, with linear baselines")
    args = p.parse_args(argv)
    for name in ("epochs", "num_frames", "image_size", "batch_size", "synthetic_subjects", "synthetic_clips"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.synthetic_subjects < 2:
        p.error(f"--synthetic_subjects must be >= 2 for leave-one-subject-out, got {args.synthetic_subjects}")
    if args.synthetic_clips % 3:
        p.error(f"--synthetic_clips must be a multiple of 3 (balanced classes), got {args.synthetic_clips}")
    return args


def train_argv(args: argparse.Namespace, variant: str, seed: int) -> list[str]:
    """The `train.py` command line of one variant: common settings first, then the variant's own."""
    argv = [
        "--dataset", "synthetic",
        "--output_dir", str(Path(args.output_dir) / f"{variant}_seed{seed}"),
        "--cache_dir", str(Path(args.output_dir) / "cache"),
        "--model", args.model,
        "--epochs", str(args.epochs),
        "--seed", str(seed),
        "--num_frames", str(args.num_frames),
        "--image_size", str(args.image_size),
        "--batch_size", str(args.batch_size),
        "--synthetic_subjects", str(args.synthetic_subjects),
        "--synthetic_clips", str(args.synthetic_clips),
        "--synthetic_seed", str(args.synthetic_seed),
        "--no_final_model",
    ]
    if args.lr is not None:
        argv += ["--lr", str(args.lr)]
    return argv + VARIANTS[variant][1]  # argparse keeps the last value: the variant's --num_frames wins


def run_train(argv: list[str], quiet: bool) -> dict[str, Any]:
    """One LOSO run through `train.main`; its metrics (from the return value, else its metrics.json)."""
    import train

    output_dir = Path(argv[argv.index("--output_dir") + 1])
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
        metrics = train.main(argv)
    if metrics is None:
        path = output_dir / "metrics.json"
        if not path.is_file():
            raise RuntimeError(f"train.main({shlex.join(argv)}) returned no metrics and wrote no {path}")
        metrics = json.loads(path.read_text())
    missing = [k for k in ("uf1", "uar") if k not in metrics]
    if missing:
        raise RuntimeError(f"train.py metrics of {output_dir} lack {missing}")
    return metrics


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean (and population std across seeds) of each metric."""
    out: dict[str, Any] = {}
    for key in METRICS:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            out[key] = round(statistics.fmean(values), 4)
            out[f"{key}_std"] = round(statistics.pstdev(values), 4) if len(values) > 1 else None
    return out


def markdown_table(payload: dict[str, Any]) -> str:
    seeds = payload["settings"]["seeds"]
    lines = [
        f"LOSO on the synthetic set ({payload['settings']['synthetic_subjects']} subjects x "
        f"{payload['settings']['synthetic_clips']} clips, 3 balanced classes: chance 0.333), "
        f"{payload['settings']['epochs']} epochs, seed(s) {', '.join(map(str, seeds))}; {payload['machine']['cpu']}, "
        f"{payload['date'][:10]}.",
        "",
        "| variant | what changes | UF1 | UAR | accuracy | minutes |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in payload["variants"].items():
        def cell(key: str, row: dict[str, Any] = row) -> str:
            std = row.get(f"{key}_std")
            return f"{row[key]:.3f}" + (f" ± {std:.3f}" if std else "")

        lines.append(f"| {name} | {row['description']} | {cell('uf1')} | {cell('uar')} | {cell('accuracy')} "
                     f"| {row['seconds'] / 60:.1f} |")
    return "\n".join(lines) + "\n"


def publish(payload: dict, table: str, json_path: str | None) -> dict:
    """Print the table; with --json write the JSON and the same table as .md beside it."""
    print(table, flush=True)
    if json_path:
        out = write_json(json_path, payload)
        out.with_suffix(".md").write_text(table)
        print(f"[accuracy] wrote {out} and {out.with_suffix('.md')}", flush=True)
    return payload


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    command = "python bench/accuracy.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.realistic:
        return main_realistic(args, command)
    results: dict[str, Any] = {}
    for variant in args.variants:
        runs = []
        started = time.time()
        for seed in args.seeds:
            argv_v = train_argv(args, variant, seed)
            print(f"[accuracy] {variant} seed {seed}: train.py {shlex.join(argv_v)}", flush=True)
            metrics = run_train(argv_v, args.quiet)
            runs.append({"seed": seed, **{k: metrics.get(k) for k in METRICS},
                         "num_samples": metrics.get("num_samples"), "num_folds": metrics.get("num_folds")})
            print(f"[accuracy] {variant} seed {seed}: UF1 {metrics['uf1']:.4f} UAR {metrics['uar']:.4f}", flush=True)
        frames = 1 if variant == "apex" else args.num_frames
        results[variant] = {
            "description": VARIANTS[variant][0].format(T=frames),
            "train_args": VARIANTS[variant][1],
            **summarise(runs),
            "runs": runs,
            "seconds": round(time.time() - started, 1),
        }
    payload = {
        "benchmark": "LOSO ablations on the built-in synthetic set",
        "date": now_iso(),
        "command": command,
        "machine": machine_info(torch.device("cpu")),
        "settings": {k: getattr(args, k) for k in (
            "model", "epochs", "seeds", "num_frames", "image_size", "batch_size", "lr",
            "synthetic_subjects", "synthetic_clips", "synthetic_seed")},
        "protocol": "leave one subject out, fixed epochs, no selection on the held-out subject; "
                    "UF1/UAR pooled over all folds",
        "variants": results,
    }
    table = markdown_table(payload)
    return publish(payload, table, args.json)


# ------------------------------------------------------------------------------------ --realistic
BASELINES: dict[str, tuple[str, dict[str, Any] | None]] = {
    "linear, issue's recipe": ("onset->apex flow at 128 px on the face crop, 16x16, logistic regression",
                               {"flow_size": 128, "head_motion": "none"}),
    "linear, processor's flow": ("onset->apex flow at 240 px, affine head motion removed, 16x16, logistic regression",
                                 {"flow_size": 240, "head_motion": "affine"}),
    "appearance only": ("apex-frame pixels (face crop, 32x32 gray), logistic regression", None),
}


def realistic_train_argv(args: argparse.Namespace, seed: int) -> list[str]:
    """train.py with every model and processor setting at its real-data default."""
    return ["--dataset", "synthetic", "--synthetic_mode", "realistic", "--synthetic_seed", str(args.synthetic_seed),
            "--seed", str(seed), "--output_dir", str(Path(args.output_dir) / f"realistic_seed{seed}"),
            "--cache_dir", str(Path(args.output_dir) / "cache"), "--no_final_model"]


def baseline_features(dataset: Any, processor_settings: dict[str, Any] | None, box: list[int]) -> Any:
    """One feature row per clip: reduced onset->apex flow (u, v), or the apex frame's gray pixels."""
    import cv2
    import numpy as np

    from modeling_mer.processing_mer import MERImageProcessor

    rows = []
    if processor_settings is None:
        for clip in dataset:
            frame = np.asarray(clip["frames"][clip["frame_numbers"].index(clip["apex"])])
            x, y, w, h = box
            gray = cv2.cvtColor(frame[y:y + h, x:x + w], cv2.COLOR_RGB2GRAY)
            rows.append(cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).ravel().astype(np.float32))
        return np.stack(rows)
    processor = MERImageProcessor(image_size=16, num_frames=1, crop=box, **processor_settings)
    for clip in dataset:
        flow = processor.compute_flow(clip["frames"], clip["onset"], clip["apex"], clip["offset"], clip["frame_numbers"])
        rows.append(flow["flow"].ravel())
    return np.stack(rows)


def linear_loso(features: Any, labels: Any, subjects: Any, label_names: list[str]) -> dict[str, float]:
    """Standardised, class-balanced logistic regression, one fold per subject, predictions pooled."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from modeling_mer.evaluation.metrics import compute_mer_metrics

    predictions = np.empty_like(labels)
    with threadpool_limits(1):
        for subject in np.unique(subjects):
            test = subjects == subject
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced"))
            predictions[test] = model.fit(features[~test], labels[~test]).predict(features[test])
    metrics = compute_mer_metrics(labels.tolist(), predictions.tolist(), label_names)
    return {k: round(float(metrics[k]), 4) for k in METRICS if k in metrics}


def main_realistic(args: argparse.Namespace, command: str) -> dict[str, Any]:
    import numpy as np

    import train
    from dataset_scripts import load_mer_dataset
    from dataset_scripts._synthetic_realistic import face_box
    from modeling_mer.training.preprocessing import preprocess_dataset
    from modeling_mer.training.recognition import model_choice
    from modeling_mer.training.run_setup import PROCESSOR_OPTIONS, base_config, build_processor

    started = time.time()
    dataset = load_mer_dataset("synthetic", cache_dir=str(Path(args.output_dir) / "cache"), mode="realistic",
                               seed=args.synthetic_seed, apex_window=16)
    build_seconds = round(time.time() - started, 1)
    label_names = list(dataset.features["label"].names)
    # The flow of train.py's processor, timed on 2 worker processes; train.py then finds it in the cache.
    train_args = train.parse_args(realistic_train_argv(args, args.seeds[0]))
    config = base_config(model_choice(train_args), label_names)
    processor = build_processor(train_args.model, config, {k: getattr(train_args, k) for k in PROCESSOR_OPTIONS})
    started = time.time()
    preprocess_dataset(dataset, processor, num_proc=2, load_from_cache_file=False)
    flow_seconds = round(time.time() - started, 1)
    print(f"[accuracy] optical flow of {len(dataset)} clips ({processor.flow_size} px, head motion "
          f"{processor.head_motion}) on 2 processes: {flow_seconds} s", flush=True)
    results: dict[str, Any] = {}
    runs, seconds = [], []
    for seed in args.seeds:
        argv_s = realistic_train_argv(args, seed)
        print(f"[accuracy] mer-micro seed {seed}: train.py {shlex.join(argv_s)}", flush=True)
        started = time.time()
        metrics = run_train(argv_s, args.quiet)
        seconds.append(round(time.time() - started, 1))
        runs.append({"seed": seed, **{k: metrics.get(k) for k in METRICS}, "seconds": seconds[-1],
                     "num_samples": metrics.get("num_samples"), "num_folds": metrics.get("num_folds")})
        print(f"[accuracy] mer-micro seed {seed}: UF1 {metrics['uf1']:.4f} UAR {metrics['uar']:.4f} "
              f"({seconds[-1] / 60:.1f} min)", flush=True)
    results["mer-micro (train.py default)"] = {
        "description": "train.py --dataset synthetic --synthetic_mode realistic (the real-data default: mer-micro, "
                       "flow at 240 px, affine head motion removed, encoding motion)",
        **summarise(runs), "runs": runs, "seconds": round(float(np.mean(seconds)), 1),
    }
    labels, subjects = np.array(dataset["label"]), np.array(dataset["subject"])
    x, y, side = face_box("casme2")
    for name, (description, settings) in BASELINES.items():
        started = time.time()
        features = baseline_features(dataset, settings, [x, y, side, side])
        metrics = linear_loso(features, labels, subjects, label_names)
        results[name] = {"description": description, **metrics, "uf1_std": None, "uar_std": None,
                         "accuracy_std": None, "seconds": round(time.time() - started, 1)}
        print(f"[accuracy] {name}: UF1 {metrics['uf1']:.4f} UAR {metrics['uar']:.4f}", flush=True)
    payload = {
        "benchmark": "LOSO on the realistic synthetic set: train.py's real-data default vs linear baselines",
        "date": now_iso(),
        "command": command,
        "machine": machine_info(torch.device("cpu")),
        "load": os.getloadavg(),
        "settings": {"seeds": args.seeds, "synthetic_seed": args.synthetic_seed, "clips": len(labels),
                     "subjects": len(set(subjects.tolist())), "classes": label_names,
                     "processor": {k: getattr(processor, k) for k in ("image_size", "num_frames", "flow_size",
                                                                       "head_motion", "encoding", "motion_unit", "crop")}},
        "build_seconds": build_seconds,
        "flow_seconds_2proc": flow_seconds,
        "protocol": "leave one subject out, fixed epochs, no selection on the held-out subject; UF1/UAR pooled "
                    "over all folds; baselines on the same clips and folds",
        "variants": results,
    }
    seeds = ", ".join(map(str, args.seeds))
    lines = [
        f"LOSO on the realistic synthetic set ({len(labels)} clips, {payload['settings']['subjects']} subjects, "
        f"CASME II's 5 classes and counts: chance UF1 ~0.2); train.py seeds {seeds} (mean ± std); "
        f"{payload['machine']['cpu']}, {payload['date'][:10]}, load average {payload['load'][0]:.1f}. Optical flow "
        f"of the {len(labels)} clips on 2 processes: {flow_seconds:.0f} s.",
        "",
        "| model | what | UF1 | UAR | accuracy | minutes (per seed) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        def cell(key: str, row: dict[str, Any] = row) -> str:
            std = row.get(f"{key}_std")
            return f"{row[key]:.3f}" + (f" ± {std:.3f}" if std is not None else "")

        lines.append(f"| {name} | {row['description']} | {cell('uf1')} | {cell('uar')} | {cell('accuracy')} "
                     f"| {row['seconds'] / 60:.1f} |")
    table = "\n".join(lines) + "\n"
    return publish(payload, table, args.json)


if __name__ == "__main__":
    main()
