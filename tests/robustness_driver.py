"""Driver of tests/test_robustness_run.py: runs train.py as __main__ (its own error handling included)
with one fault, in forked children of a process that imported the heavy modules once.

    python tests/robustness_driver.py SPEC.json

SPEC: {"runs": [{"argv": [...], "fault": FAULT or null, "fsize": bytes or null, "log": path}, ...],
       "result": path}. The runs go one after the other; the result file gets [{"code": exit status}, ...].
FAULT (each happens at a real instant of the run, the way a user or the machine would cause it):
  "sigint:generate"     Ctrl-C (a real SIGINT to the process) after the dataset builder's first example
  "sigint:build_write"  ... when the built dataset's Arrow file is finalised
  "sigint:flow"         ... while the first clip's optical flow is computed for the flow table
  "sigint:flow_write"   ... when the flow table's Arrow file is finalised
  "sigint:epoch"        ... right after the first checkpoint became visible
  "pause:GATE"          at the first checkpoint's temporary folder: touch GATE.paused, wait for GATE
  "nospace"             the checkpoint's write fails with ENOSPC (a simulated full disk, where no small
                        file system can be mounted)
  "readonly"            the output folder's write probe fails with EROFS (simulated read-only folder)
"fsize" sets RLIMIT_FSIZE (ulimit -f) in the child: a real file-size limit; "before" is a command the
driver runs before that run's child (the test's remount of a small file system).
"""

from __future__ import annotations

import errno
import json
import os
import resource
import runpy
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _interrupt() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def install(fault: str | None) -> None:
    if not fault:
        return
    import datasets.arrow_writer

    from dataset_scripts import synthetic
    from modeling_mer.training import atomic_files, preprocessing, run_lock

    state = {"flow": False, "done": False}
    if fault == "sigint:generate":
        original = synthetic.SyntheticMER._generate_examples

        def generate(self, *args, **kwargs):
            for i, item in enumerate(original(self, *args, **kwargs)):
                yield item
                if i == 0:
                    _interrupt()

        synthetic.SyntheticMER._generate_examples = generate
    elif fault in ("sigint:build_write", "sigint:flow_write"):
        finalize = datasets.arrow_writer.ArrowWriter.finalize

        def finalize_then_interrupt(self, *args, **kwargs):
            wanted = state["flow"] if fault == "sigint:flow_write" else not state["flow"]
            if wanted and not state["done"]:
                state["done"] = True
                _interrupt()
            return finalize(self, *args, **kwargs)

        datasets.arrow_writer.ArrowWriter.finalize = finalize_then_interrupt
    if fault in ("sigint:flow", "sigint:flow_write"):
        process = preprocessing._process_clip

        def process_clip(*args, **kwargs):
            state["flow"] = True
            if fault == "sigint:flow":
                _interrupt()
            return process(*args, **kwargs)

        preprocessing._process_clip = process_clip
    if fault == "sigint:epoch":
        def hook(instant: str, path: Path) -> None:
            if instant == "after_replace" and path.name.startswith("checkpoint_"):
                _interrupt()

        atomic_files.FAULT_HOOK = hook
    elif fault.startswith("pause:"):
        gate = Path(fault.split(":", 1)[1])

        def hook(instant: str, path: Path) -> None:
            if instant == "mkdir" and path.name.startswith(".checkpoint_") and not state["done"]:
                state["done"] = True
                Path(f"{gate}.paused").touch()
                deadline = time.time() + 300
                while not gate.exists() and time.time() < deadline:
                    time.sleep(0.05)

        atomic_files.FAULT_HOOK = hook
    elif fault == "nospace":
        def hook(instant: str, path: Path) -> None:
            if instant == "write" and path.name == "progress.json":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        atomic_files.FAULT_HOOK = hook
    elif fault == "readonly":
        def refuse(*args, **kwargs):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(kwargs.get("dir")))

        run_lock.tempfile.NamedTemporaryFile = refuse


def run_child(run: dict) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd = os.open(run["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            if run.get("fsize"):
                resource.setrlimit(resource.RLIMIT_FSIZE, (run["fsize"], run["fsize"]))
            install(run.get("fault"))
            sys.argv = [str(REPO / "train.py"), *run["argv"]]
            runpy.run_path(str(REPO / "train.py"), run_name="__main__")
            code = 0
        except SystemExit as exit_:
            if isinstance(exit_.code, str):
                print(exit_.code, file=sys.stderr)
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:  # a traceback: what the test must never see
            import traceback

            traceback.print_exc()
            code = 99
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, str(REPO))
    import datasets  # noqa: F401  (the heavy imports once, before forking)
    import torch  # noqa: F401

    import modeling_mer  # noqa: F401
    from modeling_mer.training import runner  # noqa: F401

    results = []
    for run in spec["runs"]:
        if run.get("before"):  # a command the test needs between runs (e.g. remounting a file system)
            import subprocess

            subprocess.run(run["before"], check=True)
        results.append({"code": run_child(run)})
    Path(spec["result"]).write_text(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
