"""Driver of the fault-injection test (tests/test_train_resilience.py): one process imports train.py once,
then forks one child per run, so that each run costs its work and not the imports.

    python tests/fault_injection.py SPEC.json

SPEC: {"argv": [...train.py arguments without --output_dir...], "work": folder, "min_kills": 20}. The
driver runs train.py uninterrupted into work/reference with a hook that logs every instant at which a run
makes state visible (the timeline), picks the kill targets (`pick_targets`), then runs into work/killed
again and again: each run is killed with SIGKILL at the next target and the next one resumes with
--resume, until a last run finishes. It writes work/result.json: the timeline, the targets, and per run
the target, how the child ended and the seconds it took.

The hook is `modeling_mer.training.atomic_files.FAULT_HOOK`, installed here in each child: production code
only routes its visible writes (mkdir of a temporary folder, a file written inside it, the rename that
publishes it, the removal of an old checkpoint) through `atomic_files`; naming the instants, logging them
and killing the process is this file's. An instant is "<what>:<step> <path relative to the output folder>",
<what> from the file (`category`), <step> the atomic_files instant.
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


REPORTS = {"predictions.csv", "metrics.json", "confusion_matrix.png", "per_subject.png"}


def category(path: Path) -> str:
    """What a published file or folder is, from its name."""
    name = path.name
    if "checkpoint" in path.as_posix():
        return "checkpoint"
    if name.startswith("fold_"):
        return "fold_file"
    special = {"run_args.json": "run_args", "final_model.json": "final_marker", "README.md": "card",
               "skipped_clips.json": "skips"}
    return special.get(name) or ("reports" if name in REPORTS else "final_model")


def install_hook(output_dir: Path, log: Path | None, kill_at: str | None) -> None:
    """In a child: log each instant of this run to `log`; SIGKILL this process at `kill_at`."""
    from modeling_mer.training import atomic_files

    root = output_dir.resolve()

    def hook(instant: str, path: Path) -> None:
        try:
            relative = path.resolve().relative_to(root)
        except ValueError:  # not this run's output (e.g. a datasets cache)
            return
        point = f"{category(relative)}:{instant} {relative.as_posix()}"
        if log is not None:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(point + "\n")
        if point == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    atomic_files.FAULT_HOOK = hook


def pick_targets(timeline: list[str], minimum: int) -> list[str]:
    """Kill targets in timeline order: every kind of point at least once, every second published
    checkpoint (so every fold and the final model), and evenly spread extra points until there are at
    least `minimum`."""
    chosen: set[int] = set()
    seen_kinds: set[str] = set()
    for i, point in enumerate(timeline):
        kind = point.split(" ")[0]
        if kind not in seen_kinds:
            seen_kinds.add(kind)
            chosen.add(i)
    published = [i for i, point in enumerate(timeline) if point.startswith("checkpoint:after_replace")]
    chosen.update(published[1::2])  # epochs train 2 per fold here: one of every fold and of the final model
    for k in range(minimum):  # evenly spread over the whole run
        chosen.add(round(k * (len(timeline) - 1) / max(1, minimum - 1)))
    for i in range(len(timeline)):  # and, should spreading have hit chosen points, the first others
        if len(chosen) >= minimum:
            break
        chosen.add(i)
    return [timeline[i] for i in sorted(chosen)]


def run_child(argv: list[str], log: Path, timeline: Path | None = None, kill_at: str | None = None) -> tuple[str, float]:
    """Fork, run train.main(argv) in the child with the hook installed; return how it ended and its seconds."""
    started = time.time()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            install_hook(Path(argv[argv.index("--output_dir") + 1]), timeline, kill_at)
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
    ended, seconds = run_child(reference, work / "reference.log", timeline=timeline_log)
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
        ended, seconds = run_child(argv, work / f"run_{n:02d}.log", kill_at=target)
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
