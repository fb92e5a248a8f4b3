"""mer-predict on a long recording with a spotting model: every interval, optionally named by a recogniser.

    mer-predict long.mp4 --model SPOTTER [--recognizer MODEL] [--json] [--timeline OUT.png] [--ground-truth CSV]

`mer-predict` hands over here when --model is a spotting model (config model_type "mer-spotting"). The
video is decoded once, frame by frame (memory bounded by the processor's lag and the model's window, not
the video's length); a second pass decodes only the frames of the spotted intervals, for the recogniser
and the thumbnails. Output: per interval its start/end frame and seconds, type, score, apex, and with a
recogniser the emotion and its probabilities.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .arguments import build_spot_parser

SPOTTING_MODEL_TYPE = "mer-spotting"


class SpotError(ValueError):
    """A problem with the user's input, reported in one line."""


def model_type_of(model_id: str) -> str | None:
    """The model_type in a saved model's config.json (None when it cannot be read)."""
    try:
        from transformers import PretrainedConfig

        config, _ = PretrainedConfig.get_config_dict(model_id)
        return config.get("model_type") if isinstance(config, dict) else None  # a JSON list...: mer-predict names it
    except (OSError, ValueError, TypeError):
        return None


def wants_spotting(argv: Sequence[str] | None) -> bool:
    """Whether a mer-predict command line names a spotting model (--model DIR whose model_type is mer-spotting)."""
    args = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(args):
        value = args[i + 1] if arg == "--model" and i + 1 < len(args) else arg.split("=", 1)[1] if arg.startswith("--model=") else None
        if value is not None:
            return model_type_of(value) == SPOTTING_MODEL_TYPE
    return False


def load_spotter(model_id: str, device: str = "cpu"):
    """The spotting model and its processor (saved beside it, else the default)."""
    from modeling_mer import MERForExpressionSpotting, MERSpottingProcessor

    if model_type_of(model_id) != SPOTTING_MODEL_TYPE:
        raise SpotError(f"--model {model_id}: not a spotting model (config.json model_type {SPOTTING_MODEL_TYPE!r})")
    model = MERForExpressionSpotting.from_pretrained(model_id).to(device).eval()
    try:
        processor = MERSpottingProcessor.from_pretrained(model_id)
    except OSError:
        processor = MERSpottingProcessor()
    return model, processor


def spot_video(source: Any, model, processor, fps: float | None = None) -> dict[str, Any]:
    """Stream a video through the processor and the model: per-frame scores and the spotted intervals.

    Returns fps, num_frames, frames (video frame index of each feature frame), probabilities (N, 3),
    magnitude (N,), boxes (N, 4) and intervals (onset/offset/apex frame indices, start/end seconds, type,
    score). Held in memory: the lag's frames, one window of motion images, and these per-frame arrays.
    """
    frames, magnitude, boxes = [], [], []
    with processor.open(source, fps) as stream:
        fps = float(fps or stream.fps)
        if not fps:
            raise SpotError(f"{source}: the frame rate is unknown; pass --fps")

        def images():
            for feature in processor.stream_features(stream.frames(), fps, where=str(stream.path)):
                frames.append(feature["frame"])
                magnitude.append(feature["magnitude"])
                boxes.append(feature["box"])
                yield processor.encode(torch.from_numpy(feature["flow"]))

        probabilities = np.stack(list(model.score_stream(images())))
        num_frames = stream.decoded
    intervals = processor.post_process(probabilities, frames, fps, **model.config.postprocess_settings())
    settings = model.config.postprocess_settings()
    return {"fps": fps, "rate": processor.rate(fps), "smoothing": settings["smoothing"],
            "thresholds": settings["thresholds"],
            "num_frames": int(num_frames), "frames": np.asarray(frames), "probabilities": probabilities,
            "magnitude": np.asarray(magnitude, dtype=np.float32), "boxes": np.asarray(boxes), "intervals": intervals}


def interval_frames(source: Any, processor, intervals: list[dict], fps: float, boxes: dict[int, Sequence[int]],
                    keep_clips: bool, thumb: int = 64) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
    """Second pass: the frames of each interval (for a recogniser; only when `keep_clips`) and a face
    thumbnail at each apex. Holds the frames of the intervals being read, never the whole video."""
    import cv2

    from modeling_mer.face_crop import crop_resize

    clips: list[list[np.ndarray]] = [[] for _ in intervals]
    thumbs: list[np.ndarray | None] = [None] * len(intervals)
    if not intervals:
        return clips, []
    last = max(r["offset"] for r in intervals)
    with processor.open(source, fps) as stream:
        for index, frame in stream.frames(0, last + 1):
            for k, r in enumerate(intervals):
                if keep_clips and r["onset"] <= index <= r["offset"]:
                    clips[k].append(frame)
                if index == r["apex"]:
                    box = boxes.get(index, (0, 0, frame.shape[1], frame.shape[0]))
                    thumbs[k] = crop_resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), tuple(box), thumb)
    return clips, [t if t is not None else np.zeros((thumb, thumb), np.uint8) for t in thumbs]


