"""Configuration of the SLSTT-style micro-expression recogniser.

The spatial encoder is described by a nested `ViTConfig`, so the config of any Hub ViT checkpoint fits
as it is; the temporal aggregator and the head are described by flat fields of `MERConfig`.
"""

from __future__ import annotations

import copy
from typing import Any

from transformers import PreTrainedConfig, ViTConfig

from .configuration_common import VisionTemporalConfigMixin

# The temporal aggregators' names, in registration order: what `aggregation` may be. The config checks it
# here, without importing the aggregators' module (torch): the three built in are listed, and
# `aggregators.AGGREGATORS` (name -> class) keeps this in step with itself, so an aggregator registered with
# `register_aggregator` after this import is valid too, and one removed from AGGREGATORS is not.
AGGREGATION_NAMES: dict[str, None] = dict.fromkeys(("transformer", "lstm", "mean"))
AGGREGATIONS = AGGREGATION_NAMES.keys()  # a live view


def check_aggregation(name: Any) -> str:
    """`name` if it is a registered aggregation, else one ValueError line listing the registered names."""
    if not isinstance(name, str) or name not in AGGREGATION_NAMES:
        raise ValueError(f"aggregation must be one of {sorted(AGGREGATION_NAMES)}, got {name!r}")
    return name


# Pipeline tasks that the installed package registered with transformers (`import modeling_mer` fills it).
# A config loaded while they are registered does not point to its exported pipeline code for them, so
# `pipeline("video-classification", model=dir)` needs no `trust_remote_code`; the copy of this file that is
# exported with a model keeps it empty, so there `custom_pipelines` stays in force.
LOCALLY_REGISTERED_PIPELINES: set[str] = set()

# The official class orders (the SLSTT code, the MEGC2019 composite): the label order of the official
# checkpoints and of the datasets' builders, so a converted model and a built dataset agree.
CLASS_SETS: dict[str, list[str]] = {
    "casme2_5class": ["disgust", "happiness", "repression", "surprise", "others"],
    "samm_5class": ["other", "anger", "contempt", "happiness", "surprise"],
    "3class": ["negative", "positive", "surprise"],
}

def json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), "null")


# Named presets. Each maps to `MERConfig` keyword arguments; `vision_config` entries are `ViTConfig` kwargs.
PRESETS: dict[str, dict[str, Any]] = {
    # For tests and the CPU demo: a few thousand parameters per layer, 16 patches per frame.
    "tiny": {
        "vision_config": {
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 128,
        },
        "num_frames": 8,
        "aggregation": "transformer",
        "temporal_hidden_size": 64,
        "temporal_num_layers": 1,
        "temporal_num_attention_heads": 4,
        "temporal_intermediate_size": 128,
        "lstm_hidden_size": 64,
        "lstm_num_layers": 2,
    },
    # The default of train.py for real datasets without --model: learns real-scale micro-motion from scratch
    # on 2 CPU cores. Flow is computed on the face crop at up to 240 px and area-reduced to 32 px (the
    # processor's flow_size), so a 32 px input keeps sub-pixel motion. One 32 px patch per frame (the whole
    # flow image is one token: its layout is learned by the patch projection) and the mean of the frames
    # (SLSTT-Mean): in the prototypes of issue 10 on ~250 clips from scratch, 8 px patches with the temporal
    # transformer did not even fit their training folds, and 16 px patches generalised less than one patch.
    "mer-micro": {
        "vision_config": {
            "image_size": 32,
            "patch_size": 32,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 128,
        },
        "num_frames": 4,
        "aggregation": "mean",
        "temporal_hidden_size": 64,
        "temporal_num_layers": 1,
        "temporal_num_attention_heads": 4,
        "temporal_intermediate_size": 128,
    },
    # For real data with a pretrained ViT (--pretrained_spatial): ViT-B/16 at 224 (fits
    # google/vit-base-patch16-224-in21k) with the temporal transformer.
    "mer-b16-224": {
        "vision_config": {"image_size": 224, "patch_size": 16},
        "num_frames": 11,
        "aggregation": "transformer",
        "temporal_hidden_size": 768,
        "temporal_num_layers": 2,
        "temporal_num_attention_heads": 12,
        "temporal_intermediate_size": 3072,
    },
    # The paper (SLSTT-LSTM): ViT-B/16 at 384, tanh-GELU, LayerNorm eps 1e-6, 11 frames, LSTM 3x512,
    # FC 512->256->classes; the official code trains only the head, hence freeze_spatial.
    "slstt-b16-384": {
        "vision_config": {
            "image_size": 384,
            "patch_size": 16,
            "hidden_act": "gelu_pytorch_tanh",
            "layer_norm_eps": 1e-6,
        },
        "num_frames": 11,
        "aggregation": "lstm",
        "lstm_hidden_size": 512,
        "lstm_num_layers": 3,
        "head_hidden_size": 256,
        "freeze_spatial": True,
    },
}


