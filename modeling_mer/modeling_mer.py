"""SLSTT-style micro-expression recogniser: a ViT over each optical-flow image, a temporal aggregator, a head.

No convolution anywhere: the ViT patch embedding is computed as a linear projection of flattened patches
(`LinearPatchProjection`), with its weight kept in the `(hidden, channels, patch, patch)` layout so that
Hub ViT checkpoints load into it unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, ViTModel
from transformers import initialization as init
from transformers.models.vit.modeling_vit import ViTEmbeddings
from transformers.utils import ModelOutput, logging

from .aggregators import (
    AggregatorOutput,
    MERLSTMAggregator,
    MERTemporalAttention,
    MERTemporalLayer,
    MERTemporalTransformer,
    TemporalAggregator,
    get_aggregator,
)
from .configuration_mer import MERConfig
from .pipeline_mer import CUSTOM_PIPELINES


class LinearPatchProjection(nn.Module):
    """Non-overlapping patches -> one shared linear map, returned in the layout of a strided `Conv2d`.

    Mathematically the same as ViT's `Conv2d(kernel=stride=patch)`, but a matrix product over unfolded
    patches; the weight keeps the conv layout `(hidden, channels, patch, patch)` so checkpoints match.
    """

    def __init__(self, num_channels: int, hidden_size: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.weight = nn.Parameter(torch.empty(hidden_size, num_channels, patch_size, patch_size))
        self.bias = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        n, c, h, w = pixel_values.shape  # (N, C, H, W)
        p = self.patch_size
        gh, gw = h // p, w // p
        x = pixel_values[:, :, : gh * p, : gw * p]  # a strided conv ignores the remainder too
        patches = x.reshape(n, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(n, gh * gw, c * p * p)
        out = F.linear(patches, self.weight.reshape(self.weight.shape[0], -1), self.bias)  # (N, gh*gw, D)
        return out.transpose(1, 2).reshape(n, -1, gh, gw)  # (N, D, gh, gw), as Conv2d returns


def _publishing():
    """The card and Hub code of the installed modeling_mer package (not shipped with a model), or None."""
    try:
        return importlib.import_module("modeling_mer.evaluation.card_mer")
    except ImportError:
        return None


class MERSpatialEncoder(ViTModel):
    """transformers' ViT (no pooler) whose patch embedding is `LinearPatchProjection`.

    A subclass only so that its own `_init_weights` reaches the projection: transformers initialises a nested
    `PreTrainedModel` with that model's `_init_weights`, so with plain `ViTModel`'s the projection of a
    checkpoint lacking it stayed uninitialised memory. State-dict keys are ViT's.
    """

    def __init__(self, config, add_pooling_layer: bool = False):
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        self.embeddings.patch_embeddings.projection = LinearPatchProjection(
            config.num_channels, config.hidden_size, _side(config.patch_size)
        )
        # ViT's post_init ran before the swap: initialise the new module now, and mark it as ViT's post_init
        # marked its neighbour, so that an outer post_init does not draw it again (the random stream, hence
        # every seeded model, stays as it was) while from_pretrained still initialises it when it is missing.
        projection = self.embeddings.patch_embeddings.projection
        self._init_weights(projection)
        if getattr(self.embeddings.patch_embeddings, "_is_hf_initialized", False):
            projection._is_hf_initialized = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, LinearPatchProjection):
            init.trunc_normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            init.zeros_(module.bias)


def _side(size) -> int:
    """A square side from an int or a (height, width) pair."""
    return size if isinstance(size, int) else size[0]


def build_spatial_encoder(config: MERConfig) -> MERSpatialEncoder:
    """The spatial encoder of `config`: a ViT without pooler whose patch embedding is `LinearPatchProjection`."""
    return MERSpatialEncoder(config.vision_config, add_pooling_layer=False)


@dataclass
class MERModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state (`(batch, seq, temporal_hidden)`): the temporal sequence after the aggregator
            (transformer: clip token first, then frames; lstm: the LSTM outputs; mean: the frame embeddings).
        pooler_output (`(batch, clip_hidden)`): the clip embedding the head classifies.
        hidden_states (with `output_hidden_states`): transformers' usual tuple, every layer in the order the
            input goes through them: the spatial encoder's (embeddings, then each ViT layer), each
            `(batch, frames, tokens, hidden)`, then the temporal transformer's (its input, then each layer),
            each `(batch, 1 + frames, temporal_hidden)` (none for the lstm and mean aggregators). The same tensors
            as `spatial_hidden_states + temporal_hidden_states`.
        attentions (with `output_attentions`): likewise, each ViT layer's `(batch, frames, heads, tokens,
            tokens)`, then each temporal layer's `(batch, heads, 1 + frames, 1 + frames)`: the same tensors as
            `spatial_attentions + temporal_attentions`.
        frame_embeddings (`(batch, frames, spatial_hidden)`): the spatial encoder's CLS embedding per frame
            (zeros for masked frames).
        spatial_hidden_states / spatial_attentions: the spatial encoder's part of the above (zeros for masked
            frames).
        temporal_hidden_states / temporal_attentions: the temporal aggregator's part (None when it has no layers).
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    frame_embeddings: torch.FloatTensor | None = None
    spatial_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    spatial_attentions: tuple[torch.FloatTensor, ...] | None = None
    temporal_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    temporal_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MERVideoClassifierOutput(ModelOutput):
    """Logits `(batch, num_labels)`, the loss when labels are given, `hidden_states`/`attentions` as in
    `MERModelOutput`, and its extras."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    pooler_output: torch.FloatTensor | None = None
    frame_embeddings: torch.FloatTensor | None = None
    spatial_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    spatial_attentions: tuple[torch.FloatTensor, ...] | None = None
    temporal_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    temporal_attentions: tuple[torch.FloatTensor, ...] | None = None


