"""Issue 21, cases 10-18: a training run meets a full disk, a file-size limit, a read-only folder, Ctrl-C
(while training and at four moments of writing the dataset and flow caches) and a second writer: each is
one line (Ctrl-C: exit status 130 and how to resume), nothing finished is lost, the next run goes on.

train.py runs as __main__ (its own error handling included) in children forked by
tests/robustness_driver.py; the faults are real where the machine allows (SIGINT, RLIMIT_FSIZE, a small
tmpfs, a read-only mount) and simulated at the write call otherwise.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "robustness_driver.py"
RUN = ["--synthetic_subjects", "3", "--synthetic_clips", "3", "--epochs", "1", "--image_size", "16", "--num_frames", "2"]
INTERRUPTED = "train.py: interrupted (Ctrl-C): finished epochs, folds and caches are kept; continue with the same command and --resume"


def _load_run_lock():
    """modeling_mer/training/run_lock.py by its path: the standard library only, so a helper process
    that holds a lock starts in milliseconds (importing the package would import transformers)."""
    spec = importlib.util.spec_from_file_location("run_lock", REPO / "modeling_mer" / "training" / "run_lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_lock = _load_run_lock()


def drive(tmp_path: Path, name: str, runs: list[dict], wait: bool = True):
    """Run the driver over `runs` (argv, fault, fsize); returns the results (or the Popen when not waiting)."""
    for i, run in enumerate(runs):
        run["log"] = str(tmp_path / f"{name}_{i}.log")
    spec = {"runs": runs, "result": str(tmp_path / f"{name}.json")}
    (tmp_path / f"{name}_spec.json").write_text(json.dumps(spec))
    command = [sys.executable, str(DRIVER), str(tmp_path / f"{name}_spec.json")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(command, env=env, cwd=tmp_path)
    subprocess.run(command, check=True, env=env, timeout=600, cwd=tmp_path)
    return results(tmp_path, name, runs)


def results(tmp_path: Path, name: str, runs: list[dict]) -> list[dict]:
    codes = json.loads((tmp_path / f"{name}.json").read_text())
    return [{"code": c["code"], "log": Path(r["log"]).read_text()} for c, r in zip(codes, runs)]


def last_line(log: str) -> str:
    lines = [line for line in log.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def assert_one_line(result: dict, code: int, text: str) -> str:
    assert result["code"] == code and "Traceback" not in result["log"], result["log"][-3000:]
    line = last_line(result["log"])
    assert text in line, result["log"][-3000:]
    return line


# ------------------------------------------------------------------------- cases 10-17, one after another
@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    """One output folder and cache, the runs in this order (each a fresh process forked by the driver)."""
    tmp = tmp_path_factory.mktemp("robust_run")
    out, cache = tmp / "run", tmp / "cache"
    base = [*RUN, "--output_dir", str(out), "--cache_dir", str(cache)]
    plan = [
        ("readonly", {"argv": base, "fault": "readonly"}),
        ("sigint:generate", {"argv": base, "fault": "sigint:generate"}),
        ("sigint:build_write", {"argv": base, "fault": "sigint:build_write"}),
        ("sigint:flow", {"argv": base, "fault": "sigint:flow"}),
        ("sigint:flow_write", {"argv": base, "fault": "sigint:flow_write"}),
        ("first epoch", {"argv": [*base, "--stop_after", "1"]}),
        ("fsize", {"argv": [*base, "--resume"], "fsize": 300_000}),
        ("nospace", {"argv": [*base, "--resume"], "fault": "nospace"}),
        ("sigint:epoch", {"argv": [*base, "--resume"], "fault": "sigint:epoch"}),
        ("resume", {"argv": [*base, "--resume"]}),
    ]
    found = drive(tmp, "sequence", [run for _, run in plan])
    return {"out": out, "cache": cache, **{name: result for (name, _), result in zip(plan, found)}}


def test_case12_read_only_output_folder_is_refused_before_any_work(sequence):
    line = assert_one_line(sequence["readonly"], 1, "--output_dir")
    assert line == f"train.py: error: --output_dir {sequence['out']}: cannot write there (read-only file system); choose a writable folder"
    assert "synthetic" not in sequence["readonly"]["log"].lower()  # nothing was built


@pytest.mark.parametrize("moment", ["sigint:generate", "sigint:build_write", "sigint:flow", "sigint:flow_write"])
def test_cases14_17_ctrl_c_while_the_caches_are_written(sequence, moment):
    assert assert_one_line(sequence[moment], 130, INTERRUPTED) == INTERRUPTED


def test_caches_interrupted_four_times_are_then_used(sequence):
    assert sequence["first epoch"]["code"] == 0, sequence["first epoch"]["log"][-3000:]
    assert "--stop_after 1: stopped after" in sequence["first epoch"]["log"]


def test_case11_file_size_limit_is_one_line(sequence):
    line = assert_one_line(sequence["fsize"], 1, "train.py: error: writing")
    assert "file too large: this process may write files of at most 300,000 bytes (ulimit -f)" in line
    assert line.endswith("then run the same command with --resume: finished epochs, folds and caches are kept")


def test_case10_disk_full_is_one_line_simulated(sequence):
    line = assert_one_line(sequence["nospace"], 1, "train.py: error: writing")
    assert "progress.json failed: no space left on the device" in line and "--resume" in line


def test_case13_ctrl_c_while_training_then_resume(sequence):
    assert assert_one_line(sequence["sigint:epoch"], 130, INTERRUPTED) == INTERRUPTED
    result = sequence["resume"]
    assert result["code"] == 0, result["log"][-3000:]
    assert "resumed" in result["log"] and "done in" in last_line(result["log"])
    out = sequence["out"]
    assert (out / "final_model.json").is_file() and (out / "predictions.csv").is_file()
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == [], leftovers  # lock files, temporary files: all gone


# ------------------------------------------------------------------------- case 10 on a real full disk
def _mount(target: Path, options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    return done.returncode == 0


def _umount(target: Path) -> None:
    subprocess.run(["umount", str(target)], capture_output=True)


def test_case10_12_real_full_and_read_only_file_systems(sequence, tmp_path):
    """A 1 MiB tmpfs as --output_dir (the first checkpoint does not fit), then grown: --resume finishes;
    a read-only mount is refused before any work. Skipped where tmpfs cannot be mounted (no root)."""
    small = tmp_path / "small"
    if not _mount(small, "size=1m"):
        pytest.skip("cannot mount a tmpfs here: the simulated cases above stand for these")
    try:
        base = [*RUN, "--output_dir", str(small / "run"), "--cache_dir", str(sequence["cache"]), "--fold", "0"]
        other = [*RUN, "--output_dir", str(small / "other"), "--cache_dir", str(tmp_path / "unused")]
        full, resumed, refused = drive(tmp_path, "mounts", [
            {"argv": base},
            {"argv": [*base, "--resume"], "before": ["mount", "-o", "remount,size=64m", str(small)]},
            {"argv": other, "before": ["mount", "-o", "remount,ro", str(small)]},
        ])
        line = assert_one_line(full, 1, "train.py: error: writing")
        assert "no space left on the device" in line and "MiB free there" in line and str(small / "run") in line
        assert resumed["code"] == 0, resumed["log"][-3000:]
        assert_one_line(refused, 1, f"--output_dir {small / 'other'}: cannot write there (read-only file system)")
        assert not (tmp_path / "unused").exists()
    finally:
        _umount(small)


# ------------------------------------------------------------------------------ case 18: two writers
HOLDER = """
import importlib.util, sys, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("run_lock", sys.argv[1])
run_lock = importlib.util.module_from_spec(spec); spec.loader.exec_module(run_lock)
fold = None if sys.argv[3] == "-" else int(sys.argv[3])
try:
    with run_lock.output_lock(sys.argv[2], fold, holder=True):
        Path(sys.argv[4]).touch()
        while not Path(sys.argv[5]).exists():
            time.sleep(0.02)
