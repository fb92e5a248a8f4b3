"""How long `train.py --help` takes, directly and through `accelerate launch`, now and at an earlier commit.

    python bench/help_time.py [--repeats 3] [--before REV] [--json bench/results/help_time_cpu.json]

`--before REV` also times train.py as it was at git revision REV (written to a temporary folder; the
package is the installed one, so only train.py's own imports differ). `accelerate launch` itself imports
torch before starting the script, so its floor (an empty script) is timed too. Each figure is the median
of --repeats runs; the machine's load average is recorded with them, since the cores may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model_name, now_iso, write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LAUNCH = ["accelerate", "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
          "--dynamo_backend", "no"]


def timed(command: list[str], repeats: int) -> dict[str, object]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        seconds.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {proc.stderr[-500:]}")
    return {"command": " ".join(command), "median_s": round(statistics.median(seconds), 2),
            "runs_s": [round(s, 2) for s in seconds], "load_average_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", default=None, help="git revision whose train.py to time as well")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.py"
        empty.write_text("")
        scripts = {"now": REPO / "train.py"}
        if args.before:
            old = Path(tmp) / "train_before.py"
            old.write_text(subprocess.run(["git", "show", f"{args.before}:train.py"], cwd=REPO, check=True,
                                          capture_output=True, text=True).stdout)
            scripts["before"] = old
        for label, script in scripts.items():
            results[f"python train.py --help ({label})"] = timed([sys.executable, str(script), "--help"], args.repeats)
            results[f"accelerate launch train.py --help ({label})"] = timed([*LAUNCH, str(script), "--help"], args.repeats)
        results["accelerate launch (empty script: the launcher's own floor)"] = timed([*LAUNCH, str(empty)], args.repeats)
    for name, result in results.items():
        print(f"{name}: {result['median_s']} s (runs {result['runs_s']}, load {result['load_average_1m']})")
    if args.json:
        payload = {"date": now_iso(), "machine": {"cpu": cpu_model_name(), "cpu_cores": os.cpu_count()},
                   "command": " ".join([Path(sys.executable).name, *sys.argv]), "before": args.before,
                   "results": results}
        print(f"wrote {write_json(args.json, payload)}")


if __name__ == "__main__":
    main()
