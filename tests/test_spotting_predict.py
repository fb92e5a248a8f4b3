"""mer-predict on a long video with a spotting model: intervals, emotions, the timeline, bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys

import av
import pytest
import torch

from modeling_mer import (
    MERConfig,
    MERForVideoClassification,
    MERImageProcessor,
    MERSpottingConfig,
    MERSpottingProcessor,
)
from modeling_mer.cli import predict as predict_cli
from modeling_mer.training.spotting import FeatureStore, synthetic_videos, train_spotter
from modeling_mer.training.spotting_synthetic import make_long_video


def write_video(path, video, fps=30):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=fps)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuvj420p"
        for _, frame in video.frames():
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def spotter(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spotter")
    processor = MERSpottingProcessor(crop="none")
    videos = synthetic_videos(3, 1, FeatureStore(None, processor), num_frames=360, width=96, height=72, seed=5)
    torch.set_num_threads(1)
    model, _ = train_spotter(videos[:2], videos[2:], MERSpottingConfig.from_preset("tiny"), processor, steps=160,
                             eval_every=40, batch_size=8, seed=0)
    model.save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    torch.manual_seed(0)
    recogniser = MERForVideoClassification(MERConfig.from_preset(
        "tiny", labels=["negative", "positive", "surprise"], num_frames=4, vision_config={"image_size": 32}))
    recogniser.save_pretrained(folder / "recogniser")
    MERImageProcessor(image_size=32, num_frames=4, crop="none").save_pretrained(folder / "recogniser")
    video = make_long_video(77, num_frames=300, width=96, height=72)
    return folder, video, write_video(folder / "long.avi", video)


def test_predict_lists_every_interval_with_emotions_and_draws_the_timeline(spotter, capsys):
    folder, video, path = spotter
    figure = folder / "timeline.png"
    truth = folder / "truth.csv"
    truth.write_text("onset,offset,type,emotion\n" + "".join(
        f"{e['onset']},{e['offset']},{e['type']},{e['emotion']}\n" for e in video.events))
    code = predict_cli.main([str(path), "--model", str(folder / "model"), "--recognizer", str(folder / "recogniser"),
                             "--json", "--timeline", str(figure), "--ground-truth", str(truth)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["num_frames"] == 300 and out["fps"] == 30
    assert out["intervals"], "nothing spotted"
    for r in out["intervals"]:
        assert r["type"] in ("micro", "macro") and 0 <= r["onset"] <= r["apex"] <= r["offset"] < 300
        assert r["start_seconds"] == pytest.approx(r["onset"] / 30) and r["end_seconds"] == pytest.approx((r["offset"] + 1) / 30)
        assert r["emotion"] in ("negative", "positive", "surprise")
        assert sum(r["probabilities"].values()) == pytest.approx(1.0)
    found = [e for e in video.events if any(max(0, min(e["offset"], r["offset"]) - max(e["onset"], r["onset"]) + 1)
                                             for r in out["intervals"])]
    assert len(found) >= len(video.events) // 2  # the generated expressions are where intervals are
    assert figure.is_file() and figure.stat().st_size > 10_000 and out["timeline"] == str(figure)


def test_text_output_and_bad_input(spotter, capsys, tmp_path):
    folder, _, path = spotter
    assert predict_cli.main([str(path), "--model", str(folder / "model"), "--no-timeline"]) == 0
    text = capsys.readouterr().out
    assert "interval(s) spotted" in text and "frames" in text
    assert predict_cli.main([str(tmp_path / "missing.mp4"), "--model", str(folder / "model")]) == 1
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("start,end\n1,2\n")
    assert predict_cli.main([str(path), "--model", str(folder / "model"), "--ground-truth", str(bad)]) == 1
    assert "needs columns onset, offset, type" in capsys.readouterr().err


PEAK = """
import resource, sys, warnings
import numpy as np, torch
from modeling_mer import MERForExpressionSpotting, MERSpottingConfig, MERSpottingProcessor
from modeling_mer.cli.spot import spot_video
torch.manual_seed(0)
torch.set_num_threads(1)
model = MERForExpressionSpotting(MERSpottingConfig.from_preset("tiny", vision_config={"image_size": 8})).eval()
processor = MERSpottingProcessor(crop="none", image_size=8, flow_size=16)
result = spot_video(sys.argv[1], model, processor)
print(result["num_frames"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_peak_memory_does_not_grow_with_the_video(tmp_path):
    peaks = {}
    for frames in (300, 3000):
        video = make_long_video(1, num_frames=frames, width=64, height=48, micro=2, macro=1, blinks=2, head_moves=1)
        path = write_video(tmp_path / f"v{frames}.avi", video)
        out = subprocess.run([sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        count, peak_kb = map(int, out.stdout.split())
        assert count == frames
        peaks[frames] = peak_kb / 1024
    # ten times the frames (the 3000 decoded frames are 28 MB of RGB, their flow 5 MB): the peak grows by a few MB at most
    assert peaks[3000] - peaks[300] < 25, peaks
