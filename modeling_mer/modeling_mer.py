"""SLSTT-style micro-expression recogniser: a ViT over each optical-flow image, a temporal aggregator, a head.

No convolution anywhere: the ViT patch embedding is computed as a linear projection of flattened patches
(`LinearPatchProjection`), with its weight kept in the `(hidden, channels, patch, patch)` layout so that
Hub ViT checkpoints load into it unchanged.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from huggingface_hub import HfApi, ModelCard
from torch import nn
from transformers import PreTrainedModel, ViTModel
from transformers import initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.vit.modeling_vit import ViTEmbeddings, eager_attention_forward
from transformers.utils import ModelOutput

from .card_mer import build_model_card
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


def build_spatial_encoder(config: MERConfig) -> ViTModel:
    """A transformers ViT without pooler whose patch embedding is `LinearPatchProjection`."""
    vit = ViTModel(config.vision_config, add_pooling_layer=False)
    projection = LinearPatchProjection(
        config.vision_config.num_channels, config.vision_config.hidden_size, config.patch_size
    )
    # The ViT was initialised by its own post_init before the swap, and a later post_init of the outer model
    # skips it as already initialised: initialise the new projection here (as ViT does its conv).
    nn.init.trunc_normal_(projection.weight, std=config.vision_config.initializer_range)
    vit.embeddings.patch_embeddings.projection = projection
    return vit


@dataclass
class MERModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state (`(batch, seq, temporal_hidden)`): the temporal sequence after the aggregator
            (transformer: clip token first, then frames; lstm: the LSTM outputs; mean: the frame embeddings).
        pooler_output (`(batch, clip_hidden)`): the clip embedding the head classifies.
        frame_embeddings (`(batch, frames, spatial_hidden)`): the spatial encoder's CLS embedding per frame
            (zeros for masked frames).
        spatial_hidden_states / spatial_attentions: per ViT layer, `(batch, frames, tokens, hidden)` and
            `(batch, frames, heads, tokens, tokens)` (zeros for masked frames).
        temporal_hidden_states / temporal_attentions: per temporal transformer layer.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    frame_embeddings: torch.FloatTensor | None = None
    spatial_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    spatial_attentions: tuple[torch.FloatTensor, ...] | None = None
    temporal_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    temporal_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MERVideoClassifierOutput(ModelOutput):
    """Logits `(batch, num_labels)`, the loss when labels are given, and the `MERModelOutput` extras."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    frame_embeddings: torch.FloatTensor | None = None
    spatial_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    spatial_attentions: tuple[torch.FloatTensor, ...] | None = None
    temporal_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    temporal_attentions: tuple[torch.FloatTensor, ...] | None = None


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


class MERTemporalTransformer(nn.Module):
    """A learned clip token attends over the frame embeddings (with learned temporal positions)."""

    def __init__(self, config: MERConfig):
        super().__init__()
        self.config = config
        spatial, width = config.vision_config.hidden_size, config.temporal_hidden_size
        self.input_projection = nn.Linear(spatial, width) if spatial != width else nn.Identity()
        self.clip_token = nn.Parameter(torch.zeros(1, 1, width))
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.num_frames + 1, width))
        self.layers = nn.ModuleList(MERTemporalLayer(config) for _ in range(config.temporal_num_layers))
        self.layernorm = nn.LayerNorm(width, eps=config.vision_config.layer_norm_eps)

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor | None, output_hidden_states: bool):
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
        return x[:, 0], x, tuple(hidden), tuple(attentions)


