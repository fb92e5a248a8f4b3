"""Driver of the fault-injection test (tests/test_fault_injection.py): one process imports train.py once,
then forks one child per run, so that each run costs its work and not the imports.

    python tests/fault_injection.py SPEC.json

SPEC: {"argv": [...train.py arguments without --output_dir...], "work": folder, "min_kills": 20}. The
driver runs train.py uninterrupted into work/reference with MER_FAULT_LOG, reads the kill points it
passed (the timeline), picks the kill targets (`pick_targets`), then runs into work/killed again and
again: each run is killed with SIGKILL at the next target (MER_FAULT_KILL_AT) and the next one resumes
with --resume, until a last run finishes. It writes work/result.json: the timeline, the targets, and
per run the target, how the child ended and the seconds it took.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def pick_targets(timeline: list[str], minimum: int) -> list[str]:
    """Kill targets in timeline order: every kind of point at least once, each fold's and the final
    model's epochs, and evenly spread extra points until there are at least `minimum`."""
    chosen: set[int] = set()
    seen_kinds: set[str] = set()
    for i, point in enumerate(timeline):
        kind = point.split(" ")[0]
        if kind not in seen_kinds:
            seen_kinds.add(kind)
            chosen.add(i)
    for i, point in enumerate(timeline):  # an epoch of every fold and of the final model
        if point.startswith("epoch:trained") and point.endswith("epoch=1"):
            chosen.add(i)
    for k in range(minimum):  # evenly spread over the whole run
        chosen.add(round(k * (len(timeline) - 1) / max(1, minimum - 1)))
    for i in range(len(timeline)):  # and, should spreading have hit chosen points, the first others
        if len(chosen) >= minimum:
            break
        chosen.add(i)
    return [timeline[i] for i in sorted(chosen)]


def run_child(argv: list[str], log: Path, env: dict[str, str]) -> tuple[str, float]:
    """Fork, run train.main(argv) in the child with `env` added; return how it ended and its seconds."""
    started = time.time()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.environ.update(env)
            fd = os.open(str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            import train

            train.main(argv)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
            print(exit_.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        ended = f"signal {os.WTERMSIG(status)}"
    else:
        ended = f"exit {os.WEXITSTATUS(status)}"
    return ended, time.time() - started


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    work = Path(spec["work"])
    sys.path.insert(0, str(REPO))
    import train  # noqa: F401  (imported once here; the children inherit it)

    timeline_log = work / "timeline.txt"
    reference = [*spec["argv"], "--output_dir", str(work / "reference")]
    ended, seconds = run_child(reference, work / "reference.log", {"MER_FAULT_LOG": str(timeline_log)})
    timeline = timeline_log.read_text().splitlines()
    result = {"reference": {"ended": ended, "seconds": round(seconds, 2)}, "timeline": timeline, "runs": []}
    if ended != "exit 0":
        (work / "result.json").write_text(json.dumps(result, indent=1))
        return
    targets = pick_targets(timeline, spec["min_kills"])
    result["targets"] = targets
    killed = [*spec["argv"], "--output_dir", str(work / "killed")]
    for n, target in enumerate([*targets, None]):
        argv = killed + (["--resume"] if n else [])
        env = {"MER_FAULT_KILL_AT": target} if target else {}
        ended, seconds = run_child(argv, work / f"run_{n:02d}.log", env)
        result["runs"].append({"target": target, "ended": ended, "seconds": round(seconds, 2)})
        if target is not None and ended != f"signal {int(signal.SIGKILL)}":
            break  # the target was never reached (or the run failed): the test reports it
    result["comparison"] = compare(work / "reference", work / "killed")
    (work / "result.json").write_text(json.dumps(result, indent=1))


SAME = ("model.safetensors", "config.json", "preprocessor_config.json", "predictions.csv", "final_model.json")


def compare(reference: Path, killed: Path) -> dict:
    """Which outputs are byte-identical, what a kill left behind, how many checkpoints remain."""
    names = [*SAME, *sorted(f"folds/{p.name}" for p in (reference / "folds").glob("fold_*.csv"))]
    identical = {
        name: (killed / name).is_file() and (killed / name).read_bytes() == (reference / name).read_bytes()
        for name in names
    }
    leftovers = sorted(str(p.relative_to(killed)) for p in killed.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp")
    checkpoints = sorted(p.name for p in killed.glob("checkpoints/*/checkpoints/*"))
    return {"identical": identical, "leftovers": leftovers, "checkpoints": checkpoints}


if __name__ == "__main__":
    main(sys.argv[1])
