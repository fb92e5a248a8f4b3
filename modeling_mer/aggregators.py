"""Temporal aggregators: the per-frame embeddings of a clip -> one clip embedding. One interface, one registry.

    (batch, frames, spatial_hidden) + frame mask -> AggregatorOutput(pooled (batch, clip_hidden), sequence, ...)

`MERConfig.aggregation` names an entry of `AGGREGATORS`; `MERModel` builds it. The config checks the name
without importing this module (torch): `configuration_mer.AGGREGATION_NAMES` holds the names, and
`AGGREGATORS` keeps it in step (a name registered here is added there, one deleted here is removed there),
so `configuration_mer.AGGREGATIONS` lists exactly the registered aggregators. Adding an aggregator is one
class and one registration line:

    @register_aggregator
    class MaxAggregator(TemporalAggregator):
        name = "max"
        description = "the element-wise maximum over the real frames"

        def forward(self, frames, frame_mask=None, output_hidden_states=False, output_attentions=False):
            filled = frames if frame_mask is None else frames.masked_fill(~frame_mask[..., None], float("-inf"))
            return AggregatorOutput(pooled=filled.amax(1), sequence=frames)

The module sits at `MERModel.aggregator`, so its parameters are saved under `mer.aggregator.*` (the official
SLSTT-LSTM keys are `mer.aggregator.lstm.*`; the mean has none). Parameters created with `torch.empty` must
be set in `init_parameters`, which `MERPreTrainedModel._init_weights` calls (with `transformers.initialization`
functions, so that weights loaded from a checkpoint are not overwritten); `nn.Linear`, `nn.LSTM` and norms are
initialised by transformers' defaults.
"""

from __future__ import annotations

from collections import UserDict
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.vit.modeling_vit import eager_attention_forward

from .configuration_mer import AGGREGATION_NAMES, check_aggregation

if TYPE_CHECKING:
    from .configuration_mer import MERConfig


@dataclass
class AggregatorOutput:
    """What an aggregator returns.

    pooled: `(batch, clip_hidden)`, the clip embedding the head classifies.
    sequence: `(batch, seq, hidden)`, the aggregator's output sequence (the model's `last_hidden_state`).
    hidden_states / attentions: per layer, for aggregators with layers, when asked for; else None.
    """

    pooled: torch.Tensor
    sequence: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class TemporalAggregator(nn.Module):
    """The interface: `name`, a one-line `description`, `output_size(config)` and `forward`."""

    name: ClassVar[str]
    description: ClassVar[str]

    def __init__(self, config: MERConfig):
        super().__init__()

    @classmethod
    def output_size(cls, config: MERConfig) -> int:
        """Width of the clip embedding (the head's input). Default: the spatial encoder's width."""
        return config.vision_config.hidden_size

    def init_parameters(self, std: float) -> None:
        """Initialise this module's own `nn.Parameter`s (not those of its Linear/LSTM/LayerNorm children)."""

    def forward(
        self,
        frames: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> AggregatorOutput:
        """frames `(batch, frames, spatial_hidden)`; frame_mask `(batch, frames)` bool or None (all real)."""
        raise NotImplementedError


class _AggregatorRegistry(UserDict):
    """name -> aggregator class; every name set or deleted here is set or deleted in the config's
    `AGGREGATION_NAMES` too (UserDict routes update, pop and clear through these two)."""

    def __setitem__(self, name: str, cls: type[TemporalAggregator]) -> None:
        super().__setitem__(name, cls)
        AGGREGATION_NAMES[name] = None

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        AGGREGATION_NAMES.pop(name, None)


AGGREGATORS: MutableMapping[str, type[TemporalAggregator]] = _AggregatorRegistry()


def register_aggregator(cls: type[TemporalAggregator]) -> type[TemporalAggregator]:
    """Add an aggregator class under its `name` (usable as a decorator). Re-registering a name replaces it."""
    if not (isinstance(cls, type) and issubclass(cls, TemporalAggregator)):
        raise TypeError(f"register_aggregator takes a TemporalAggregator subclass, got {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a class attribute `name` (the config's aggregation value)")
    if not isinstance(getattr(cls, "description", None), str):
        raise ValueError(f"{cls.__name__} needs a class attribute `description` (one line, for --help and docs)")
    AGGREGATORS[name] = cls
    return cls


def get_aggregator(name: str) -> type[TemporalAggregator]:
    """The registered class for `name`, or one line listing the registered names (the config's check)."""
    return AGGREGATORS[check_aggregation(name)]


# ------------------------------------------------------------------------------------------- transformer
class MERTemporalAttention(nn.Module):
    """Bidirectional multi-head self-attention over the frames of a clip (through the attention interface)."""

    def __init__(self, config: MERConfig):
        super().__init__()
        self.config = config
        width, heads = config.temporal_hidden_size, config.temporal_num_attention_heads
        self.head_dim = width // heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.temporal_dropout
        self.is_causal = False  # otherwise SDPA may treat the temporal sequence as causal
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.o_proj = nn.Linear(width, width)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)  # (B, S, H, d)
        query = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(shape).transpose(1, 2)
        attention: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        out, weights = attention(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.dropout if self.training else 0.0,
            scaling=self.scaling,
        )
        return self.o_proj(out.reshape(*hidden_states.shape[:-1], -1).contiguous()), weights


class MERTemporalLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block over frames, as in ViT."""

    def __init__(self, config: MERConfig):
        super().__init__()
        width = config.temporal_hidden_size
        self.layernorm_before = nn.LayerNorm(width, eps=config.vision_config.layer_norm_eps)
        self.attention = MERTemporalAttention(config)
        self.layernorm_after = nn.LayerNorm(width, eps=config.vision_config.layer_norm_eps)
        self.fc1 = nn.Linear(width, config.temporal_intermediate_size)
        self.fc2 = nn.Linear(config.temporal_intermediate_size, width)
        self.dropout = nn.Dropout(config.temporal_dropout)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.attention(self.layernorm_before(hidden_states), attention_mask)
        hidden_states = hidden_states + self.dropout(attended)
        mlp = self.fc2(self.dropout(F.gelu(self.fc1(self.layernorm_after(hidden_states)))))
        return hidden_states + self.dropout(mlp), weights


@register_aggregator
class MERTemporalTransformer(TemporalAggregator):
    """A learned clip token attends over the frame embeddings (with learned temporal position embeddings)."""

    name = "transformer"
    description = "a clip token attends over the frames (temporal transformer with learned positions)"

    def __init__(self, config: MERConfig):
        super().__init__(config)
        self.config = config
        spatial, width = config.vision_config.hidden_size, config.temporal_hidden_size
        self.input_projection = nn.Linear(spatial, width) if spatial != width else nn.Identity()
        self.clip_token = nn.Parameter(torch.zeros(1, 1, width))
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.num_frames + 1, width))
        self.layers = nn.ModuleList(MERTemporalLayer(config) for _ in range(config.temporal_num_layers))
        self.layernorm = nn.LayerNorm(width, eps=config.vision_config.layer_norm_eps)

    @classmethod
    def output_size(cls, config: MERConfig) -> int:
        return config.temporal_hidden_size

    def init_parameters(self, std: float) -> None:
        init.trunc_normal_(self.position_embeddings, mean=0.0, std=std)
        init.trunc_normal_(self.clip_token, mean=0.0, std=std)

    def forward(self, frames, frame_mask=None, output_hidden_states=False, output_attentions=False):
        b, t, _ = frames.shape  # (B, T, D_spatial)
        if t > self.config.num_frames:
            raise ValueError(
                f"got {t} frames but the temporal position embeddings cover num_frames={self.config.num_frames}"
            )
        x = self.input_projection(frames)
        x = torch.cat([self.clip_token.expand(b, -1, -1), x], dim=1) + self.position_embeddings[:, : t + 1]
        mask = None
        if frame_mask is not None:
            mask = torch.cat([frame_mask.new_ones(b, 1), frame_mask], dim=1)  # the clip token is always there
            mask = create_bidirectional_mask(config=self.config, inputs_embeds=x, attention_mask=mask)
        hidden, attentions = [], []
        for layer in self.layers:
            if output_hidden_states:
                hidden.append(x)
            x, weights = layer(x, mask)
            attentions.append(weights)
        x = self.layernorm(x)
        if output_hidden_states:
            hidden.append(x)
        return AggregatorOutput(
            pooled=x[:, 0],
            sequence=x,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )


# ------------------------------------------------------------------------------------------------- lstm
@register_aggregator
class MERLSTMAggregator(TemporalAggregator):
    """SLSTT-LSTM: a multi-layer LSTM over the frames; the clip embedding is the top layer's last valid step."""

    name = "lstm"
    description = "SLSTT-LSTM: the last step of a multi-layer LSTM over the frames"

    def __init__(self, config: MERConfig):
        super().__init__(config)
        self.lstm = nn.LSTM(
            config.vision_config.hidden_size,
            config.lstm_hidden_size,
            num_layers=config.lstm_num_layers,
            batch_first=True,
        )

    @classmethod
    def output_size(cls, config: MERConfig) -> int:
        return config.lstm_hidden_size

    def forward(self, frames, frame_mask=None, output_hidden_states=False, output_attentions=False):
        # The LSTM is small and oneDNN has no bf16 LSTM kernel on CPU: always run it in float32.
        with torch.autocast(device_type=frames.device.type, enabled=False):
            pooled, sequence = self._run(frames.float(), frame_mask)
        return AggregatorOutput(pooled=pooled, sequence=sequence)

    def _run(self, frames: torch.Tensor, frame_mask: torch.Tensor | None):
        if frame_mask is None:
            out, (h_n, _) = self.lstm(frames)
            return h_n[-1], out
        # Move the valid frames to the front (stable, keeps their order) and pack, so padding never
        # enters the recurrence.
        order = torch.sort((~frame_mask).to(torch.int8), dim=1, stable=True).indices
        compact = torch.gather(frames, 1, order.unsqueeze(-1).expand_as(frames))
        lengths = frame_mask.sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(compact, lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=frames.shape[1])
        return h_n[-1], out


# ------------------------------------------------------------------------------------------------- mean
@register_aggregator
class MeanAggregator(TemporalAggregator):
    """SLSTT-Mean: the average of the real frames' embeddings; nothing to learn."""

    name = "mean"
    description = "SLSTT-Mean: the average of the frame embeddings (no parameters)"

    def forward(self, frames, frame_mask=None, output_hidden_states=False, output_attentions=False):
        b, t = frames.shape[:2]
        weights = frame_mask.to(frames.dtype) if frame_mask is not None else frames.new_ones(b, t)
        pooled = (frames * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True)
        return AggregatorOutput(pooled=pooled, sequence=frames)


__all__ = [
    "AGGREGATORS",
    "AggregatorOutput",
    "MERLSTMAggregator",
    "MERTemporalAttention",
    "MERTemporalLayer",
    "MERTemporalTransformer",
    "MeanAggregator",
    "TemporalAggregator",
    "get_aggregator",
    "register_aggregator",
]
