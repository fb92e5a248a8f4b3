"""The frozen-encoder feature store: every clip's frame embeddings computed once, for all folds and epochs.

With `freeze_spatial` (the paper's recipe) the ViT is a fixed function of the flow: it stays in eval mode
(`MERModel.train`) and gets no gradient, so the per-frame CLS embeddings of a clip never change. Running it
on every frame of every clip in every epoch of every fold (CASME II LOSO at 40 epochs: ~2.7 million ViT-B/16
forwards at 384 px) is replaced by one pass over the clips (~2,600 forwards, twice that with the mirrored
flow); the LSTM/transformer and the head then train on the stored vectors (`StoredFeatureModel`), and the
model that is saved is still the whole `MERForVideoClassification`, encoder included.

* The store is a `datasets` cache file next to the stored flow (or under `cache_dir` for a flow table held in
  memory). Its name is a fingerprint of the flow table (which already covers the clips and the processor's
  flow settings), the processor's settings, the encoder's architecture and a digest of its weights, the
  autocast precision and `FEATURES_VERSION`: a second or resumed run finds and reuses it; another processor or
  other encoder weights give another name, so a stale store is never read.
* Augmentation mirrors a clip (flip W, negate u) with a coin drawn per (seed, epoch, row)
  (`loop.flip_decisions`), so both the plain and the mirrored flow's embeddings are stored, and each batch
  picks per clip: the same inputs, the same coins, the same updates as the uncached path.
* All folds share one frozen encoder (the pretrained one, or the one initialised from the run's seed):
  one store serves them all.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import datasets
import torch
from datasets.fingerprint import Hasher
from torch import nn

from dataset_scripts._cache import discard_damaged_map_cache

from ..configuration_mer import MERConfig
from ..modeling_mer import MERForVideoClassification
from ..processing_mer import MERImageProcessor
from .loop import hflip_flow

# Bump when stored values would change for identical inputs and weights (a fix in how they are computed).
FEATURES_VERSION = 1

EMBEDDINGS = "embeddings"
MIRRORED = "embeddings_mirrored"


def encoder_digest(model: MERForVideoClassification) -> str:
    """A digest of the spatial encoder: its architecture (activation, LayerNorm eps... change the outputs
    too) and every weight's name, dtype, shape and bytes. Two encoders with equal digests embed alike."""
    digest = hashlib.sha256()
    vision = {
        k: v
        for k, v in model.config.vision_config.to_dict().items()
        if not k.startswith("_") and k not in ("transformers_version", "architectures", "torch_dtype", "dtype")
    }
    digest.update(json.dumps(vision, sort_keys=True, default=str).encode())
    for name, tensor in model.mer.spatial_encoder.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def store_fingerprint(
    data: datasets.Dataset,
    model: MERForVideoClassification,
    processor: MERImageProcessor,
    mirrored: bool,
    autocast_dtype: torch.dtype | None = None,
) -> str:
    """The store's key: flow table, processor settings, encoder digest, mirrored or not, precision, version."""
    return Hasher.hash(
        (
            data._fingerprint,
            processor.to_json_string(),
            encoder_digest(model),
            bool(mirrored),
            str(autocast_dtype),
            FEATURES_VERSION,
            "frame_embedding_store",
        )
    )


def store_directory(data: datasets.Dataset, cache_dir: str | Path | None) -> Path:
    """Beside the flow's own cache file; for a flow table held in memory, `cache_dir` (or the datasets cache)."""
    if data.cache_files:
        return Path(data.cache_files[0]["filename"]).parent
    root = Path(cache_dir).expanduser() if cache_dir else Path(datasets.config.HF_DATASETS_CACHE)
    return root / "mer_frame_embeddings"


@torch.no_grad()
def _embed(batch: dict[str, Any], model: MERForVideoClassification, processor: MERImageProcessor, mirrored: bool,
           device: torch.device, autocast_dtype: torch.dtype | None) -> dict[str, Any]:
    """A batch of stored flow (n, T, C, S, S) -> its frame embeddings (n, T, D) float32, and the mirrored ones."""
    flow = torch.from_numpy(batch["flow"]).to(device).float()  # the same steps as the training loop's
    autocast = (
        torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else contextlib.nullcontext()
    )
    views = {EMBEDDINGS: flow}
    if mirrored:
        views[MIRRORED] = hflip_flow(flow, torch.ones(len(flow), dtype=torch.bool, device=device))
    out = {}
    with autocast:
        for name, view in views.items():
            embeddings = model.mer(pixel_values=processor.encode_flow(view)).frame_embeddings
            out[name] = embeddings.float().cpu().numpy()
    return out


