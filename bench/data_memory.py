"""Peak memory of a training epoch's data path as the dataset grows: memory-mapped batches vs one in-memory tensor.

    python bench/data_memory.py [--sizes 150 600] [--image_size 224] [--num_frames 11] [--json OUT]

For each size, a preprocessed-flow table of that many clips (float16 flow `(T, 2, S, S)`, random values, the
schema `preprocess_dataset` writes) is written to an Arrow file, then each data path runs one epoch in a
fresh process (shuffled batches of 8, the flip and `encode_flow` of every batch, as `train_one_epoch`
does before the model):

* `memory_mapped`: `training.clips.ArrowClips` over the memory-mapped table (what train.py does now);
* `in_memory`: every clip's flow loaded into one tensor first (train.py's former
  `np.asarray(data.with_format("numpy")[:]["flow"])`).

Memory is read from /proc/self/status, sampled every 5 ms by a thread, above the value at the start:
`peak_anon_mb` (RssAnon: the process's own heap, what the dataset must not grow) and `peak_file_mb`
(RssFile: pages of the memory-mapped file the kernel keeps cached while they are read; shared, reclaimable
page cache that the kernel drops under memory pressure), and `peak_rss_mb` (VmHWM, the two together).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from _common import machine_info, now_iso, write_json  # noqa: E402

BATCH_SIZE = 8


def status_mb(*fields: str) -> dict[str, float]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name = line.split(":", 1)[0]
        if name in fields:
            values[name] = int(line.split()[1]) / 1024
    return values


class Sampler(threading.Thread):
    """Peak RssAnon / RssFile / VmRSS, sampled every 5 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = {"RssAnon": 0.0, "RssFile": 0.0, "VmRSS": 0.0}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for key, value in status_mb(*self.peak).items():
                self.peak[key] = max(self.peak[key], value)
            time.sleep(0.005)


def write_table(path: Path, clips: int, frames: int, size: int) -> None:
    """A preprocessed-flow table of `clips` rows, written clip by clip (never all in memory)."""
    import datasets
    import numpy as np

    features = datasets.Features({
        "subject": datasets.Value("string"),
        "label": datasets.Value("int64"),
        "flow": datasets.Array4D(shape=(frames, 2, size, size), dtype="float16"),
    })

    def rows():
        rng = np.random.default_rng(0)
        for i in range(clips):
            yield {"subject": f"s{i % 26:02d}", "label": i % 5,
                   "flow": (rng.standard_normal((frames, 2, size, size), dtype=np.float32) * 2).astype(np.float16)}

    data = datasets.Dataset.from_generator(rows, features=features, cache_dir=str(path.parent / "gen_cache"))
    data.save_to_disk(str(path))


def child(mode: str, path: str, image_size: int) -> dict:
    """One epoch of the data path in this (fresh) process; memory above the start."""
    import datasets
    import numpy as np
    import torch

    from modeling_mer import MERImageProcessor
    from modeling_mer.training.clips import ArrowClips
    from modeling_mer.training.loop import FlowClips, flip_decisions, hflip_flow, make_loader

    torch.set_num_threads(1)
    processor = MERImageProcessor(image_size=image_size, crop="none", encoding="hsv")
    start = status_mb("RssAnon", "RssFile", "VmRSS")
    sampler = Sampler()
    sampler.start()
    began = time.perf_counter()
    data = datasets.load_from_disk(path)
    labels = torch.tensor(data["label"])
    rows = list(range(len(data)))
    if mode == "in_memory":
        flows = torch.from_numpy(np.asarray(data.with_format("numpy")[:]["flow"]))
        clips = FlowClips(flows, labels, rows)
    else:
        clips = ArrowClips(data, labels, rows)
    checksum = 0.0
    for batch in make_loader(clips, BATCH_SIZE, shuffle=True, seed=0):
        flow = hflip_flow(batch["flow"].float(), flip_decisions(batch["row"], 0, 0, len(rows)))
        checksum += float(processor.encode_flow(flow).mean())
    seconds = time.perf_counter() - began
    sampler.stop.set()
    sampler.join()
    return {
        "mode": mode,
        "clips": len(rows),
        "seconds": round(seconds, 2),
        "peak_anon_mb": round(sampler.peak["RssAnon"] - start["RssAnon"], 1),
        "peak_file_mb": round(sampler.peak["RssFile"] - start["RssFile"], 1),
        "peak_rss_mb": round(sampler.peak["VmRSS"] - start["VmRSS"], 1),
        "checksum": round(checksum, 3),
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[150, 600], help="clips per synthetic table")
    p.add_argument("--image_size", type=int, default=224)
    p.add_argument("--num_frames", type=int, default=11)
    p.add_argument("--modes", nargs="+", choices=("memory_mapped", "in_memory"), default=["memory_mapped", "in_memory"])
    p.add_argument("--workdir", default=None, help="where the tables are written (default: a temporary folder)")
    p.add_argument("--json", default=None)
    p.add_argument("--_child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        print(json.dumps(child(args._child[0], args._child[1], args.image_size)))
        return {}
    import torch

    clip_mb = args.num_frames * 2 * args.image_size**2 * 2 / 2**20
    results = {
        "benchmark": "data_memory",
        "date": now_iso(),
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(torch.device("cpu")),
        "setting": {"image_size": args.image_size, "num_frames": args.num_frames, "batch_size": BATCH_SIZE,
                    "stored_mb_per_clip_float16": round(clip_mb, 2)},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"flow_{size}"
            write_table(path, size, args.num_frames, args.image_size)
            for mode in args.modes:
                cmd = [sys.executable, __file__, "--image_size", str(args.image_size), "--_child", mode, str(path)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ})
                run = json.loads(out.stdout.strip().splitlines()[-1])
                run["table_mb"] = round(size * clip_mb, 1)
                results["runs"].append(run)
                print(json.dumps(run))
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
