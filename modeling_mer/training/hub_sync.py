"""A run's files on the Hub while it trains, so that a run killed on one machine resumes on another.

    --hub_strategy end          (default) the final model, card, metrics and predictions, once, at the end
    --hub_strategy every_save   also every finished fold file (with run_args.json) as soon as it is written
    --hub_strategy checkpoint   also the newest complete checkpoint, as soon as it is written: the repo always
                                holds a resumable run state (`--resume_from_hub REPO` on another machine)

These are transformers Trainer's `hub_strategy` meanings in this project's terms: a "save" is a fold file
or a checkpoint becoming visible (atomic_files writes each atomically), and where Trainer keeps the newest
checkpoint as `last-checkpoint/`, the repo keeps it at its own path (`checkpoints/<run>/checkpoints/
checkpoint_N/`), older ones deleted in the same commit, so that the downloaded run state is the output
folder's own layout and `--resume` needs no translation. The repo is created private unless asked.

Uploads run in one background thread and never stall training: a save hard-links its files into a
staging folder (`output_dir/.hub_staging/`, so a checkpoint rotated away meanwhile is still uploaded
whole) and returns; the thread uploads what is pending as one commit. Saves that arrive while an upload
runs are merged into the next commit (only the newest checkpoint is kept, as Trainer skips a push while
the previous one runs). A failed upload is reported in one line and its files stay pending for the next
attempt (the next save, a minute later, or the end); `close()` waits for the last upload, retries what
failed, and raises `HubSyncError` in one line naming what did not reach the Hub and how to push it later
(the files are all still in the output folder). `dry_run` uploads nothing and reports what would go.

The Hub is reached through `HubClient` (huggingface_hub's `create_repo`, `upload_folder`,
`snapshot_download`, looked up at call time); tests give a local fake of the same three calls.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HUB_STRATEGIES = ("end", "every_save", "checkpoint")
STAGING = ".hub_staging"
RUN_FILES = ("run_args.json", "skipped_clips.json")  # the run's settings travel with every save
FOLD_PATTERN = "folds/fold_*.csv"
CHECKPOINTS = "checkpoints"
# What --resume_from_hub downloads: the run state, not the final model (a finished run has nothing to resume).
RUN_STATE_PATTERNS = [*RUN_FILES, FOLD_PATTERN, f"{CHECKPOINTS}/**"]
RETRY_AFTER = 60.0  # s before a failed upload is tried again when no new save comes first
CLOSE_RETRIES = 2  # further attempts at close() for what is still pending


class HubSyncError(RuntimeError):
    """Something could not be uploaded, or the repo holds no run state: one line for the user."""


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__


# --------------------------------------------------------------------------------------------- the Hub
class HubClient:
    """The three Hub calls this module makes (huggingface_hub's, resolved when called)."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token

    def create_repo(self, repo_id: str, private: bool) -> str:
        import huggingface_hub

        return str(huggingface_hub.create_repo(repo_id, private=private, exist_ok=True, token=self.token))

    def upload_folder(self, **kwargs: Any) -> Any:
        import huggingface_hub

        return huggingface_hub.upload_folder(token=self.token, **kwargs)

    def snapshot_download(self, repo_id: str, allow_patterns: list[str], cache_dir: str) -> str:
        import huggingface_hub

        return huggingface_hub.snapshot_download(
            repo_id, allow_patterns=allow_patterns, cache_dir=cache_dir, token=self.token
        )


class DryRunClient(HubClient):
    """Uploads nothing: reports each upload it is asked for (the files, their total size)."""

    def __init__(self, report: Callable[[str], None]) -> None:
        super().__init__()
        self.report = report
        self.uploads: list[list[str]] = []

    def create_repo(self, repo_id: str, private: bool) -> str:
        self.report(f"hub (dry run): would create the {'private' if private else 'public'} repo {repo_id} if missing")
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs: Any) -> Any:
        files = matching_files(Path(kwargs["folder_path"]), kwargs.get("allow_patterns"), kwargs.get("ignore_patterns"))
        self.uploads.append([name for name, _ in files])
        size = sum(s for _, s in files)
        deleting = f"; would delete remote files matching {kwargs['delete_patterns']}" if kwargs.get("delete_patterns") else ""
        self.report(
            f"hub (dry run): would upload {len(files)} file(s), {_size(size)}, to {kwargs['repo_id']} "
            f"({kwargs.get('commit_message', '')}){deleting}: {', '.join(name for name, _ in files)}"
        )
        return None

    def snapshot_download(self, repo_id: str, allow_patterns: list[str], cache_dir: str) -> str:
        raise HubSyncError(f"--resume_from_hub {repo_id}: a dry run downloads nothing")


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def matching_files(folder: Path, allow: Sequence[str] | str | None, ignore: Sequence[str] | str | None) -> list[tuple[str, int]]:
    """(relative path, bytes) of the files `upload_folder` would take from `folder`, with its own filter."""
    from huggingface_hub.utils import filter_repo_objects

    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    kept = filter_repo_objects(names, allow_patterns=allow, ignore_patterns=ignore)
    return [(name, (folder / name).stat().st_size) for name in kept]


