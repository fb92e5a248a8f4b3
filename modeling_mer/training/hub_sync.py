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

One concern: the run's uploads while it trains (`HubSync`, which the runner feeds its saves) and the Hub
client they go through. Pushing a run already on disk (--push_only) and downloading a run state
(--resume_from_hub) are hub_transfer's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
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


def one_line(err: BaseException) -> str:
    """An exception as one line for the user: its type and its first 300 characters, whitespace collapsed."""
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
            line = f"hub: the upload thread stopped ({one_line(err)})"
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
            line = f"hub: upload of {what} to {self.repo_id} failed ({one_line(err)}); kept for the next attempt"
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
            line = f"hub: upload of the final model to {self.repo_id} failed ({one_line(err)}); will retry"
            self.failures.append(line)
            self.report(line)
            return False
        self.uploaded.append("final model")
        return True


__all__ = [
    "CHECKPOINTS",
    "FOLD_PATTERN",
    "HUB_STRATEGIES",
    "RUN_FILES",
    "RUN_STATE_PATTERNS",
    "DryRunClient",
    "HubClient",
    "HubSync",
    "HubSyncError",
    "matching_files",
    "one_line",
]
