"""`accelerate launch train.py --task spot --dataset casme_sq` end to end, with every default, on a tree of
CAS(ME)^2's size in its distributed layout: the wall clock of the whole LOSO (issue 19's one-hour target).

No licensed data is here, so the tree is generated: `CAS(ME)^2code_final.xlsx` holds the real sheet rows
(tests/data, copied from the distributed sheet) of the 33 videos that hold a micro-expression, with the real
naming rules, and `rawpic/s15/15_0102eatingworms/img1.jpg ...` holds, for each of them, as many 640x480 JPEG
frames as the sheet needs (its last event + 30 frames, about 65,000 in all), rendered by the tests' long-video
generator (`training/spotting_synthetic.py`) with the sheet's events at their frames (micro-expressions
`--micro_px` pixels at the apex, macro-expressions larger) and blinks. What is measured is the time of the
real command on a tree of the real size and layout: decoding, face detection, flow, the feature store, every
fold's training, validation and thresholds, the baseline, the final model and the card. The F1 it reports is
of generated faces and says nothing about CAS(ME)^2.

    python bench/spotting_casme_sq_e2e.py --work_dir /tmp/casme_sq_e2e \
        --output bench/results/spotting_casme_sq_e2e_cpu.json      # about 40 min on 2 cores, 3 GB of disk
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT / "bench"), str(ROOT / "tests"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import machine_info, now_iso  # noqa: E402


def render_video(job) -> tuple[Path, int]:
    """One video's frames, `img1.jpg ...`, with the sheet's events at their frames (frames already there kept)."""
    from PIL import Image

    from modeling_mer.training.spotting_synthetic import SyntheticLongVideo

    folder, length, events, blinks, seed, micro_px = job
    folder.mkdir(parents=True, exist_ok=True)
    side = 384
    box = ((640 - side) // 2, (480 - side) // 2, side, side)
    clip = SyntheticLongVideo(
        length, 30.0, 640, 480, box, seed=seed, micro_px=micro_px,
        events=[{**e, "onset": e["onset"] - 1, "apex": e["apex"] - 1, "offset": e["offset"] - 1,
                 "action_units": ("brow_raise", "brow_lower", "lip_pull", "lip_press")[k % 4]}
                for k, e in enumerate(events)],
        blinks=[(b, b + 5) for b in blinks])
    for t, image in clip.frames():
        target = folder / f"img{t + 1}.jpg"
        if not target.exists():
            Image.fromarray(image).save(target, quality=90)
    return folder, length


def write_tree(root: Path, micro_px: float, seed: int) -> dict:
    """The sheet (real rows of the 33 videos) and every frame those videos need, at 640x480."""
    from long_trees import (
        CASME_SQ_SUFFIXES,
        casme_sq_rows,
        casme_sq_rule1,
        casme_sq_rule2,
        write_casme_sq_tree,
    )
    from spotting import casme_sq_videos

    plan = casme_sq_videos()
    wanted = {(participant, video) for participant, video, _, _ in plan}
    rows, rule1 = [], []
    for row, rule in zip(casme_sq_rows(), casme_sq_rule1()):
        if (int(row[0]), str(row[1]).rsplit("_", 1)[0]) in wanted:
            rows.append(row)
            rule1.append(rule)
    write_casme_sq_tree(root, rows=rows, rule1=rule1, videos=set())  # the sheet only; frames below
    codes = {name: str(code).zfill(4) for code, name in casme_sq_rule2()}
    folders = {int(rule[2]): (str(rule[1]), int(rule[0])) for rule in rule1}
    rng = np.random.default_rng(seed)
    jobs = []
    for index, (participant, video, length, events) in enumerate(plan):
        subject, number = folders[participant]
        code = codes[video]
        folder = root / "rawpic" / subject / f"{number}_{code}{CASME_SQ_SUFFIXES[code]}"
        blinks = sorted(int(b) for b in rng.integers(10, length - 10, max(1, length // 300)))  # ~6 a minute
        jobs.append((folder, length, events, blinks, seed + index, micro_px))
    with Pool(2) as pool:  # rendering is not what is measured: both cores
        for done, (folder, length) in enumerate(pool.imap(render_video, jobs), 1):
            print(f"{done}/{len(jobs)} {folder.name}: {length} frames", flush=True)
    frames = sum(job[1] for job in jobs)
    return {"videos": len(plan), "subjects": len({p for p, _, _, _ in plan}), "frames": frames, "sheet_rows": len(rows),
            "micro_px": micro_px}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", required=True, help="where the tree (about 3 GB) and the run go; kept for reruns")
    parser.add_argument("--micro_px", type=float, default=2.0, help="micro-expression peak displacement, frame pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "spotting_casme_sq_e2e_cpu.json"))
    args = parser.parse_args(argv)
    work = Path(args.work_dir)
    tree, run_dir = work / "CASME_sq", work / "run"
    started = time.perf_counter()
    tree_info = write_tree(tree, args.micro_px, args.seed)
    tree_seconds = time.perf_counter() - started
    command = ["accelerate", "launch", "train.py", "--task", "spot", "--dataset", "casme_sq", "--data_dir", str(tree),
               "--output_dir", str(run_dir), "--report_to", "none"]
    load_before = list(os.getloadavg())
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    result = {"benchmark": "train.py --task spot --dataset casme_sq end to end on a generated tree of CAS(ME)^2's size",
              "date": now_iso(), "machine": machine_info(torch.device("cpu")),
              "command": "python bench/spotting_casme_sq_e2e.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "train_command": " ".join(command[:-4] + ["--output_dir", "RUN", "--report_to", "none"]).replace(str(tree), "TREE"),
              "tree": tree_info, "tree_seconds_not_timed": round(tree_seconds, 1), "exit_code": done.returncode,
              "wall_seconds": round(seconds, 1), "wall_minutes": round(seconds / 60, 1), "target_minutes": 60,
              "load_average_before": load_before, "load_average_after": list(os.getloadavg()),
              "note": "MEASURED end to end with every default on generated frames of the real size and layout and the "
                      "real sheet rows; the F1 below is of generated faces, not of CAS(ME)^2"}
    metrics = run_dir / "metrics.json"
    if metrics.exists():
        data = json.loads(metrics.read_text())
        result["metrics"] = {k: data[k] for k in data if not isinstance(data[k], (dict, list))} | \
            {k: data[k] for k in ("baseline",) if k in data}
    Path(args.output).write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"LOSO spotting end to end: {result['wall_minutes']} min (exit {done.returncode}); written {args.output}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
