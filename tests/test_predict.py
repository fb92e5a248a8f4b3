"""Prediction on a user's own video: command line, JSON, explain figure, pipeline, and every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import cv2
import huggingface_hub
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import ViTConfig, ViTForImageClassification

from modeling_mer import MERConfig, MERForVideoClassification
from modeling_mer.cli.convert_slstt import OFFICIAL_LABELS, convert
from modeling_mer.cli.explain import (
    attention_rollout,
    clip_token_rollout,
    cls_rollout_grid,
    explain,
    heat_on_face,
)
from modeling_mer.cli.predict import main
from modeling_mer.pipeline_mer import CUSTOM_PIPELINES
from modeling_mer.processing_mer import MERImageProcessor

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "tests" / "data"  # copies of the project's shared/ fixtures
LABELS = ["negative", "positive", "surprise"]
NUM_FRAMES, APEX, SIZE = 24, 12, 64


# ------------------------------------------------------------------------------------------- test data
def face_clip(num_frames: int = NUM_FRAMES, apex: int = APEX, amplitude: float = 2.5) -> list[np.ndarray]:
    """A textured 64x64 cartoon face whose mouth corners rise and fall back (peak at `apex`)."""
    rng = np.random.default_rng(7)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE)).astype(np.float32), (0, 0), 1.5)
    base = np.full((SIZE, SIZE, 3), 90, np.uint8)
    cv2.ellipse(base, (32, 33), (21, 27), 0, 0, 360, (224, 180, 150), -1)
    for x in (24, 40):
        cv2.circle(base, (x, 27), 3, (40, 30, 30), -1)
        cv2.line(base, (x - 5, 20), (x + 5, 20), (60, 40, 30), 2)
    cv2.ellipse(base, (32, 46), (9, 3), 0, 0, 360, (150, 60, 60), -1)
    base = np.clip(base + 25 * grain[..., None], 0, 255).astype(np.uint8)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    bump = sum(np.exp(-((xs - cx) ** 2 + (ys - 46) ** 2) / (2 * 4.0**2)) for cx in (23, 41))
    frames = []
    for t in range(num_frames):
        strength = amplitude * max(0.0, 1.0 - abs(t - apex) / 7.0)  # 0 outside apex +- 7
        frames.append(cv2.remap(base, xs, ys + strength * bump, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return frames


def write_video(path: Path, frames: list[np.ndarray], codec: str, pix_fmt: str) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, pix_fmt
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def save_model(
    folder: Path, aggregation: str = "transformer", processor: bool = True, image_size: int = 32, **config
) -> Path:
    """A tiny random MER model; with `processor`, the folder also works with `pipeline(...)`."""
    torch.manual_seed(0)
    extra = {"lstm_hidden_size": 16, "lstm_num_layers": 2} if aggregation == "lstm" else {}
    cfg = MERConfig.from_preset("tiny", labels=LABELS, aggregation=aggregation, **extra, **config)
    cfg.custom_pipelines = CUSTOM_PIPELINES
    MERForVideoClassification(cfg).save_pretrained(folder)
    if processor:
        with pytest.MonkeyPatch.context() as patch:  # export the processor code, without touching other tests
            patch.setattr(MERImageProcessor, "_auto_class", "AutoImageProcessor")
            MERImageProcessor(image_size=image_size, num_frames=cfg.num_frames, crop="none").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict")
    frames = face_clip()
    folder = root / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"img{100 + i}.png")
    return {
        "root": root,
        "mp4": write_video(root / "clip.mp4", frames, "libx264", "yuv420p"),
        "avi": write_video(root / "clip.avi", frames, "mjpeg", "yuvj420p"),
        "folder": folder,
        "model": save_model(root / "model"),
        "bare": save_model(root / "bare", processor=False),
    }


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_json(out: str) -> dict:
    result = json.loads(out)
    probabilities = result["probabilities"]
    assert list(probabilities) == LABELS
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-9)
    assert all(0 < p < 1 for p in probabilities.values())
    assert result["label"] == max(probabilities, key=probabilities.get)
    assert result["score"] == probabilities[result["label"]]
    assert len(result["frame_numbers"]) == 8
    assert isinstance(result["apex_estimated"], bool)
    return result


# ------------------------------------------------------------------------------------------ predictions
def test_json_on_mp4_spots_the_planted_apex(data, capsys):
    code, out, err = run_main(capsys, data["mp4"], "--model", data["model"], "--json")
    assert code == 0, err
    result = check_json(out)
    assert result["apex_estimated"] is True and abs(result["apex"] - APEX) <= 1
    assert result["apex"] in result["frame_numbers"]
    # no onset/offset given: found around the planted movement (apex +- 7), on neutral frames
    assert 0 <= result["onset"] <= APEX - 7 and APEX + 7 <= result["offset"] <= NUM_FRAMES - 1
    assert result["processor"] == "saved" and result["crop_box"] == [0, 0, SIZE, SIZE]
    assert "no saved processor" not in err


def test_given_onset_apex_offset_on_mjpeg_avi(data, capsys):
    code, out, err = run_main(
        capsys, data["avi"], "--model", data["model"], "--onset", 2, "--apex", 10, "--offset", 20, "--json"
    )
    assert code == 0, err
    result = check_json(out)
    assert (result["onset"], result["apex"], result["offset"], result["apex_estimated"]) == (2, 10, 20, False)
    assert all(2 < n <= 20 for n in result["frame_numbers"]) and 10 in result["frame_numbers"]


def test_frame_folder_uses_file_numbers_and_text_shows_top_k(data, capsys):
    code, out, err = run_main(capsys, data["folder"], "--model", data["model"], "--apex", 112, "--top_k", 2)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("prediction: ")
    class_lines = [line for line in lines if line.startswith("  ")]
    assert len(class_lines) == 2 and lines[0].split()[1] == class_lines[0].split()[0]
    assert "apex 112 (given)" in out and "frames 100..123" in out


def test_model_without_processor_gets_the_default_and_says_so(data, capsys):
    code, out, err = run_main(capsys, data["mp4"], "--model", data["bare"], "--crop", "none", "--json")
    assert code == 0, err
    assert "no saved processor" in err and "image_size=32, num_frames=8" in err
    result = check_json(out)
    assert result["processor"] == "default"


def test_same_probabilities_from_saved_and_default_processor(data, capsys):
    """The bare folder holds the same weights; the default processor must reproduce the saved one."""
    outs = [run_main(capsys, data["mp4"], "--model", m, "--crop", "none", "--apex", APEX, "--json")[1]
            for m in (data["model"], data["bare"])]
    a, b = (json.loads(o)["probabilities"] for o in outs)
    assert a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize(
    ("aggregation", "method"),
    [
        ("transformer", "clip-token attention rollout"),
        ("lstm", "gradient x input norm per frame"),
        ("mean", "uniform (mean aggregation)"),
    ],
)
def test_explain_writes_a_png_only_where_asked(data, capsys, monkeypatch, tmp_path, aggregation, method):
    model = data["model"] if aggregation == "transformer" else save_model(tmp_path / aggregation, aggregation)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    figure = tmp_path / "out" / "explain.png"
    figure.parent.mkdir()
    code, out, err = run_main(capsys, data["mp4"], "--model", model, "--json", "--explain", figure)
    assert code == 0, err
    result = check_json(out)
    explanation = result["explanation"]
    assert explanation["temporal_method"] == method and explanation["figure"] == str(figure)
    weights = np.array(explanation["frame_weights"])
    assert weights.shape == (8,) and weights.sum() == pytest.approx(1.0) and (weights >= 0).all()
    if aggregation == "mean":
        np.testing.assert_allclose(weights, 1 / 8)
    with Image.open(figure) as image:
        assert image.format == "PNG" and image.width > 500 and image.height > 200
        assert np.asarray(image.convert("L")).std() > 10  # not a blank canvas
    assert list(cwd.iterdir()) == [] and [p.name for p in figure.parent.iterdir()] == ["explain.png"]


def test_a_processor_that_disagrees_with_the_config_is_refused_in_one_line(data, capsys, tmp_path):
    """The config owns the clip geometry: a saved processor at another image size is refused by the one check
    (check_processor_geometry), before any clip is processed, and nothing is written."""
    model = save_model(tmp_path / "m48", image_size=48)
    figure = tmp_path / "x.png"
    code, out, err = run_main(capsys, data["folder"], "--model", model, "--json", "--explain", figure)
    assert code == 1 and out == "" and not figure.exists()
    assert err.strip().splitlines() == [
        "error: processor geometry does not match the model: image_size 48 (the model's config: 32). The config "
        "owns num_frames=8, image_size=32, patch_size=8: use the processor saved with the model or "
        "MERImageProcessor.for_config(config, ...)"
    ]


def test_converted_official_model_explained_and_plain_agree(data, capsys, tmp_path):
    """The tiny official SLSTT-LSTM golden model, converted, saved without processor: the explained
    forward (eager, gradients) must give the probabilities of the plain one."""
    golden = load_file(SHARED / "reference" / "slstt_tiny_lstm_golden.safetensors")
    official = tmp_path / "official.safetensors"  # the weights alone, as an official checkpoint holds them
    save_file({k: v for k, v in golden.items() if not k.startswith("__")}, official)
    convert(official, "lstm", OFFICIAL_LABELS["casme2"], num_attention_heads=4).save_pretrained(tmp_path / "slstt")
    argv = [data["avi"], "--model", tmp_path / "slstt", "--crop", "none", "--json"]
    plain = json.loads(run_main(capsys, *argv)[1])
    code, out, err = run_main(capsys, *argv, "--explain", tmp_path / "slstt.png")
    assert code == 0, err
    explained = json.loads(out)
    assert list(explained["probabilities"]) == OFFICIAL_LABELS["casme2"]
    assert explained["probabilities"] == pytest.approx(plain["probabilities"], abs=1e-6)
    assert len(explained["frame_numbers"]) == 11  # the default processor follows the config
    assert explained["explanation"]["temporal_method"] == "gradient x input norm per frame"


# ---------------------------------------------------------------------------------------------- explain
def test_attention_rollout_matches_the_recipe():
    rng = np.random.default_rng(0)
    layers = [torch.from_numpy(rng.dirichlet(np.ones(5), size=(2, 5))).float() for _ in range(3)]  # (heads, N, N)
    expected = np.eye(5)
    for layer in layers:
        joint = layer.numpy().mean(0) + np.eye(5)
        expected = (joint / joint.sum(1, keepdims=True)) @ expected
    np.testing.assert_allclose(attention_rollout(layers).numpy(), expected, rtol=1e-5)


def test_cls_rollout_and_clip_token_rollout_find_the_attended_token():
    n = 1 + 16
    focus = torch.full((1, 1, 2, n, n), 0.1 / (n - 1))  # (B, T, heads, N, N): everyone looks at patch 6
    focus[..., 1 + 6] = 0.9 + 0.1 / (n - 1)
    focus = focus / focus.sum(-1, keepdim=True)
    grid = cls_rollout_grid([focus, focus])
    assert grid.shape == (1, 1, 4, 4) and grid.sum().item() == pytest.approx(1.0)
    assert int(grid.flatten().argmax()) == 6
    temporal = torch.full((1, 2, 5, 5), 0.05)
    temporal[..., 3] = 0.8
    weights = clip_token_rollout([temporal])
    assert weights.shape == (1, 4) and int(weights.argmax()) == 2 and weights.sum().item() == pytest.approx(1.0)


def test_heat_map_is_aligned_with_the_patches_it_covers():
    heat = heat_on_face(np.array([[1.0, 2.0], [3.0, 4.0]]), image_size=20, patch_size=8, display_size=40)
    assert heat.shape == (40, 40) and np.nanmax(heat) == 1.0
    assert np.isnan(heat[32:, :]).all() and np.isnan(heat[:, 32:]).all()  # 16 of 20 px covered by patches
    np.testing.assert_allclose([heat[0, 0], heat[0, 31], heat[31, 0], heat[31, 31]], [0.25, 0.5, 0.75, 1.0])


def test_lstm_gradient_x_input_with_frozen_spatial_encoder():
    """The frame weights equal |grad * input| at the frame embeddings, computed here by hand."""
    torch.manual_seed(1)
    config = MERConfig.from_preset(
        "tiny", labels=LABELS, aggregation="lstm", lstm_hidden_size=16, lstm_num_layers=2, freeze_spatial=True
    )
    config._attn_implementation = "eager"
    model = MERForVideoClassification(config).eval()
    pixels = torch.randn(1, 5, 3, 32, 32)
    result = explain(model, pixels, target=1)
    with torch.no_grad():
        frames = model.mer.spatial_encoder(pixels[0]).last_hidden_state[:, 0].unsqueeze(0)
    frames.requires_grad_(True)
    pooled = model.mer.aggregator(frames, None).pooled
    (grad,) = torch.autograd.grad(model.classifier(pooled)[0, 1], frames)
    scores = (grad * frames)[0].norm(dim=-1).detach()
    np.testing.assert_allclose(result.temporal, (scores / scores.sum()).numpy(), rtol=1e-4)
    assert result.spatial.shape == (5, 4, 4) and result.target == 1
    assert not model.training


def test_explain_refuses_sdpa_models():
    model = MERForVideoClassification(MERConfig.from_preset("tiny", labels=LABELS))
    model.set_attn_implementation("sdpa")
    with pytest.raises(ValueError, match="attn_implementation='eager'"):
        explain(model, torch.randn(1, 3, 3, 32, 32))


# ------------------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def bad(data) -> dict[str, Path]:
    root = data["root"] / "bad"
    root.mkdir()
    (root / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "empty.mp4").write_bytes(b"")
    for name, codec, pix_fmt in (("noframes.avi", "mjpeg", "yuvj420p"), ("noframes.mp4", "libx264", "yuv420p")):
        with av.open(str(root / name), "w") as container:  # valid containers without a single frame
            stream = container.add_stream(codec, rate=25)
            stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, pix_fmt
            container.start_encoding()  # writes the header, which muxing no packet would never do
    (root / "noimages").mkdir()
    (root / "noimages" / "notes.txt").write_text("no frames here")
    vit = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=64, num_labels=3)
    ViTForImageClassification(vit).save_pretrained(root / "vit")
    (root / "noconfig").mkdir()
    MERConfig.from_preset("tiny", labels=LABELS).save_pretrained(root / "noweights")
    save_model(root / "toomanyframes")
    MERImageProcessor(image_size=32, num_frames=9, crop="none").save_pretrained(root / "toomanyframes")
    _damaged_models(root, data["model"])
    truncated = root / "truncated_frames"  # a frame folder with one JPEG cut short
    truncated.mkdir()
    for path in sorted(data["folder"].iterdir()):
        Image.open(path).convert("RGB").save(truncated / f"{path.stem}.jpg", quality=95)
    cut = (truncated / "img110.jpg").read_bytes()
    (truncated / "img110.jpg").write_bytes(cut[: len(cut) // 2])
    return {"root": root}


def _damaged_models(root: Path, model: Path) -> None:
    """Model folders as a user may receive them: cut short, random, mislabelled, pickled, NaN; a huge frame."""
    import shutil
    import struct
    import zlib

    weights = (model / "model.safetensors").read_bytes()
    for name, content in (("truncated", weights[: len(weights) // 3]), ("random", np.random.default_rng(1).bytes(4096))):
        shutil.copytree(model, root / name)
        (root / name / "model.safetensors").write_bytes(content)
    shutil.copytree(model, root / "mislabelled")
    config = json.loads((model / "config.json").read_text())
    config["id2label"] = {str(i): f"class{i}" for i in range(5)}
    config["label2id"] = {f"class{i}": i for i in range(5)}
    (root / "mislabelled" / "config.json").write_text(json.dumps(config))
    shutil.copytree(model, root / "pickled")
    (root / "pickled" / "model.safetensors").unlink()
    torch.save({"weights": _Exploit()}, root / "pickled" / "pytorch_model.bin")
    shutil.copytree(model, root / "nan")
    state = load_file(str(model / "model.safetensors"))
    state["classifier.out_proj.weight"][0, 0] = float("nan")
    save_file(state, str(root / "nan" / "model.safetensors"), metadata={"format": "pt"})
    (root / "bomb").mkdir()  # PNG headers claiming 20000x20000 pixels: refused before any pixel is read

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
    for n in (1, 2):
        (root / "bomb" / f"img{n}.png").write_bytes(header + chunk(b"IDAT", zlib.compress(b"\0" * 100)))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


BAD_CASES = {
    "missing video": (["{root}/nothing.mp4"], "no such video file"),
    "unreadable video": (["{root}/garbage.mp4"], "cannot read video"),
    "empty video file": (["{root}/empty.mp4"], "cannot read video"),
    "avi without frames": (["{root}/noframes.avi"], "no decodable frames"),
    "mp4 without frames": (["{root}/noframes.mp4"], "no video stream"),
    "folder without images": (["{root}/noimages"], "holds no frame images"),
    "plain ViT model": (["{mp4}", "--model", "{root}/vit"], "is a 'vit' model"),
    "folder without config": (["{mp4}", "--model", "{root}/noconfig"], "no model config"),
    "missing model folder": (["{mp4}", "--model", "{root}/nomodel"], "no such model folder"),
    "config without weights": (["{mp4}", "--model", "{root}/noweights"], "cannot load the model"),
    "processor with more frames than the model": (["{mp4}", "--model", "{root}/toomanyframes"], "num_frames 9 (the model's config: 8)"),
    "onset outside video": (["{mp4}", "--onset", "30"], "onset=30 is not a frame of the clip"),
    "offset outside video": (["{mp4}", "--offset", "-1"], "offset=-1 is not a frame of the clip"),
    "apex outside onset..offset": (["{mp4}", "--onset", "2", "--apex", "22", "--offset", "20"], "apex=22"),
    "offset before onset": (["{mp4}", "--onset", "10", "--offset", "5"], "must come after onset"),
    "explain into a missing folder": (["{mp4}", "--explain", "{root}/no/dir/x.png"], "does not exist"),
    "top_k zero": (["{mp4}", "--top_k", "0"], "--top_k must be at least 1"),
    "bad crop box": (["{mp4}", "--crop-box", "0", "0", "99", "99"], "does not fit inside the 64x64"),
    "bad flow method": (["{mp4}", "--flow", "magic"], "magic"),
    "truncated safetensors": (["{mp4}", "--model", "{root}/truncated"], "truncated/model.safetensors (SafetensorError"),
    "random safetensors": (["{mp4}", "--model", "{root}/random"], "random/model.safetensors (SafetensorError"),
    "labels do not match the weights": (
        ["{mp4}", "--model", "{root}/mislabelled"], "config.json names 5 labels but the weights in"
    ),
    "malicious pytorch_model.bin": (["{mp4}", "--model", "{root}/pickled"], "pytorch_model.bin: it holds Python objects"),
    "NaN weights": (["{mp4}", "--model", "{root}/nan"], "hold NaN or Inf (classifier.out_proj.weight)"),
    "truncated JPEG in a frame folder": (["{root}/truncated_frames"], "img110.jpg): cannot decode image: image file is truncated"),
    "decompression bomb": (["{root}/bomb"], "img1.png): cannot read image: Image size (400000000 pixels) exceeds"),
    "cuda without cuda": (["{mp4}", "--device", "cuda"], "--device cuda: CUDA is not available"),
    "unknown device": (["{mp4}", "--device", "gpu0"], "--device gpu0: not a torch device"),
    "relative missing model folder": (["{mp4}", "--model", "relative/missing"], "relative/missing: no such model folder"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_is_one_clear_line_and_nonzero_exit(data, bad, capsys, monkeypatch, case):
    argv, message = BAD_CASES[case]
    argv = [a.format(root=bad["root"], mp4=data["mp4"]) for a in argv]
    if case in ("cuda without cuda",) and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if case == "relative missing model folder":  # never wait for the network in a test
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    if "--model" not in argv:
        argv += ["--model", str(data["model"])]
    code, out, err = run_main(capsys, *argv)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err


def test_non_finite_scores_are_an_error_never_nan_json(data, capsys, monkeypatch):
    """Finite weights can still overflow: the scores are checked, and --json is strict JSON."""
    original = MERForVideoClassification.forward

    def overflowing(self, *args, **kwargs):
        output = original(self, *args, **kwargs)
        output.logits = output.logits * float("inf")
        return output

    monkeypatch.setattr(MERForVideoClassification, "forward", overflowing)
    code, out, err = run_main(capsys, data["folder"], "--model", data["model"], "--json")
    assert code == 1 and out == "" and "produced non-finite scores (NaN/Inf)" in err and "NaN" not in out


# ------------------------------------------------------------------------------- a process of its own
PIPELINE_THEN_COMMAND = """
import json, runpy, sys
from pathlib import Path
from transformers import pipeline