class MERConfig(VisionTemporalConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`MERModel`] and [`MERForVideoClassification`].

    Args:
        vision_config (`ViTConfig` or `dict`):
            The spatial encoder applied to every optical-flow image of a clip (a ViT; its patch embedding is
            computed as a linear projection of patches, with weights in the usual `(hidden, 3, p, p)` layout).
        num_frames (`int`, defaults to 11):
            Frames per clip the model is built for (the length of the temporal position embeddings).
        aggregation (`str`, defaults to `"transformer"`):
            How frame embeddings become a clip embedding: the name of a registered temporal aggregator
            (`AGGREGATIONS`; their classes: `aggregators.AGGREGATORS`): `"transformer"` (a clip token attends
            over the frames, with learned temporal position embeddings), `"lstm"` (SLSTT-LSTM: the last step
            of a multi-layer LSTM) or `"mean"` (SLSTT-Mean: the average of the frames), or one added with
            `register_aggregator`.
        temporal_hidden_size, temporal_num_layers, temporal_num_attention_heads, temporal_intermediate_size:
            Width, depth, heads and MLP width of the temporal transformer. A width different from the
            spatial one inserts a linear projection. `temporal_hidden_size=None` means the spatial width.
        temporal_dropout (`float`): dropout inside the temporal transformer.
        lstm_hidden_size, lstm_num_layers: the LSTM of `aggregation="lstm"`.
        head_hidden_size (`int` or `None`):
            `None`: the head is one linear layer. An integer: Linear -> ReLU -> Linear, as the official
            SLSTT head (512 -> 256 -> classes).
        head_dropout (`float`): dropout applied to the clip embedding before the head.
        freeze_spatial (`bool`):
            Keep the spatial encoder fixed (no gradients), as the official code does.
        pretrained_spatial (`str` or `None`):
            The ViT checkpoint the spatial encoder started from (set by `from_pretrained_spatial`): the model
            card's `base_model`.
        train_datasets (`list[str]` or `None`):
            The datasets the weights were trained on (e.g. `["casme2"]`, `["synthetic"]`; set by `train.py`):
            they fix the model card's licence, since weights inherit the terms of the data.
    """

    model_type = "mer"
    sub_configs_defaults = {"vision_config": ViTConfig}

    vision_config: dict | PreTrainedConfig | None = None
    num_frames: int = 11
    aggregation: str = "transformer"
    temporal_hidden_size: int | None = None
    temporal_num_layers: int = 2
    temporal_num_attention_heads: int = 8
    temporal_intermediate_size: int | None = None
    temporal_dropout: float = 0.1
    lstm_hidden_size: int = 512
    lstm_num_layers: int = 3
    head_hidden_size: int | None = None
    head_dropout: float = 0.1
    freeze_spatial: bool = False
    initializer_range: float = 0.02
    pretrained_spatial: str | None = None
    train_datasets: list[str] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        pipelines = getattr(self, "custom_pipelines", None)
        if pipelines and LOCALLY_REGISTERED_PIPELINES:
            kept = {task: spec for task, spec in pipelines.items() if task not in LOCALLY_REGISTERED_PIPELINES}
            if kept:
                self.custom_pipelines = kept
            else:
                del self.custom_pipelines
        check_aggregation(self.aggregation)  # one line listing the registered names when unknown
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}: the patch grid "
                f"would drop a {self.image_size % self.patch_size} px border (use e.g. "
                f"{self.image_size - self.image_size % self.patch_size} or "
                f"{self.image_size - self.image_size % self.patch_size + self.patch_size})"
            )
        self._settle_temporal_widths(check_heads=self.aggregation == "transformer")

    @classmethod
    def _dict_from_json_file(cls, json_file: Any) -> dict[str, Any]:
        """transformers' reader, refusing valid JSON that is not an object (a list, a number, null) in one
        line naming the file, where the library would fail later with an AttributeError."""
        config = super()._dict_from_json_file(json_file)
        if not isinstance(config, dict):
            raise OSError(f"{json_file} holds a JSON {json_kind(config)}, not an object of config fields")
        return config

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> MERConfig:
        """Build a named preset (`tiny`, `mer-b16-224`, `slstt-b16-384`); keyword arguments override it.

        `vision_config` in the overrides is merged into the preset's, and `labels=[...]` sets
        `id2label`/`label2id` in order.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        kwargs = copy.deepcopy(PRESETS[name])
        vision_overrides = overrides.pop("vision_config", None) or {}
        if isinstance(vision_overrides, PreTrainedConfig):
            vision_overrides = vision_overrides.to_dict()
        kwargs["vision_config"].update(vision_overrides)
        labels = overrides.pop("labels", None)
        if labels is not None:
            overrides["id2label"] = dict(enumerate(labels))
            overrides["label2id"] = {label: i for i, label in enumerate(labels)}
        kwargs.update(overrides)
        return cls(**kwargs)


def check_processor_geometry(config: MERConfig, processor: Any) -> None:
    """The one check that a processor makes the clips a model was built for. The model's config owns the clip
    geometry (num_frames, image_size, patch_size); a processor saved with the model, built by
    `MERImageProcessor.for_config` or passed by a user must agree with it. Raises one ValueError line naming
    every disagreement; prediction, the pipeline and training call this before any clip is processed."""
    problems = [
        f"{name} {getattr(processor, name)!r} (the model's config: {getattr(config, name)})"
        for name in ("num_frames", "image_size")
        if getattr(processor, name) != getattr(config, name)
    ]
    if config.image_size % config.patch_size:
        problems.append(f"the config's image_size {config.image_size} is not a multiple of its patch_size {config.patch_size}")
    if problems:
        raise ValueError(
            f"processor geometry does not match the model: {'; '.join(problems)}. The config owns num_frames="
            f"{config.num_frames}, image_size={config.image_size}, patch_size={config.patch_size}: use the processor "
            "saved with the model or MERImageProcessor.for_config(config, ...)"
        )


__all__ = [
    "AGGREGATIONS",
    "AGGREGATION_NAMES",
    "LOCALLY_REGISTERED_PIPELINES",
    "MERConfig",
    "PRESETS",
    "check_aggregation",
    "check_processor_geometry",
]
