"""One writer per output folder, and one line for every way writing it can fail.

    output_dir/.train.lock            held by a whole run (exclusive) or by --fold K jobs (shared)
    output_dir/.train.fold_007.lock   held by the --fold 7 job (exclusive)

`output_lock(run)` takes advisory `fcntl.flock` locks before anything is read or cleaned: a second
train.py on the same folder -- a second --resume, or a whole run beside --fold jobs -- is refused in one
line naming the process that holds it, and nothing is deleted under a live writer. --fold K jobs of a
cluster array share the folder (each holds the run lock shared and its fold's lock exclusively), so they
run together, while two jobs of one fold, or --aggregate before the fold jobs ended, are refused. The
locks go with the process (a killed run leaves no stale lock); the lock files are removed when released.
On a file system without locks (some cluster mounts) a warning says that nothing guards the folder.

Taking the lock is also the probe that the folder is writable: a read-only or unwritable --output_dir
(or --cache_dir) is refused here, before any data is built. `write_failure(err, run)` turns what the
operating system, torch or safetensors raise when writing fails (no space left, file too large, read-only
file system, permission denied) into one line saying what to do; `INTERRUPTED` is the line for Ctrl-C.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:  # POSIX; elsewhere (Windows) nothing is locked and the limits are not read
    import fcntl
    import resource
except ImportError:  # pragma: no cover - not on the platforms the tests run on
    fcntl = resource = None

RUN_LOCK = ".train.lock"
WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    getattr(errno, "EDQUOT", 122): "the disk quota is exceeded",
    errno.EFBIG: "file too large (the file-size limit, ulimit -f, or the file system's largest file)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
INTERRUPTED = (
    "train.py: interrupted (Ctrl-C): finished epochs, folds and caches are kept; continue with the same "
    "command and --resume"
)


class OutputLockError(RuntimeError):
    """The output folder is being written by another process, or cannot be written at all: one line."""


def fold_lock_name(fold: int) -> str:
    return f".train.fold_{fold:03d}.lock"


class _Lock:
    """One flock on one file; the file is removed on release (while still held, so that a process that
    opened it meanwhile sees it is gone and retries on a fresh file)."""

    def __init__(self, path: Path, exclusive: bool):
        self.path = path
        self.exclusive = exclusive
        self.fd: int | None = None

    def acquire(self) -> bool:
        """True when held; False when another process holds it (never waits)."""
        if fcntl is None:
            raise OSError(errno.ENOSYS, "file locks are not available on this platform")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return True
            os.close(fd)  # the file was removed by its last holder between our open and our lock: again

    def write_owner(self, owner: dict[str, Any]) -> None:
        if self.fd is not None and self.exclusive:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, json.dumps(owner).encode(), 0)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            if self.exclusive:
                self.path.unlink()
            else:  # a shared holder removes the file only when no one else holds it
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.path.unlink()
        os.close(self.fd)
        self.fd = None


def _owner_text(path: Path) -> str:
    try:
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        owner = {}
    if not owner:
        return "another train.py"
    what = f"--fold {owner['fold']}" if owner.get("fold") is not None else "a whole run"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("started", 0)))
    return f"another train.py ({what}, pid {owner.get('pid')} on {owner.get('host')}, since {since})"


def check_writable(folder: Path, option: str) -> None:
    """A real probe write in `folder` (created if needed): the only check that root, read-only mounts
    and ACLs all answer truthfully. Raises OutputLockError naming the option."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write_probe_", delete=True) as probe:
            probe.write(b"x")
            probe.flush()
    except OSError as err:
        reason = WRITE_ERRNOS.get(err.errno, err.strerror or type(err).__name__)
        raise OutputLockError(f"{option} {folder}: cannot write there ({reason}); choose a writable folder") from None