class MERLSTMAggregator(nn.Module):
    """SLSTT-LSTM: a multi-layer LSTM over the frames; the clip embedding is the top layer's last valid step."""

    def __init__(self, config: MERConfig):
        super().__init__()
        self.lstm = nn.LSTM(
            config.vision_config.hidden_size,
            config.lstm_hidden_size,
            num_layers=config.lstm_num_layers,
            batch_first=True,
        )

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor | None):
        # The LSTM is small and oneDNN has no bf16 LSTM kernel on CPU: always run it in float32.
        with torch.autocast(device_type=frames.device.type, enabled=False):
            return self._run(frames.float(), frame_mask)

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

    def model_card(self, repo_or_path: str, tags: Sequence[str] = ()) -> ModelCard:
        """This model's card (card_mer.py): licence from `config.train_datasets`, `base_model` from
        `config.pretrained_spatial`, pipeline tag, usage snippets for `repo_or_path`, requirements, citations."""
        config = self.config
        return build_model_card(
            label_names=[config.id2label[i] for i in range(config.num_labels)],
            train_datasets=config.train_datasets,
            pretrained_spatial=config.pretrained_spatial,
            repo_or_path=repo_or_path,
            tags=tags,
            aggregation=config.aggregation,
            num_frames=config.num_frames,
        )

    def save_pretrained(self, save_directory, *args, **kwargs):
        """transformers' `save_pretrained`, plus this model's card as README.md when the folder has none (a card
        already there, such as train.py's with results, is kept). `push_to_hub=True` goes through `push_to_hub`."""
        push = kwargs.pop("push_to_hub", False)
        repo_id = kwargs.pop("repo_id", None) or Path(save_directory).name
        hub_kwargs = {k: kwargs.pop(k) for k in ("commit_message", "private", "token", "create_pr") if k in kwargs}
        result = super().save_pretrained(save_directory, *args, **kwargs)
        readme = Path(save_directory) / "README.md"
        if kwargs.get("is_main_process", True) and not readme.exists():
            self.model_card(str(save_directory)).save(readme)
        if push and kwargs.get("is_main_process", True):
            self.push_to_hub(repo_id, max_shard_size=kwargs.get("max_shard_size", "50GB"), **hub_kwargs)
        return result

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
    ):
        """transformers' `push_to_hub` with this model's card instead of the stub README (a README.md already in
        the repository is kept, as transformers does). Returns the commit info."""
        api = HfApi(token=token)
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as work_dir:
            self.save_pretrained(work_dir, max_shard_size=max_shard_size)
            readme = Path(work_dir) / "README.md"
            if api.file_exists(repo_id, "README.md", revision=revision):
                readme.unlink()
            else:
                self.model_card(repo_id, tags=tags or ()).save(readme)
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=work_dir,
                commit_message=commit_message or "Upload model",
                commit_description=commit_description,
                revision=revision,
                create_pr=create_pr,
            )

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, LinearPatchProjection):
            init.trunc_normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.bias)
        elif isinstance(module, ViTEmbeddings):
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
            init.trunc_normal_(module.cls_token, mean=0.0, std=std)
        elif isinstance(module, MERTemporalTransformer):
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
            init.trunc_normal_(module.clip_token, mean=0.0, std=std)


def _scatter_frames(
    values: torch.Tensor, valid: torch.Tensor | None, batch: int, frames: int
) -> torch.Tensor:
    """(valid_frames, ...) -> (batch, frames, ...), zeros where a frame was masked out."""
    if valid is None:
        return values.reshape(batch, frames, *values.shape[1:])
    full = values.new_zeros(batch * frames, *values.shape[1:])
    full[valid] = values
    return full.reshape(batch, frames, *values.shape[1:])


