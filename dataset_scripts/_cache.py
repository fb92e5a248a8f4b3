"""Damaged cache files are found, named and rebuilt, never read into a traceback on every later run.

A `datasets` cache is a set of Arrow stream files: the built dataset (one folder per builder config),
`Dataset.map` results (the flow table, `cache-<fingerprint>.arrow`, or one file per worker,
`..._00000_of_00002.arrow`) and the frozen-encoder feature store. A disk that filled up, a copy cut
short or a file emptied by hand leaves a file that `datasets` would memory-map and fail on, the same way
on every run. Before a cache is reused its files are read to the end (memory-mapped: the record batches'
metadata and bounds, not the values, so a few milliseconds per file) and their rows counted; a damaged
file is named in one line on stderr and removed, so that the caller computes it again.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

DATASET_INFO = "dataset_info.json"


def arrow_problem(path: str | os.PathLike, expected_rows: int | None = None) -> str | None:
    """Why the Arrow stream file at `path` cannot be used (None when it reads to the end with
    `expected_rows` rows, or any number of rows when that is None)."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            rows = 0
            for batch in pa.ipc.open_stream(source):
                batch.validate()
                rows += batch.num_rows
    except (OSError, pa.ArrowException, ValueError) as err:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        return f"{type(err).__name__}: {' '.join(str(err).split())[:200]} ({size:,} bytes)"
    if expected_rows is not None and rows != expected_rows:
        return f"it holds {rows:,} rows where {expected_rows:,} were written"
    return None


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def map_cache_files(cache_file: str | os.PathLike) -> dict[int, list[Path]]:
    """The files `Dataset.map` reads for `cache_file`: {1: [the file]} and {n: its n per-worker shards},
    for every n found (only complete shard sets: a set another process is still writing is left alone)."""
    cache_file = str(cache_file)
    prefix, ext = os.path.splitext(cache_file)
    found: dict[int, list[Path]] = defaultdict(list)
    if os.path.exists(cache_file):
        found[1].append(Path(cache_file))
    pattern = re.compile(re.escape(os.path.basename(prefix)) + r"_(\d{5})_of_(\d{5})" + re.escape(ext) + "$")
    shards: dict[int, dict[int, Path]] = defaultdict(dict)
    for name in glob.iglob(glob.escape(prefix) + "_*_of_*" + glob.escape(ext)):
        match = pattern.match(os.path.basename(name))
        if match:
            shards[int(match.group(2))][int(match.group(1))] = Path(name)
    for count, files in shards.items():
        if count > 1 and len(files) == count:
            found[count] = [files[rank] for rank in range(count)]
    return dict(found)


def discard_damaged_map_cache(cache_file: str | os.PathLike, expected_rows: int, what: str) -> bool:
    """Check the map cache for `cache_file` (and its worker shards); remove a damaged one, saying so.
    Returns whether something was removed (the caller's map then recomputes it)."""
    removed = False
    for files in map_cache_files(cache_file).values():
        problems = [(f, arrow_problem(f)) for f in files]
        bad = [(f, p) for f, p in problems if p is not None]
        if not bad:
            rows = sum(_rows(f) for f in files)
            if rows == expected_rows:
                continue
            bad = [(files[0], f"its {len(files)} file(s) hold {rows:,} rows where {expected_rows:,} were written")]
        path, problem = bad[0]
        warn(f"the cached {what} {path} is damaged ({problem}); it is removed and computed again")
        for f in files:
            _unlink(f)
        removed = True
    return removed


def repair_builder_cache(builder: Any) -> bool:
    """A built dataset whose Arrow files are damaged is removed (under the builder's own lock, the one
    `download_and_prepare` takes), so that the next `download_and_prepare` builds it again. Returns
    whether it was removed."""
    output_dir = getattr(builder, "_output_dir", None)
    if not output_dir or not os.path.isfile(os.path.join(output_dir, DATASET_INFO)):
        return False
    from datasets.utils._filelock import FileLock

    with FileLock(output_dir + "_builder.lock"):
        problem = builder_cache_problem(Path(output_dir))
        if problem is None:
            return False
        warn(f"the built dataset in {output_dir} is damaged ({problem}); it is removed and built again")
        shutil.rmtree(output_dir, ignore_errors=True)
        return True


def builder_cache_problem(folder: Path) -> str | None:
    """What is wrong with a built dataset's folder: an unreadable or cut Arrow file, or fewer rows than
    its dataset_info.json records (None: it is whole)."""
    try:
        info = json.loads((folder / DATASET_INFO).read_text(encoding="utf-8"))
        splits = info.get("splits") or {}
        expected = {name: int(split.get("num_examples", 0)) for name, split in splits.items()}
    except (OSError, ValueError, AttributeError, TypeError) as err:
        return f"{folder / DATASET_INFO} is unreadable ({type(err).__name__})"
    rows: dict[str, int] = defaultdict(int)
    files = sorted(folder.glob("*.arrow"))
    for path in files:
        problem = arrow_problem(path)
        if problem is not None:
            return f"{path.name}: {problem}"
        split = next((name for name in expected if f"-{name}." in path.name or f"-{name}-" in path.name), None)
        if split is not None:
            rows[split] += _rows(path)
    for name, count in expected.items():
        if rows.get(name, 0) != count:
            return f"split {name} holds {rows.get(name, 0):,} rows in {len(files)} Arrow file(s), {count:,} were written"
    return None


def _rows(path: Path) -> int:
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        return sum(batch.num_rows for batch in pa.ipc.open_stream(source))


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:  # another process removed it first
        pass
