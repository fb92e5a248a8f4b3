"""Benchmarks: the naive baseline is the official execution, and each script runs end to end with tiny settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "reference"
sys.path.insert(0, str(ROOT / "bench"))

import accuracy  # noqa: E402
import demo_seeds  # noqa: E402
import newest_versions  # noqa: E402
import table  # noqa: E402
import throughput  # noqa: E402
from _common import PeakMemory  # noqa: E402
from naive_slstt import NaiveSLSTT, NaiveSLSTTConfig, UnfoldPatchEmbedding, load_official_state_dict  # noqa: E402


def _golden(name: str) -> tuple[NaiveSLSTT, dict[str, torch.Tensor]]:
    path = REFERENCE / f"slstt_tiny_{name}_golden.safetensors"
    with safe_open(str(path), "pt") as f:
        md = f.metadata()
    cfg = NaiveSLSTTConfig(
        image_size=int(md["image_size"]), patch_size=int(md["patch_size"]), hidden_size=int(md["hidden_size"]),
        num_hidden_layers=int(md["num_hidden_layers"]), num_attention_heads=int(md["num_attention_heads"]),
        intermediate_size=int(md["intermediate_size"]), num_classes=int(md["num_classes"]),
        aggregation=md["aggregation"].lower(), lstm_hidden_size=int(md["lstm_hidden"]),
        lstm_num_layers=int(md["lstm_layers"]), fc1_out=int(md["fc1_out"]),
    )
    tensors = load_file(str(path))
    model = NaiveSLSTT(cfg).eval()
    load_official_state_dict(model, tensors)
    return model, tensors


@pytest.mark.parametrize("name", ["lstm", "mean"])
def test_naive_reproduces_official_logits(name: str) -> None:
    model, tensors = _golden(name)
    with torch.no_grad():
        logits = model(tensors["__input__"])
    torch.testing.assert_close(logits, tensors["__expected_logits__"], atol=1e-5, rtol=1e-5)


def test_naive_rejects_foreign_state_dict() -> None:
    model, tensors = _golden("lstm")
    tensors["module.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="extra.weight"):
        load_official_state_dict(model, tensors)


def test_unfold_patch_embedding_is_the_strided_conv() -> None:
    torch.manual_seed(0)
    embed = UnfoldPatchEmbedding(3, 16, 4)
    x = torch.randn(2, 3, 12, 12)
    conv = F.conv2d(x, embed.weight, embed.bias, stride=4).flatten(2).transpose(1, 2)
    torch.testing.assert_close(embed(x), conv, atol=1e-5, rtol=1e-5)


def test_naive_training_step_leaves_the_backbone_frozen() -> None:
    torch.manual_seed(0)
    cfg = NaiveSLSTTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, lstm_hidden_size=8, lstm_num_layers=2, fc1_out=8)
    model = NaiveSLSTT(cfg).train()
    vit_before = {k: v.clone() for k, v in model.vit.state_dict().items()}
    lstm_before = model.lstm.weight_ih_l0.clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    F.cross_entropy(model(torch.randn(2, 3, 3, 16, 16)), torch.tensor([0, 1])).backward()
    opt.step()
    assert all(torch.equal(vit_before[k], v) for k, v in model.vit.state_dict().items())
    assert not torch.equal(lstm_before, model.lstm.weight_ih_l0)


def test_peak_memory_sees_a_large_allocation() -> None:
    memory = PeakMemory(torch.device("cpu"))
    memory.start()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    peak = memory.peak_mb()
    del block
    assert peak >= 60, (peak, memory.method)


def test_throughput_tiny_smoke(tmp_path: Path) -> None:
    out = tmp_path / "tp.json"
    payload = throughput.main([
        "--preset", "tiny", "--steps", "1", "--warmup", "1", "--num_frames", "2", "--batch_size", "2",
        "--threads", "1", "--aggregation", "mean", "--naive_aggregation", "mean", "--json", str(out),
    ])
    assert json.loads(out.read_text()) == payload
    for path in ("ours", "naive"):
        for key in ("train_clips_per_s", "infer_clips_per_s", "peak_mem_mb", "train_tflops", "infer_tflops"):
            assert payload[path][key] > 0, (path, key, payload[path])
    assert payload["naive"]["batch_size"] == 2 and payload["config"]["num_frames"] == 2
    assert set(payload["speedup"]) == {"train", "infer"}
    # Same ViT on both sides with the mean aggregator: inference FLOPs per clip agree (different code, same maths).
    ours, naive = payload["ours"]["infer_gflop_per_clip"], payload["naive"]["infer_gflop_per_clip"]
    assert abs(ours - naive) <= 0.02 * naive, (ours, naive)
    # Ours trains the ViT (the tiny preset does not freeze it), the naive path only the head.
    assert payload["ours"]["train_gflop_per_clip"] > 2 * payload["naive"]["train_gflop_per_clip"]
    line = table.row(out.name, payload)
    assert line.startswith("| `tp.json` | tiny | 2 frames at 32 px, mean") and line.count("|") == 11


def test_throughput_rejects_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        throughput.main(["--preset", "tiny", "--steps", "0"])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            throughput.main(["--preset", "tiny", "--device", "cuda"])


def test_accuracy_builds_one_command_per_variant() -> None:
    args = accuracy.parse_args(["--epochs", "2", "--seeds", "3", "--num_frames", "4", "--output_dir", "x"])
    apex = accuracy.train_argv(args, "apex", 3)
    assert apex[-2:] == ["--num_frames", "1"] and apex.count("--num_frames") == 2  # the variant's value is last
    frames = accuracy.train_argv(args, "frames", 3)
    assert frames[frames.index("--input_mode") + 1] == "frames"
    for variant in accuracy.VARIANTS:
        argv = accuracy.train_argv(args, variant, 3)
        assert argv[argv.index("--seed") + 1] == "3" and argv[argv.index("--epochs") + 1] == "2"
    with pytest.raises(SystemExit):
        accuracy.parse_args(["--synthetic_clips", "4"])


@pytest.mark.slow
def test_accuracy_smoke(tmp_path: Path) -> None:
    pytest.importorskip("train")
    out = tmp_path / "acc.json"
    payload = accuracy.main([
        "--variants", "mean", "apex", "--epochs", "1", "--num_frames", "2", "--synthetic_subjects", "2",
        "--synthetic_clips", "3", "--output_dir", str(tmp_path / "runs"), "--json", str(out), "--quiet",
    ])
    assert set(payload["variants"]) == {"mean", "apex"}
    for row in payload["variants"].values():
        assert 0.0 <= row["uf1"] <= 1.0 and 0.0 <= row["uar"] <= 1.0
        assert row["runs"][0]["num_samples"] == 6
    assert out.with_suffix(".md").read_text().count("| apex |") == 1


@pytest.mark.parametrize("closing, expected", [
    ("1 failed, 708 passed, 3 skipped, 2 warnings in 495.12s (0:08:15)",
     {"failed": 1, "passed": 708, "skipped": 3, "warnings": 2, "errors": 0, "pytest_seconds": 495.12}),
    ("==== 2 passed, 1 error in 3.50s ====", {"passed": 2, "errors": 1, "failed": 0, "pytest_seconds": 3.5}),
    ("no tests ran in 0.01s", {"passed": 0, "failed": 0, "pytest_seconds": 0.01}),
    ("12 deselected, 1 xfailed, 1 xpassed, 1 warning in 1.00s",
     {"deselected": 12, "xfailed": 1, "xpassed": 1, "warnings": 1, "passed": 0}),
])
def test_newest_versions_reads_the_closing_line(closing: str, expected: dict) -> None:
    output = f"..F.\n=========== short test summary info ===========\nfoo 3 passed in a message\n{closing}\n"
    summary = newest_versions.parse_summary(output)
    assert {k: summary[k] for k in expected} == expected


def test_newest_versions_reads_a_real_pytest_run(tmp_path: Path) -> None:
    """pytest's own output (this machine's pytest, -q -ra, as the script runs it): counts and the failing ids."""
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "def test_ok(): pass\n"
        "def test_bad(): assert 1 == 2, '3 passed in 0.1s'\n"
        "@pytest.mark.skip(reason='no')\ndef test_skipped(): pass\n"
        "@pytest.fixture\ndef broken(): raise RuntimeError('x')\n"
        "def test_broken_fixture(broken): pass\n"
    )
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-ra", "--color=no", "-p", "no:cacheprovider",
                           str(tmp_path / "test_sample.py")], cwd=tmp_path, capture_output=True, text=True)
    summary = newest_versions.parse_summary(proc.stdout)
    assert (summary["passed"], summary["failed"], summary["skipped"], summary["errors"]) == (1, 1, 1, 1), proc.stdout
    assert sorted(t.split("::")[-1] for t in summary["failing_tests"]) == ["test_bad", "test_broken_fixture"]
    with pytest.raises(ValueError, match="no closing summary"):
        newest_versions.parse_summary("....F\nKilled\n")


def test_newest_versions_compares_with_the_constraints(tmp_path: Path) -> None:
    pins = tmp_path / "constraints.txt"
    pins.write_text("# header\ntorch==2.13.0\nTransformers==5.25.0  # pinned\nhuggingface_hub==2.4.0\nxlwt==1.3.0\n")
    assert newest_versions.read_constraints(pins) == {
        "torch": "2.13.0", "transformers": "5.25.0", "huggingface-hub": "2.4.0", "xlwt": "1.3.0"}
    installed = {"torch": "2.13.0+cpu", "transformers": "5.26.0", "huggingface-hub": "2.4.0", "new-dep": "1.0"}
    assert newest_versions.compare(installed, newest_versions.read_constraints(pins)) == {
        "differ": {"transformers": ["5.25.0", "5.26.0"]}, "not_pinned": ["new-dep"], "pinned_not_installed": ["xlwt"]}
    # the committed file parses, pins torch as the README installs it, and has no editable or URL line
    committed = newest_versions.read_constraints(newest_versions.CONSTRAINTS)
    assert committed["torch"] == "2.13.0" and "modeling-mer" not in committed
    assert all(version and "@" not in version and " " not in version for version in committed.values())


def test_demo_seeds_include_the_demos_own_run_and_summarise_the_spread(tmp_path: Path) -> None:
    import train

    assert train.parse_args([]).seed == demo_seeds.DEFAULT_SEED in demo_seeds.DEFAULT_SEEDS  # the README's command
    command = demo_seeds.demo_command(7, tmp_path / "run")
    assert command[command.index("train.py") + 1:] == ["--seed", "7", "--output_dir", str(tmp_path / "run")]
    runs = [{"uf1": 0.81, "uar": 0.8, "accuracy": 0.8, "wall_s": 90.0},
            {"uf1": 0.85, "uar": 0.84, "accuracy": 0.84, "wall_s": 100.0},
            {"uf1": 0.83, "uar": 0.83, "accuracy": 0.82, "wall_s": 95.0}]
    summary = demo_seeds.summarise(runs)
    assert summary["uf1"] == {"mean": 0.83, "min": 0.81, "max": 0.85, "range": 0.04}
    assert summary["wall_s"]["mean"] == 95.0 and summary["uar"]["range"] == 0.04
