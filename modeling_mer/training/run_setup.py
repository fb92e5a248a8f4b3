"""Building what one training run needs: config, processor, model, optimizer, schedule.

Kept apart from the loop so that the protocol in train.py reads top to bottom; every fold calls
`build_model` afresh (after seeding), so folds never share weights. The inputs are two typed records,
`ModelChoice` and `OptimizerSettings`, which train.py fills from its command line once.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import get_cosine_schedule_with_warmup

from ..configuration_mer import PRESETS, MERConfig, check_processor_geometry
from ..modeling_mer import MERForVideoClassification
from ..processing_mer import MERImageProcessor
from .features import seeded_frozen_encoder

PROCESSOR_OPTIONS = ("crop", "align", "flow", "encoding", "uv_scale", "input_mode", "sampling", "flow_size", "head_motion",
                     "motion_unit")


@dataclass(frozen=True)
class ModelChoice:
    """The architecture and its initialisation; None fields keep the preset's or saved model's value."""

    model: str  # a preset name, a Hub id or a local folder of a saved MER model
    pretrained_spatial: str | None = None  # a ViT checkpoint (Hub id or folder) for the spatial encoder
    num_frames: int | None = None
    aggregation: str | None = None
    dropout: float | None = None  # temporal and head dropout
    image_size: int | None = None
    freeze_spatial: bool | None = None  # True: keep the spatial encoder fixed (then its features are stored once)


@dataclass(frozen=True)
class OptimizerSettings:
    name: str = "adamw"  # or "sgd" (the paper's)
    lr: float = 1e-4
    weight_decay: float = 0.05
    momentum: float = 0.9  # SGD only
    warmup_ratio: float = 0.1
    gradient_accumulation_steps: int = 1


def is_preset(model: str) -> bool:
    return model in PRESETS


def base_config(choice: ModelChoice, label_names: list[str]) -> MERConfig:
    """The architecture: a preset with the command line's overrides, or a saved MER model's config."""
    overrides: dict[str, Any] = {}
    if choice.num_frames is not None:
        overrides["num_frames"] = choice.num_frames
    if choice.aggregation is not None:
        overrides["aggregation"] = choice.aggregation
    if choice.dropout is not None:
        overrides.update(temporal_dropout=choice.dropout, head_dropout=choice.dropout)
    if choice.freeze_spatial is not None:
        overrides["freeze_spatial"] = choice.freeze_spatial
    if is_preset(choice.model):
        if choice.image_size is not None:
            overrides["vision_config"] = {"image_size": choice.image_size}
        return MERConfig.from_preset(choice.model, labels=label_names, **overrides)
    if choice.model.startswith(("/", ".", "~")) and not os.path.isdir(os.path.expanduser(choice.model)):
        raise ValueError(f"--model {choice.model!r}: no such folder (and not a preset: {', '.join(PRESETS)})")
    config = MERConfig.from_pretrained(choice.model)
    if choice.image_size is not None and choice.image_size != config.image_size:
        raise ValueError(f"--image_size {choice.image_size} differs from {choice.model}'s {config.image_size}")
    for key, value in overrides.items():
        setattr(config, key, value)
    config.id2label = dict(enumerate(label_names))
    config.label2id = {name: i for i, name in enumerate(label_names)}
    return config


def build_processor(model: str, config: MERConfig, options: dict[str, Any]) -> MERImageProcessor:
    """Processor settings: a saved model's own processor if it has one, then `options` (None: unset). The
    clip geometry is the config's (`MERImageProcessor.for_config`), checked by the one geometry check."""
    saved = Path(model) / "preprocessor_config.json"
    kwargs = {k: v for k, v in options.items() if v is not None}
    if not is_preset(model) and saved.exists():
        processor = MERImageProcessor.from_pretrained(
            model, **kwargs, image_size=config.image_size, num_frames=config.num_frames
        )
        check_processor_geometry(config, processor)
        return processor
    return MERImageProcessor.for_config(config, **kwargs)


@functools.lru_cache(maxsize=1)
def _pretrained_spatial_template(source: str, config_json: str) -> MERForVideoClassification:
    """The ViT checkpoint loaded once per run (not once per fold), without touching the seeded RNG, so
    that a fold's random head is the same whether or not an earlier fold of this process loaded it."""
    with torch.random.fork_rng():
        return MERForVideoClassification.from_pretrained_spatial(source, MERConfig.from_dict(json.loads(config_json)))


def build_model(
    choice: ModelChoice, config: MERConfig, frozen_encoder_seed: int | None = None
) -> MERForVideoClassification:
    """A fresh model for one fold: random, spatial encoder from a ViT, or a saved MER model's weights.

    A frozen, randomly initialised encoder is the same in every fold of a run when `frozen_encoder_seed` is
    given (the one a model built right after `set_seed(frozen_encoder_seed)` gets): like a pretrained or
    saved encoder, it is then one fixed feature extractor whose embeddings the feature store computes once.
    """
    if choice.pretrained_spatial:
        template = _pretrained_spatial_template(choice.pretrained_spatial, config.to_json_string())
        model = MERForVideoClassification(copy.deepcopy(template.config))
        model.mer.spatial_encoder.load_state_dict(template.mer.spatial_encoder.state_dict())
        return model
    if is_preset(choice.model):
        model = MERForVideoClassification(config)
        if config.freeze_spatial and frozen_encoder_seed is not None:
            model.mer.spatial_encoder.load_state_dict(seeded_frozen_encoder(config.to_json_string(), frozen_encoder_seed))
        return model
    if not os.path.isdir(choice.model) and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ValueError(f"--model {choice.model!r}: not a preset nor a local folder, and HF_HUB_OFFLINE=1")
    return MERForVideoClassification.from_pretrained(choice.model, config=config, ignore_mismatched_sizes=True)


def make_optimizer(settings: OptimizerSettings, model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW (default) or SGD with momentum (the paper's); no weight decay on norms, biases, embeddings."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "embeddings" in name or "token" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if settings.name == "sgd":
        return torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum)
    return torch.optim.AdamW(groups, lr=settings.lr)


def make_scheduler(
    settings: OptimizerSettings, optimizer: torch.optim.Optimizer, epochs: int, batches_per_epoch: int
) -> Any:
    """Linear warmup then cosine decay over the run's optimizer steps (this process's batches / accumulation)."""
    total = max(1, epochs * math.ceil(batches_per_epoch / settings.gradient_accumulation_steps))
    return get_cosine_schedule_with_warmup(optimizer, round(settings.warmup_ratio * total), total)


__all__ = [
    "ModelChoice",
    "OptimizerSettings",
    "base_config",
    "build_model",
    "build_processor",
    "is_preset",
    "make_optimizer",
    "make_scheduler",
]
