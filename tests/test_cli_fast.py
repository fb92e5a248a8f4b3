"""The console scripts answer `--help` and bad arguments before torch and transformers are imported, and
then run the real command (issue 20: `--help` of every command under 1 s).

mer-predict, mer-demo and mer-convert-slstt point at `modeling_mer.cli.commands`, which parses with the
standard-library parsers of `modeling_mer.cli.arguments` / `demo.build_parser`; `modeling_mer/__init__.py`
defers its Auto registrations while one of these commands starts. The lists copied into `arguments.py`
are checked against their owners here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_predict import face_clip, save_model, write_video

COMMANDS = {"mer-predict": "predict", "mer-demo": "demo", "mer-convert-slstt": "convert_slstt"}
HEAVY = ("torch", "transformers", "cv2", "datasets", "modeling_mer.modeling_mer")


def run_command(name: str, *argv: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float, list[str]]:
    """The console script `name` as pip installs it (sys.argv[0] is the command's name), in a fresh process;
    also returns which heavy modules it had imported when it exited."""
    code = (
        "import atexit, sys\n"
        f"sys.argv = [{name!r}, *{list(argv)!r}]\n"
        "atexit.register(lambda: print('HEAVY=' + ','.join(m for m in "
        f"{HEAVY!r} if m in sys.modules), file=sys.stderr))\n"
        f"from modeling_mer.cli.commands import {COMMANDS[name]} as command\n"
        "sys.exit(command())\n"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - started
    heavy = [line for line in done.stderr.splitlines() if line.startswith("HEAVY=")]
    return done, seconds, heavy[-1][len("HEAVY="):].split(",") if heavy and heavy[-1] != "HEAVY=" else []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_answers_before_the_heavy_imports(name):
    done, seconds, heavy = run_command(name, "--help")
    assert done.returncode == 0, done.stderr
    assert f"usage: {name}" in done.stdout
    assert heavy == [], f"{name} --help imported {heavy}"
    assert seconds < 3  # measured 0.2-0.35 s; generous for a loaded CI machine (the import list is the point)


@pytest.mark.parametrize("name, argv, message", [
    ("mer-predict", ["clip.mp4"], "the following arguments are required: --model"),
    ("mer-predict", ["clip.mp4", "--model", "m", "--top_k", "two"], "--top_k"),
    ("mer-predict", ["clip.mp4", "--model", "m", "--crop", "foo"], "--crop"),
    ("mer-demo", ["--model", "m", "--port", "-3"], "--port"),
    ("mer-convert-slstt", ["a.pth", "out", "--aggregation", "gru"], "--aggregation"),
])
def test_bad_arguments_are_one_line_before_the_heavy_imports(name, argv, message):
    done, _, heavy = run_command(name, *argv)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith(f"{name}: error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert heavy == []


def test_the_command_then_runs_the_real_prediction(tmp_path):
    model = save_model(tmp_path / "model")
    video = write_video(tmp_path / "clip.mp4", face_clip(), "libx264", "yuv420p")
    done, _, heavy = run_command("mer-predict", str(video), "--model", str(model), "--json", "--apex", "12")
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert output["apex"] == 12 and abs(sum(output["probabilities"].values()) - 1) < 1e-5
    assert "torch" in heavy


def test_copied_lists_match_their_owners():
    from modeling_mer.cli import arguments
    from modeling_mer.cli.convert_slstt import OFFICIAL_LABELS
    from modeling_mer.configuration_spotting import MERSpottingConfig
    from modeling_mer.face_crop import CROPS

    assert arguments.CROPS == CROPS
    assert list(arguments.OFFICIAL_DATASETS) == sorted(OFFICIAL_LABELS)
    assert arguments.SPOTTING_MODEL_TYPE == MERSpottingConfig.model_type


def test_plain_import_registers_at_once():
    code = "import modeling_mer; from transformers import CONFIG_MAPPING; print(CONFIG_MAPPING['mer'].__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "MERConfig", done.stderr


def test_commands_are_the_console_scripts():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    for name, function in COMMANDS.items():
        assert f'{name} = "modeling_mer.cli.commands:{function}"' in text