repo, model, video, answer, apex = sys.argv[1:6]


class BlockPackage:  # the package may be installed (CI installs it): hide it for the pipeline part
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("modeling_mer", "dataset_scripts"):
            raise ImportError("blocked: " + name)


blocker = BlockPackage()
sys.meta_path.insert(0, blocker)
pipe = pipeline("video-classification", model=model, trust_remote_code=True)
result = {"module": type(pipe).__module__, "scores": pipe(video, top_k=3, apex=int(apex))}
Path(answer).write_text(json.dumps(result))

sys.meta_path.remove(blocker)
sys.path.insert(0, repo)  # now the command itself, exactly as `python -m` runs it
sys.argv = ["predict", video, "--model", model, "--apex", apex, "--json"]
runpy.run_module("modeling_mer.cli.predict", run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow
def test_pipeline_with_remote_code_and_the_command_agree(data, capsys, tmp_path):
    """One fresh process (imports are slow): `pipeline(..., trust_remote_code=True)` where this package is not
    importable, so the saved folder alone must carry the code; then `python -m modeling_mer.cli.predict`,
    whose stdout must be one JSON object. Both must give the probabilities of the in-process run."""
    code, out, _ = run_main(capsys, data["mp4"], "--model", data["model"], "--apex", APEX, "--json")
    assert code == 0
    expected = json.loads(out)["probabilities"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    answer = tmp_path / "pipeline.json"
    proc = subprocess.run(
        [sys.executable, "-c", PIPELINE_THEN_COMMAND, str(REPO), str(data["model"]), str(data["mp4"]), str(answer), str(APEX)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    piped = json.loads(answer.read_text())
    assert piped["module"].startswith("transformers_modules.") and piped["module"].endswith("pipeline_mer")
    got = {entry["label"]: entry["score"] for entry in piped["scores"]}
    assert got == pytest.approx(expected, abs=1e-5)
    command = check_json(proc.stdout)
    assert command["probabilities"] == pytest.approx(expected, abs=1e-6)  # another process: float32 reductions may differ
