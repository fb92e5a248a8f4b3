"""The paper's protocol on 2 CPU cores: slstt-b16-384, 11 frames, frozen ViT, 40 epochs, LOSO, with the feature store.

    python bench/paper_protocol.py [--subjects 26] [--clips 9] [--small_subjects 3] [--epochs 40]
        [--uncached_clips 8] [--workdir DIR] [--json OUT]
    python bench/paper_protocol.py --full_real --mixed_precision bf16 --json OUT     # GPU (bench/run_gpu.sh): the whole protocol for real

Two phases, each in a fresh process (its peak resident memory is its own):

1. `small`, run for real: `train.main` on a 3-subject synthetic set (`--small_subjects` x `--clips` clips):
   build, flow at 384 px, the feature store (plain and mirrored flow), LOSO (3 folds x 40 epochs on stored
   embeddings, checkpointed every epoch) and the released model. Wall clock, the store's encoding rate
   (ViT-B/16 frames per second) and peak memory.
2. `full`, measured pieces of the CASME II-sized protocol (`--subjects` x `--clips` = 234 clips, 26 folds;
   CASME II's 5-class set: 249 clips of 26 subjects):
   * the set built and its flow computed, for real (timed);
   * the uncached path, in the same process: `train_one_epoch` with the ViT run on every frame, on
     `--uncached_clips` training clips of fold 0 after a 2-clip warm-up: seconds per clip;
   * the cached path's training: the runner's `train_fold` for fold 0, all 40 epochs with its checkpoints
     and predictions, on a store of the right shape (234 x 11 x 768, plain and mirrored) filled with
     random values: the head's cost does not depend on the values.

With `--full_real` (for a GPU, where it takes minutes) the whole CASME II-sized protocol runs for real through
`train.main` instead, and nothing is extrapolated.

The whole protocol is then EXTRAPOLATED (labelled so in the JSON): flow (measured) + store (every clip's
11 frames x 2 at phase 1's encoding rate) + 26 folds and the final model at fold 0's measured time (scaled
by training clips); the uncached path: flow + 27 trainings x 40 epochs at the measured seconds per clip.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from _common import machine_info, now_iso, write_json  # noqa: E402

PRESET = "slstt-b16-384"


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def load() -> float:
    return round(os.getloadavg()[0], 2)


def protocol_argv(opts: argparse.Namespace, subjects: int, workdir: Path, name: str) -> list[str]:
    """The paper's protocol on the synthetic set, as train.py's command line (everything else: defaults)."""
    return ["--dataset", "synthetic", "--synthetic_subjects", str(subjects), "--synthetic_clips", str(opts.clips),
            "--model", opts.preset, "--freeze_spatial", "--epochs", str(opts.epochs), "--num_proc", str(min(os.cpu_count() or 1, 8)),
            "--cache_dir", str(workdir / "cache"), "--output_dir", str(workdir / name)]


def phase_small(opts: argparse.Namespace, workdir: Path) -> dict:
    import train

    argv = protocol_argv(opts, opts.small_subjects, workdir, "small")
    started, load_start = time.perf_counter(), load()
    metrics = train.main(argv)
    seconds = time.perf_counter() - started
    store = metrics["feature_store"]
    return {
        "measured": "for real, end to end (build, flow, store, LOSO, final model)",
        "command": "accelerate launch train.py " + " ".join(argv),
        "clips": metrics.get("num_samples"),
        "folds": opts.small_subjects,
        "epochs": opts.epochs,
        "seconds": round(seconds, 1),
        "store": store,
        "encoder_frames_per_second": round(store["frames_encoded"] / store["seconds"], 3),
        "uf1": metrics.get("uf1"),
        "uar": metrics.get("uar"),
        "peak_rss_mb": vm_hwm_mb(),
        "load_average_1m": {"start": load_start, "end": load()},
    }


def phase_full_real(opts: argparse.Namespace, workdir: Path) -> dict:
    import torch

    import train

    argv = protocol_argv(opts, opts.subjects, workdir, "full_real")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started, load_start = time.perf_counter(), load()
    metrics = train.main(argv)
    seconds = time.perf_counter() - started
    store = metrics["feature_store"]
    out = {
        "measured": "for real, end to end (build, flow, store, LOSO, final model)",
        "command": "accelerate launch train.py " + " ".join(argv),
        "folds": opts.subjects,
        "epochs": opts.epochs,
        "seconds": round(seconds, 1),
        "store": store,
        "encoder_frames_per_second": round(store["frames_encoded"] / max(store["seconds"], 1e-9), 1),
        "peak_rss_mb": vm_hwm_mb(),
        "load_average_1m": {"start": load_start, "end": load()},
    }
    if torch.cuda.is_available():
        out["gpu_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def phase_full(opts: argparse.Namespace, workdir: Path) -> dict:
    import datasets
    import numpy as np
    import torch
    from accelerate.utils import set_seed

    from modeling_mer.training.clips import ClipTable
    from modeling_mer.training.features import EMBEDDINGS, MIRRORED
    from modeling_mer.training.loop import train_one_epoch
    from modeling_mer.training.protocols import make_folds
    from modeling_mer.training.recognition import RecognitionTask
    from modeling_mer.training.run_config import parse
    from modeling_mer.training.run_setup import make_optimizer, make_scheduler
    from modeling_mer.training.runner import Runner, optimizer_settings
    from modeling_mer.training.selection import EpochSelection
    from modeling_mer.training.tasks import TaskData

    # train.py's own configuration and runner; the flow alone first (the store is measured in phase small)
    run = parse([*protocol_argv(opts, opts.subjects, workdir, "full"), "--no_feature_store", "--report_to", "none"])
    task = RecognitionTask()
    runner = Runner.start(run, task)
    accelerator = runner.accelerator
    out: dict = {"load_average_1m": {"start": load()}}

    # 1. the set and its flow, for real
    started = time.perf_counter()
    data = task.prepare(run, accelerator)
    out["build_and_flow_seconds"] = round(time.perf_counter() - started, 1)
    meta, config = data.meta, data.config
    folds = make_folds("loso", meta["subject"].tolist(), meta["dataset"].tolist())
    fold = folds[0]
    out.update(clips=len(meta), folds=len(folds), fold0_train_clips=len(fold.train), fold0_test_clips=len(fold.test),
               num_frames=config.num_frames, image_size=config.image_size)

    # 2. the uncached path: the frozen ViT on every frame of every training clip, in train_one_epoch
    set_seed(run.seed)
    model = task.build_model(run, data, run.seed)
    optimizer = make_optimizer(optimizer_settings(run), model)
    model, optimizer = accelerator.prepare(model, optimizer)  # mixed precision as train.py runs it
    task.begin_fold(run, data, fold.train, run.seed)  # the fold's class weights, flips on

    def uncached_seconds(rows: list[int]) -> float:
        loader = task.make_loader(run, data, rows, True, run.seed)
        scheduler = make_scheduler(optimizer_settings(run), optimizer, opts.epochs, len(loader))
        begun = time.perf_counter()
        train_one_epoch(accelerator, model, loader, optimizer, scheduler, lambda m, batch: task.loss(m, batch, data, 0))
        return time.perf_counter() - begun

    uncached_seconds(fold.train[:2])  # warm-up
    timed = fold.train[2 : 2 + opts.uncached_clips]
    per_clip = uncached_seconds(timed) / len(timed)
    out["uncached"] = {
        "measured": f"train_one_epoch on {len(timed)} training clips of fold 0 (ViT on all {config.num_frames} "
                    "frames, flip), "
                    "after a 2-clip warm-up",
        "seconds_per_clip": round(per_clip, 3),
        "epoch_seconds_extrapolated": round(per_clip * len(fold.train), 1),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": load(),
    }

    # 3. the cached path's training, fold 0 for real, on a store-shaped table of random embeddings; with the
    # thread count train.py uses for it on CPU (1: the head's small ops only lose to thread overhead)
    if accelerator.device.type == "cpu":
        torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    t, width = config.num_frames, config.vision_config.hidden_size
    shape = datasets.Array2D(shape=(t, width), dtype="float32")
    store = datasets.Dataset.from_dict(
        {EMBEDDINGS: rng.standard_normal((len(meta), t, width), dtype=np.float32),
         MIRRORED: rng.standard_normal((len(meta), t, width), dtype=np.float32)},
        features=datasets.Features({EMBEDDINGS: shape, MIRRORED: shape}),
    )
    store.save_to_disk(str(workdir / "random_store"))
    store = datasets.load_from_disk(str(workdir / "random_store"))
    selection = EpochSelection.from_options(opts.epochs, 0, False)
    stored = TaskData(meta, config, data.processor, ClipTable(store, (EMBEDDINGS, MIRRORED)), data.info)
    begun = time.perf_counter()
    runner.train_fold(stored, fold, fold.index, selection)
    fold_seconds = time.perf_counter() - begun
    out["cached_fold0"] = {
        "measured": f"Runner.train_fold (train.py's), fold 0, {opts.epochs} epochs on stored embeddings (random values of "
                    "the store's shape), a checkpoint every epoch, then the held-out predictions",
        "seconds": round(fold_seconds, 1),
        "epoch_seconds": round(fold_seconds / opts.epochs, 2),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": load(),
    }
    out["peak_rss_mb"] = vm_hwm_mb()
    out["load_average_1m"]["end"] = load()
    return out


def extrapolate(small: dict, full: dict, epochs: int) -> dict:
    """The whole protocol from the measured pieces (labelled EXTRAPOLATED)."""
    clips, folds, train0 = full["clips"], full["folds"], full["fold0_train_clips"]
    frames = clips * full["num_frames"] * 2  # plain and mirrored flow
    store_seconds = frames / small["encoder_frames_per_second"]
    trainings = folds + clips / train0  # 26 folds + the final model on every clip (scaled by clips)
    head_seconds = full["cached_fold0"]["seconds"] * trainings
    cached = full["build_and_flow_seconds"] + store_seconds + head_seconds
    uncached_epoch = full["uncached"]["epoch_seconds_extrapolated"]
    uncached = full["build_and_flow_seconds"] + uncached_epoch * epochs * trainings
    return {
        "label": "EXTRAPOLATED from the measured pieces above (not a measured end-to-end run)",
        "cached": {
            "build_and_flow_seconds (measured)": full["build_and_flow_seconds"],
            "store_seconds": round(store_seconds, 1),
            "store_frames": frames,
            f"training_seconds ({folds} folds + final model)": round(head_seconds, 1),
            "total_hours": round(cached / 3600, 2),
        },
        "uncached": {
            "epoch_seconds": uncached_epoch,
            "total_hours": round(uncached / 3600, 1),
            "total_days": round(uncached / 86400, 2),
        },
        "per_epoch_ratio_uncached_over_cached": round(uncached_epoch / full["cached_fold0"]["epoch_seconds"], 1),
        "protocol_ratio_uncached_over_cached": round(uncached / cached, 1),
        "target_2h_met": cached <= 2 * 3600,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subjects", type=int, default=26, help="CASME II-sized set: subjects")
    p.add_argument("--preset", default=PRESET, help="the model (the paper's; another only to try the script quickly)")
    p.add_argument("--clips", type=int, default=9, help="synthetic clips per subject (a multiple of 3 classes)")
    p.add_argument("--small_subjects", type=int, default=3, help="the set run end to end for real")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--uncached_clips", type=int, default=8, help="clips timed on the uncached path")
    p.add_argument("--mixed_precision", choices=("no", "bf16", "fp16"), default="no",
                   help="as `accelerate launch --mixed_precision` (the README's command for the paper uses bf16)")
    p.add_argument("--full_real", action="store_true",
                   help="run the whole CASME II-sized protocol for real (a GPU: bench/run_gpu.sh) instead of the two phases")
    p.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one, removed)")
    p.add_argument("--json", default=None)
    p.add_argument("--_phase", choices=("small", "full", "full_real"), help=argparse.SUPPRESS)
    p.add_argument("--_out", help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts._phase:
        workdir = Path(opts.workdir)
        result = {"small": phase_small, "full": phase_full, "full_real": phase_full_real}[opts._phase](opts, workdir)
        Path(opts._out).write_text(json.dumps(result))
        return result
    import torch

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results = {"benchmark": "paper_protocol", "date": now_iso(), "command": command,
               "machine": machine_info(device),
               "setting": {"model": opts.preset, "num_frames": 11, "image_size": 384, "frozen_spatial": True,
                           "epochs": opts.epochs, "protocol": "LOSO", "mixed_precision": opts.mixed_precision,
                           "augment": "flip (plain and mirrored embeddings stored)",
                           "torch_threads": "as train.py: torch's default (2 here) for the ViT, 1 for head-only training",
                           "spatial_weights": "random (seeded): no Hub access here; a pretrained ViT costs the same"}}
    with tempfile.TemporaryDirectory(dir=opts.workdir) as tmp:
        for phase in ("full_real",) if opts.full_real else ("small", "full"):
            out = Path(tmp) / f"{phase}.json"
            cmd = [sys.executable, __file__, "--_phase", phase, "--_out", str(out), "--workdir", tmp,
                   *(f"--{k}={v}" for k, v in vars(opts).items()
                     if k in ("subjects", "clips", "small_subjects", "epochs", "uncached_clips", "preset"))]
            env = {**os.environ, "ACCELERATE_MIXED_PRECISION": opts.mixed_precision}
            subprocess.run(cmd, check=True, env=env)
            results[phase] = json.loads(out.read_text())
            print(json.dumps({phase: results[phase]}, indent=1), flush=True)
    if not opts.full_real:
        results["extrapolated_protocol"] = extrapolate(results["small"], results["full"], opts.epochs)
        print(json.dumps(results["extrapolated_protocol"], indent=1))
    if opts.json:
        write_json(opts.json, results)
    return results


if __name__ == "__main__":
    main()
