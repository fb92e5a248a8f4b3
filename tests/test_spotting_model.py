"""The spotting model, its processor (streamed per-frame motion) and its post-processing."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from modeling_mer import MERForExpressionSpotting, MERSpottingConfig, MERSpottingProcessor
from modeling_mer.processing_spotting import find_peaks, scores_to_intervals, smooth, window_plan
from modeling_mer.training.spotting_synthetic import make_long_video


def tiny_model(**overrides) -> MERForExpressionSpotting:
    torch.manual_seed(0)
    return MERForExpressionSpotting(MERSpottingConfig.from_preset("tiny", **overrides)).eval()


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="labels are"):
        MERSpottingConfig(id2label={0: "a", 1: "b", 2: "c"})
    with pytest.raises(ValueError, match="micro_threshold"):
        MERSpottingConfig(micro_threshold=1.5)
    with pytest.raises(ValueError, match="window"):
        MERSpottingConfig(window=1)
    with pytest.raises(ValueError, match="lag must be a positive"):
        MERSpottingProcessor(lag=0)
    with pytest.raises(ValueError, match="flow_size"):
        MERSpottingProcessor(image_size=32, flow_size=16)


def test_save_and_load_through_the_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    model = tiny_model(micro_threshold=0.35, micro_half_width=0.25)
    model.save_pretrained(tmp_path)
    MERSpottingProcessor(crop="none", lag=0.1).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "mer-spotting"
    assert config["auto_map"]["AutoModel"] == "modeling_spotting.MERForExpressionSpotting"
    assert (tmp_path / "modeling_spotting.py").is_file() and (tmp_path / "processing_spotting.py").is_file()
    assert isinstance(AutoConfig.from_pretrained(tmp_path), MERSpottingConfig)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MERForExpressionSpotting) and loaded.config.micro_threshold == 0.35
    processor = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(processor, MERSpottingProcessor) and processor.lag == 0.1
    x = torch.randn(1, 20, 3, 16, 16)
    torch.testing.assert_close(loaded(pixel_values=x).logits, model(pixel_values=x).logits)


REMOTE = """
import sys, torch
from transformers import AutoImageProcessor, AutoModel
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
assert "modeling_mer" not in sys.modules, "the installed package was imported"
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
torch.manual_seed(1)
x = torch.randn(40, 3, 16, 16)
print(float(torch.as_tensor(model.score_video(x)).sum()), type(processor).__name__)
"""


def test_exported_code_loads_in_a_fresh_process(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "m")
    MERSpottingProcessor(crop="none").save_pretrained(tmp_path / "m")
    out = subprocess.run([sys.executable, "-c", REMOTE, str(tmp_path / "m")], cwd=tmp_path, capture_output=True,
                         text=True, timeout=240, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                                                      "HF_HOME": str(tmp_path / "hf")})
    assert out.returncode == 0, out.stderr[-2000:]
    torch.manual_seed(1)
    expected = float(model.score_video(torch.randn(40, 3, 16, 16)).sum())
    total, name = out.stdout.split()
    assert float(total) == pytest.approx(expected, rel=1e-5) and name == "MERSpottingProcessor"


@pytest.mark.parametrize("frames", [5, 31, 32, 33, 70, 131])
def test_window_plan_scores_each_frame_once_with_context(frames):
    plan = window_plan(frames, 32)
    assert [f for _, _, a, b in plan for f in range(a, b)] == list(range(frames))
    assert all(start <= a and b <= stop and stop - start <= 32 for start, stop, a, b in plan)
    inner = [(a - start, stop - b) for start, stop, a, b in plan[1:-1]]
    assert all(left >= 8 and right >= 8 for left, right in inner)  # a quarter window each side


@pytest.mark.parametrize("frames", [10, 32, 50, 97])
def test_streamed_windows_equal_the_whole_video_pass(frames):
    model = tiny_model()
    x = torch.randn(frames, 3, 16, 16)
    whole = model.score_video(x)
    streamed = np.stack(list(model.score_stream(iter(x))))
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    assert whole.shape == (frames, 3) and np.allclose(whole.sum(1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="window is 32"):
        model(pixel_values=torch.randn(1, 33, 3, 16, 16))


def test_features_stream_one_frame_behind_and_equal_the_batch_pass():
    video = make_long_video(3, num_frames=90, width=96, height=72)
    processor = MERSpottingProcessor(crop=list(video.face_box), lag=0.2)
    consumed = []

    def frames():
        for index, frame in video.frames():
            consumed.append(index)
            yield index, frame

    streamed = []
    for feature in processor.stream_features(frames(), fps=30.0):
        assert consumed[-1] == feature["frame"]  # yielded as soon as its frame is read: nothing read ahead
        streamed.append(feature)
    whole = processor.video_features(video.array(), fps=30.0)
    assert [f["frame"] for f in streamed] == list(range(90)) == whole["frames"].tolist()
    np.testing.assert_allclose(np.stack([f["flow"] for f in streamed]).astype(np.float16), whole["flow"])
    # frame t's flow starts at t - 6 (0.2 s at 30 fps): a motion in frames 20..25 shows in features 20..31
    assert processor.lag_frames(30.0) == 6 and processor.lag_frames(200.0) == 40


def test_fast_cameras_are_subsampled_to_the_feature_rate():
    processor = MERSpottingProcessor(crop="none", feature_rate=30.0, image_size=8, flow_size=16)
    frames = ((i, np.full((24, 24, 3), (i * 7) % 255, np.uint8)) for i in range(200))
    out = list(processor.stream_features(frames, fps=200.0))
    assert len(out) == 30 and [f["frame"] for f in out[:4]] == [0, 7, 13, 20]
    assert processor.rate(200.0) == pytest.approx(30.0) and processor.rate(25.0) == 25.0


def test_the_face_is_followed_when_the_head_moves(monkeypatch):
    boxes = iter([(10, 10, 40, 40)] + [(11, 10, 40, 40)] * 2 + [(30, 20, 40, 40)] * 10)

    def fake_locate(gray, crop, margin, on_no_face, where, **kw):
        return SimpleNamespace(box=next(boxes), angle=0.0)

    monkeypatch.setattr("modeling_mer.processing_spotting.locate_face", fake_locate)
    processor = MERSpottingProcessor(crop="haar", track_every=1.0, image_size=8, flow_size=16)
    frames = ((i, np.zeros((80, 80, 3), np.uint8)) for i in range(100))
    seen = [tuple(f["box"]) for f in processor.stream_features(frames, fps=25.0)]
    assert seen[0] == (10, 10, 40, 40)
    assert seen[30] == (10, 10, 40, 40)  # a 1 px shift is not followed (steady crop)
    assert seen[-1] == (30, 20, 40, 40)  # a 20 px move is


def test_peaks_and_intervals():
    assert smooth(np.array([0, 0, 3, 0, 0.0]), 3).tolist() == [0, 1, 1, 1, 0]
    values = np.array([0, 1, 0, 0, 5, 4, 0, 0, 0, 3, 0.0])
    assert find_peaks(values, 0.5, 1) == [1, 4, 9]
    assert find_peaks(values, 0.5, 4) == [4, 9]  # 1 is within 4 frames of the higher peak at 4
    assert find_peaks(values, 3.5, 1) == [4]
    assert find_peaks(np.array([0, 2, 2, 2, 0, 1, 1]), 0.5, 1) == [2, 5]  # flat tops: middle; a rising edge at the end is a top
    micro = np.zeros(100)
    micro[40:47] = 0.9  # frames 41..47 (numbers from 1): the flat top's middle 44, +/- 6 frames
    intervals = scores_to_intervals({"micro": micro, "macro": np.zeros(100)}, np.arange(100) + 1, 30.0,
                                    {"micro": 0.5, "macro": 0.5}, {"micro": 0.2, "macro": 0.6}, smoothing=0.0)
    assert intervals == [{"onset": 38, "offset": 50, "apex": 44, "type": "micro", "score": pytest.approx(0.9)}]


def test_post_process_gives_seconds_and_types():
    processor = MERSpottingProcessor(crop="none")
    probs = np.tile([0.98, 0.01, 0.01], (300, 1))
    probs[100:112] = [0.1, 0.85, 0.05]
    probs[200:250] = [0.1, 0.05, 0.85]
    out = processor.post_process(probs, np.arange(300), 30.0, {"micro": 0.5, "macro": 0.5},
                                 {"micro": 0.2, "macro": 0.8}, smoothing=0.1)
    assert [r["type"] for r in out] == ["micro", "macro"]
    assert out[0]["onset"] <= 100 and out[0]["offset"] >= 111 and out[0]["start_seconds"] == out[0]["onset"] / 30
    assert out[1]["offset"] - out[1]["onset"] == 48


REMOTE_HAAR = """
import sys
sys.modules["modeling_mer"] = None  # the package is blocked: only the saved folder's code can run
import cv2
if getattr(cv2, "data", None) is not None:
    cv2.data.haarcascades = sys.argv[3] + "/"  # an empty folder, as OpenCV 5 wheels ship no cascades