@contextlib.contextmanager
def output_lock(output_dir: str | os.PathLike, fold: int | None = None, cache_dir: str | os.PathLike | None = None,
                holder: bool | None = None) -> Iterator[None]:
    """Hold the output folder for this run (see the module docstring) while the block runs.

    `holder`: whether this process takes the locks (default: the distributed rank 0, RANK unset or 0; the
    other ranks of a run write through it). A folder this call created and that holds nothing when the
    block ends is removed again: a run refused or failed before writing anything leaves no folder.
    """
    output_dir = Path(output_dir)
    if holder is None:
        holder = os.environ.get("RANK", "0") == "0"
    if not holder:
        yield
        return
    existed = output_dir.exists()
    check_writable(output_dir, "--output_dir")
    if cache_dir is not None:
        check_writable(Path(cache_dir).expanduser(), "--cache_dir")
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "fold": fold}
    locks = [_Lock(output_dir / RUN_LOCK, exclusive=fold is None)]
    if fold is not None:
        locks.append(_Lock(output_dir / fold_lock_name(fold), exclusive=True))
    held: list[_Lock] = []
    try:
        for lock in locks:
            try:
                acquired = lock.acquire()
            except OSError as err:  # ENOLCK, EOPNOTSUPP...: a mount without locks
                print(f"warning: cannot lock {lock.path} ({err.strerror}): nothing stops a second train.py "
                      "from writing into this folder at the same time", flush=True)
                continue
            if not acquired:
                raise OutputLockError(
                    f"--output_dir {output_dir} is in use by {_owner_text(lock.path)}; wait for it to end, or "
                    "choose another --output_dir (--fold K jobs of one run may share a folder, one job per fold)"
                )
            lock.write_owner(owner)
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            lock.release()
        if not existed:
            with contextlib.suppress(OSError):
                output_dir.rmdir()  # only when empty


# ------------------------------------------------------------------------------------- write failures
_RUST_ERRNO = re.compile(r"(?:code: |os error )(\d+)")
_TORCH_WRITE = ("PytorchStreamWriter failed", "file write failed", "unexpected pos")


def _errno_of(err: BaseException) -> int | None:
    """The errno behind a write failure: an OSError's, or the one safetensors (Rust) prints."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
            return err.errno
        match = _RUST_ERRNO.search(str(err)) if type(err).__name__ == "SafetensorError" else None
        if match and int(match.group(1)) in WRITE_ERRNOS:
            return int(match.group(1))
        err = err.__cause__ or err.__context__
    return None


def _torch_write_failure(err: BaseException) -> bool:
    return isinstance(err, RuntimeError) and any(text in str(err) for text in _TORCH_WRITE)


def _guess_errno(folder: Path) -> int | None:
    """torch reports a failed write without its cause: the file-size limit, or a (nearly) full disk."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource is not None else None
    if limit is not None and limit != resource.RLIM_INFINITY:
        return errno.EFBIG
    with contextlib.suppress(OSError):
        if shutil.disk_usage(folder).free < 64 * 2**20:
            return errno.ENOSPC
    return None


def write_failure(err: BaseException, output_dir: str | os.PathLike | None, cache_dir: str | os.PathLike | None = None) -> str | None:
    """One line for a failed write (None when `err` is something else): what failed, where, what to do."""
    code = _errno_of(err)
    torch_failed = code is None and _torch_write_failure(err)
    if code is None and not torch_failed:
        return None
    folder = Path(output_dir) if output_dir is not None else Path.cwd()
    if torch_failed:
        code = _guess_errno(folder)
    filename = next((e.filename for e in _chain(err) if isinstance(e, OSError) and e.filename), None)
    where = f"writing {filename}" if filename else f"writing into {folder}"
    if cache_dir is not None and filename and str(filename).startswith(str(Path(cache_dir).expanduser())):
        where += " (--cache_dir)"
    reason = WRITE_ERRNOS.get(code, "the write failed (torch: file write failed; a full disk or a file-size limit)")
    if code == errno.EFBIG and resource is not None:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY:
            reason = f"file too large: this process may write files of at most {limit:,} bytes (ulimit -f)"
    free = ""
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", 122)):
        with contextlib.suppress(OSError):
            free = f", {shutil.disk_usage(folder).free / 2**20:,.0f} MiB free there"
    advice = {
        errno.EROFS: "choose a writable --output_dir",
        errno.EACCES: "choose a folder you may write, or fix its permissions",
        errno.EPERM: "choose a folder you may write, or fix its permissions",
    }.get(code, "make room (or raise the limit)")
    return (f"train.py: error: {where} failed: {reason}{free}; {advice}, then run the same command with --resume: "
            "finished epochs, folds and caches are kept")


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


__all__ = ["INTERRUPTED", "OutputLockError", "check_writable", "fold_lock_name", "output_lock", "write_failure"]
