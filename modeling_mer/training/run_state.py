"""What a training run leaves on disk so that nothing is lost: run settings, fold predictions, progress.

    output_dir/run_args.json                     the settings; --resume refuses to mix different ones
    output_dir/folds/fold_007.csv                a finished fold's predictions (kept, never recomputed)
    output_dir/checkpoints/<run>/checkpoints/checkpoint_N/   accelerate save_state, one per epoch
        .../checkpoint_N/progress.json           which fold/epoch it is, and select_on_test's best so far
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Settings that change nothing learned: a resumed run may differ in these.
RESUMABLE_DIFFERENCES = {
    "resume", "output_dir", "push_to_hub", "hub_model_id", "hub_public", "num_proc", "cache_dir",
    "stop_after", "aggregate", "no_final_model", "fold", "cpu_threads",
}
FINAL = "final"


def check_run_args(output_dir: Path, args: dict[str, Any], resume: bool, write: bool) -> None:
    """Refuse to overwrite a run; on --resume check the stored settings match; `write`: store them if new.

    Every process checks (so all fail alike); only the main process writes, after the others checked.
    """
    path = output_dir / "run_args.json"
    has_run = path.exists() or any((output_dir / "folds").glob("fold_*.csv"))
    if has_run and not resume:
        raise FileExistsError(
            f"{output_dir} holds a previous run (run_args.json / folds/): pass --resume to continue it, "
            "or choose another --output_dir"
        )
    if path.exists():
        stored = json.loads(path.read_text())
        differ = sorted(
            k for k in set(stored) | set(args)
            if k not in RESUMABLE_DIFFERENCES and stored.get(k) != args.get(k)
        )
        if differ:
            details = ", ".join(f"--{k}: {stored.get(k)!r} -> {args.get(k)!r}" for k in differ)
            raise ValueError(f"--resume with settings that differ from the run in {output_dir}: {details}")
    elif write:
        output_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(args, indent=2, sort_keys=True))


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
    tmp.replace(path)


def read_folds(output_dir: Path, indices: list[int]) -> pd.DataFrame:
    """Pool finished folds; a missing one is an error naming every missing file."""
    missing = [str(fold_file(output_dir, i)) for i in indices if not fold_file(output_dir, i).exists()]
    if missing:
        raise FileNotFoundError(f"cannot pool: {len(missing)} fold(s) not finished: {', '.join(missing)}")
    frames = [pd.read_csv(fold_file(output_dir, i), dtype={"subject": str, "clip_id": str}) for i in indices]
    return pd.concat(frames, ignore_index=True)


def write_progress(checkpoint: Path, progress: dict[str, Any]) -> None:
    (checkpoint / "progress.json").write_text(json.dumps(progress))


def latest_checkpoint(project_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest `checkpoint_N` that has its progress.json (a checkpoint without one was cut short)."""
    found = []
    for path in (project_dir / "checkpoints").glob("checkpoint_*"):
        match = re.fullmatch(r"checkpoint_(\d+)", path.name)
        if match and (path / "progress.json").exists():
            found.append((int(match.group(1)), path))
    if not found:
        return None
    _, path = max(found)
    return path, json.loads((path / "progress.json").read_text())


def checkpoint_number(path: Path) -> int:
    return int(path.name.rsplit("_", 1)[1])


__all__ = [
    "FINAL",
    "check_run_args",
    "checkpoint_number",
    "fold_file",
    "latest_checkpoint",
    "prediction_frame",
    "read_folds",
    "write_fold",
    "write_progress",
]
