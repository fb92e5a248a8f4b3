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
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    command = "python bench/accuracy.py " + shlex.join(sys.argv[1:] if argv is None else argv)
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
    print(table, flush=True)
    if args.json:
        out = write_json(args.json, payload)
        out.with_suffix(".md").write_text(table)
        print(f"[accuracy] wrote {out} and {out.with_suffix('.md')}", flush=True)
    return payload


if __name__ == "__main__":
    main()