# ---------------------------------------------------------------------------------------- staging area
def _link(source: Path, target: Path) -> None:
    """`target` becomes the same file as `source` (a hard link: free, and immune to the source's removal)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, target)


def _link_tree(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file():
            _link(path, target / path.relative_to(source))


@dataclass
class _Batch:
    """Files staged for one commit: a folder mirroring output_dir's layout."""

    folder: Path
    checkpoint: str | None = None  # relative path of the checkpoint it holds (at most one: the newest)
    what: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return ", ".join(self.what) or "run files"


# ------------------------------------------------------------------------------------------ the syncer
class HubSync:
    """Background uploads of one run's saves (main process only). See the module docstring."""

    def __init__(
        self,
        output_dir: str | Path,
        repo_id: str,
        strategy: str = "end",
        *,
        client: HubClient | None = None,
        report: Callable[[str], None] = print,
        retry_after: float = RETRY_AFTER,
    ) -> None:
        if strategy not in HUB_STRATEGIES:
            raise ValueError(f"--hub_strategy {strategy!r}: choose one of {', '.join(HUB_STRATEGIES)}")
        self.output_dir = Path(output_dir)
        self.repo_id = repo_id
        self.strategy = strategy
        self.client = client or HubClient()
        self.report = report
        self.retry_after = retry_after
        self.uploaded: list[str] = []  # one description per successful commit, in order
        self.failures: list[str] = []  # one line per failed attempt
        self._staging = self.output_dir / STAGING
        shutil.rmtree(self._staging, ignore_errors=True)  # what a killed run left: never half a commit
        self._counter = 0
        self._pending: _Batch | None = None
        self._final: tuple[list[str], list[str], str] | None = None
        self._closing = False
        self._failed_at: float | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_run(cls, output_dir: str | Path, repo_id: str, strategy: str = "end", *, dry_run: bool = False,
                report: Callable[[str], None] = print) -> HubSync:
        """The syncer of a training run (`--push_to_hub`, `--hub_strategy`, `--dry_run`)."""
        client = DryRunClient(report) if dry_run else HubClient()
        return cls(output_dir, repo_id, strategy, client=client, report=report)

    # -------------------------------------------------------------------- called by the training loop
    def on_saved(self, kind: str, path: str | Path) -> None:
        """The runner's listener: ("checkpoint" | "fold", path) once that file or folder is complete."""
        if kind == "checkpoint":
            self.saved_checkpoint(path)
        else:
            self.saved_file(path)

    def saved_checkpoint(self, checkpoint: str | Path) -> None:
        """A checkpoint folder became complete (renamed into place). Pushed with `checkpoint` only."""
        if self.strategy != "checkpoint":
            return
        checkpoint = Path(checkpoint)
        relative = checkpoint.relative_to(self.output_dir).as_posix()
        with self._cond:
            batch = self._batch()
            if batch.checkpoint is not None:  # a newer one supersedes what was not uploaded yet
                shutil.rmtree(batch.folder / batch.checkpoint, ignore_errors=True)
                batch.what = [w for w in batch.what if w != batch.checkpoint.rsplit("/", 1)[-1]]
            _link_tree(checkpoint, batch.folder / relative)
            batch.checkpoint = relative
            batch.what.append(checkpoint.name)
            self._stage_run_files(batch)
            self._failed_at = None  # a new save is a new attempt (as Trainer pushes at the next save)
            self._cond.notify_all()

    def saved_file(self, path: str | Path) -> None:
        """A result file became complete (a fold file). Pushed with `every_save` and `checkpoint`."""
        if self.strategy == "end":
            return
        path = Path(path)
        with self._cond:
            batch = self._batch()
            _link(path, batch.folder / path.relative_to(self.output_dir))
            batch.what.append(path.name)
            self._stage_run_files(batch)
            self._failed_at = None  # a new save is a new attempt (as Trainer pushes at the next save)
            self._cond.notify_all()

    def push_final(self, allow_patterns: Sequence[str], ignore_patterns: Sequence[str] = ("*/*",),
                   commit_message: str = "Upload micro-expression model, card, metrics and predictions") -> None:
        """The finished run's files (every strategy), after what is pending; `close()` waits for it."""
        with self._cond:
            self._final = (list(allow_patterns), list(ignore_patterns), commit_message)
            self._start()
            self._cond.notify_all()

    @contextlib.contextmanager
    def one_commit(self) -> Iterator[None]:
        """Saves made inside go up together: the upload thread waits until the block ends."""
        with self._cond:
            yield

    def close(self, timeout: float | None = None) -> list[str]:
        """Wait for every pending upload (retrying failures); returns the commits made. Raises HubSyncError
        when something could not be uploaded."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise HubSyncError(
                    f"hub: uploads to {self.repo_id} still running after {timeout:.0f} s; the files are in "
                    f"{self.output_dir}: {self.push_later_hint()}"
                )
        left = [b.describe() for b in (self._pending,) if b is not None]
        left += ["the final model, card and results"] if self._final is not None else []
        if not left:
            shutil.rmtree(self._staging, ignore_errors=True)
            return list(self.uploaded)
        raise HubSyncError(
            f"hub: not uploaded to {self.repo_id}: {'; '.join(left)} ({self.failures[-1] if self.failures else 'no attempt'}); "
            f"the files are in {self.output_dir}: {self.push_later_hint()}"
        )

    def summary(self) -> str:
        """One line for the end of the run."""
        dry = " (dry run: nothing was uploaded)" if isinstance(self.client, DryRunClient) else ""
        if not self.uploaded:
            return f"hub: nothing to upload to {self.repo_id}{dry}"
        return f"hub: {len(self.uploaded)} commit(s) to {self.repo_id}, the last: {self.uploaded[-1]}{dry}"

    def push_later_hint(self) -> str:
        return (
            f"push them with `python train.py --push_only --output_dir {self.output_dir} --hub_model_id "
            f"{self.repo_id} --hub_strategy {self.strategy}`"
        )

    # ------------------------------------------------------------------------------------ internals
    def _batch(self) -> _Batch:
        """The pending batch (caller holds the lock), created and the worker started on first use."""
        if self._pending is None:
            self._counter += 1
            self._pending = _Batch(self._staging / f"commit_{self._counter:05d}")
            self._pending.folder.mkdir(parents=True)
        self._start()
        return self._pending

    def _stage_run_files(self, batch: _Batch) -> None:
        for name in RUN_FILES:
            if (self.output_dir / name).is_file():
                _link(self.output_dir / name, batch.folder / name)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="hub-sync", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        try:
            self._loop()
        except Exception as err:  # a bug here must not pass silently: close() then names what is left
            line = f"hub: the upload thread stopped ({_one_line(err)})"
            self.failures.append(line)
            self.report(line)

    def _loop(self) -> None:
        close_retries = CLOSE_RETRIES
        while True:
            with self._cond:
                while True:
                    has_work = self._pending is not None or self._final is not None
                    if not has_work and self._closing:
                        return
                    if has_work and self._failed_at is None:
                        break
                    if has_work and self._closing:  # failed before: retry a few times, then give up
                        if close_retries == 0:
                            return
                        close_retries -= 1
                        self._cond.wait(min(2.0, self.retry_after))
                        self._failed_at = None
                        break
                    timeout = None
                    if self._failed_at is not None:
                        timeout = max(0.0, self._failed_at + self.retry_after - time.monotonic())
                    self._cond.wait(timeout)
                    if self._failed_at is not None and time.monotonic() >= self._failed_at + self.retry_after:
                        self._failed_at = None
                batch, final = self._pending, None
                self._pending = None
                if batch is None:
                    final, self._final = self._final, None
            ok = self._upload(batch) if batch is not None else self._upload_final(final)
            with self._cond:
                if not ok:
                    self._failed_at = time.monotonic()
                    if batch is not None:
                        self._requeue(batch)
                    else:
                        self._final = self._final or final
                self._cond.notify_all()

    def _requeue(self, failed: _Batch) -> None:
        """A failed batch goes back in front of what arrived meanwhile (caller holds the lock); a newer
        checkpoint that arrived meanwhile supersedes the failed batch's one."""
        pending, self._pending = self._pending, failed
        if pending is None:
            return
        if pending.checkpoint is not None and failed.checkpoint is not None:
            shutil.rmtree(failed.folder / failed.checkpoint, ignore_errors=True)
            failed.what = [w for w in failed.what if w != failed.checkpoint.rsplit("/", 1)[-1]]
            failed.checkpoint = None
        for path in sorted(pending.folder.rglob("*")):
            if path.is_file():  # newer versions of the same file win
                _link(path, failed.folder / path.relative_to(pending.folder))
        failed.checkpoint = pending.checkpoint or failed.checkpoint
        failed.what += [w for w in pending.what if w not in failed.what]
        shutil.rmtree(pending.folder, ignore_errors=True)

    def _upload(self, batch: _Batch) -> bool:
        what = batch.describe()
        try:
            self.client.upload_folder(
                repo_id=self.repo_id,
                folder_path=str(batch.folder),
                commit_message=f"Training in progress: {what}",
                # a commit with a checkpoint replaces the remote ones: the repo keeps the newest only
                delete_patterns=[f"{CHECKPOINTS}/**"] if batch.checkpoint else None,
            )
        except Exception as err:  # network, token, quota: reported, the files kept for the next attempt
            line = f"hub: upload of {what} to {self.repo_id} failed ({_one_line(err)}); kept for the next attempt"
            self.failures.append(line)
            self.report(line)
            return False
        self.uploaded.append(what)
        shutil.rmtree(batch.folder, ignore_errors=True)
        return True

    def _upload_final(self, final: tuple[list[str], list[str], str] | None) -> bool:
        if final is None:
            return True
        allow, ignore, message = final
        try:
            self.client.upload_folder(
                repo_id=self.repo_id, folder_path=str(self.output_dir), allow_patterns=allow,
                ignore_patterns=ignore, commit_message=message,
            )
        except Exception as err:
            line = f"hub: upload of the final model to {self.repo_id} failed ({_one_line(err)}); will retry"
            self.failures.append(line)
            self.report(line)
            return False
        self.uploaded.append("final model")
        return True


# ------------------------------------------------------------------------------- push-only and resume
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
        raise HubSyncError(f"--push_only: cannot reach or create the Hub repo {repo_id} ({_one_line(err)})") from None
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
            raise HubSyncError(f"--resume_from_hub {repo_id}: cannot download the run state ({_one_line(err)})") from None
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


__all__ = [
    "CHECKPOINTS",
    "HUB_STRATEGIES",
    "RUN_STATE_PATTERNS",
    "DryRunClient",
    "HubClient",
    "HubSync",
    "HubSyncError",
    "download_run_state",
    "holds_run",
    "latest_checkpoints",
    "matching_files",
    "push_only",
    "push_run",
]
