"""The few file operations through which a run makes its state visible, and the fault-injection hook.

Nothing a run writes becomes visible half-written: a file or folder is written under a temporary name and
renamed (`publish`), a folder is removed by renaming it aside first (`discard`). Every such step passes
through `_event`, which calls `FAULT_HOOK(instant, path)` when a test has installed one (instant: "mkdir",
"write", "before_replace", "after_replace", "before_remove"; path: the file concerned). The
fault-injection driver (tests/fault_injection.py) installs a hook that logs each instant and SIGKILLs the
process at a chosen one; production code never sets it, and no other module calls it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

FAULT_HOOK: Callable[[str, Path], None] | None = None


def _event(instant: str, path: Path) -> None:
    if FAULT_HOOK is not None:
        FAULT_HOOK(instant, Path(path))


def make_dir(path: Path) -> None:
    """A fresh (temporary) folder."""
    Path(path).mkdir(parents=True)
    _event("mkdir", path)


def write_text(path: Path, text: str) -> None:
    """A file inside a folder that is not visible yet (e.g. a checkpoint's progress.json)."""
    _event("write", path)
    Path(path).write_text(text)


def publish(tmp: Path, path: Path) -> None:
    """Make `tmp` (complete) visible as `path`, atomically."""
    _event("before_replace", path)
    os.replace(tmp, path)
    _event("after_replace", path)


def write_atomic(path: Path, text: str) -> None:
    """A text file written under a temporary name, then renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.incomplete")  # unique per process
    tmp.write_text(text)
    publish(tmp, path)


def discard(path: Path) -> None:
    """Remove a folder so that a kill midway never leaves something that looks complete: renamed aside
    (`.deleting_<name>`) first, then deleted."""
    trash = path.with_name(f".deleting_{path.name}")
    os.replace(path, trash)
    _event("before_remove", trash)
    shutil.rmtree(trash)


def publish_folder(tmp: Path, output_dir: Path) -> list[str]:
    """Move every file of the complete temporary folder `tmp` into `output_dir` (each file whole), then
    remove `tmp`; returns the names moved."""
    names = []
    for path in sorted(Path(tmp).iterdir()):
        publish(path, Path(output_dir) / path.name)
        names.append(path.name)
    Path(tmp).rmdir()
    return names


def remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


__all__ = ["FAULT_HOOK", "discard", "make_dir", "publish", "publish_folder", "remove", "write_atomic", "write_text"]