class MERModel(MERPreTrainedModel):
    """Spatial ViT on every frame (one flattened batch), then the temporal aggregator: the clip embedding."""

    def __init__(self, config: MERConfig):
        super().__init__(config)
        self.spatial_encoder = build_spatial_encoder(config)
        if config.aggregation == "transformer":
            self.aggregator = MERTemporalTransformer(config)
        elif config.aggregation == "lstm":
            self.aggregator = MERLSTMAggregator(config)
        else:
            self.aggregator = None  # mean over frames: nothing to learn
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

    @property
    def clip_embedding_size(self) -> int:
        return {
            "transformer": self.config.temporal_hidden_size,
            "lstm": self.config.lstm_hidden_size,
            "mean": self.config.vision_config.hidden_size,
        }[self.config.aggregation]

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        frame_embeddings: torch.Tensor | None = None,
        **kwargs,
    ) -> MERModelOutput:
        r"""
        pixel_values (`(batch, frames, 3, height, width)`): encoded optical-flow images.
        frame_mask (`(batch, frames)`, bool or 0/1): which frames are real; padded frames are neither encoded
            nor aggregated. Every clip needs at least one real frame.
        interpolate_pos_encoding: run the ViT at an image size other than the configured one.
        frame_embeddings (`(batch, frames, spatial_hidden)`): instead of `pixel_values`, the spatial encoder's
            per-frame CLS embeddings computed beforehand (the `frame_embeddings` of an earlier output): only
            the temporal aggregator runs, as `inputs_embeds` skips a language model's embedding layer. With a
            frozen encoder this gives what `pixel_values` gives (see `train`), at a fraction of the cost.
        """
        if (pixel_values is None) == (frame_embeddings is None):
            raise ValueError(
                "give exactly one of pixel_values (batch, frames, 3, H, W) and frame_embeddings (batch, frames, hidden)"
            )
        output_attentions = bool(output_attentions)
        output_hidden_states = bool(output_hidden_states)
        if output_attentions and self.config._attn_implementation != "eager":
            raise ValueError(
                "output_attentions=True needs eager attention (sdpa/flash return no weights): load the model with "
                "attn_implementation='eager' or call model.set_attn_implementation('eager') first"
            )
        if frame_embeddings is not None:
            width = self.config.vision_config.hidden_size
            if frame_embeddings.dim() != 3 or frame_embeddings.shape[-1] != width:
                raise ValueError(
                    f"frame_embeddings must be (batch, frames, {width}), got shape {tuple(frame_embeddings.shape)}"
                )
            b, t = frame_embeddings.shape[:2]
            frame_mask = self._check_frame_mask(frame_mask, b, t, frame_embeddings.device)
            pooled, sequence, temporal_hidden, temporal_attn = self.aggregate(
                frame_embeddings, frame_mask, output_hidden_states
            )
            return MERModelOutput(
                last_hidden_state=sequence,
                pooler_output=pooled,
                frame_embeddings=frame_embeddings,
                temporal_hidden_states=temporal_hidden if output_hidden_states else None,
                temporal_attentions=temporal_attn if output_attentions else None,
            )
        if pixel_values.dim() != 5:
            raise ValueError(
                f"pixel_values must be (batch, frames, channels, height, width), got shape {tuple(pixel_values.shape)}"
            )
        b, t = pixel_values.shape[:2]
        flat = pixel_values.reshape(b * t, *pixel_values.shape[2:])  # all frames as one batch
        frame_mask = self._check_frame_mask(frame_mask, b, t, pixel_values.device)
        valid = None
        if frame_mask is not None:
            valid = frame_mask.reshape(-1)
            flat = flat[valid]

        spatial_kwargs = {"interpolate_pos_encoding": interpolate_pos_encoding}
        if output_attentions:
            spatial_kwargs["output_attentions"] = True
        if output_hidden_states:
            spatial_kwargs["output_hidden_states"] = True
        frozen = self.config.freeze_spatial
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            spatial = self.spatial_encoder(flat, **spatial_kwargs)
        cls = spatial.last_hidden_state[:, 0]  # after the ViT's final LayerNorm, as the official code
        frame_embeddings = _scatter_frames(cls, valid, b, t)  # (B, T, D)
        pooled, sequence, temporal_hidden, temporal_attn = self.aggregate(
            frame_embeddings, frame_mask, output_hidden_states
        )

        return MERModelOutput(
            last_hidden_state=sequence,
            pooler_output=pooled,
            frame_embeddings=frame_embeddings,
            spatial_hidden_states=tuple(_scatter_frames(h, valid, b, t) for h in spatial.hidden_states)
            if output_hidden_states
            else None,
            spatial_attentions=tuple(_scatter_frames(a, valid, b, t) for a in spatial.attentions)
            if output_attentions
            else None,
            temporal_hidden_states=temporal_hidden if output_hidden_states else None,
            temporal_attentions=temporal_attn if output_attentions else None,
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
        self, frame_embeddings: torch.Tensor, frame_mask: torch.Tensor | None, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """(batch, frames, spatial_hidden) -> clip embedding `(batch, clip_hidden)`, the temporal sequence, and
        the temporal transformer's hidden states and attentions (None for the LSTM and the mean)."""
        if self.config.aggregation == "transformer":
            return self.aggregator(frame_embeddings, frame_mask, output_hidden_states)
        if self.config.aggregation == "lstm":
            pooled, sequence = self.aggregator(frame_embeddings, frame_mask)
            return pooled, sequence, None, None
        b, t = frame_embeddings.shape[:2]
        weights = frame_mask.to(frame_embeddings.dtype) if frame_mask is not None else frame_embeddings.new_ones(b, t)
        pooled = (frame_embeddings * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True)
        return pooled, frame_embeddings, None, None


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
        **kwargs,
    ) -> MERVideoClassifierOutput:
        r"""
        frame_embeddings (`(batch, frames, spatial_hidden)`): precomputed per-frame embeddings instead of
            `pixel_values` (see `MERModel.forward`): only the aggregator and the head run.
        labels (`(batch,)`): class indices; gives `loss`, the training objective of `train.py`.
        class_weights (`(num_labels,)`): per-class weights (e.g. inverse frequency of the training fold, since
            the datasets are strongly imbalanced); see `clip_weighted_cross_entropy`.
        """
        outputs = self.mer(
            pixel_values,
            frame_mask=frame_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            interpolate_pos_encoding=interpolate_pos_encoding,
            frame_embeddings=frame_embeddings,
        )
        logits = self.classifier(outputs.pooler_output)
        loss = None if labels is None else clip_weighted_cross_entropy(logits, labels, class_weights)
        return MERVideoClassifierOutput(
            loss=loss,
            logits=logits,
            pooler_output=outputs.pooler_output,
            frame_embeddings=outputs.frame_embeddings,
            spatial_hidden_states=outputs.spatial_hidden_states,
            spatial_attentions=outputs.spatial_attentions,
            temporal_hidden_states=outputs.temporal_hidden_states,
            temporal_attentions=outputs.temporal_attentions,
        )


__all__ = [
    "LinearPatchProjection",
    "clip_weighted_cross_entropy",
    "MERModel",
    "MERForVideoClassification",
    "MERPreTrainedModel",
    "MERModelOutput",
    "MERVideoClassifierOutput",
]
