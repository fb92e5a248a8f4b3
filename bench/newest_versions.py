"""The test suite against the newest releases of every dependency, in a fresh virtual environment.

    python bench/newest_versions.py [--json bench/results/newest_versions.json] [--pytest_args "-x tests/test_foo.py"]

The README's test command installs `.ci/constraints.txt` (the exact versions the suite was last run with),
so that a clone's result does not move with upstream releases; this script says whether the code still
works with what a user gets today. It makes a fresh venv, installs `torch==2.13.0` (the CPU build, as the
README's commands do), then the package with its dev extra and no constraints (`pip install --upgrade -e
".[dev]"`: the newest release of everything, within pyproject's ranges; torch is kept), runs the suite
(`python -m pytest -q`, with CI=true as CI runs it) from the repository root, and writes what was
installed (the key packages, every package, and which differ from the constraints), the date, the
machine, pass/fail counts, the durations and the failing tests' names. A failed install is recorded as
well (pip's last lines). `--pytest_args` runs a selection instead of the whole suite (recorded in the
file); the venv is removed afterwards unless `--keep_venv`.

Exit status: 0 when the install and every selected test passed, 1 otherwise (the file is written either way).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model_name, now_iso, write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / ".ci" / "constraints.txt"
TORCH = "torch==2.13.0"
KEY_PACKAGES = ("torch", "transformers", "datasets", "accelerate", "huggingface-hub", "safetensors", "evaluate",
                "numpy", "opencv-contrib-python-headless", "av", "dlib-bin", "pandas", "scikit-learn", "gradio",
                "tensorboard", "pytest")
OUTCOMES = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed", "deselected", "warnings")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)\b")
_CLOSING = re.compile(r"^=*\s*(?:(?:\d+ \w+,? )+|no tests ran )in ([\d.]+)s\b")
VENV_TOOLS = ("pip", "setuptools", "wheel")  # the venv's own, not the project's (pip freeze leaves them out too)
_NODE = re.compile(r"^(FAILED|ERROR) (\S+)")


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_summary(output: str) -> dict[str, Any]:
    """pytest's closing line (`1 failed, 708 passed, 2 skipped in 495.12s (0:08:15)`, with or without the
    ===) -> every outcome's count (0 when absent) and pytest's own seconds; the FAILED / ERROR lines of the
    short summary (-ra) -> the node ids that did not pass. ValueError when there is no closing line (pytest
    did not finish: killed, or crashed before its summary)."""
    lines = [line.strip() for line in output.splitlines()]
    closing = next((line for line in reversed(lines) if _CLOSING.match(line)), None)
    if closing is None:
        raise ValueError("pytest printed no closing summary line (it was killed or crashed)")
    counts = dict.fromkeys(OUTCOMES, 0)
    for number, outcome in _COUNT.findall(closing):
        counts[{"error": "errors", "warning": "warnings"}.get(outcome, outcome)] = int(number)
    failing = []
    for line in lines:
        match = _NODE.match(line)
        if match and match.group(2) not in failing:
            failing.append(match.group(2))
    return {**counts, "pytest_seconds": float(_CLOSING.match(closing).group(1)), "failing_tests": failing,
            "closing_line": closing.strip("= ")}


def read_constraints(path: Path) -> dict[str, str]:
    """name -> pinned version of a constraints file (`name==version` lines; comments and blanks skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def compare(installed: dict[str, str], pins: dict[str, str]) -> dict[str, Any]:
    """Which installed versions differ from the pins ({name: [pinned, installed]}), which installed packages
    have no pin, and which pins were not installed. A local label (torch's +cpu) is not a difference."""
    differs = {name: [pins[name], version] for name, version in sorted(installed.items())
               if name in pins and version.split("+")[0] != pins[name].split("+")[0]}
    return {"differ": differs, "not_pinned": sorted(set(installed) - set(pins)),
            "pinned_not_installed": sorted(set(pins) - set(installed))}


def _run(command: list[str], log: Path, env: dict[str, str] | None = None, timeout: float | None = None) -> tuple[int, str, float]:
    """Run `command` in the repository root, its output teed to `log` and the console; (status, output, s)."""
    print(f"$ {shlex.join(command)}", flush=True)
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"$ {shlex.join(command)}\n")
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        try:
            for line in proc.stdout:
                lines.append(line)
                out.write(line)
                sys.stdout.write(line)
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
            lines.append(f"killed after {timeout} s\n")
    return status, "".join(lines), time.perf_counter() - started


