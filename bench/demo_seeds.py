"""The README's demo figure as a spread: `accelerate launch train.py` (every default) once per seed.

    python bench/demo_seeds.py [--seeds 42 43 44] [--json bench/results/demo_seeds_cpu.json]

Each run is the demo as a user runs it -- `accelerate launch train.py --seed S --output_dir DIR`, nothing
else changed -- from an empty datasets cache of its own (`HF_DATASETS_CACHE` pointed at a new folder, so
every wall time includes building the synthetic set and its optical flow, as a first run's does). The
default seeds start with train.py's own (`RunConfig.seed`, 42: the plain demo command's run is one of
them). Written: per seed UF1, UAR, accuracy (the run's metrics.json), the wall clock and train.py's
printed "done in"; the mean, minimum, maximum and range of each; the machine (CPU, cores, library
versions, load average) and the date. A single run's figure also moves by about 0.02 between machines
(CPU kernels), so the spread over seeds is what the README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE.parent)):  # runnable as a script from anywhere
    if _path not in sys.path:
        sys.path.insert(0, _path)

import torch  # noqa: E402
from _common import machine_info, now_iso, write_json  # noqa: E402

from modeling_mer.training.run_options import RunConfig  # noqa: E402

REPO = _HERE.parent
DEFAULT_SEED = RunConfig.seed
DEFAULT_SEEDS = [DEFAULT_SEED, DEFAULT_SEED + 1, DEFAULT_SEED + 2]
FIGURES = ("uf1", "uar", "accuracy", "wall_s")
_DONE = re.compile(r"done in (\d+) s")


def demo_command(seed: int, output_dir: Path) -> list[str]:
    """The README's demo command with only the seed and the output folder given."""
    launcher = shutil.which("accelerate")
    launch = [launcher, "launch"] if launcher else [sys.executable, "-m", "accelerate.commands.launch"]
    return [*launch, "train.py", "--seed", str(seed), "--output_dir", str(output_dir)]


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, min, max and range (max - min) of each figure over the runs."""
    summary = {}
    for name in FIGURES:
        values = [run[name] for run in runs]
        summary[name] = {"mean": round(statistics.fmean(values), 4), "min": min(values), "max": max(values),
                         "range": round(max(values) - min(values), 4)}
    return summary


def run_seed(seed: int, work: Path) -> dict[str, Any]:
    """One demo run from an empty datasets cache in `work`; its figures and times."""
    env = {**os.environ, "HF_DATASETS_CACHE": str(work / "hf_datasets_cache")}
    command = demo_command(seed, work / "run")
    print(f"$ HF_DATASETS_CACHE={env['HF_DATASETS_CACHE']} {' '.join(command)}", flush=True)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"seed {seed}: train.py failed (status {proc.returncode}): {proc.stderr[-2000:]}")
    metrics = json.loads((work / "run" / "metrics.json").read_text())
    done = _DONE.findall(proc.stdout + proc.stderr)
    result = {"seed": seed, "uf1": round(metrics["uf1"], 4), "uar": round(metrics["uar"], 4),
              "accuracy": round(metrics["accuracy"], 4), "wall_s": round(wall, 1),
              "printed_done_in_s": int(done[-1]) if done else None,
              "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    print(f"seed {seed}: UF1 {result['uf1']:.4f}  UAR {result['uar']:.4f}  wall {result['wall_s']} s "
          f"(printed done in {result['printed_done_in_s']} s)", flush=True)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=DEFAULT_SEEDS,
                   help=f"train.py --seed of each run (default: {' '.join(map(str, DEFAULT_SEEDS))}; "
                        f"{DEFAULT_SEED} is train.py's default)")
    p.add_argument("--json", default=None, help="write the results here (e.g. bench/results/demo_seeds_cpu.json)")
    args = p.parse_args(argv)
    runs = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix=f"mer-demo-seed{seed}-") as work:
            runs.append(run_seed(seed, Path(work)))
    payload = {
        "date": now_iso(),
        "machine": machine_info(torch.device("cpu")),
        "command": " ".join([Path(sys.executable).name, "bench/demo_seeds.py", *(sys.argv[1:] if argv is None else argv)]),
        "demo_command": "accelerate launch train.py --seed S --output_dir DIR (HF_DATASETS_CACHE: a new folder per run)",
        "default_seed": DEFAULT_SEED,
        "runs": runs,
        "summary": summarise(runs),
    }
    for name, figure in payload["summary"].items():
        print(f"{name}: mean {figure['mean']}  range {figure['min']}-{figure['max']} ({figure['range']})")
    if args.json:
        print(f"wrote {write_json(args.json, payload)}")
    return payload


if __name__ == "__main__":
    main()
