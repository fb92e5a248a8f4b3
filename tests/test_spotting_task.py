"""The spotting Task's methods as the runner calls them: loaders, loss, candidate predictions, thresholds
chosen with the epoch on validation rows, pooled metrics with the baseline, reports, the exported model."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from accelerate import Accelerator

from modeling_mer import MERSpottingConfig, MERSpottingProcessor
from modeling_mer.training.spotting import (
    WINDOWS_PER_EPOCH,
    FeatureStore,
    SpottingTask,
    _filter,
    synthetic_videos,
)
from modeling_mer.training.tasks import TASKS, TaskData


@pytest.fixture(scope="module")
def data():
    processor = MERSpottingProcessor(crop="none")
    videos = synthetic_videos(3, 1, FeatureStore(None, processor), num_frames=240, width=96, height=72, seed=9)
    meta = pd.DataFrame({"dataset": [v.dataset for v in videos], "subject": [v.subject for v in videos],
                         "video_id": [v.video_id for v in videos]})
    return TaskData(meta=meta, config=MERSpottingConfig.from_preset("tiny"), processor=processor, examples=videos)


RUN = SimpleNamespace(batch_size=4, no_augment=False)


def test_registered_as_spot():
    assert TASKS["spot"] is SpottingTask and SpottingTask.name == "spot"


def test_one_fold_as_the_runner_drives_it(data, tmp_path):
    task, accelerator = SpottingTask(), Accelerator(cpu=True)
    torch.manual_seed(0)
    model = task.build_model(RUN, data, 0)
    task.begin_fold(RUN, data, [0], 0)
    loader = task.make_loader(RUN, data, [0], True, 0)
    assert len(loader.dataset) == WINDOWS_PER_EPOCH  # an epoch is a fixed number of windows, whatever the data's length
    batch = next(iter(loader))
    windows = task.sampler.batch(0, batch["item"].tolist())
    assert windows["flow"].shape == (4, 32, 2, 16, 16) and windows["labels"].shape == (4, 32)
    again = task.sampler.batch(0, batch["item"].tolist())  # reproducible from (seed, epoch, item): resumable
    assert torch.equal(windows["flow"], again["flow"]) and torch.equal(windows["labels"], again["labels"])
    assert not torch.equal(task.sampler.batch(1, batch["item"].tolist())["flow"], windows["flow"])  # new each epoch
    many = task.sampler.batch(0, range(200))["labels"]
    assert float((many > 0).any(dim=1).float().mean()) > 0.45  # at least the half drawn around an expression
    loss = task.loss(model, batch, data)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    val = task.predict(accelerator, model, task.make_loader(RUN, data, [1], False, 0), data, [1])
    assert set(val["video"]) == {"s01_v0"} and (val["type"] == "").sum() == 1  # the video's marker row
    score = task.epoch_score(val, data)  # thresholds chosen on the validation rows ...
    chosen = dict(task.thresholds)
    test = task.predict(accelerator, model, task.make_loader(RUN, data, [2], False, 0), data, [2])
    assert (test["micro_threshold"] == chosen["micro"]).all() and (test["macro_threshold"] == chosen["macro"]).all()
    assert 0.0 <= score <= 1.0 and set(test["video"]) == {"s02_v0"}
    kept = _filter(test)
    assert (kept["score"] >= kept[["micro_threshold", "macro_threshold"]].min(axis=1)).all()
    # --select_on_test: chosen on the held-out rows themselves, stamped on them
    task.held_out_score(test, data)
    assert (test["micro_threshold"] == task.thresholds["micro"]).all()
    test["fold"], test["epoch"] = "s02", 0
    val["fold"], val["epoch"] = "s01", 0
    pooled = pd.concat([val, test], ignore_index=True)
    metrics = task.pooled_metrics(pooled, data, {"optimistic": True, "dataset": "synthetic_long"})
    assert metrics["num_videos"] == 2 and set(metrics["per_fold"]) == {"s01", "s02"}
    assert metrics["tp"] + metrics["fn"] == sum(len(data.examples[i].events) for i in (1, 2))
    assert "baseline" in metrics and metrics["baseline"]["tp"] + metrics["baseline"]["fn"] == metrics["tp"] + metrics["fn"]
    assert task.summary_line(metrics).startswith("OPTIMISTIC")
    task.write_reports(tmp_path, pooled, metrics)
    written = pd.read_csv(tmp_path / "predictions.csv")
    assert list(written.columns[:6]) == ["video", "onset", "offset", "type", "score", "fold"]
    assert set(written["type"]) <= {"micro", "macro"} and json.loads((tmp_path / "metrics.json").read_text())["task"] == "spot"
    exported = task.export_model(model)
    assert exported.config.micro_threshold == pytest.approx(sorted(t["micro_threshold"] for t in task.fold_thresholds)[0]
                                                            if len(task.fold_thresholds) == 1 else
                                                            float(pd.Series([t["micro_threshold"] for t in task.fold_thresholds]).median()))
    card = task.model_card(SimpleNamespace(hub_model_id=None, dataset="synthetic_long"), data, metrics, "out")
    assert "spotting F1 overall" in str(card) or "F1 overall" in str(card)


def test_with_a_recogniser_each_interval_gets_an_emotion_and_strs_is_reported(data, tmp_path):
    from PIL import Image

    from modeling_mer import MERConfig, MERForVideoClassification, MERImageProcessor
    from modeling_mer.training.spotting_synthetic import make_long_video

    torch.manual_seed(0)
    recogniser = MERForVideoClassification(MERConfig.from_preset(
        "tiny", labels=["negative", "positive", "surprise"], num_frames=4, vision_config={"image_size": 32}))
    recogniser.save_pretrained(tmp_path / "rec")
    MERImageProcessor(image_size=32, num_frames=4, crop="none").save_pretrained(tmp_path / "rec")
    video = make_long_video(9 * 1000 + 2 * 50, num_frames=240, fps=30.0, width=96, height=72)  # s02_v0 of the fixture
    (tmp_path / "frames").mkdir()
    paths = []
    for index, frame in video.frames():
        paths.append(str(tmp_path / "frames" / f"img{index + 1}.png"))
        Image.fromarray(frame).save(paths[-1])
    task, accelerator = SpottingTask(), Accelerator(cpu=True)
    task.recognizer = str(tmp_path / "rec")
    task.sources = {"s02_v0": (paths, list(range(240)), 30.0)}
    model = task.build_model(RUN, data, 0)
    task.begin_fold(RUN, data, [0, 1], 0)
    frame = task.predict(accelerator, model, task.make_loader(RUN, data, [2], False, 0), data, [2])
    frame["micro_threshold"] = frame["macro_threshold"] = 0.05  # every candidate is an interval
    frame["fold"], frame["epoch"] = "s02", 0
    metrics = task.pooled_metrics(frame, data, {"dataset": "synthetic_long"})
    assert "strs" in metrics and metrics["strs"] == pytest.approx(metrics["f1_overall"] * metrics["f1_analysis"])
    named = frame[frame["type"].isin(["micro", "macro"])]
    assert len(named) and set(named["emotion"]) <= {"negative", "positive", "surprise"}
    assert "STRS" in task.summary_line(metrics)