def installed_versions(python: Path) -> dict[str, str]:
    """name -> version of every package in the venv (the project and the venv's own pip/setuptools left out)."""
    listing = subprocess.run([str(python), "-m", "pip", "list", "--format", "json", "--exclude-editable"],
                             capture_output=True, text=True, check=True).stdout
    return {canonical(p["name"]): p["version"] for p in json.loads(listing) if canonical(p["name"]) not in VENV_TOOLS}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default=str(REPO / "bench" / "results" / "newest_versions.json"))
    p.add_argument("--pytest_args", "--pytest-args", default="",
                   help="arguments for pytest after `-q` (a selection; default: the whole suite)")
    p.add_argument("--venv", default=None, help="where to make the venv (a folder that does not exist yet)")
    p.add_argument("--keep_venv", "--keep-venv", action="store_true", help="keep the venv afterwards")
    p.add_argument("--timeout", type=float, default=None, help="seconds after which the test run is killed")
    args = p.parse_args(argv)
    if args.venv and Path(args.venv).exists():
        p.error(f"--venv {args.venv}: exists already; give a new folder (the point is a fresh venv)")
    venv = Path(args.venv) if args.venv else Path(tempfile.mkdtemp(prefix="mer-newest-")) / "venv"
    python = venv / "bin" / "python"
    log = Path(tempfile.mkstemp(prefix="newest_versions-", suffix=".log")[1])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_CONSTRAINT")}  # nothing from outside
    env.update(CI="true", VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    result: dict[str, Any] = {
        "date": now_iso(),
        "machine": {"cpu": cpu_model_name(), "cpu_cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "command": shlex.join([Path(sys.executable).name, *(sys.argv if argv is None else ["bench/newest_versions.py", *argv])]),
        "install": [f"pip install {TORCH}", 'pip install --upgrade -e ".[dev]"'],
        "pytest_args": args.pytest_args or "(the whole suite)",
    }
    status = 1
    try:
        started = time.perf_counter()
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(python), "-m", "pip", "install", TORCH],
                 [str(python), "-m", "pip", "install", "--upgrade", "-e", ".[dev]"]]
        for step in steps:
            code, output, _ = _run(step, log, env)
            if code:
                result["install_failed"] = {"command": shlex.join(step), "status": code, "last_lines": output.splitlines()[-20:]}
                break
        result["install_seconds"] = round(time.perf_counter() - started, 1)
        if "install_failed" not in result:
            installed = installed_versions(python)
            result["versions"] = {name: installed.get(name) for name in KEY_PACKAGES}
            result["against_constraints"] = compare(installed, read_constraints(CONSTRAINTS))
            result["installed"] = installed
            command = [str(python), "-m", "pytest", "-q", "--color=no", *shlex.split(args.pytest_args)]
            code, output, seconds = _run(command, log, env, args.timeout)
            result["pytest_exit_status"] = code
            result["test_seconds"] = round(seconds, 1)
            try:
                result.update(parse_summary(output))
            except ValueError as err:
                result["pytest_problem"] = f"{err}; last lines: {output.splitlines()[-5:]}"
            status = 0 if code == 0 else 1
    finally:
        if not args.keep_venv:
            shutil.rmtree(venv.parent if not args.venv else venv, ignore_errors=True)
        print(f"wrote {write_json(args.json, result)} (full output: {log})")
    verdict = result.get("closing_line") or result.get("pytest_problem") or f"install failed: {result.get('install_failed', {}).get('command')}"
    print(f"newest versions: {verdict}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
