"""The fault-injection run of tests/test_train_resilience.py, measured: a tiny LOSO run SIGKILLed at every
instant it makes state visible (run settings, checkpoint writes and rotation, fold files, reports, the
final model, its marker and card: the steps of modeling_mer.training.atomic_files, hooked by
tests/fault_injection.py) and resumed each time.

    python bench/fault_injection.py [--min_kills 20] [--json bench/results/fault_injection_cpu.json]

Writes the number of kills, the phases hit, the seconds of the runs (the driver imports train.py once and
forks each run, so a run costs its work, not the imports) and whether predictions and the final model are
byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, now_iso  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--synthetic_subjects", "3", "--synthetic_clips", "3", "--epochs", "2", "--image_size", "16",
        "--num_frames", "2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min_kills", type=int, default=20)
    parser.add_argument("--json", default=str(REPO / "bench" / "results" / "fault_injection_cpu.json"))
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        spec = {"argv": [*ARGS, "--cache_dir", str(Path(work) / "cache")], "work": work, "min_kills": opts.min_kills}
        (Path(work) / "spec.json").write_text(json.dumps(spec))
        started = time.time()
        subprocess.run([sys.executable, str(REPO / "tests" / "fault_injection.py"), str(Path(work) / "spec.json")],
                       check=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)})
        wall = time.time() - started
        result = json.loads((Path(work) / "result.json").read_text())
    kills = [r for r in result["runs"] if r["target"] is not None]
    comparison = result["comparison"]
    summary = {
        "date": now_iso(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(torch.device("cpu")),
        "train_args": ARGS,
        "kills": len(kills),
        "killed_by_sigkill": sum(r["ended"] == "signal 9" for r in kills),
        "last_run": result["runs"][-1]["ended"],
        "phases_hit": sorted({r["target"].split(" ")[0] for r in kills}),
        "kill_points_in_a_run": len(result["timeline"]),
        "reference_run_seconds": result["reference"]["seconds"],
        "killed_runs_seconds": round(sum(r["seconds"] for r in result["runs"]), 1),
        "wall_seconds_with_imports": round(wall, 1),
        "byte_identical": comparison["identical"],
        "all_identical": all(comparison["identical"].values()),
        "leftovers": comparison["leftovers"],
        "checkpoints_left": comparison["checkpoints"],
    }
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("kills", "all_identical", "wall_seconds_with_imports")}))


if __name__ == "__main__":
    main()
