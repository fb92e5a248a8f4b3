"""Issue 12: frame embeddings as a model input, the frozen-encoder feature store, memory-mapped batches."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from modeling_mer import MERConfig, MERForVideoClassification, MERImageProcessor
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
