"""A run already on disk to the Hub, or a run state from the Hub, in one go (no training running).

    train.py --push_only          push_only / push_run: a finished run (or, with --hub_strategy checkpoint, a
                                  stopped run's state) pushed as that strategy would have pushed it while training
    train.py --resume_from_hub    download_run_state: the run state a `checkpoint`-strategy run left on the Hub
                                  (settings, fold files, the newest checkpoint) into an empty --output_dir

Both go through hub_sync's client and error (`HubClient`, `DryRunClient`, `HubSyncError`); `push_run`
uploads with a `HubSync` in one commit. `holds_run` and `latest_checkpoints` read the runner's layout of
an output folder (final_model.json, folds/, checkpoints/<run>/checkpoints/checkpoint_N/).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .hub_sync import (
    CHECKPOINTS,
    FOLD_PATTERN,
    RUN_STATE_PATTERNS,
    DryRunClient,
    HubClient,
    HubSync,
    HubSyncError,
    one_line,
)

FINAL_MARKER = "final_model.json"  # the runner's: written last, once the final model is complete
_CHECKPOINT_RE = re.compile(r"checkpoint_(\d+)")


def latest_checkpoints(output_dir: Path) -> list[Path]:
    """The newest complete checkpoint (a `checkpoint_N` folder with its progress.json) of each run in
    output_dir/checkpoints/ (the layout of the runner's checkpoints; a killed write never has progress.json)."""
    found = []
    for run in sorted((output_dir / CHECKPOINTS).glob("*")):
        complete = [
            (int(m.group(1)), path) for path in (run / CHECKPOINTS).glob("checkpoint_*")
            if (m := _CHECKPOINT_RE.fullmatch(path.name)) and (path / "progress.json").is_file()
        ]
        if complete:
            found.append(max(complete)[1])
    return found


def holds_run(output_dir: Path) -> bool:
    """Whether output_dir holds finished work of a run: a final model, a fold file or a complete checkpoint."""
    return (output_dir / FINAL_MARKER).exists() or any(output_dir.glob(FOLD_PATTERN)) or bool(latest_checkpoints(output_dir))


def push_run(
    output_dir: str | Path,
    repo_id: str,
    final_files: Sequence[str],
    strategy: str = "end",
    *,
    private: bool = True,
    client: HubClient | None = None,
    report: Callable[[str], None] = print,
) -> list[str]:
    """`--push_only`: push a run already on disk, as `strategy` would have during training: the final
    files (`final_files`, top level) when the run finished, with every_save the fold files and settings, with
    checkpoint also its newest checkpoint (an unfinished run pushed so that it can resume elsewhere).
    Returns the commits made. With a `DryRunClient` nothing is uploaded and each upload is listed."""
    output_dir = Path(output_dir)
    if not (output_dir / "run_args.json").is_file():
        raise HubSyncError(f"--push_only {output_dir}: no run there (run_args.json missing)")
    finished = (output_dir / FINAL_MARKER).is_file() or (output_dir / "metrics.json").is_file()
    if not finished and strategy != "checkpoint":
        raise HubSyncError(
            f"--push_only {output_dir}: the run has not finished (no {FINAL_MARKER} or metrics.json); finish it "
            "with --resume, or push its state to resume elsewhere with --hub_strategy checkpoint"
        )
    client = client or HubClient()
    try:
        client.create_repo(repo_id, private=private)
    except Exception as err:  # offline, no token, no permission: httpx errors are not OSError
        raise HubSyncError(f"--push_only: cannot reach or create the Hub repo {repo_id} ({one_line(err)})") from None
    sync = HubSync(output_dir, repo_id, strategy, client=client, report=report, retry_after=0.5)
    with sync.one_commit():  # the run's files as one commit, then the final files
        for path in sorted(output_dir.glob(FOLD_PATTERN)):
            sync.saved_file(path)
        if strategy == "checkpoint":
            for checkpoint in latest_checkpoints(output_dir):
                sync.saved_checkpoint(checkpoint)
        if finished:
            sync.push_final(final_files)
        elif strategy == "checkpoint" and sync._pending is None:
            raise HubSyncError(f"--push_only {output_dir}: nothing to push yet (no fold file or checkpoint)")
    return sync.close()


def push_only(run: Any, report: Callable[[str], None] = print) -> list[str]:
    """`train.py --push_only`: `push_run` with a RunConfig's output_dir, hub_model_id, hub_strategy, hub_public,
    dry_run and the final files train.py uploads (`reporting.HUB_FILES`)."""
    from ..evaluation.reporting import HUB_FILES

    client = DryRunClient(report) if run.dry_run else HubClient()
    commits = push_run(run.output_dir, run.hub_model_id, HUB_FILES, run.hub_strategy, private=not run.hub_public,
                       client=client, report=report)
    dry = " (dry run: nothing was uploaded)" if run.dry_run else ""
    report(f"hub: {run.output_dir} pushed to {run.hub_model_id} in {len(commits)} commit(s){dry}")
    return commits


def download_run_state(
    repo_id: str, output_dir: str | Path, *, client: HubClient | None = None
) -> list[str]:
    """`--resume_from_hub`: the run state a `checkpoint`-strategy run left on the Hub (settings, fold files,
    the newest checkpoint) into an output folder that holds no run yet. Returns the relative paths written."""
    output_dir = Path(output_dir)
    if output_dir.exists() and holds_run(output_dir):
        raise HubSyncError(
            f"--resume_from_hub {repo_id}: {output_dir} already holds a run; continue it with --resume, or give "
            "an empty --output_dir to download into"
        )
    client = client or HubClient()
    with tempfile.TemporaryDirectory(prefix="mer-hub-") as cache:
        try:
            snapshot = Path(client.snapshot_download(repo_id, allow_patterns=RUN_STATE_PATTERNS, cache_dir=cache))
        except HubSyncError:
            raise
        except Exception as err:  # offline, no such repo, no access
            raise HubSyncError(f"--resume_from_hub {repo_id}: cannot download the run state ({one_line(err)})") from None
        files = [p for p in sorted(snapshot.rglob("*")) if p.is_file() and ".cache" not in p.relative_to(snapshot).parts]
        names = [p.relative_to(snapshot).as_posix() for p in files]
        if "run_args.json" not in names:
            raise HubSyncError(
                f"--resume_from_hub {repo_id}: the repo holds no run state (run_args.json, folds/, checkpoints/); "
                "runs push it with --hub_strategy checkpoint"
            )
        output_dir.mkdir(parents=True, exist_ok=True)
        for path, name in zip(files, names):
            target = output_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.incomplete")
            shutil.copyfile(path, tmp)  # resolves the cache's symlinks; whole files only
            os.replace(tmp, target)
    return names


__all__ = ["download_run_state", "holds_run", "latest_checkpoints", "push_only", "push_run"]
