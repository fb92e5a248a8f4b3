"""What a training run leaves on disk so that nothing is lost: run settings, fold predictions, progress.

    output_dir/run_args.json                     the settings; --resume refuses to mix different ones
    output_dir/folds/fold_007.csv                a finished fold's predictions (kept, never recomputed)
    output_dir/checkpoints/<run>/checkpoints/checkpoint_N/   accelerate save_state, one per epoch
        .../checkpoint_N/progress.json           which fold/epoch it is, and the epoch selection's state
    output_dir/final_model.json                  written last: the final model in output_dir is complete

What survives a kill at any instant (SIGKILL, a preempted job, Ctrl-C): everything that became visible.
Nothing becomes visible half-written. A checkpoint is written to `.checkpoint_N.incomplete/` and renamed to
`checkpoint_N` once its state and progress.json are on disk; a fold file and run_args.json are written
to a temporary name and renamed; the final model is saved to `.final_model.incomplete/`, moved into
output_dir file by file (each file whole), and `final_model.json` is written after the last one.
Rotation happens before a checkpoint is written: it keeps the newest KEEP_CHECKPOINTS - 1 complete ones
(never fewer than one), so the newest complete checkpoint always exists while the next is written and
KEEP_CHECKPOINTS exist after. An old checkpoint is renamed to `.deleting_checkpoint_N` before it is
removed, so a half-deleted one is never mistaken for a checkpoint. Leftovers of a killed write are removed when the next run starts. (A kill
is not a power cut: files the operating system had not written to disk when the machine lost power are
beyond what renaming can protect.)

`fault_point(name, ...)` marks the instants at which the fault-injection test kills the run: with
MER_FAULT_LOG set each instant reached is appended to that file; with MER_FAULT_KILL_AT set to one of
those lines the process sends itself SIGKILL there. Without them it does nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Settings that change nothing learned: a resumed run may differ in these.
RESUMABLE_DIFFERENCES = {
    "resume", "output_dir", "push_to_hub", "hub_model_id", "hub_public", "num_proc", "cache_dir",
    "stop_after", "aggregate", "no_final_model", "fold", "cpu_threads", "report_to",
}
FINAL = "final"
KEEP_CHECKPOINTS = 2
FINAL_MARKER = "final_model.json"
FAULT_LOG_ENV = "MER_FAULT_LOG"
FAULT_KILL_ENV = "MER_FAULT_KILL_AT"
_CHECKPOINT_RE = re.compile(r"checkpoint_(\d+)")


class RunStateError(ValueError):
    """The output folder and the command line disagree; one line for the user, never a traceback."""


# -------------------------------------------------------------------------------------- fault injection
def fault_point(name: str, **where: Any) -> None:
    """An instant at which the fault-injection test may kill this process (see the module docstring)."""
    log, kill = os.environ.get(FAULT_LOG_ENV), os.environ.get(FAULT_KILL_ENV)
    if log is None and kill is None:
        return
    point = " ".join([name, *(f"{k}={v}" for k, v in where.items())])
    if log is not None:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(point + "\n")
    if kill == point:
        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------------------ run settings
def has_finished_work(output_dir: Path) -> bool:
    """Whether the folder holds anything a run finished: a complete checkpoint, a fold file, a final model.

    A run_args.json alone (a run that failed before its first checkpoint) is not a previous run.
    """
    if (output_dir / FINAL_MARKER).exists() or any((output_dir / "folds").glob("fold_*.csv")):
        return True
    return any(Checkpoints(run).complete() for run in (output_dir / "checkpoints").glob("*"))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.incomplete")
    tmp.write_text(text)
    tmp.replace(path)


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
        _write_atomic(path, json.dumps(args, indent=2, sort_keys=True))


def fold_file(output_dir: Path, index: int) -> Path:
    return output_dir / "folds" / f"fold_{index:03d}.csv"


def prediction_frame(
    rows: list[int], probs: np.ndarray, meta: pd.DataFrame, label_names: list[str], fold: str, epoch: int
) -> pd.DataFrame:
    """Rows of predictions.csv: subject, clip, label, prediction, class probabilities, fold, epoch used."""
    picked = meta.iloc[rows].reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "fold": fold,
            "dataset": picked["dataset"],
            "subject": picked["subject"],
            "clip_id": picked["clip_id"],
            "label": picked["label"].astype(int),
            "prediction": probs.argmax(1).astype(int),
            "label_name": [label_names[i] for i in picked["label"]],
            "prediction_name": [label_names[i] for i in probs.argmax(1)],
            "epoch": epoch,
        }
    )
    for c, name in enumerate(label_names):
        frame[f"prob_{name}"] = probs[:, c]
    return frame


def write_fold(output_dir: Path, index: int, frame: pd.DataFrame) -> None:
    """Atomically write a finished fold (a kill mid-write must not leave a half file that looks done)."""
    path = fold_file(output_dir, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False)
    fault_point("fold_file:written_not_renamed", fold=index)
    tmp.replace(path)
    fault_point("fold_file:renamed", fold=index)


def read_folds(output_dir: Path, indices: list[int]) -> pd.DataFrame:
    """Pool finished folds; a missing one is an error naming every missing file."""
    missing = [str(fold_file(output_dir, i)) for i in indices if not fold_file(output_dir, i).exists()]
    if missing:
        raise FileNotFoundError(f"cannot pool: {len(missing)} fold(s) not finished: {', '.join(missing)}")
    frames = [pd.read_csv(fold_file(output_dir, i), dtype={"subject": str, "clip_id": str}) for i in indices]
    return pd.concat(frames, ignore_index=True)


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
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
                removed.append(path.name)
        return removed

    def save(self, accelerator: Any, progress: dict[str, Any]) -> Path:
        """Rotation, then `accelerator.save_state` into a temporary folder, progress.json, and the rename
        that makes it visible (the last step: a kill before it leaves the previous checkpoints as they
        were). Every process must call it (each saves its own RNG state)."""
        number = max((n for n, _ in self.complete()), default=-1) + 1
        final = self.folder / f"checkpoint_{number}"
        tmp = self.folder / f".checkpoint_{number}.incomplete"
        where = {"fold": progress.get("fold"), "epoch": progress.get("epoch")}
        if accelerator.is_main_process:
            self._rotate(where)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        fault_point("checkpoint:temp_created", **where)
        config = accelerator.project_configuration
        automatic = config.automatic_checkpoint_naming  # would ignore `tmp` and rotate with total_limit
        config.automatic_checkpoint_naming = False
        try:
            accelerator.save_state(str(tmp))
        finally:
            config.automatic_checkpoint_naming = automatic
        fault_point("checkpoint:state_saved", **where)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (tmp / "progress.json").write_text(json.dumps(progress))
            fault_point("checkpoint:complete_not_renamed", **where)
            os.replace(tmp, final)
            fault_point("checkpoint:renamed", **where)
        accelerator.wait_for_everyone()
        return final

    def _rotate(self, where: dict[str, Any]) -> None:
        """Make room for one more: keep the newest keep - 1 (>= 1) complete checkpoints."""
        for _, path in self.complete()[: -(self.keep - 1)]:
            trash = path.with_name(f".deleting_{path.name}")
            os.replace(path, trash)
            fault_point("checkpoint:rotating", **where)
            shutil.rmtree(trash)


def _progress(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / "progress.json").read_text())
    except (OSError, ValueError):
        return None


def clean_incomplete(output_dir: Path) -> list[str]:
    """Leftovers of killed writes outside the checkpoints: fold files and the final model's temp folder."""
    removed = []
    for path in [*(output_dir / "folds").glob("*.tmp"), *output_dir.glob(".*.incomplete")]:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        removed.append(str(path.relative_to(output_dir)))
    return removed


