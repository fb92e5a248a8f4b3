"""Spotting benchmark: LOSO spotting F1 of the trained spotter next to the training-free baseline on the same
folds (generated long videos), and the speed of spotting a 1-minute 30 fps 640x480 recording on the CPUs.

    python bench/spotting.py                      # both parts; JSON in bench/results/spotting_cpu.json
    python bench/spotting.py --part loso --subjects 6 --videos 2 --frames 900
    python bench/spotting.py --part speed
    python bench/spotting.py --part loso --data synthetic_long --frames 600 --output bench/results/spotting_synthetic_long_cpu.json

LOSO: `modeling_mer.training.spotting.run_loso` over generated long videos (`spotting_synthetic`: micro- and
macro-expressions at small amplitude among blinks, head drift and sudden head movements, lighting drift,
sensor noise). Each fold: the spotter trains from scratch on the training side minus its validation
subjects; checkpoint and thresholds are chosen on the validation subjects; the baseline's relative
threshold p is chosen on the training subjects. Nothing is chosen on the held-out subject.

Speed: a 1-minute 640x480 video at 30 fps is generated and written as a video file first (not timed); then
`mer-predict`'s spotting path (`cli.spot.spot_video`: decode, face detection every second, flow over the
lag, head motion removed, the model over windows, intervals) is timed end to end on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, now_iso  # noqa: E402

from modeling_mer import MERSpottingConfig, MERSpottingProcessor  # noqa: E402
from modeling_mer.training.spotting import (  # noqa: E402
    FeatureStore,
    run_loso,
    synthetic_videos,
    train_spotter,
    validation_subjects,
    videos_from_dataset,
)

FIGURES = ("f1_overall", "f1_micro", "f1_macro", "precision", "recall", "tp", "fp", "fn")


def loso(args: argparse.Namespace, cache: Path) -> tuple[dict, object]:
    processor = MERSpottingProcessor(crop="none")
    store = FeatureStore(cache / "spot_features", processor)
    started = time.perf_counter()
    if args.data == "synthetic_long":  # dataset_scripts' long synthetic mode (CAS(ME)^2's real event timings)
        from dataset_scripts import load_mer_dataset

        raw = load_mer_dataset("synthetic_long", cache_dir=str(cache), num_subjects=args.subjects,
                               videos_per_subject=args.videos, num_frames=args.frames, seed=args.seed)
        videos = videos_from_dataset(list(raw), store)
    else:
        videos = synthetic_videos(args.subjects, args.videos, store, num_frames=args.frames, fps=30.0, seed=args.seed)
    feature_seconds = time.perf_counter() - started
    config = MERSpottingConfig.from_preset(args.preset)
    started = time.perf_counter()
    result = run_loso(videos, config, processor, steps=args.steps, eval_every=args.eval_every,
                      batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed)
    loso_seconds = time.perf_counter() - started
    out = {
        "data": {"generator": {"generator": "modeling_mer.training.spotting_synthetic",
                               "synthetic_long": "dataset_scripts/_synthetic_long.py (load_mer_dataset('synthetic_long'))"}[args.data],
                 "subjects": args.subjects,
                 "videos_per_subject": args.videos, "frames_per_video": args.frames, "fps": 30.0,
                 "events": {t: sum(e["type"] == t for v in videos for e in v.events) for t in ("micro", "macro")}},
        "settings": {"preset": args.preset, "steps": args.steps, "eval_every": args.eval_every,
                     "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                     "processor": {k: v for k, v in processor.to_dict().items() if not k.startswith("_")}},
        "selection": "checkpoint and thresholds on validation subjects of the training side; baseline p on training subjects",
        "results": {m: {k: r[k] for k in FIGURES} | {"per_fold_f1": {f: v["f1_overall"] for f, v in r["per_fold"].items()}}
                    for m, r in result["metrics"].items()},
        "folds": result["folds"],
        "feature_seconds": round(feature_seconds, 1),
        "loso_seconds": round(loso_seconds, 1),
    }
    # a model for the speed part: trained like a fold's, on every subject (validation subjects set aside)
    subjects = sorted({v.subject for v in videos})
    val = validation_subjects(subjects, subjects[0])
    model, _ = train_spotter([v for v in videos if v.subject not in val], [v for v in videos if v.subject in val],
                             config, processor, steps=args.steps, eval_every=args.eval_every,
                             batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed)
    return out, model


def write_video(path: Path, seconds: float, fps: float, width: int, height: int, seed: int) -> dict:
    import av

    from modeling_mer.training.spotting_synthetic import make_long_video

    video = make_long_video(seed, num_frames=int(seconds * fps), fps=fps, width=width, height=height, micro=8, macro=4,
                            blinks=12, head_moves=4)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 4_000_000
        for _, frame in video.frames():
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return {"frames": video.num_frames, "fps": fps, "width": width, "height": height, "events": len(video.events)}


def speed(args: argparse.Namespace, model, cache: Path) -> dict:
    from modeling_mer.cli.spot import spot_video

    path = cache / "one_minute_640x480.mp4"
    info = write_video(path, 60.0, 30.0, 640, 480, seed=args.seed + 99)
    processor = MERSpottingProcessor(crop="haar", on_no_face="full_frame")  # detection every second included
    model.eval()
    started = time.perf_counter()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spot_video(path, model, processor)
    seconds = time.perf_counter() - started
    return {"video": info, "seconds": round(seconds, 2), "real_time_factor": round(60.0 / seconds, 2),
            "frames_per_second": round(info["frames"] / seconds, 1), "intervals": len(result["intervals"]),
            "torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "loso", "speed"), default="all")
    parser.add_argument("--data", choices=("generator", "synthetic_long"), default="generator",
                        help="generated long videos: spotting_synthetic's (default) or the dataset's long synthetic mode")
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--videos", type=int, default=2, help="videos per subject")
    parser.add_argument("--frames", type=int, default=900, help="frames per video (30 fps)")
    parser.add_argument("--preset", default="spot-small")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval_every", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the cores are shared)")
    parser.add_argument("--cache_dir", default=None, help="feature store and generated video (default: a temporary folder)")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "results" / "spotting_cpu.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache_dir or tmp)
        cache.mkdir(parents=True, exist_ok=True)
        out = {"benchmark": "spotting", "date": now_iso(), "machine": machine_info(torch.device("cpu")),
               "command": "python bench/spotting.py " + " ".join(argv if argv is not None else sys.argv[1:])}
        model = None
        if args.part in ("all", "loso"):
            out["loso"], model = loso(args, cache)
            for m, r in out["loso"]["results"].items():
                print(f"{m:9s} F1 overall {r['f1_overall']:.3f}  micro {r['f1_micro']:.3f}  macro {r['f1_macro']:.3f}  "
                      f"(TP {r['tp']}, FP {r['fp']}, FN {r['fn']})")
        if args.part in ("all", "speed"):
            if model is None:
                from modeling_mer import MERForExpressionSpotting

                torch.manual_seed(args.seed)
                model = MERForExpressionSpotting(MERSpottingConfig.from_preset(args.preset))  # speed: weights do not matter
            out["speed"] = speed(args, model, cache)
            s = out["speed"]
            print(f"1-minute 30 fps 640x480 video spotted in {s['seconds']} s ({s['real_time_factor']}x real time)")
    Path(args.output).write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
