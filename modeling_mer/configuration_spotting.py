"""Configuration of the spotting model: per-frame motion -> ViT per frame -> temporal transformer -> per-frame classes.

Like the recogniser's `MERConfig`, the spatial encoder is a nested `ViTConfig`; the temporal transformer
uses the same field names as `MERConfig` (so the recogniser's transformer block is reused as it is); the
post-processing that turns per-frame scores into intervals (SoftNet-style: smoothing, threshold, peaks,
peak +/- half width) is part of the config, since its threshold is chosen on training subjects and must
travel with the weights.
"""

from __future__ import annotations

import copy
from typing import Any

from transformers import PreTrainedConfig, ViTConfig

from .configuration_common import VisionTemporalConfigMixin

SPOT_LABELS = ("background", "micro", "macro")

# Named presets (MERSpottingConfig keyword arguments; `vision_config` entries are ViTConfig kwargs).
SPOTTING_PRESETS: dict[str, dict[str, Any]] = {
    # For tests: tiny everything.
    "tiny": {
        "vision_config": {"image_size": 16, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 1,
                          "num_attention_heads": 2, "intermediate_size": 64},
        "window": 32, "temporal_hidden_size": 32, "temporal_num_layers": 1,
        "temporal_num_attention_heads": 2, "temporal_intermediate_size": 64,
    },
    # The default of `train.py --task spot`: a 16 px motion image per frame as four 8 px patches (the flow is
    # computed at 64 px on the face and area-reduced, keeping sub-pixel motion), a 2-layer ViT, 64 frames of
    # context (2.1 s at the 30 Hz feature rate) in a 2-layer temporal transformer. Trains from scratch on 2 CPU cores.
    "spot-small": {
        "vision_config": {"image_size": 16, "patch_size": 8, "hidden_size": 64, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "intermediate_size": 128},
        "window": 64, "temporal_hidden_size": 64, "temporal_num_layers": 2,
        "temporal_num_attention_heads": 4, "temporal_intermediate_size": 128,
    },
}


class MERSpottingConfig(VisionTemporalConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`MERForExpressionSpotting`].

    Args:
        vision_config (`ViTConfig` or `dict`): the spatial encoder applied to each frame's motion image
            (3 channels: u, v, magnitude, from the processor's `encode`).
        window (`int`, defaults to 64): frames (at the processor's feature rate) the temporal transformer
            sees at once; the length of its position embeddings. Long videos are scored in overlapping
            windows of this length (`MERSpottingProcessor.window_plan`).
        temporal_hidden_size, temporal_num_layers, temporal_num_attention_heads, temporal_intermediate_size,
        temporal_dropout: the temporal transformer (the recogniser's block); `None` width: the spatial width.
        head_dropout: dropout before the per-frame classifier.
        micro_threshold, macro_threshold (`float`): the peak height (smoothed class probability) an interval
            needs. Chosen on the training side's validation subjects by `train.py --task spot`, never on
            the video being spotted.
        micro_half_width, macro_half_width (`float`, seconds): an interval is peak +/- this (SoftNet's k);
            set from the training annotations (half the median duration of the type).
        smoothing (`float`, seconds): moving-average width applied to the per-frame probabilities.
        train_datasets (`list[str]` or `None`): the datasets the weights were trained on.
    """

    model_type = "mer-spotting"
    sub_configs_defaults = {"vision_config": ViTConfig}

    vision_config: dict | PreTrainedConfig | None = None
    window: int = 64
    temporal_hidden_size: int | None = None
    temporal_num_layers: int = 2
    temporal_num_attention_heads: int = 4
    temporal_intermediate_size: int | None = None
    temporal_dropout: float = 0.1
    head_dropout: float = 0.1
    initializer_range: float = 0.02
    micro_threshold: float = 0.5
    macro_threshold: float = 0.5
    micro_half_width: float = 0.2
    macro_half_width: float = 0.6
    smoothing: float = 0.2
    train_datasets: list[str] | None = None

    def __post_init__(self, **kwargs):
        if self.id2label is None:
            self.id2label = dict(enumerate(SPOT_LABELS))
            self.label2id = {label: i for i, label in enumerate(SPOT_LABELS)}
        if self.vision_config is None:  # the spot-small encoder, not ViT-B
            self.vision_config = dict(SPOTTING_PRESETS["spot-small"]["vision_config"])
        super().__post_init__(**kwargs)
        labels = [self.id2label[i] for i in sorted(self.id2label)]
        if tuple(labels) != SPOT_LABELS:
            raise ValueError(f"a spotting model's labels are {list(SPOT_LABELS)} in that order, got {labels}")
        if not isinstance(self.window, int) or self.window < 2:
            raise ValueError(f"window must be an integer >= 2 (frames), got {self.window!r}")
        self._settle_temporal_widths()
        for name in ("micro_threshold", "macro_threshold"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)!r}")
        for name in ("micro_half_width", "macro_half_width", "smoothing"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {getattr(self, name)!r}")

    def postprocess_settings(self) -> dict[str, Any]:
        """The interval settings `MERSpottingProcessor.post_process` takes (thresholds, widths, smoothing)."""
        return {
            "thresholds": {"micro": self.micro_threshold, "macro": self.macro_threshold},
            "half_widths": {"micro": self.micro_half_width, "macro": self.macro_half_width},
            "smoothing": self.smoothing,
        }

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> MERSpottingConfig:
        """Build a named preset (`tiny`, `spot-small`); keyword arguments override it (`vision_config` merged)."""
        if name not in SPOTTING_PRESETS:
            raise ValueError(f"unknown spotting preset {name!r}; choose one of {sorted(SPOTTING_PRESETS)}")
        kwargs = copy.deepcopy(SPOTTING_PRESETS[name])
        kwargs["vision_config"].update(overrides.pop("vision_config", None) or {})
        kwargs.update(overrides)
        return cls(**kwargs)


__all__ = ["MERSpottingConfig", "SPOTTING_PRESETS", "SPOT_LABELS"]