def frame_embedding_store(
    data: datasets.Dataset,
    model: MERForVideoClassification,
    processor: MERImageProcessor,
    mirrored: bool,
    cache_dir: str | Path | None = None,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """Every clip's per-frame embeddings by `model`'s frozen encoder in eval mode, computed once and cached.

    Args:
        data: the preprocessed dataset (`flow` column, `(T, C, S, S)` per clip), read batch by batch from
            its memory map.
        model: a model with `freeze_spatial`; only its spatial encoder is used (its weights enter the key).
        processor: encodes the flow as in training (its settings enter the key).
        mirrored: also store the embeddings of the mirrored flow (for flip augmentation).
        cache_dir: where to keep the store when `data` has no cache file of its own.
        batch_size: clips per encoder call.
        device, autocast_dtype: where and in which precision the encoder runs (as in training).

    Returns:
        the store (columns `embeddings` and, if mirrored, `embeddings_mirrored`, each `(T, D)` float32;
        row i is clip i of `data`) and a report: `reused`, `path`, `seconds`, `clips`, `frames_encoded`.
    """
    if not model.config.freeze_spatial:
        raise ValueError("frame_embedding_store: the model's spatial encoder is trained (freeze_spatial=False): "
                         "its embeddings change every step and cannot be stored")
    if "flow" not in data.column_names:
        raise ValueError(f"frame_embedding_store: the dataset has no flow column (has {data.column_names})")
    device = torch.device(device)
    fingerprint = store_fingerprint(data, model, processor, mirrored, autocast_dtype)
    path = store_directory(data, cache_dir) / f"frame-embeddings-{fingerprint}.arrow"
    path.parent.mkdir(parents=True, exist_ok=True)
    discard_damaged_map_cache(path, len(data), "frame-embedding store")  # cut or emptied: computed again
    reused = path.exists()
    t = processor.num_frames
    width = model.config.vision_config.hidden_size
    features = {EMBEDDINGS: datasets.Array2D(shape=(t, width), dtype="float32")}
    if mirrored:
        features[MIRRORED] = datasets.Array2D(shape=(t, width), dtype="float32")
    was_training = model.training
    if not reused:  # a reused store never calls the encoder: leave the model where it is
        model.to(device).eval()
    started = time.perf_counter()
    try:
        store = data.select_columns(["flow"]).with_format("numpy").map(
            _embed,
            batched=True,
            batch_size=batch_size,
            remove_columns=["flow"],
            features=datasets.Features(features),
            fn_kwargs={"model": model, "processor": processor, "mirrored": mirrored, "device": device,
                       "autocast_dtype": autocast_dtype},
            new_fingerprint=fingerprint,
            cache_file_name=str(path),
            load_from_cache_file=True,
            desc="Frame embeddings (frozen encoder, once)",
        )
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - started
    report = {
        "reused": reused,
        "path": str(path),
        "seconds": round(seconds, 2),
        "clips": len(data),
        "frames_encoded": 0 if reused else len(data) * t * (2 if mirrored else 1),
    }
    return store.with_format(None), report


def store_columns(mirrored: bool) -> tuple[str, ...]:
    """The store columns a training batch reads."""
    return (EMBEDDINGS, MIRRORED) if mirrored else (EMBEDDINGS,)


class StoredFeatureModel(nn.Module):
    """The trainable part of a frozen-encoder `MERForVideoClassification`, trained on stored frame embeddings.

    Its submodules are the model's own aggregator and head (the same objects: training this trains the
    model); the whole model is held outside the module tree, so that the optimizer, DDP, `state_dict` and
    every `save_state` checkpoint see only the aggregator and head, not the frozen ViT (86 M parameters at
    B/16, written once per epoch otherwise). `forward` is the model's own, given `frame_embeddings`.
    """

    def __init__(self, model: MERForVideoClassification):
        super().__init__()
        if not model.config.freeze_spatial:
            raise ValueError("StoredFeatureModel needs a model with freeze_spatial=True")
        self.aggregator = model.mer.aggregator
        self.classifier = model.classifier
        self.__dict__["model"] = model  # not registered: its encoder stays out of state_dict and optimizers

    def forward(self, frame_embeddings: torch.Tensor, **kwargs: Any) -> Any:
        return self.model(frame_embeddings=frame_embeddings, **kwargs)


def whole_model(model: nn.Module) -> nn.Module:
    """The model to save: the whole `MERForVideoClassification` behind a `StoredFeatureModel`, else `model`."""
    return model.model if isinstance(model, StoredFeatureModel) else model


@functools.lru_cache(maxsize=1)
def seeded_frozen_encoder(config_json: str, seed: int) -> dict[str, torch.Tensor]:
    """The encoder weights every fold of a run shares when the frozen encoder is not loaded from a checkpoint:
    the ones a model built right after `set_seed(seed)` gets (so fold 0's model is unchanged), built without
    touching the global random state. One frozen encoder per run is what lets one store serve every fold."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = MERForVideoClassification(MERConfig.from_dict(json.loads(config_json)))
    return {k: v.clone() for k, v in model.mer.spatial_encoder.state_dict().items()}


__all__ = [
    "EMBEDDINGS",
    "FEATURES_VERSION",
    "MIRRORED",
    "StoredFeatureModel",
    "encoder_digest",
    "frame_embedding_store",
    "seeded_frozen_encoder",
    "store_columns",
    "store_directory",
    "store_fingerprint",
    "whole_model",
]
