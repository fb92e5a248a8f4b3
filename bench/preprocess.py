"""Preprocessing speed: flow methods per frame, and whole clips through `preprocess_dataset`.

    python bench/preprocess.py [--clips 255] [--frames 24] [--num-proc 2] [--json OUT]

1. ms per frame (one onset -> frame flow) for farneback, dis, tvl1 at 112 and 224 pixels, single
   thread (cv2.setNumThreads(1)) and with --num-proc single-threaded workers at once (effective time
   per frame: the slowest worker's flow time / all frames).
2. End to end: a CASME II-sized synthetic set (--clips clips of 640x480 JPEG frames with a real face,
   annotated apex, 11 sampled frames, Haar crop, Farneback at 224) through `preprocess_dataset`, as
   clips per second. The frames are stored as paths (the builders' lazy mode) to a shared pool of
   --frames JPEG files, so building the set costs little; decoding is still real.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import datasets
import matplotlib.cbook
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model_name, now_iso  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_mer.optical_flow import FLOW_METHODS, dense_flow  # noqa: E402
from modeling_mer.processing_mer import MERImageProcessor  # noqa: E402
from modeling_mer.training.preprocessing import preprocess_dataset  # noqa: E402

SIZES = (112, 224)


def face_frames(count: int) -> list[np.ndarray]:
    """640x480 frames of a real face (matplotlib's sample portrait) with a small, growing motion."""
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
        face = np.asarray(Image.open(file).convert("RGB").resize((384, 450)))
    frames = []
    for i in range(count):
        canvas = np.full((480, 640, 3), 80, np.uint8)
        shift = int(round(3 * np.sin(np.pi * i / max(count - 1, 1))))
        canvas[15 : 15 + 450, 128 + shift : 128 + shift + 384] = face
        frames.append(canvas)
    return frames


def _time_pairs(method: str, size: int, pairs: int) -> float:
    """Seconds for `pairs` flows onset -> frame at size x size, this process, one thread."""
    cv2.setNumThreads(1)
    frames = [cv2.resize(f, (size, size)) for f in face_frames(pairs + 1)]
    dense_flow(frames[0], frames[1], method)  # build the estimator outside the timing
    start = time.perf_counter()
    for frame in frames[1:]:
        dense_flow(frames[0], frame, method)
    return time.perf_counter() - start


def flow_speeds(num_proc: int, pairs: int) -> list[dict]:
    rows = []
    # spawn: cv2.setNumThreads in a forked child can deadlock on the parent's inherited thread pool
    with ProcessPoolExecutor(num_proc, mp_context=multiprocessing.get_context("spawn")) as pool:
        for method in FLOW_METHODS:
            count = max(2, pairs // 10) if method == "tvl1" else pairs
            for size in SIZES:
                single = _time_pairs(method, size, count)
                # each worker times only its own flows; throughput = frames of all workers / slowest worker
                worker_seconds = list(pool.map(_time_pairs, [method] * num_proc, [size] * num_proc, [count] * num_proc))
                pooled = max(worker_seconds)
                rows.append(
                    {
                        "method": method,
                        "size": size,
                        "ms_per_frame_single_thread": 1000 * single / count,
                        f"ms_per_frame_pool_{num_proc}": 1000 * pooled / (count * num_proc),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the map workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def end_to_end(clips: int, frames: int, num_proc: int, workdir: Path) -> dict:
    """Clips per second through preprocess_dataset, Haar crop + Farneback at 224, 11 frames."""
    paths = []
    for i, frame in enumerate(face_frames(frames)):
        paths.append(str(workdir / f"img{i}.jpg"))
        Image.fromarray(frame).save(paths[-1], quality=90)
    rows = {
        "dataset": ["bench"] * clips,
        "subject": [f"s{i % 26}" for i in range(clips)],
        "clip_id": [f"clip{i}" for i in range(clips)],
        "frames": [paths] * clips,
        "frame_numbers": [list(range(frames))] * clips,
        "onset": [0] * clips,
        "apex": [frames // 2] * clips,
        "apex_source": ["annotated"] * clips,
        "offset": [frames - 1] * clips,
        "fps": [200.0] * clips,
        "action_units": [""] * clips,
        "emotion": ["others"] * clips,
        "label": [0] * clips,
    }
    dataset = datasets.Dataset.from_dict(rows)
    dataset.save_to_disk(workdir / "raw")
    dataset = datasets.load_from_disk(workdir / "raw")
    processor = MERImageProcessor(image_size=224, num_frames=11, crop="haar", flow="farneback")
    cpu_before = _cpu_seconds()
    start = time.perf_counter()
    preprocess_dataset(dataset, processor, num_proc=num_proc if num_proc > 1 else None)
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_before
    start = time.perf_counter()
    preprocess_dataset(dataset, processor, num_proc=num_proc if num_proc > 1 else None)
    cached = time.perf_counter() - start
    result = {
        "clips": clips,
        "frames_per_clip": frames,
        "num_proc": num_proc,
        "seconds": seconds,
        "clips_per_second": clips / seconds,
        "cpu_seconds": cpu,
        # wall time on an otherwise idle machine with num_proc cores: CPU time spread over the workers
        "idle_machine_estimate_seconds": cpu / num_proc,
        "cached_rerun_seconds": cached,
        "casme2_255_clips_estimate_seconds": 255 * seconds / clips,
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=255)
    parser.add_argument("--frames", type=int, default=24, help="frames per clip (onset..offset)")
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=40, help="flows timed per method and size")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.clips < 1 or args.frames < 12 or args.num_proc < 1 or args.pairs < 2:
        parser.error("need --clips >= 1, --frames >= 12 (11 sampled after the onset), --num-proc >= 1, --pairs >= 2")
    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as tmp:
        report = {
            "date": now_iso(),
            "command": "python bench/preprocess.py " + " ".join(sys.argv[1:]),
            "cpu": cpu_model_name(),
            "load_average_1m_at_start": __import__("os").getloadavg()[0],
            "cpu_count": __import__("os").cpu_count(),
            "opencv": cv2.__version__,
            "flow": flow_speeds(args.num_proc, args.pairs),
            "end_to_end": end_to_end(args.clips, args.frames, args.num_proc, Path(tmp)),
        }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
