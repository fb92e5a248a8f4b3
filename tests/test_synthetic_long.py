"""The long synthetic mode: real CAS(ME)^2 timings, the physics of real recordings, determinism, the builder."""

from __future__ import annotations

import os
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from dataset_scripts import load_mer_dataset
from dataset_scripts._long import Event
from dataset_scripts._synthetic_long import (
    NATIVE_FACE_PX,
    SyntheticLong,
    generate_long_video,
    plan_videos,
    real_videos,
)
from dataset_scripts.registry import DATASETS

LAG = 3  # flow over 3 frames at 30 fps: about half a micro-expression's rise


def shifted(item: dict) -> list[Event]:
    first = item["start"]
    return [Event(e.onset - first + 1, e.apex - first + 1 if e.apex > 0 else -1, e.offset - first + 1, e.type,
                  e.action_units, e.emotion, e.where) for e in item["events"]]


def test_timings_are_casme_sq_rows():
    videos = real_videos()
    assert len(videos) == 95 and sum(len(v) for v in videos.values()) == 357
    plan = plan_videos(6, 2, 600)
    assert len(plan) == 12 and len({p["participant"] for p in plan}) == 6
    for item in plan:
        real = videos[(item["participant"], item["expression"])]
        assert item["events"] and all(e in real for e in item["events"])  # real rows, unchanged
        assert all(item["start"] <= e.onset and e.offset < item["start"] + 600 for e in item["events"])
    micro = sum(e.type == "micro" for p in plan for e in p["events"])
    assert micro >= 12  # windows are chosen where the micro-expressions are
    whole = plan_videos(1, 1, None)[0]
    assert whole["events"] == list(videos[(whole["participant"], whole["expression"])])


def test_generation_is_deterministic_for_a_seed():
    item = plan_videos(1, 1, 120)[0]
    a = generate_long_video(0, shifted(item), num_frames=120, image_size=64, seed=3)
    b = generate_long_video(0, shifted(item), num_frames=120, image_size=64, seed=3)
    c = generate_long_video(0, shifted(item), num_frames=120, image_size=64, seed=4)
    assert a.jpeg == b.jpeg and a.blinks == b.blinks and a.events == b.events
    assert a.jpeg != c.jpeg


@pytest.fixture(scope="module")
def physics():
    item = plan_videos(6, 2, 600)[2]  # participant 2, happy3: three macro- and two micro-expressions
    video = generate_long_video(item["subject"], shifted(item), num_frames=600, video=2)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in video.frames]
    box = slice(20, 108)  # the face
    signal = np.zeros(len(gray))
    for i in range(LAG, len(gray)):
        flow = cv2.calcOpticalFlowFarneback(gray[i - LAG][box, box], gray[i][box, box], None, 0.5, 3, 9, 3, 5, 1.1, 0)
        signal[i] = np.percentile(np.linalg.norm(flow, axis=2), 99)
    return video, signal


def _windows(video) -> dict[str, list[tuple[int, int]]]:
    return {
        "micro": [(e["onset"], e["offset"]) for e in video.events if e["type"] == "micro"],
        "macro": [(e["onset"], e["offset"]) for e in video.events if e["type"] == "macro"],
        "blink": [(a, b) for a, b, _ in video.blinks],
        "head": [(a, b) for a, b, _, _ in video.head_moves],
        "talk": list(video.talking),
        "light": [(a, a + 8) for a, _ in video.light_steps],
    }


def test_motion_is_at_the_scale_of_real_recordings(physics):
    video, _ = physics
    assert 0.55 * 128 < video.face_px < 0.65 * 128
    for event in video.events:
        native = event["peak_px"] / video.scale  # pixels on CAS(ME)^2's ~280 px face
        if event["type"] == "micro":
            assert 1.0 <= native <= 4.0 and event["peak_px"] < 1.2  # sub-pixel to about a pixel at 128 px
        else:
            assert 4.0 <= native <= 16.0
    assert video.scale == pytest.approx(video.face_px / NATIVE_FACE_PX)
    assert len(video.blinks) >= 3 and video.head_moves + video.talking  # 20 s of a face: it blinks and moves


def test_flow_peaks_at_macro_events_and_blinks_and_micro_is_weak(physics):
    video, signal = physics
    windows = _windows(video)
    busy = np.zeros(len(signal), bool)
    for spans in windows.values():
        for a, b in spans:
            busy[max(a - LAG - 2, 0): b + LAG + 3] = True
    background = float(np.median(signal[LAG:][~busy[LAG:]]))
    blink_frames = np.zeros(len(signal), bool)
    for a, b in windows["blink"]:
        blink_frames[a: b + LAG + 1] = True

    def peak(a: int, b: int) -> float:  # the event's own motion: frames a blink also covers left out
        span = [signal[i] for i in range(a, b + LAG + 1) if not blink_frames[i]]
        return max(span) / background if span else float("nan")

    macro = np.nanmedian([peak(a, b) for a, b in windows["macro"]])
    micro = np.nanmedian([peak(a, b) for a, b in windows["micro"]])
    blink = np.median([max(signal[a: b + LAG + 1]) / background for a, b in windows["blink"]])
    assert macro > 2.0 and blink > 8.0  # both stand out of the background (measured: 4.1 and 13.9)
    assert micro < macro < blink  # a micro-expression is the weakest of them
    # the ten strongest moments of the video are all something happening, never the background
    order = np.argsort(signal)[::-1]
    peaks: list[int] = []
    for i in order:
        if all(abs(i - j) > 10 for j in peaks):
            peaks.append(int(i))
        if len(peaks) == 10:
            break
    assert all(busy[i] for i in peaks)


def test_builder_writes_frames_once_and_yields_long_examples(tmp_path):
    assert DATASETS["synthetic_long"].kind == "long" and not DATASETS["synthetic_long"].research_only
    options = {"num_subjects": 2, "videos_per_subject": 1, "num_frames": 120, "image_size": 64}
    ds = load_mer_dataset("synthetic_long", cache_dir=str(tmp_path), **options)
    assert len(ds) == 2 and list(ds["subject"]) == ["synth_s01", "synth_s02"]
    row = ds[0]
    assert row["fps"] == 30.0 and row["num_frames"] == 120 and row["frame_numbers"] == list(range(1, 121))
    with Image.open(row["frames"][0]) as image:
        assert image.size == (64, 64)
    assert all(1 <= e["onset"] <= e["offset"] <= 120 and e["type"] in ("micro", "macro") for e in row["events"])
    assert sum(len(r) for r in ds["events"]) > 0
    first = row["frames"][5]
    stamp = os.stat(first).st_mtime_ns
    # the Arrow cache deleted, the frames kept: a rebuild reuses the frames, never renders them again
    builder = SyntheticLong(cache_dir=str(tmp_path), **options)
    assert first.startswith(str(builder.frames_dir()))
    shutil.rmtree(builder.cache_dir)
    builder.download_and_prepare()
    assert [r["events"] for r in builder.as_dataset(split="train")] == list(ds["events"])
    assert os.stat(first).st_mtime_ns == stamp
    # another cache renders the same frames, byte for byte (same seed)
    other = SyntheticLong(cache_dir=str(tmp_path / "other"), **options)
    other.download_and_prepare()
    copy = other.as_dataset(split="train")[0]["frames"][5]
    assert copy != first and open(copy, "rb").read() == open(first, "rb").read()
    with pytest.raises(ValueError, match="num_frames must be an integer in"):
        SyntheticLong(cache_dir=str(tmp_path), num_frames=10)
