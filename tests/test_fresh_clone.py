"""The repository stands alone: a clone of the committed HEAD, with nothing beside it (no ../shared), collects
the whole suite, every test module of the commit with as many tests as the checkout collects from it.

A module that read a fixture from outside the repository would fail to collect there (FileNotFoundError at
import), or silently collect fewer tests (a parametrisation over files that are not there).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_FILE = re.compile(r"^tests/test_[^/]*\.py$")


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def collect(root: Path, files: list[str]) -> subprocess.Popen:
    """`pytest --collect-only -q` of `files` in `root`, importing the packages from `root` (no bytecode written)."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def counts(process: subprocess.Popen, where: str) -> Counter:
    """Collected tests per file, from `--collect-only -q` output (one node id per line); collection must pass."""
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, f"collection failed in {where}:\n{output[-4000:]}"
    return Counter(line.split("::", 1)[0] for line in output.splitlines() if re.match(r"tests/test_\S+\.py::", line))


def counts_in_this_session(request: pytest.FixtureRequest) -> Counter | None:
    """The checkout's counts from this very pytest run, when it collected the whole suite unfiltered (the
    README's test command): no second collection needed then."""
    config = request.config
    if config.getoption("keyword") or config.getoption("markexpr") or config.getoption("deselect", None):
        return None
    whole = {REPO, REPO / "tests"}
    if not config.args or any(Path(config.invocation_params.dir, arg).resolve() not in whole for arg in config.args):
        return None
    return Counter(
        Path(item.path).resolve().relative_to(REPO).as_posix()
        for item in request.session.items
        if Path(item.path).resolve().is_relative_to(REPO)
    )


@pytest.mark.slow
def test_a_clone_with_nothing_beside_it_collects_every_test(tmp_path, request):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    try:
        head = git("rev-parse", "HEAD").strip()
    except subprocess.CalledProcessError:
        pytest.skip(f"{REPO} is not a git checkout")
    committed = [name for name in git("ls-tree", "-r", "--name-only", head, "tests/").splitlines() if TEST_FILE.match(name)]

    clone = tmp_path / "clone"  # tmp_path holds nothing else: no ../shared beside the clone
    git("clone", "--quiet", "--no-checkout", str(REPO), str(clone), cwd=tmp_path)
    git("checkout", "--quiet", "--detach", head, cwd=clone)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clone"]
    env = {**os.environ, "PYTHONPATH": str(clone)}
    for package in ("modeling_mer", "dataset_scripts"):  # imported from the clone, not the installed checkout
        origin = subprocess.run(
            [sys.executable, "-c", f"import importlib.util as u; print(u.find_spec({package!r}).origin)"],
            cwd=clone, env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        assert Path(origin).is_relative_to(clone), (package, origin)

    # The checkout's own counts, for the test files it holds as committed (others may be mid-edit).
    changed = set(git("status", "--porcelain", "--untracked-files=no", "--", "tests/").splitlines())
    changed = {line[3:] for line in changed}
    unchanged = [name for name in committed if name not in changed]
    in_clone = collect(clone, [])
    here = counts_in_this_session(request)
    if here is None:
        here = counts(collect(REPO, unchanged), "the checkout")
    cloned = counts(in_clone, "the clone")  # the clone collected without an error (asserted there)

    # Every module the checkout collects tests from (as committed) gives the clone the same tests; a module
    # skipped as a whole (a missing optional browser, say) collects none in either.
    differ = {name: (here[name], cloned[name]) for name in unchanged if here[name] != cloned[name]}
    assert not differ, f"tests collected per module (checkout, clone) differ: {differ}"
    assert sum(here[name] for name in unchanged) > 0
