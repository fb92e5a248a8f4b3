"""Resuming a run: its stored settings, its checkpoints, and what a killed write left behind.

    output_dir/run_args.json                                  the settings; --resume refuses different ones
    output_dir/checkpoints/<run>/checkpoints/checkpoint_N/    accelerate save_state, one per epoch
        .../checkpoint_N/progress.json                        which fold/epoch it is, and the selection's state
    output_dir/final_model.json                               written last: the final model is complete

What survives a kill at any instant (SIGKILL, a preempted job, Ctrl-C): everything that became visible.
A checkpoint is written to `.checkpoint_N.incomplete/` and renamed to `checkpoint_N` once its state and
progress.json are on disk. Rotation happens before a checkpoint is written: it keeps the newest
KEEP_CHECKPOINTS - 1 complete ones (never fewer than one), so the newest complete checkpoint always exists
while the next is written, and KEEP_CHECKPOINTS exist after. An old checkpoint is renamed to
`.deleting_checkpoint_N` before it is removed, so a half-deleted one is never mistaken for a checkpoint.
Leftovers of a killed write are removed when the next run starts. (A kill is not a power cut: files the
operating system had not written to disk when the machine lost power are beyond what renaming can protect.)
The run's other outputs (fold files, reports, the final model) are `run_outputs`'; both write through
`atomic_files`, where the fault-injection test hooks in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from .atomic_files import discard, make_dir, publish, remove, write_atomic, write_text
from .run_options import ADDED_OPTIONS
from .run_outputs import FINAL_MARKER, fold_file

# Settings that change nothing learned: a resumed run may differ in these.
RESUMABLE_DIFFERENCES = {
    "resume", "output_dir", "push_to_hub", "hub_model_id", "hub_public", "num_proc", "cache_dir",
    "stop_after", "aggregate", "no_final_model", "fold", "cpu_threads", "report_to",
    "hub_strategy", "resume_from_hub", "push_only", "dry_run",
}
FINAL = "final"
KEEP_CHECKPOINTS = 2
_CHECKPOINT_RE = re.compile(r"checkpoint_(\d+)")


class RunStateError(ValueError):
    """The output folder and the command line disagree; one line for the user, never a traceback."""


def has_finished_work(output_dir: Path) -> bool:
    """Whether the folder holds anything a run finished: a complete checkpoint, a fold file, a final model.

    A run_args.json alone (a run that failed before its first checkpoint) is not a previous run.
    """
    if (output_dir / FINAL_MARKER).exists() or any((output_dir / "folds").glob("fold_*.csv")):
        return True
    return any(Checkpoints(run).complete() for run in (output_dir / "checkpoints").glob("*"))


def check_run_args(output_dir: Path, args: dict[str, Any], resume: bool, write: bool) -> None:
    """Refuse to overwrite a run; on --resume check the stored settings match; `write`: store them.

    Every process checks (so all fail alike); only the main process writes, after the others checked.
    """
    path = output_dir / "run_args.json"
    finished = has_finished_work(output_dir)
    if finished and not resume:
        raise FileExistsError(
            f"{output_dir} holds a previous run (checkpoints, folds/ or a final model): pass --resume to "
            "continue it, or choose another --output_dir"
        )
    if finished and path.exists():
        try:
            stored = json.loads(path.read_text())
        except ValueError as err:
            raise RunStateError(f"{path}: unreadable ({err}); it records the run's settings") from None
        if not isinstance(stored, dict):  # valid JSON of another shape
            raise RunStateError(f"{path}: holds a JSON {type(stored).__name__}, not the run's settings (an object)")
        stored = {**{k: v for k, v in ADDED_OPTIONS.items() if k in args}, **stored}  # runs stored before them
        differ = sorted(
            k for k in set(stored) | set(args)
            if k not in RESUMABLE_DIFFERENCES and stored.get(k) != args.get(k)
        )
        if differ:
            details = ", ".join(f"--{k} {stored.get(k)!r} (now {args.get(k)!r})" for k in differ)
            raise RunStateError(
                f"--resume: the run in {output_dir} was started with other settings: {details}; "
                "resume it with the same settings, or choose another --output_dir"
            )
    elif write:  # a new run, or a folder whose run finished nothing: (re)write the settings
        output_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(args, indent=2, sort_keys=True))


class Checkpoints:
    """The checkpoints of one run (`project_dir/checkpoints/checkpoint_N`), written so that a kill at any
    instant leaves either the previous set or the previous set plus one complete new checkpoint."""

    def __init__(self, project_dir: str | os.PathLike[str], keep: int = KEEP_CHECKPOINTS):
        if keep < 2:
            raise ValueError(f"keep must be at least 2 (the newest stays while the next is written), got {keep}")
        self.folder = Path(project_dir) / "checkpoints"
        self.keep = keep

    def complete(self) -> list[tuple[int, Path]]:
        """(number, path) of every complete checkpoint, oldest first."""
        found = []
        for path in self.folder.glob("checkpoint_*"):
            match = _CHECKPOINT_RE.fullmatch(path.name)
            if match and path.is_dir() and _progress(path) is not None:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def latest(self) -> tuple[Path, dict[str, Any]] | None:
        """The newest complete checkpoint and its progress, or None."""
        done = self.complete()
        if not done:
            return None
        path = done[-1][1]
        return path, _progress(path)

    def clean(self) -> list[str]:
        """Remove what a killed write left (main process, before anything reads the folder): temporary
        checkpoints, half-deleted ones, and `checkpoint_N` folders without progress.json. Returns their names."""
        removed = []
        if not self.folder.is_dir():
            return removed
        complete = {path for _, path in self.complete()}
        for path in sorted(self.folder.iterdir()):
            leftover = path.name.startswith((".checkpoint_", ".deleting_")) or (
                _CHECKPOINT_RE.fullmatch(path.name) is not None and path not in complete
            )
            if leftover:
                remove(path)
                removed.append(path.name)
        return removed

    def save(self, accelerator: Any, progress: dict[str, Any]) -> Path:
        """Rotation, then `accelerator.save_state` into a temporary folder, progress.json, and the rename
        that makes it visible (the last step: a kill before it leaves the previous checkpoints as they
        were). Every process must call it (each saves its own RNG state)."""
        number = max((n for n, _ in self.complete()), default=-1) + 1
        final = self.folder / f"checkpoint_{number}"
        tmp = self.folder / f".checkpoint_{number}.incomplete"
        if accelerator.is_main_process:
            for _, path in self.complete()[: -(self.keep - 1)]:  # make room: keep the newest keep - 1
                discard(path)
            if tmp.exists():
                shutil.rmtree(tmp)
            make_dir(tmp)
        accelerator.wait_for_everyone()
        config = accelerator.project_configuration
        automatic = config.automatic_checkpoint_naming  # would ignore `tmp` and rotate with total_limit
        config.automatic_checkpoint_naming = False
        try:
            accelerator.save_state(str(tmp))
        finally:
            config.automatic_checkpoint_naming = automatic
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            write_text(tmp / "progress.json", json.dumps(progress))
            publish(tmp, final)
        accelerator.wait_for_everyone()
        return final


def _progress(path: Path) -> dict[str, Any] | None:
    try:
        progress = json.loads((path / "progress.json").read_text())
    except (OSError, ValueError):
        return None
    return progress if isinstance(progress, dict) else None


def clean_incomplete(output_dir: Path, fold: int | None = None) -> list[str]:
    """Leftovers of killed writes outside the checkpoints: temporary files and folders of fold files,
    reports, the final model and the settings. A --fold K job (`fold`) removes only its own fold's: the
    other jobs sharing the folder may be writing theirs (run_lock holds one writer per fold)."""
    removed = []
    if fold is not None:
        leftovers = list((output_dir / "folds").glob(f"{fold_file(output_dir, fold).name}*.tmp"))
    else:
        leftovers = [*(output_dir / "folds").glob("*.tmp"), *(output_dir / "folds").glob(".*.incomplete"),
                     *output_dir.glob(".*.incomplete")]
    for path in leftovers:
        remove(path)
        removed.append(str(path.relative_to(output_dir)))
    return removed


__all__ = [
    "FINAL",
    "KEEP_CHECKPOINTS",
    "Checkpoints",
    "RunStateError",
    "check_run_args",
    "clean_incomplete",
    "has_finished_work",
]