def recognise(clips: list[list[np.ndarray]], intervals: list[dict], recognizer_id: str, device: str = "cpu") -> None:
    """Name each interval's emotion with a recogniser (mer-predict's model loading and prediction), in place."""
    from modeling_mer.cli.predict import load_model, load_processor
    from modeling_mer.cli.predict import predict as predict_clip
    from modeling_mer.video_io import Clip

    model = load_model(recognizer_id, device=device)
    processor, _ = load_processor(recognizer_id, model, {})
    for r, frames in zip(intervals, clips):
        if len(frames) < 2:
            continue
        numbers = list(range(r["onset"], r["onset"] + len(frames)))
        apex = r["apex"] if numbers[0] < r["apex"] <= numbers[-1] else None
        out = predict_clip(Clip(frames, numbers, f"interval {r['onset']}-{r['offset']}"), model, processor,
                           onset=numbers[0], apex=apex, offset=numbers[-1])
        r["emotion"], r["emotion_score"], r["probabilities"] = out["label"], out["score"], out["probabilities"]


def read_ground_truth(path: str | None) -> list[dict] | None:
    """A CSV with onset, offset, type (and optionally emotion) columns, in the video's frame indices."""
    if path is None:
        return None
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise SpotError(f"--ground-truth {path}: cannot read it as CSV: {' '.join(str(err).split())}") from None
    missing = {"onset", "offset", "type"} - set(table.columns)
    if missing:
        raise SpotError(f"--ground-truth {path}: needs columns onset, offset, type; missing {sorted(missing)}")
    return table.fillna("").to_dict("records")


def build_parser() -> argparse.ArgumentParser:
    return build_spot_parser(__doc__.split("\n\n")[0])  # modeling_mer.cli.arguments (parsed first, before the heavy imports)


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    if not Path(args.input).exists():
        raise SpotError(f"{args.input}: no such file or folder")
    truth = read_ground_truth(args.ground_truth)
    if args.device == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    model, processor = load_spotter(args.model, args.device)
    result = spot_video(args.input, model, processor, args.fps)
    intervals = result["intervals"]
    boxes = {int(f): b for f, b in zip(result["frames"], result["boxes"])}
    clips, thumbs = interval_frames(args.input, processor, intervals, result["fps"], boxes,
                                    keep_clips=bool(args.recognizer))
    if args.recognizer:
        recognise(clips, intervals, args.recognizer, args.device)
    del clips
    output = {"input": str(args.input), "model": args.model, "recognizer": args.recognizer, "fps": result["fps"],
              "num_frames": result["num_frames"], "intervals": intervals,
              "seconds": round(time.perf_counter() - started, 2)}
    if not args.no_timeline:
        from modeling_mer.cli.timeline import draw_timeline

        figure = args.timeline or str(Path(args.input).with_suffix("")) + "_timeline.png"
        draw_timeline(figure, result, intervals, thumbs, truth, title=Path(args.input).name)
        output["timeline"] = figure
    return output


def format_text(output: dict[str, Any]) -> str:
    lines = [f"{output['input']}: {output['num_frames']} frames at {output['fps']:g} fps, "
             f"{len(output['intervals'])} interval(s) spotted in {output['seconds']} s"]
    for r in output["intervals"]:
        named = f"  {r['emotion']} {r['emotion_score']:.2f}" if "emotion" in r else ""
        lines.append(f"  {r['type']:5s} frames {r['onset']}-{r['offset']} ({r['start_seconds']:.2f}-{r['end_seconds']:.2f} s), "
                     f"apex {r['apex']}, score {r['score']:.2f}{named}")
    if "timeline" in output:
        lines.append(f"timeline figure: {output['timeline']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from transformers.utils import logging as hf_logging

    args = build_parser().parse_args(argv)
    hf_logging.disable_progress_bar()
    try:
        output = run(args)
    except (ValueError, OSError, ImportError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    print(json.dumps(output, indent=2, default=float) if args.json else format_text(output))
    return 0
