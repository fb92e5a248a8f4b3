"""Issue 12: frame embeddings as a model input, the frozen-encoder feature store, memory-mapped batches."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from modeling_mer import MERConfig, MERForVideoClassification, MERImageProcessor
from modeling_mer.training import recognition
from modeling_mer.training.clips import ArrowClips
from modeling_mer.training.features import (
    EMBEDDINGS,
    MIRRORED,
    StoredFeatureModel,
    encoder_digest,
    frame_embedding_store,
)
from modeling_mer.training.loop import FlowClips, hflip_flow, make_loader

LABELS = ["negative", "positive", "surprise"]


def tiny(aggregation: str = "lstm", **overrides) -> MERConfig:
    return MERConfig.from_preset("tiny", labels=LABELS, aggregation=aggregation, num_frames=3, **overrides)


def flow_table(n: int = 6, frames: int = 3, size: int = 32, seed: int = 0) -> datasets.Dataset:
    """A preprocessed-like table: float16 flow (T, 2, S, S) per clip, as `preprocess_dataset` stores it."""
    rng = np.random.default_rng(seed)
    flow = (rng.standard_normal((n, frames, 2, size, size)) * 2).astype(np.float16)
    features = datasets.Features({"flow": datasets.Array4D((frames, 2, size, size), "float16"),
                                 "label": datasets.Value("int64")})
    return datasets.Dataset.from_dict({"flow": flow, "label": list(rng.integers(0, 3, n))}, features=features)


@pytest.mark.parametrize("aggregation", ["transformer", "lstm", "mean"])
def test_frame_embeddings_input_gives_the_pixel_path_outputs(aggregation):
    model = MERForVideoClassification(tiny(aggregation)).eval()
    pixels = torch.randn(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    for frame_mask in (None, mask):
        full = model(pixels, frame_mask=frame_mask, labels=torch.tensor([0, 2]))
        head = model(frame_embeddings=full.frame_embeddings, frame_mask=frame_mask, labels=torch.tensor([0, 2]))
        torch.testing.assert_close(head.logits, full.logits, rtol=0, atol=1e-6)
        torch.testing.assert_close(head.loss, full.loss, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="exactly one of pixel_values"):
        model(pixels, frame_embeddings=full.frame_embeddings)
    with pytest.raises(ValueError, match=r"frame_embeddings must be \(batch, frames, 64\)"):
        model(frame_embeddings=torch.zeros(2, 3, 8))


def test_frozen_encoder_stays_in_eval_mode_so_its_embeddings_do_not_change():
    vision = {"hidden_dropout_prob": 0.5, "attention_probs_dropout_prob": 0.5}
    frozen = MERForVideoClassification(tiny(freeze_spatial=True, vision_config=vision)).train()
    assert not frozen.mer.spatial_encoder.training and frozen.mer.aggregator.training and frozen.classifier.training
    pixels = torch.randn(2, 3, 3, 32, 32)
    a, b = (frozen(pixels).frame_embeddings for _ in range(2))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, frozen.eval()(pixels).frame_embeddings, rtol=0, atol=0)
    trained = MERForVideoClassification(tiny(vision_config=vision)).train()  # dropout does act when trained
    assert trained.mer.spatial_encoder.training
    assert not torch.equal(trained(pixels).frame_embeddings, trained(pixels).frame_embeddings)


def test_stored_feature_model_trains_the_models_head_and_saves_only_it():
    model = MERForVideoClassification(tiny(freeze_spatial=True))
    head = StoredFeatureModel(model)
    assert not any(k.startswith("mer.") or "spatial" in k for k in head.state_dict())
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in head.parameters()} == trainable
    embeddings = torch.randn(2, 3, 64)
    head.eval()  # the head's own dropout: eval on both sides
    torch.testing.assert_close(head(embeddings).logits, model.eval()(frame_embeddings=embeddings).logits)
    with pytest.raises(ValueError, match="freeze_spatial"):
        StoredFeatureModel(MERForVideoClassification(tiny()))


def test_memory_mapped_batches_equal_in_memory_batches(tmp_path):
    flow_table(n=11).save_to_disk(tmp_path / "flow")
    data = datasets.load_from_disk(str(tmp_path / "flow"))  # memory-mapped Arrow file
    assert data.cache_files
    labels = torch.tensor(data["label"])
    in_memory = torch.from_numpy(np.asarray(data.with_format("numpy")[:]["flow"]))  # train.py's old way
    rows = [0, 2, 3, 5, 7, 8, 10]
    for shuffle in (True, False):
        mapped = list(make_loader(ArrowClips(data, labels, rows), 3, shuffle, seed=4))
        held = list(make_loader(FlowClips(in_memory, labels, rows), 3, shuffle, seed=4))
        assert len(mapped) == len(held) == 3
        for x, y in zip(mapped, held):
            assert x.keys() == y.keys()
            for key in x:
                assert x[key].dtype == y[key].dtype and torch.equal(x[key], y[key]), key
    with pytest.raises(ValueError, match="lacks the columns"):
        ArrowClips(data, labels, rows, columns=("embeddings",))


def test_store_holds_the_encoders_embeddings_plain_and_mirrored(tmp_path):
    data = flow_table()
    model = MERForVideoClassification(tiny(freeze_spatial=True))
    processor = MERImageProcessor(image_size=32, num_frames=3, crop="none", encoding="uv")
    store, report = frame_embedding_store(data, model, processor, mirrored=True, cache_dir=tmp_path, batch_size=4)
    assert not report["reused"] and report["frames_encoded"] == 6 * 3 * 2
    flow = torch.from_numpy(np.asarray(data.with_format("numpy")[:]["flow"])).float()
    stored = store.with_format("torch")[:]
    with torch.no_grad():
        plain = model.eval().mer(processor.encode_flow(flow)).frame_embeddings
        mirrored = model.mer(processor.encode_flow(hflip_flow(flow, torch.ones(6, dtype=torch.bool)))).frame_embeddings
    torch.testing.assert_close(stored[EMBEDDINGS], plain, rtol=0, atol=1e-6)
    torch.testing.assert_close(stored[MIRRORED], mirrored, rtol=0, atol=1e-6)
    assert not torch.allclose(stored[EMBEDDINGS], stored[MIRRORED])


def test_store_is_reused_and_invalidated_by_processor_or_encoder_changes(tmp_path, monkeypatch):
    data = flow_table()
    model = MERForVideoClassification(tiny(freeze_spatial=True))
    processor = MERImageProcessor(image_size=32, num_frames=3, crop="none", encoding="uv")
    calls = []
    original = model.mer.spatial_encoder.forward
    monkeypatch.setattr(model.mer.spatial_encoder, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    first, report = frame_embedding_store(data, model, processor, mirrored=False, cache_dir=tmp_path)
    assert not report["reused"] and calls
    calls.clear()
    again, report = frame_embedding_store(data, model, processor, mirrored=False, cache_dir=tmp_path)
    assert report["reused"] and not calls and report["frames_encoded"] == 0
    assert np.array_equal(np.asarray(again[EMBEDDINGS]), np.asarray(first[EMBEDDINGS]))

    other_processor = MERImageProcessor(image_size=32, num_frames=3, crop="none", encoding="uv", uv_scale=2.0)
    changed, report = frame_embedding_store(data, model, other_processor, mirrored=False, cache_dir=tmp_path)
    assert not report["reused"] and calls
    assert not np.allclose(np.asarray(changed[EMBEDDINGS]), np.asarray(first[EMBEDDINGS]))

    digest = encoder_digest(model)
    with torch.no_grad():
        model.mer.spatial_encoder.layernorm.bias[0] += 1e-3
    assert encoder_digest(model) != digest
    calls.clear()
    _, report = frame_embedding_store(data, model, processor, mirrored=False, cache_dir=tmp_path)
    assert not report["reused"] and calls
    with pytest.raises(ValueError, match="freeze_spatial=False"):
        frame_embedding_store(data, MERForVideoClassification(tiny()), processor, mirrored=False, cache_dir=tmp_path)


# --------------------------------------------------------------------------- train.py end to end
# A tiny frozen-encoder LOSO (2 subjects: 2 folds, flips on) with and without the store.
def _tiny_frozen_run(tmp_path, monkeypatch, name, *extra):
    from test_train import FAST, tiny_synthetic

    import train

    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)
    out = tmp_path / name
    argv = [*FAST, "--freeze_spatial", "--synthetic_subjects", "2", "--cache_dir", str(tmp_path / "cache"),
            "--output_dir", str(out), *extra]
    return train.main(argv), out


def _write_mp4(path, frames):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.slow
def test_cached_run_equals_uncached_run_and_reuses_its_store(tmp_path, monkeypatch, capsys):
    import json

    import pandas as pd

    from dataset_scripts.synthetic import generate_clip
    from modeling_mer.cli.predict import main as predict_main

    cached, cached_dir = _tiny_frozen_run(tmp_path, monkeypatch, "cached")
    first = capsys.readouterr().out
    assert "feature store: encoded" in first and cached["feature_store"]["frames_encoded"] == 6 * 2 * 2
    uncached, uncached_dir = _tiny_frozen_run(tmp_path, monkeypatch, "uncached", "--no_feature_store")
    assert "feature store" not in capsys.readouterr().out and "feature_store" not in uncached

    # same seed, same flips, same batches: the same predictions. Tolerance: the stored embeddings come from
    # encoder calls on other batch compositions than the training batches, so float32 sums may differ in the
    # last bits (measured: below 1e-6 here); 1e-5 on probabilities leaves room and still fails on any real
    # difference (another flip, another clip, dropout in the encoder: 1e-2 and more).
    a = pd.read_csv(cached_dir / "predictions.csv")
    b = pd.read_csv(uncached_dir / "predictions.csv")
    assert len(a) == 6 and set(a["fold"]) == set(b["fold"]) and len(set(a["fold"])) == 2
    probs = [c for c in a.columns if c.startswith("prob_")]
    assert len(probs) == 3
    np.testing.assert_allclose(a[probs].to_numpy(), b[probs].to_numpy(), rtol=0, atol=1e-5)
    assert (a["prediction"] == b["prediction"]).all()

    # the released model of the cached run is a whole model (encoder included) equal to the uncached one's
    from safetensors.torch import load_file

    wa, wb = load_file(cached_dir / "model.safetensors"), load_file(uncached_dir / "model.safetensors")
    assert wa.keys() == wb.keys() and any(k.startswith("mer.spatial_encoder.") for k in wa)
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=1e-5, msg=key)

    # ... and it predicts on a video
    clip = generate_clip(0, 1, "positive", num_frames=8, image_size=64, amplitude=3.0, seed=0)
    video = _write_mp4(tmp_path / "clip.mp4", list(clip.frames))
    assert predict_main([str(video), "--model", str(cached_dir), "--crop", "none", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["label"] in json.loads((cached_dir / "config.json").read_text())["id2label"].values()
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)

    # a second run (another output folder, same data, processor and encoder) reuses the store
    again, _ = _tiny_frozen_run(tmp_path, monkeypatch, "again", "--no_final_model")
    assert "feature store: reused" in capsys.readouterr().out
    assert again["feature_store"]["reused"] and again["feature_store"]["frames_encoded"] == 0
    assert again["feature_store"]["path"] == cached["feature_store"]["path"]
    # a run stopped mid-way and resumed reuses the store and restores the head-only checkpoints exactly
    assert _tiny_frozen_run(tmp_path, monkeypatch, "stopped", "--stop_after", "3")[0] is None
    capsys.readouterr()
    _tiny_frozen_run(tmp_path, monkeypatch, "stopped", "--resume")
    assert "feature store: reused" in capsys.readouterr().out
    resumed = pd.read_csv(tmp_path / "stopped" / "predictions.csv")
    np.testing.assert_allclose(resumed[probs].to_numpy(), a[probs].to_numpy(), rtol=0, atol=1e-6)
    # another processor setting gives another store
    other, _ = _tiny_frozen_run(tmp_path, monkeypatch, "other", "--no_final_model", "--uv_scale", "3")
    assert not other["feature_store"]["reused"] and other["feature_store"]["path"] != cached["feature_store"]["path"]


# --------------------------------------------------------------------------- the benchmarks' own logic
def _bench():
    import sys
    from pathlib import Path

    bench = str(Path(__file__).resolve().parents[1] / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)


def test_data_memory_bench_reads_the_same_batches_both_ways(tmp_path):
    _bench()
    import data_memory

    data_memory.write_table(tmp_path / "flow", clips=10, frames=2, size=32)
    mapped = data_memory.child("memory_mapped", str(tmp_path / "flow"), image_size=32)
    held = data_memory.child("in_memory", str(tmp_path / "flow"), image_size=32)
    assert mapped["clips"] == held["clips"] == 10
    assert mapped["checksum"] == held["checksum"] != 0
    assert all(run[k] >= 0 for run in (mapped, held) for k in ("peak_anon_mb", "peak_file_mb", "peak_rss_mb"))


def test_paper_protocol_extrapolation_adds_the_measured_pieces():
    _bench()
    import paper_protocol

    small = {"encoder_frames_per_second": 2.0}
    full = {"clips": 30, "folds": 3, "fold0_train_clips": 20, "build_and_flow_seconds": 100.0, "num_frames": 11,
            "uncached": {"epoch_seconds_extrapolated": 50.0}, "cached_fold0": {"seconds": 40.0, "epoch_seconds": 1.0}}
    out = paper_protocol.extrapolate(small, full, epochs=40)
    trainings = 3 + 30 / 20  # 3 folds and the final model on every clip
    store = 30 * 11 * 2 / 2.0
    assert out["cached"]["store_seconds"] == store
    assert out["cached"]["total_hours"] == round((100 + store + 40 * trainings) / 3600, 2)
    assert out["uncached"]["total_hours"] == round((100 + 50 * 40 * trainings) / 3600, 1)
    assert out["per_epoch_ratio_uncached_over_cached"] == 50.0
    assert "EXTRAPOLATED" in out["label"] and out["target_2h_met"]


@pytest.mark.slow
def test_two_processes_on_stored_features_match_one(tmp_path, monkeypatch):
    """The store is written by the main process and read by both; DDP sees only the aggregator and head."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd
    from test_train_distributed import LAUNCHER

    repo = Path(__file__).resolve().parents[1]
    common = ["--image_size", "32", "--num_frames", "2", "--epochs", "2", "--lr", "3e-3", "--dropout", "0",
              "--synthetic_clips", "6", "--no_final_model", "--seed", "5", "--freeze_spatial",
              "--cache_dir", str(tmp_path / "cache")]
    from test_train import tiny_synthetic

    import train

    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)
    single = train.main([*common, "--batch_size", "4", "--output_dir", str(tmp_path / "one")])
    assert not single["feature_store"]["reused"]
    launcher = tmp_path / "launch_train.py"
    launcher.write_text(LAUNCHER.format(repo=str(repo), tests=str(repo / "tests")))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               port, str(launcher), *common, "--batch_size", "2", "--output_dir", str(tmp_path / "two")]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 process(es)" in done.stdout and "feature store: reused" in done.stdout
    a, b = pd.read_csv(tmp_path / "one" / "predictions.csv"), pd.read_csv(tmp_path / "two" / "predictions.csv")
    probs = [c for c in a.columns if c.startswith("prob_")]
    np.testing.assert_allclose(a[probs].to_numpy(), b[probs].to_numpy(), rtol=0, atol=1e-5)