def save_final_model(output_dir: Path, model: Any, processor: Any, marker: dict[str, Any]) -> None:
    """Save the final model and processor into output_dir so that `final_model.json` exists only when every
    file is complete (main process only)."""
    tmp = output_dir / ".final_model.incomplete"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    fault_point("final_model:saved_to_temp")
    for i, path in enumerate(sorted(tmp.iterdir())):
        os.replace(path, output_dir / path.name)
        if i == 0:
            fault_point("final_model:moving_files")
    tmp.rmdir()
    fault_point("final_model:files_in_place")
    _write_atomic(output_dir / FINAL_MARKER, json.dumps(marker))
    fault_point("final_model:marked")


SKIPS_FILE = "skipped_clips.json"


def write_skips(output_dir: Path, skipped: list[dict[str, str]]) -> None:
    """The clips --on_error skip left out at any stage (build, preprocessing), for metrics.json."""
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(output_dir / SKIPS_FILE, json.dumps(skipped, indent=1))


def read_skips(output_dir: Path) -> list[dict[str, str]]:
    path = output_dir / SKIPS_FILE
    return json.loads(path.read_text()) if path.exists() else []


__all__ = [
    "FINAL",
    "FINAL_MARKER",
    "Checkpoints",
    "RunStateError",
    "check_run_args",
    "clean_incomplete",
    "fault_point",
    "fold_file",
    "has_finished_work",
    "prediction_frame",
    "read_folds",
    "read_skips",
    "save_final_model",
    "write_fold",
    "write_skips",
]