class MERClassificationHead(nn.Module):
    """Dropout then Linear, or Linear -> ReLU -> Linear (the official SLSTT head) when `head_hidden_size` is set."""

    def __init__(self, config: MERConfig, in_features: int):
        super().__init__()
        self.dropout = nn.Dropout(config.head_dropout)
        if config.head_hidden_size:
            self.dense = nn.Linear(in_features, config.head_hidden_size)
            in_features = config.head_hidden_size
        else:
            self.dense = None
        self.out_proj = nn.Linear(in_features, config.num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = self.dropout(pooled)
        if self.dense is not None:
            x = torch.relu(self.dense(x))
        return self.out_proj(x)


# Weights a ViT checkpoint may hold that the spatial encoder does not use (its pooler, an ImageNet head).
_IGNORED_VIT_PREFIXES = ("pooler.", "classifier.")
# The architecture fields taken from the checkpoint; image_size stays the one asked for.
_VIT_ARCHITECTURE_FIELDS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "layer_norm_eps", "patch_size", "num_channels", "qkv_bias",
)  # fmt: skip


def resize_position_embeddings(position_embeddings: torch.Tensor, grid: int) -> torch.Tensor:
    """(1, 1 + g*g, D) -> (1, 1 + grid*grid, D): bicubic over the patch grid, the CLS position unchanged."""
    cls_pos, patch_pos = position_embeddings[:, :1], position_embeddings[:, 1:]
    old = int(patch_pos.shape[1] ** 0.5)
    if old * old != patch_pos.shape[1]:
        raise ValueError(f"{patch_pos.shape[1]} patch position embeddings do not form a square grid")
    if old == grid:
        return position_embeddings
    dim = patch_pos.shape[-1]
    patch_pos = patch_pos.reshape(1, old, old, dim).permute(0, 3, 1, 2).float()
    patch_pos = F.interpolate(patch_pos, size=(grid, grid), mode="bicubic", align_corners=False)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(position_embeddings.dtype)
    return torch.cat([cls_pos, patch_pos], dim=1)


