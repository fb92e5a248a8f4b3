"""What a run leaves for its reader: fold predictions, the pooled reports, the final model, the skip list.

    output_dir/folds/fold_007.csv      a finished fold's predictions (kept, never recomputed)
    output_dir/predictions.csv, metrics.json, figures     the pooled reports (the task writes them)
    output_dir/config.json, model.safetensors, preprocessor_config.json, README.md   the final model, its card
    output_dir/final_model.json        written last: the final model in output_dir is complete
    output_dir/skipped_clips.json      what --on_error skip left out (build and preprocessing)

Each becomes visible whole: a fold file is written to a temporary name and renamed; the reports and the
final model are written into a temporary folder and moved into output_dir file by file (each file whole),
the final model's `final_model.json` after the last one. Resuming (settings, checkpoints, leftovers) is
`checkpoints`'.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .atomic_files import publish, publish_folder, write_atomic

FINAL_MARKER = "final_model.json"
SKIPS_FILE = "skipped_clips.json"


def fold_file(output_dir: Path, index: int) -> Path:
    return output_dir / "folds" / f"fold_{index:03d}.csv"


def write_fold(output_dir: Path, index: int, frame: pd.DataFrame) -> None:
    """Atomically write a finished fold (a kill mid-write must not leave a half file that looks done)."""
    path = fold_file(output_dir, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # unique per process
    frame.to_csv(tmp, index=False)
    publish(tmp, path)


def read_folds(output_dir: Path, indices: list[int]) -> pd.DataFrame:
    """Pool finished folds; a missing one is an error naming every missing file."""
    missing = [str(fold_file(output_dir, i)) for i in indices if not fold_file(output_dir, i).exists()]
    if missing:
        raise FileNotFoundError(f"cannot pool: {len(missing)} fold(s) not finished: {', '.join(missing)}")
    frames = [pd.read_csv(fold_file(output_dir, i), dtype={"subject": str, "clip_id": str}) for i in indices]
    return pd.concat(frames, ignore_index=True)


def write_staged(output_dir: Path, name: str, write: Callable[[Path], None]) -> list[str]:
    """`write(folder)` into a temporary folder, then its files moved into output_dir, each whole."""
    tmp = output_dir / f".{name}.incomplete"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write(tmp)
    return publish_folder(tmp, output_dir)


def save_final_model(output_dir: Path, model: Any, processor: Any, marker: dict[str, Any]) -> None:
    """Save the final model and processor into output_dir so that `final_model.json` exists only when every
    file is complete (main process only)."""
    def save(folder: Path) -> None:
        model.save_pretrained(folder)
        processor.save_pretrained(folder)

    write_staged(output_dir, "final_model", save)
    write_atomic(output_dir / FINAL_MARKER, json.dumps(marker))


def write_skips(output_dir: Path, skipped: list[dict[str, str]]) -> None:
    """The clips --on_error skip left out at any stage (build, preprocessing), for metrics.json."""
    output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(output_dir / SKIPS_FILE, json.dumps(skipped, indent=1))


def read_skips(output_dir: Path) -> list[dict[str, str]]:
    path = output_dir / SKIPS_FILE
    return json.loads(path.read_text()) if path.exists() else []


__all__ = ["FINAL_MARKER", "SKIPS_FILE", "fold_file", "read_folds", "read_skips", "save_final_model",
           "write_fold", "write_skips", "write_staged"]
