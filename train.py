r"""Leave-one-subject-out training of the SLSTT-style micro-expression recogniser, with Accelerate.

    accelerate launch train.py                       # demo: synthetic set, tiny model, full LOSO (CPU, minutes)
    accelerate launch train.py --dataset casme2 --data_dir ~/data/CASME2 --model mer-b16-224 \
        --pretrained_spatial google/vit-base-patch16-224-in21k
    accelerate launch train.py --dataset composite --protocol composite \
        --data_dir casme2=~/data/CASME2 samm=~/data/SAMM smic=~/data/SMIC
    accelerate launch train.py --dataset composite --protocol hde --data_dir casme2=... samm=... smic=...
    accelerate launch train.py --dataset composite --protocol cross --train_on casme2 --test_on samm \
        --data_dir casme2=~/data/CASME2 samm=~/data/SAMM
    train.py ... --fold 7          # one fold (cluster job arrays), then: train.py ... --aggregate

The protocol, as `main` below runs it (the steps are modeling_mer.training.runner's, the task's part --
data, loss, predictions, figures -- is the --task's, modeling_mer.training.tasks):
1. build the dataset and store its optical flow once (cached); with a frozen ViT (slstt-b16-384,
   --freeze_spatial) also its frame embeddings of every clip, once (the feature store): the folds then
   train only the aggregator and head on them;
2. make the folds of --protocol (modeling_mer.training.protocols): loso (one subject held out at a
   time), composite (LOSO over the subjects of all datasets, MEGC2019), hde (one dataset held out at a
   time, MEGC2018) or cross (train on some datasets, test on others);
3. for every fold: train a fresh model on its training clips for a FIXED number of epochs (or choose
   the epoch on `--val_subjects` training subjects set aside), then predict the held-out clips (never
   seen before that; `--select_on_test` instead keeps each fold's best epoch by held-out accuracy, the
   official code's practice, labelled optimistic everywhere): modeling_mer.training.selection;
4. pool the predictions of all folds and compute UF1/UAR (the MEGC convention), per dataset too where
   the protocol mixes datasets;
5. train the released model on all clips with the same recipe; save it with its processor and card.
Every epoch is checkpointed (`save_state`); `--resume` continues where a killed run stopped, and
finished folds' predictions are kept in output_dir/folds/. A kill at any instant loses at most the epoch
in progress: checkpoints, fold files and the final model become visible only when complete
(modeling_mer.training.checkpoints, run_outputs). A --model folder trained on the evaluated data is
refused (--allow_overlap runs it, labelled optimistic). Mixed precision and the number of processes come
from `accelerate launch`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.time()


def _defer_package_init(name: str):
    """Import `name`'s light submodules (the run configuration and the registries it reads) without running
    the package's __init__, which imports transformers (seconds): --help and a refused argument answer
    first. Returns the spec whose __init__ `main`'s imports then run in place (None: already imported)."""
    if name in sys.modules:
        return None
    spec = importlib.util.find_spec(name)
    sys.modules[name] = importlib.util.module_from_spec(spec)
    return spec


_DEFERRED = _defer_package_init("modeling_mer")
from modeling_mer.training.run_config import (  # noqa: E402  (standard library only: fast)
    CROP_CHOICES,
    LeakageError,
    RunConfig,
    build_parser,
    resolve,
)
from modeling_mer.training.tasks import TASKS  # noqa: E402


def process_start_time() -> float | None:
    """When this process started, or, under `accelerate launch`, when the launcher did (Linux /proc): the
    start of the wall clock a user sees, imports included. None where /proc is not there."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        now, uptime = time.time(), float(Path("/proc/uptime").read_text().split()[0])

        def started(pid: int) -> float:  # field 22 of /proc/PID/stat (ticks after boot), counted after "(comm)"
            return now - uptime + int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks

        start = started(os.getpid())
        launcher = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")[:3]
        if any(b"accelerate" in part for part in launcher):
            start = min(start, started(os.getppid()))
        return start
    except (OSError, ValueError, IndexError):
        return None


def parse_args(argv: list[str] | None = None) -> RunConfig:
    """The command line, checked and resolved once (modeling_mer.training.run_config)."""
    parser = build_parser(__doc__)
    return resolve(parser.parse_args(argv), parser)


if __name__ == "__main__":
    RUN = parse_args()  # --help and argument errors answer here, before the imports below (seconds)

if _DEFERRED is not None:  # now the package's __init__ (transformers, the Auto registrations)
    _DEFERRED.loader.exec_module(sys.modules["modeling_mer"])

from dataset_scripts import MERDataError  # noqa: E402
from modeling_mer.evaluation.hub_card import HubAccessError  # noqa: E402
from modeling_mer.training.checkpoints import RunStateError  # noqa: E402
from modeling_mer.training.hub_sync import HubSyncError  # noqa: E402
from modeling_mer.training.hub_transfer import push_only  # noqa: E402
from modeling_mer.training.run_lock import INTERRUPTED, OutputLockError, output_lock, write_failure  # noqa: E402
from modeling_mer.training.runner import Runner, StopRequested  # noqa: E402

__all__ = ["CROP_CHOICES", "main", "parse_args"]


def main(argv: list[str] | None = None, run: RunConfig | None = None, started: float | None = None) -> dict[str, Any] | None:
    """Run the protocol; returns the pooled metrics (None for a single --fold run or a --stop_after stop)."""
    run = run or parse_args(argv)
    task = TASKS[run.task]()
    with output_lock(run.output_dir, run.fold, run.cache_dir):  # one writer per folder (per fold with --fold K)
        if run.push_only:  # no training: the run already in --output_dir, to the Hub
            push_only(run)
            return None
        return _protocol(run, task, started)


def _protocol(run: RunConfig, task: Any, started: float | None) -> dict[str, Any] | None:
    runner = Runner.start(run, task, started=started or time.time())
    try:
        # 1. data: the dataset and what is stored once (flow, frozen-ViT embeddings), cached
        data = runner.prepare()
        # 2. the protocol's folds, by subject (--val_subjects set aside inside each training side)
        folds = runner.folds(data)
        # 3. each fold: a fresh model trained on its training subjects; the held-out ones only predicted
        for fold in runner.todo(folds):
            runner.train_and_predict(data, fold, len(folds))
        if run.fold is not None:
            return None
        # 4. every fold's predictions pooled: UF1 / UAR as in MEGC, reports
        metrics = runner.pool(data, folds)
        # 5. the released model: all clips, same recipe; its processor and card
        if not run.no_final_model:
            runner.final_model(data, metrics)
    except StopRequested as stop:
        runner.print(f"{stop}; continue with --resume")
        return None
    finally:
        runner.close()
    runner.print(runner.done_line())
    return metrics


if __name__ == "__main__":
    try:
        main(run=RUN, started=process_start_time() or STARTED)  # "done in": the wall clock, start-up included
    except (FileExistsError, HubAccessError, HubSyncError, RunStateError, MERDataError, LeakageError, OutputLockError) as err:  # the user's to fix
        raise SystemExit(f"train.py: error: {' '.join(str(err).split())}") from None
    except KeyboardInterrupt:  # Ctrl-C: the usual status, and how to go on
        print(f"\n{INTERRUPTED}", file=sys.stderr)  # on a line of its own, after any progress bar
        raise SystemExit(130) from None
    except Exception as err:  # a full disk, a file-size limit, a read-only folder: one line (else the traceback)
        line = write_failure(err, RUN.output_dir, RUN.cache_dir)
        if line is None:
            raise
        raise SystemExit(f"\n{line}") from None