class MERPreTrainedModel(PreTrainedModel):
    config: MERConfig
    config_class = MERConfig
    base_model_prefix = "mer"
    main_input_name = "pixel_values"
    input_modalities = ("video",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["ViTEmbeddings", "ViTLayer", "MERTemporalLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @classmethod
    def from_pretrained_spatial(
        cls, vit_name_or_path: str, config: MERConfig | None = None, **hub_kwargs
    ) -> MERPreTrainedModel:
        """A new model whose spatial encoder starts from a ViT checkpoint (Hub id or local folder).

        The ViT's architecture comes from the checkpoint; the image size stays `config`'s, with the position
        embeddings interpolated when the two differ. Any weight the encoder needs that the checkpoint lacks,
        and any unexpected weight besides a pooler or classification head, raises (transformers only logs).
        """
        config = MERConfig() if config is None else copy.deepcopy(config)
        try:
            vit, info = ViTModel.from_pretrained(
                vit_name_or_path, add_pooling_layer=False, output_loading_info=True, **hub_kwargs
            )
        except OSError as err:
            raise OSError(
                f"could not load a ViT checkpoint from {vit_name_or_path!r} (a local folder with config.json and "
                f"weights, or a Hub id reachable from this machine): {err}"
            ) from err
        unexpected = sorted(k for k in info["unexpected_keys"] if not k.startswith(_IGNORED_VIT_PREFIXES))
        problems = {
            "missing": sorted(info["missing_keys"]),
            "unexpected": unexpected,
            "mismatched": sorted(str(k) for k in info["mismatched_keys"]),
        }
        if any(problems.values()):
            raise ValueError(f"{vit_name_or_path}: the checkpoint does not fit a ViT encoder: {problems}")
        vision = config.vision_config.to_dict()
        vision.update({field: getattr(vit.config, field) for field in _VIT_ARCHITECTURE_FIELDS})
        config.vision_config = type(config.vision_config)(**vision)
        config.pretrained_spatial = str(vit_name_or_path)  # the model card's base_model
        model = cls(config)
        state = vit.state_dict()
        grid = config.image_size // config.patch_size
        key = "embeddings.position_embeddings"
        state[key] = resize_position_embeddings(state[key], grid)
        encoder = model.mer.spatial_encoder if hasattr(model, "mer") else model.spatial_encoder
        encoder.load_state_dict(state, strict=True)
        return model

    # -- the card hook: publishing code lives in the installed package (modeling_mer/evaluation/card_mer.py),
    # not in the files that ship with a model; a remote-code copy without the package writes no card.
    def model_card(self, repo_or_path: str, tags: Sequence[str] = ()):
        """This model's card (`modeling_mer.evaluation.card_mer.model_card_for`); needs the modeling_mer package."""
        publishing = _publishing()
        if publishing is None:
            raise ImportError("the model card is written by the modeling_mer package: pip install modeling-mer")
        return publishing.model_card_for(self, repo_or_path, tags=tags)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """transformers' `save_pretrained`, plus this model's card as README.md when the folder has none and the
        package is installed (a card already there, such as train.py's with results, is kept)."""
        publishing = _publishing()
        if publishing is None:
            return super().save_pretrained(save_directory, *args, **kwargs)
        return publishing.save_with_card(self, super().save_pretrained, save_directory, *args, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs):
        """transformers' `push_to_hub`, with this model's card instead of the stub README when the package is
        installed (a README.md already in the repository is kept, as transformers does)."""
        publishing = _publishing()
        if publishing is None:
            return super().push_to_hub(repo_id, **kwargs)
        return publishing.push_model_to_hub(self, repo_id, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, LinearPatchProjection):
            init.trunc_normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.bias)
        elif isinstance(module, ViTEmbeddings):
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
            init.trunc_normal_(module.cls_token, mean=0.0, std=std)
        elif isinstance(module, TemporalAggregator):
            module.init_parameters(std)


def _scatter_frames(
    values: torch.Tensor, valid: torch.Tensor | None, batch: int, frames: int
) -> torch.Tensor:
    """(valid_frames, ...) -> (batch, frames, ...), zeros where a frame was masked out."""
    if valid is None:
        return values.reshape(batch, frames, *values.shape[1:])
    full = values.new_zeros(batch * frames, *values.shape[1:])
    full[valid] = values
    return full.reshape(batch, frames, *values.shape[1:])


logger = logging.get_logger(__name__)


def _resolve_flags(config: MERConfig, output_attentions, output_hidden_states, return_dict) -> tuple[bool, bool, bool]:
    """The call's switches, each defaulting to the config's (`output_attentions`, `output_hidden_states`,
    `return_dict`), as in every transformers model."""
    return (
        bool(config.output_attentions if output_attentions is None else output_attentions),
        bool(config.output_hidden_states if output_hidden_states is None else output_hidden_states),
        bool(config.return_dict if return_dict is None else return_dict),
    )


@contextlib.contextmanager
def _eager_attention(config: MERConfig) -> Iterator[None]:
    """Run with eager attention for one call (sdpa/flash/flex return no attention weights), as the config's
    setting is put back afterwards. The results are the same; only the kernel differs."""
    saved = {"": config._attn_implementation, "vision_config": config.vision_config._attn_implementation}
    if saved[""] == "eager" and saved["vision_config"] == "eager":
        yield
        return
    logger.warning_once(
        f"output_attentions=True with attn_implementation={saved['']!r}: computing this call with eager attention "
        "(sdpa/flash return no weights); load with attn_implementation='eager' to avoid the switch"
    )
    config._attn_implementation = "eager"  # also sets the vision sub-config
    try:
        yield
    finally:
        config._attn_implementation = saved


class MERModel(MERPreTrainedModel):
    """Spatial ViT on every frame (one flattened batch), then the temporal aggregator: the clip embedding."""

    def __init__(self, config: MERConfig):
        super().__init__(config)
        self.spatial_encoder = build_spatial_encoder(config)
        # Every aggregator lives under `aggregator` (the official SLSTT-LSTM keys are mer.aggregator.lstm.*).
        self.aggregator = get_aggregator(config.aggregation)(config)
        self.post_init()
        if config.freeze_spatial:
            self.spatial_encoder.requires_grad_(False)

    def train(self, mode: bool = True) -> MERModel:
        """Set training mode; a frozen spatial encoder (`freeze_spatial`) always stays in eval mode.

        A frozen encoder is a fixed feature extractor: without dropout its frame embeddings are the same in
        training and inference, so they can be computed once per clip and fed back as `frame_embeddings`
        (train.py's feature store) with the same results as running the encoder every step.
        """
        super().train(mode)
        if self.config.freeze_spatial:
            self.spatial_encoder.eval()
        return self

    def get_input_embeddings(self) -> LinearPatchProjection:
        """The patch projection (pixels -> patch embeddings), as a ViT's `get_input_embeddings` gives its patch
        embedding: `enable_input_require_grads` hooks it, e.g. for gradient checkpointing with a frozen encoder."""
        return self.spatial_encoder.embeddings.patch_embeddings.projection

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.spatial_encoder.embeddings.patch_embeddings.projection = value

    @property
    def clip_embedding_size(self) -> int:
        return type(self.aggregator).output_size(self.config)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        frame_embeddings: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MERModelOutput | tuple:
        r"""
        pixel_values (`(batch, frames, 3, height, width)`): encoded optical-flow images.
        frame_mask (`(batch, frames)`, bool or 0/1): which frames are real; padded frames are neither encoded
            nor aggregated. Every clip needs at least one real frame.
        output_attentions / output_hidden_states: return every layer's attention weights / hidden states
            (default: the config's). Attentions under sdpa/flash attention are computed with eager attention
            for that call (the same numbers), as those kernels return no weights.
        interpolate_pos_encoding: run the ViT at an image size other than the configured one.
        frame_embeddings (`(batch, frames, spatial_hidden)`): instead of `pixel_values`, the spatial encoder's
            per-frame CLS embeddings computed beforehand (the `frame_embeddings` of an earlier output): only
            the temporal aggregator runs, as `inputs_embeds` skips a language model's embedding layer. With a
            frozen encoder this gives what `pixel_values` gives (see `train`), at a fraction of the cost.
        return_dict: a `MERModelOutput` (default: the config's `return_dict`) or a plain tuple of its
            non-None fields.
        """
        if (pixel_values is None) == (frame_embeddings is None):
            raise ValueError(
                "give exactly one of pixel_values (batch, frames, 3, H, W) and frame_embeddings (batch, frames, hidden)"
            )
        output_attentions, output_hidden_states, return_dict = _resolve_flags(
            self.config, output_attentions, output_hidden_states, return_dict
        )
        with _eager_attention(self.config) if output_attentions else contextlib.nullcontext():
            output = self._forward(
                pixel_values, frame_mask, output_attentions, output_hidden_states, interpolate_pos_encoding,
                frame_embeddings,
            )
        return output if return_dict else output.to_tuple()

    def _forward(
        self, pixel_values, frame_mask, output_attentions, output_hidden_states, interpolate_pos_encoding,
        frame_embeddings,
    ) -> MERModelOutput:
        spatial_hidden = spatial_attentions = None
        if frame_embeddings is not None:
            width = self.config.vision_config.hidden_size
            if frame_embeddings.dim() != 3 or frame_embeddings.shape[-1] != width:
                raise ValueError(
                    f"frame_embeddings must be (batch, frames, {width}), got shape {tuple(frame_embeddings.shape)}"
                )
            b, t = frame_embeddings.shape[:2]
            frame_mask = self._check_frame_mask(frame_mask, b, t, frame_embeddings.device)
        else:
            if pixel_values.dim() != 5:
                raise ValueError(
                    "pixel_values must be (batch, frames, channels, height, width), got shape "
                    f"{tuple(pixel_values.shape)}"
                )
            b, t = pixel_values.shape[:2]
            flat = pixel_values.reshape(b * t, *pixel_values.shape[2:])  # all frames as one batch
            frame_mask = self._check_frame_mask(frame_mask, b, t, pixel_values.device)
            valid = None
            if frame_mask is not None:
                valid = frame_mask.reshape(-1)
                flat = flat[valid]
            frozen = self.config.freeze_spatial
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                spatial = self.spatial_encoder(
                    flat,
                    interpolate_pos_encoding=interpolate_pos_encoding,
                    output_attentions=output_attentions,
                    output_hidden_states=output_hidden_states,
                )
            cls = spatial.last_hidden_state[:, 0]  # after the ViT's final LayerNorm, as the official code
            frame_embeddings = _scatter_frames(cls, valid, b, t)  # (B, T, D)
            if output_hidden_states:
                spatial_hidden = tuple(_scatter_frames(h, valid, b, t) for h in spatial.hidden_states)
            if output_attentions:
                spatial_attentions = tuple(_scatter_frames(a, valid, b, t) for a in spatial.attentions)
        aggregated = self.aggregate(frame_embeddings, frame_mask, output_hidden_states, output_attentions)
        temporal_hidden = aggregated.hidden_states if output_hidden_states else None
        temporal_attentions = aggregated.attentions if output_attentions else None
        return MERModelOutput(
            last_hidden_state=aggregated.sequence,
            pooler_output=aggregated.pooled,
            hidden_states=(spatial_hidden or ()) + (temporal_hidden or ()) if output_hidden_states else None,
            attentions=(spatial_attentions or ()) + (temporal_attentions or ()) if output_attentions else None,
            frame_embeddings=frame_embeddings,
            spatial_hidden_states=spatial_hidden,
            spatial_attentions=spatial_attentions,
            temporal_hidden_states=temporal_hidden,
            temporal_attentions=temporal_attentions,
        )

    @staticmethod
    def _check_frame_mask(
        frame_mask: torch.Tensor | None, b: int, t: int, device: torch.device
    ) -> torch.Tensor | None:
        """A (b, t) bool mask, or None when every frame is real."""
        if frame_mask is None:
            return None
        frame_mask = frame_mask.to(device=device, dtype=torch.bool)
        if frame_mask.shape != (b, t):
            raise ValueError(f"frame_mask must be (batch, frames) = {(b, t)}, got {tuple(frame_mask.shape)}")
        if not bool(frame_mask.any(dim=1).all()):
            raise ValueError("every clip needs at least one unmasked frame")
        return None if bool(frame_mask.all()) else frame_mask

    def aggregate(
        self,
        frame_embeddings: torch.Tensor,
        frame_mask: torch.Tensor | None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> AggregatorOutput:
        """(batch, frames, spatial_hidden) -> the aggregator's output: the clip embedding `pooled`
        `(batch, clip_hidden)`, the temporal `sequence`, and its layers' hidden states / attentions if any."""
        return self.aggregator(
            frame_embeddings, frame_mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )


def clip_weighted_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy of each clip times its class's weight, averaged over the clips.

    Not torch's `cross_entropy(weight=...)`, which divides by the sum of the weights in the batch: averaging
    over clips makes the mean of per-process (or per-accumulation-step) losses equal the loss of the
    whole batch, so one process and several compute the same updates.
    """
    losses = F.cross_entropy(logits.float(), labels.to(logits.device), reduction="none")
    if class_weights is not None:
        losses = losses * class_weights.to(device=losses.device, dtype=torch.float32)[labels.to(losses.device)]
    return losses.mean()


class MERForVideoClassification(MERPreTrainedModel):
    """`MERModel` plus the classification head; with labels, the clip-weighted cross-entropy it is trained with."""

    def __init__(self, config: MERConfig):
        super().__init__(config)
        self.mer = MERModel(config)
        self.classifier = MERClassificationHead(config, self.mer.clip_embedding_size)
        self.post_init()

    def save_pretrained(self, save_directory, *args, **kwargs):
        # transformers writes only this class's auto class into `auto_map`; add the base model so that
        # `AutoModel.from_pretrained(dir, trust_remote_code=True)` works on the same folder.
        # `custom_pipelines` makes `pipeline("video-classification", model=dir, trust_remote_code=True)`
        # use the pipeline that samples across the whole clip (pipeline_mer.py is exported with this file).
        if self._auto_class is not None:
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            auto_map.setdefault("AutoModel", f"{MERModel.__module__.rsplit('.', 1)[-1]}.MERModel")
            self.config.auto_map = auto_map
            self.config.custom_pipelines = CUSTOM_PIPELINES
        return super().save_pretrained(save_directory, *args, **kwargs)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        class_weights: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        frame_embeddings: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MERVideoClassifierOutput | tuple:
        r"""
        frame_embeddings (`(batch, frames, spatial_hidden)`): precomputed per-frame embeddings instead of
            `pixel_values` (see `MERModel.forward`): only the aggregator and the head run.
        labels (`(batch,)`): class indices; gives `loss`, the training objective of `train.py`.
        class_weights (`(num_labels,)`): per-class weights (e.g. inverse frequency of the training fold, since
            the datasets are strongly imbalanced); see `clip_weighted_cross_entropy`.
        output_attentions / output_hidden_states / return_dict: as in `MERModel.forward` (default: the config's).
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.mer(
            pixel_values,
            frame_mask=frame_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            interpolate_pos_encoding=interpolate_pos_encoding,
            frame_embeddings=frame_embeddings,
            return_dict=True,
        )
        logits = self.classifier(outputs.pooler_output)
        loss = None if labels is None else clip_weighted_cross_entropy(logits, labels, class_weights)
        output = MERVideoClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            pooler_output=outputs.pooler_output,
            frame_embeddings=outputs.frame_embeddings,
            spatial_hidden_states=outputs.spatial_hidden_states,
            spatial_attentions=outputs.spatial_attentions,
            temporal_hidden_states=outputs.temporal_hidden_states,
            temporal_attentions=outputs.temporal_attentions,
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "LinearPatchProjection",
    "MERSpatialEncoder",
    "clip_weighted_cross_entropy",
    "MERModel",
    "MERForVideoClassification",
    "MERPreTrainedModel",
    "MERModelOutput",
    "MERVideoClassifierOutput",
    # re-exported from aggregators.py, where they moved
    "MERLSTMAggregator",
    "MERTemporalAttention",
    "MERTemporalLayer",
    "MERTemporalTransformer",
]