from pathlib import Path
from transformers import AutoImageProcessor
processor = AutoImageProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
assert type(processor).__module__.startswith("transformers_modules"), type(processor).__module__
code = Path(sys.modules[type(processor).__module__].__file__).parent
assert not (code / "haarcascade_frontalface_default.xml").exists(), "the module cache holds the XML"
features = processor.video_features(sys.argv[2], fps=30.0)
print(features["flow"].shape[0], Path(processor._cascade_file).parent == Path(sys.argv[1]))
bare = AutoImageProcessor.from_pretrained(sys.argv[4], trust_remote_code=True, crop="haar")
try:
    bare.video_features(sys.argv[2], fps=30.0)
except FileNotFoundError as err:
    print("without the copy:", str(err).split(",")[0])
"""


def test_a_haar_processor_saves_the_cascade_and_remote_code_uses_it_with_the_package_blocked(tmp_path):
    from PIL import Image

    from modeling_mer.face_crop import CASCADE_FILE

    haar, bare, frames, empty = tmp_path / "haar", tmp_path / "bare", tmp_path / "frames", tmp_path / "no-opencv-data"
    for folder, crop in ((haar, "haar"), (bare, "none")):
        processor = MERSpottingProcessor(crop=crop)
        processor.register_for_auto_class("AutoImageProcessor")
        processor.save_pretrained(folder)
    assert "Intel License Agreement" in (haar / CASCADE_FILE).read_text() and not (bare / CASCADE_FILE).exists()
    assert "_cascade_file" not in (haar / "preprocessor_config.json").read_text()
    local = MERSpottingProcessor.from_pretrained(haar)
    assert local._cascade_file == str(haar / CASCADE_FILE) and "_cascade_file" not in local.to_dict()
    frames.mkdir()
    empty.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(frames / f"img{i + 1}.png")
    out = subprocess.run([sys.executable, "-c", REMOTE_HAAR, str(haar), str(frames), str(empty), str(bare)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=240,
                         env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf")})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "12 True", lines  # a feature per frame, the face searched with the folder's cascade
    assert lines[1] == f"without the copy: crop='haar' needs {CASCADE_FILE}", lines
