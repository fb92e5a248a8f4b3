"""Spotting benchmark: LOSO spotting F1 of the trained spotter next to the training-free baseline on the same
folds (generated long videos), and the speed of spotting a 1-minute 30 fps 640x480 recording on the CPUs.

    python bench/spotting.py                      # both parts; JSON in bench/results/spotting_cpu.json
    python bench/spotting.py --part loso --subjects 6 --videos 2 --frames 900
    python bench/spotting.py --part speed
    python bench/spotting.py --part loso --data synthetic_long --frames 600 --output bench/results/spotting_synthetic_long_cpu.json
    python bench/spotting.py --part casme_sq_scale --output bench/results/spotting_casme_sq_scale_cpu.json

LOSO: `modeling_mer.training.spotting.run_loso` over generated long videos (`spotting_synthetic`: micro- and
macro-expressions at small amplitude among blinks, head drift and sudden head movements, lighting drift,
sensor noise). Each fold: the spotter trains from scratch on the training side minus its validation
subjects; checkpoint and thresholds are chosen on the validation subjects; the baseline's relative
threshold p is chosen on the training subjects. Nothing is chosen on the held-out subject.

Speed: a 1-minute 640x480 video at 30 fps is generated and written as a video file first (not timed); then
`mer-predict`'s spotting path (`cli.spot.spot_video`: decode, face detection every second, flow over the
lag, head motion removed, the model over windows, intervals) is timed end to end on it.

casme_sq_scale: what `train.py --task spot --dataset casme_sq` with its defaults costs on CAS(ME)^2's 33 videos
that hold a micro-expression (14 subjects, their real lengths from the sheet: about 65,000 frames at 30 fps).
No licensed data is here, so the parts are measured on generated data of the real size and the total is
EXTRAPOLATED from them: (a) feature extraction per frame on generated 640x480 JPEG frames through the
processor train.py builds (the default crop, flow and head motion); (b) the runner's fold 0 (train.py --fold
0, every default: preset, epochs, batch, validation subject, checkpoints) on stored features of the 33 videos
at their real lengths and event timings (random motion values: the cost does not depend on them), run with 1
and with 3 epochs, which gives the cost per epoch and per fold; (c) the training-free baseline's p chosen on a
fold's training videos. Total = 65k frames x (a) + 14 folds x (fold cost + epochs x epoch cost + baseline) +
the final model (epochs x epoch cost on all subjects).
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
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # train.py (casme_sq_scale runs its runner)
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


def casme_sq_videos() -> list[tuple[int, str, int, list[dict]]]:
    """(participant, video, frames, events) of CAS(ME)^2's videos holding a micro-expression, from the sheet
    rows the package ships (dataset_scripts/casme_sq_code_final.csv); length = last event + 30 frames."""
    from dataset_scripts._synthetic_long import WINDOW_MARGIN, real_videos

    out = []
    for (participant, video), events in sorted(real_videos().items()):
        if any(e.type == "micro" for e in events):
            length = max(max(e.offset, e.apex) for e in events) + WINDOW_MARGIN
            out.append((participant, video, length, [{"onset": e.onset, "offset": max(e.offset, e.onset), "apex": e.apex,
                                                      "type": e.type, "emotion": e.emotion} for e in events]))
    return out


def _processor_of_train_py(dataset: str) -> MERSpottingProcessor:
    """The processor `train.py --task spot --dataset DATASET` builds with its defaults."""
    import train
    from modeling_mer.training.spotting import starting_point

    run = train.parse_args(["--task", "spot", "--dataset", dataset, *(["--data_dir", "."] if dataset != "synthetic_long" else [])])
    return starting_point(run)[1], run


def scale_features(args: argparse.Namespace, cache: Path) -> dict:
    """(a) seconds per frame of feature extraction on generated 640x480 JPEG frames (decode, face, flow)."""
    from PIL import Image

    from modeling_mer.training.spotting_synthetic import make_long_video

    processor, run = _processor_of_train_py("casme_sq")
    folder = cache / "frames_640x480"
    folder.mkdir(parents=True, exist_ok=True)
    video = make_long_video(args.seed + 7, num_frames=args.scale_frames, fps=30.0, width=640, height=480,
                            micro=4, macro=2, blinks=6, head_moves=2)
    paths = []
    for index, frame in video.frames():  # written as CAS(ME)^2 ships frames (JPEG files); not timed
        paths.append(str(folder / f"img{index + 1}.jpg"))
        Image.fromarray(frame).save(paths[-1], quality=90)
    started = time.perf_counter()
    features = processor.video_features(paths, 30.0)
    seconds = time.perf_counter() - started
    return {"frames": len(paths), "width": 640, "height": 480, "seconds": round(seconds, 2),
            "seconds_per_frame": seconds / len(paths), "feature_frames": int(len(features["frames"])),
            "processor": {k: processor.to_dict()[k] for k in ("crop", "flow", "head_motion", "flow_size", "image_size",
                                                               "lag", "feature_rate", "track_every")},
            "train_py_defaults": {"crop": run.crop, "model": run.model, "epochs": run.epochs, "lr": run.lr,
                                  "batch_size": run.batch_size, "val_subjects": run.val_subjects}}


def scale_training(args: argparse.Namespace, cache: Path) -> dict:
    """(b) the runner's fold 0 with train.py's defaults on stored features of the 33 videos (1 and 3 epochs);
    (c) the baseline's choice of p on fold 0's training videos."""
    import numpy as np
    import pandas as pd

    import train
    from modeling_mer.training.spotting import (
        SpottingTask,
        SpotVideo,
        choose_baseline,
        half_widths,
        starting_point,
    )
    from modeling_mer.training.tasks import TaskData

    rng = np.random.default_rng(args.seed)
    plan = casme_sq_videos()
    processor, _ = _processor_of_train_py("synthetic_long")
    size = processor.image_size
    videos = []
    for participant, video, length, events in plan:
        flow = rng.normal(0.0, 0.05, (length, 2, size, size)).astype(np.float16)
        videos.append(SpotVideo(dataset="casme_sq", subject=f"s{participant:02d}", video_id=f"{participant}_{video}",
                                fps=30.0, rate=30.0, flow=flow, numbers=np.arange(1, length + 1),
                                magnitude=np.linalg.norm(flow.astype(np.float32), axis=1).mean(axis=(1, 2)), events=events))

    def prepare(self, run, accelerator):  # the stored features (what the feature store returns), train.py's model
        config, _, shared = starting_point(run)
        for kind, value in half_widths(videos).items():
            setattr(config, f"{kind}_half_width", value)
        self.recognizer, self.sources = None, {}
        meta = pd.DataFrame({"dataset": [v.dataset for v in videos], "subject": [v.subject for v in videos],
                             "video_id": [v.video_id for v in videos], "events": [len(v.events) for v in videos]})
        return TaskData(meta=meta, config=config, processor=processor, examples=videos,
                        info={"videos": videos, "overlap": shared, "report": {}})

    timings = {}
    original = SpottingTask.prepare
    SpottingTask.prepare = prepare
    try:
        for epochs in (1, 3):
            out = cache / f"fold0_{epochs}"
            started = time.perf_counter()
            train.main(["--task", "spot", "--dataset", "synthetic_long", "--fold", "0", "--epochs", str(epochs),
                        "--output_dir", str(out), "--report_to", "none", "--cpu_threads", str(args.threads)])
            timings[epochs] = time.perf_counter() - started
    finally:
        SpottingTask.prepare = original
    default_epochs = train.parse_args(["--task", "spot", "--dataset", "synthetic_long"]).epochs
    per_epoch = (timings[3] - timings[1]) / 2
    fixed = max(0.0, timings[1] - per_epoch)
    subjects = sorted({v.subject for v in videos})
    training = [v for v in videos if v.subject != subjects[0]]
    started = time.perf_counter()
    choose_baseline(training, half_widths(training), processor.lag)
    baseline = time.perf_counter() - started
    return {"videos": len(videos), "subjects": len(subjects), "frames": int(sum(len(v.numbers) for v in videos)),
            "events": {t: sum(e["type"] == t for v in videos for e in v.events) for t in ("micro", "macro")},
            "fold0_seconds": {"1_epoch": round(timings[1], 1), "3_epochs": round(timings[3], 1)},
            "seconds_per_epoch": round(per_epoch, 2), "seconds_per_fold_besides_epochs": round(fixed, 2),
            "baseline_seconds_per_fold": round(baseline, 2), "default_epochs": default_epochs}


def casme_sq_scale(args: argparse.Namespace, cache: Path) -> dict:
    features = scale_features(args, cache)
    print(f"(a) features: {features['seconds_per_frame'] * 1000:.1f} ms per 640x480 frame ({features['frames']} frames)")
    training = scale_training(args, cache)
    print(f"(b) fold 0: {training['seconds_per_epoch']:.1f} s per epoch, {training['seconds_per_fold_besides_epochs']:.1f} s "
          f"besides; (c) baseline {training['baseline_seconds_per_fold']:.1f} s per fold")
    frames, folds, epochs = training["frames"], training["subjects"], training["default_epochs"]
    parts = {
        "features": frames * features["seconds_per_frame"],
        "folds": folds * (training["seconds_per_fold_besides_epochs"] + epochs * training["seconds_per_epoch"]
                          + training["baseline_seconds_per_fold"]),
        "final_model": epochs * training["seconds_per_epoch"] * training["subjects"] / (training["subjects"] - 2),
    }
    total = sum(parts.values())
    print(f"EXTRAPOLATED LOSO total: {total / 60:.1f} min ({', '.join(f'{k} {v / 60:.1f} min' for k, v in parts.items())})")
    return {"note": "MEASURED on generated data of CAS(ME)^2's size (no licensed data here); the total is "
                    "EXTRAPOLATED from the measured parts, not a run over the real dataset",
            "features": features, "training": training,
            "extrapolated_seconds": {k: round(v, 1) for k, v in parts.items()} | {"total": round(total, 1)},
            "extrapolated_minutes_total": round(total / 60, 1), "target_minutes": 60,
            "formula": "frames x feature s/frame + folds x (fold overhead + epochs x s/epoch + baseline) + final model "
                       "(epochs x s/epoch x subjects / (subjects - 2): all subjects instead of a fold's training side)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "loso", "speed", "casme_sq_scale"), default="all")
    parser.add_argument("--scale_frames", type=int, default=1500,
                        help="casme_sq_scale: generated 640x480 frames timed for feature extraction")
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
        if args.part == "casme_sq_scale":
            out["load_average_before"] = list(__import__("os").getloadavg())
            out["casme_sq_scale"] = casme_sq_scale(args, cache)
            out["load_average_after"] = list(__import__("os").getloadavg())
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
