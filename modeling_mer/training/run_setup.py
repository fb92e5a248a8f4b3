"""Building what one training run needs from `train.py`'s arguments: processor, model, optimizer.

Kept apart from the loop so that the LOSO protocol in train.py reads top to bottom; every fold calls
`build_model` afresh (after seeding), so folds never share weights.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from transformers import get_cosine_schedule_with_warmup

from ..configuration_mer import PRESETS, MERConfig
from ..modeling_mer import MERForVideoClassification
from ..processing_mer import MERImageProcessor

PROCESSOR_OPTIONS = ("crop", "flow", "encoding", "uv_scale", "input_mode", "sampling")


def is_preset(model: str) -> bool:
    return model in PRESETS


def base_config(args: argparse.Namespace, label_names: list[str]) -> MERConfig:
    """The architecture: a preset with the command line's overrides, or a saved MER model's config."""
    overrides: dict[str, Any] = {}
    if args.num_frames is not None:
        overrides["num_frames"] = args.num_frames
    if args.aggregation is not None:
        overrides["aggregation"] = args.aggregation
    if args.dropout is not None:
        overrides.update(temporal_dropout=args.dropout, head_dropout=args.dropout)
    if is_preset(args.model):
        if args.image_size is not None:
            overrides["vision_config"] = {"image_size": args.image_size}
        return MERConfig.from_preset(args.model, labels=label_names, **overrides)
    if args.model.startswith(("/", ".", "~")) and not os.path.isdir(os.path.expanduser(args.model)):
        raise ValueError(f"--model {args.model!r}: no such folder (and not a preset: {', '.join(PRESETS)})")
    config = MERConfig.from_pretrained(args.model)
    if args.image_size is not None and args.image_size != config.image_size:
        raise ValueError(f"--image_size {args.image_size} differs from {args.model}'s {config.image_size}")
    for key, value in overrides.items():
        setattr(config, key, value)
    config.id2label = dict(enumerate(label_names))
    config.label2id = {name: i for i, name in enumerate(label_names)}
    return config


def build_processor(args: argparse.Namespace, config: MERConfig) -> MERImageProcessor:
    """Processor settings: a saved model's own processor if it has one, then the command line's choices."""
    saved = Path(args.model) / "preprocessor_config.json"
    kwargs = {k: getattr(args, k) for k in PROCESSOR_OPTIONS if getattr(args, k, None) is not None}
    kwargs.update(image_size=config.image_size, num_frames=config.num_frames)
    if not is_preset(args.model) and saved.exists():
        return MERImageProcessor.from_pretrained(args.model, **kwargs)
    return MERImageProcessor(**kwargs)


@functools.lru_cache(maxsize=1)
def _pretrained_spatial_template(source: str, config_json: str) -> MERForVideoClassification:
    """The ViT checkpoint loaded once per run (not once per fold), without touching the seeded RNG, so
    that a fold's random head is the same whether or not an earlier fold of this process loaded it."""
    with torch.random.fork_rng():
        return MERForVideoClassification.from_pretrained_spatial(source, MERConfig.from_dict(json.loads(config_json)))


def build_model(args: argparse.Namespace, config: MERConfig) -> MERForVideoClassification:
    """A fresh model for one fold: random, spatial encoder from a ViT, or a saved MER model's weights."""
    if args.pretrained_spatial:
        template = _pretrained_spatial_template(args.pretrained_spatial, config.to_json_string())
        model = MERForVideoClassification(copy.deepcopy(template.config))
        model.mer.spatial_encoder.load_state_dict(template.mer.spatial_encoder.state_dict())
        return model
    if is_preset(args.model):
        return MERForVideoClassification(config)
    if not os.path.isdir(args.model) and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ValueError(f"--model {args.model!r}: not a preset nor a local folder, and HF_HUB_OFFLINE=1")
    return MERForVideoClassification.from_pretrained(args.model, config=config, ignore_mismatched_sizes=True)


def make_optimizer(args: argparse.Namespace, model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW (default) or SGD with momentum (the paper's); no weight decay on norms, biases, embeddings."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "embeddings" in name or "token" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if args.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum)
    return torch.optim.AdamW(groups, lr=args.lr)


def make_scheduler(args: argparse.Namespace, optimizer: torch.optim.Optimizer, batches_per_epoch: int) -> Any:
    """Linear warmup then cosine decay over the run's optimizer steps (this process's batches / accumulation)."""
    total = max(1, args.epochs * math.ceil(batches_per_epoch / args.gradient_accumulation_steps))
    return get_cosine_schedule_with_warmup(optimizer, round(args.warmup_ratio * total), total)


__all__ = ["base_config", "build_model", "build_processor", "is_preset", "make_optimizer", "make_scheduler"]