except run_lock.OutputLockError as err:
    print(err); sys.exit(3)
"""


def hold(tmp_path: Path, folder: Path, fold: int | None, name: str) -> subprocess.Popen:
    held, release = tmp_path / f"{name}.held", tmp_path / f"{name}.release"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(REPO / "modeling_mer/training/run_lock.py"),
                                str(folder), "-" if fold is None else str(fold), str(held), str(release)],
                               stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not held.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    return process


def release(tmp_path: Path, name: str, process: subprocess.Popen) -> int:
    (tmp_path / f"{name}.release").touch()
    return process.wait(timeout=30)


def test_case18_one_writer_per_folder_and_per_fold(tmp_path):
    folder = tmp_path / "run"
    whole = hold(tmp_path, folder, None, "whole")
    assert whole.poll() is None and (folder / ".train.lock").exists()
    for fold in (None, 0):
        with pytest.raises(run_lock.OutputLockError) as err:
            with run_lock.output_lock(folder, fold, holder=True):
                pass
        text = str(err.value)
        assert "\n" not in text and f"--output_dir {folder} is in use by another train.py (a whole run, pid {whole.pid}" in text
    assert release(tmp_path, "whole", whole) == 0
    assert not folder.exists()  # made by the holder, holding nothing: removed with its lock
    folder.mkdir()
    fold0 = hold(tmp_path, folder, 0, "fold0")
    fold1 = hold(tmp_path, folder, 1, "fold1")  # the cluster pattern: fold jobs share the folder
    assert fold0.poll() is None and fold1.poll() is None
    second = hold(tmp_path, folder, 0, "again")
    assert second.wait(timeout=30) == 3 and f"(--fold 0, pid {fold0.pid}" in second.stdout.read()
    with pytest.raises(run_lock.OutputLockError, match="is in use by another train.py"):
        with run_lock.output_lock(folder, None, holder=True):  # a whole run or --aggregate waits for the folds
            pass
    assert release(tmp_path, "fold0", fold0) == 0 and release(tmp_path, "fold1", fold1) == 0
    assert sorted(p.name for p in folder.iterdir()) == []
    with run_lock.output_lock(folder, None, holder=True):  # free again
        pass


def test_case18_non_main_ranks_take_no_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with run_lock.output_lock(tmp_path / "run", None):
        assert not (tmp_path / "run").exists()


def test_case18_two_training_processes_on_one_folder(sequence, tmp_path):
    """Real train.py processes: a --fold 0 job paused inside its first checkpoint write (a live temporary
    folder); meanwhile a second --fold 0 job and a whole --resume run are refused in one line, the --fold 1
    and --fold 2 jobs run beside it; released, it finishes, and --aggregate pools the three folds."""
    out = tmp_path / "run"
    base = [*RUN, "--output_dir", str(out), "--cache_dir", str(sequence["cache"]), "--no_final_model"]
    gate = tmp_path / "gate"
    first_runs = [{"argv": [*base, "--fold", "0"], "fault": f"pause:{gate}"}, {"argv": [*base, "--aggregate"]}]
    first = drive(tmp_path, "first", first_runs, wait=False)
    deadline = time.time() + 300
    while not Path(f"{gate}.paused").exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert Path(f"{gate}.paused").exists(), "the --fold 0 job never reached its checkpoint"
    live = list(out.glob("checkpoints/fold_000/checkpoints/.checkpoint_0.incomplete"))
    assert live
    others = drive(tmp_path, "others", [{"argv": [*base, "--fold", "0"]}, {"argv": [*base, "--resume"]},
                                        {"argv": [*base, "--fold", "1"]}, {"argv": [*base, "--fold", "2"]}])
    assert_one_line(others[0], 1, f"--output_dir {out} is in use by another train.py (--fold 0, pid ")
    assert_one_line(others[1], 1, f"--output_dir {out} is in use by another train.py")
    assert others[2]["code"] == 0 and others[3]["code"] == 0, others[2]["log"][-2000:] + others[3]["log"][-2000:]
    assert all(p.exists() for p in live)  # nothing deleted under the live writer
    gate.touch()
    first.wait(timeout=300)
    paused, aggregate = results(tmp_path, "first", first_runs)
    assert paused["code"] == 0 and aggregate["code"] == 0, paused["log"][-2000:] + aggregate["log"][-2000:]
    assert sorted(p.name for p in (out / "folds").iterdir()) == ["fold_000.csv", "fold_001.csv", "fold_002.csv"]
    assert (out / "predictions.csv").is_file()


# ----------------------------------------------------------------------------------- the messages alone
def test_write_failures_are_named_in_one_line(tmp_path):
    line = run_lock.write_failure(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.bin")), tmp_path)
    assert line.startswith(f"train.py: error: writing {tmp_path / 'x.bin'} failed: no space left on the device")
    safetensors_error = type("SafetensorError", (Exception,), {})(
        'Error while serializing: IoError(Os { code: 27, kind: FileTooLarge, message: "File too large" })')
    assert "file too large" in run_lock.write_failure(safetensors_error, tmp_path)
    safetensors_error = type("SafetensorError", (Exception,), {})("Error while serializing: I/O error: File too large (os error 27)")
    assert "file too large" in run_lock.write_failure(safetensors_error, tmp_path)
    wrapped = RuntimeError("building")
    wrapped.__cause__ = OSError(errno.EROFS, "Read-only file system", "/data/cache/x.arrow")
    assert "writing /data/cache/x.arrow failed: read-only file system; choose a writable --output_dir" in run_lock.write_failure(wrapped, tmp_path)
    assert run_lock.write_failure(ValueError("something else"), tmp_path) is None
    assert run_lock.write_failure(OSError(errno.ENOENT, "No such file"), tmp_path) is None
