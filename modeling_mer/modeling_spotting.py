"""The spotting model, SLSTT family (no convolution): a ViT over each frame's motion image, a temporal
transformer over a window of frames, per-frame classes (background, micro, macro).

    motion images (batch, T, 3, S, S)  ->  spatial ViT per frame (the recogniser's encoder, linear patches)
        -> CLS embedding per frame  ->  + temporal positions  ->  transformer blocks over the T frames
        -> per-frame logits (batch, T, 3)

Long videos are scored in overlapping windows (`window_plan`): `score_video` on a whole array of motion
images, `score_stream` on an iterator of them holding one window at a time; both give the same scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.models.vit.modeling_vit import ViTEmbeddings
from transformers.utils import ModelOutput

from .aggregators import MERTemporalLayer
from .configuration_spotting import MERSpottingConfig
from .modeling_mer import LinearPatchProjection, MERSpatialEncoder
from .processing_spotting import window_plan

__all__ = ["MERForExpressionSpotting", "MERSpottingPreTrainedModel", "MERSpottingOutput", "framewise_cross_entropy"]


@dataclass
class MERSpottingOutput(ModelOutput):
    """
    Args:
        loss: the frame-weighted cross-entropy, when labels are given.
        logits (`(batch, frames, 3)`): per-frame scores of background, micro, macro.
        frame_embeddings (`(batch, frames, spatial_hidden)`): the spatial encoder's CLS per frame.
        last_hidden_state (`(batch, frames, temporal_hidden)`): after the temporal transformer.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    frame_embeddings: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None


def framewise_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy per frame times its class's weight, averaged over the labelled frames (label -100 is
    ignored): background frames outnumber expression frames by ~50 to 1 in real recordings."""
    logits, labels = logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1).to(logits.device)
    valid = labels != -100
    if not bool(valid.any()):
        return logits.sum() * 0.0
    losses = F.cross_entropy(logits[valid], labels[valid], reduction="none")
    if class_weights is not None:
        losses = losses * class_weights.to(device=losses.device, dtype=torch.float32)[labels[valid]]
    return losses.mean()


class MERSpottingPreTrainedModel(PreTrainedModel):
    config: MERSpottingConfig
    config_class = MERSpottingConfig
    base_model_prefix = "spotter"
    main_input_name = "pixel_values"
    input_modalities = ("video",)
    _no_split_modules = ["ViTEmbeddings", "ViTLayer", "MERTemporalLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, LinearPatchProjection):
            init.trunc_normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.bias)
        elif isinstance(module, ViTEmbeddings):
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
            init.trunc_normal_(module.cls_token, mean=0.0, std=std)
        elif isinstance(module, MERForExpressionSpotting):
            init.trunc_normal_(module.temporal_position_embeddings, mean=0.0, std=std)


class MERForExpressionSpotting(MERSpottingPreTrainedModel):
    """Per-frame expression classes over a window of motion images (see the module docstring)."""

    def __init__(self, config: MERSpottingConfig):
        super().__init__(config)
        self.spatial_encoder = MERSpatialEncoder(config.vision_config, add_pooling_layer=False)
        spatial, width = config.vision_config.hidden_size, config.temporal_hidden_size
        self.input_projection = nn.Linear(spatial, width) if spatial != width else nn.Identity()
        self.temporal_position_embeddings = nn.Parameter(torch.zeros(1, config.window, width))
        self.temporal_layers = nn.ModuleList(MERTemporalLayer(config) for _ in range(config.temporal_num_layers))
        self.temporal_layernorm = nn.LayerNorm(width, eps=config.vision_config.layer_norm_eps)
        self.dropout = nn.Dropout(config.head_dropout)
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    def embed_frames(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(batch, T, 3, S, S) or (N, 3, S, S) motion images -> the spatial CLS embeddings, same leading dims."""
        lead = pixel_values.shape[:-3]
        flat = pixel_values.reshape(-1, *pixel_values.shape[-3:])
        cls = self.spatial_encoder(flat).last_hidden_state[:, 0]
        return cls.reshape(*lead, -1)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        class_weights: torch.Tensor | None = None,
        frame_embeddings: torch.Tensor | None = None,
        **kwargs,
    ) -> MERSpottingOutput:
        r"""
        pixel_values (`(batch, T, 3, S, S)`): encoded motion images (`MERSpottingProcessor.encode`), T <= window.
        frame_embeddings (`(batch, T, spatial_hidden)`): instead of pixel_values, precomputed `embed_frames`.
        labels (`(batch, T)`): 0 background, 1 micro, 2 macro, -100 ignored; gives `loss`.
        class_weights (`(3,)`): per-class weights of the loss.
        """
        if (pixel_values is None) == (frame_embeddings is None):
            raise ValueError("give exactly one of pixel_values (batch, T, 3, S, S) and frame_embeddings (batch, T, hidden)")
        if frame_embeddings is None:
            if pixel_values.dim() != 5:
                raise ValueError(f"pixel_values must be (batch, T, 3, S, S), got shape {tuple(pixel_values.shape)}")
            frame_embeddings = self.embed_frames(pixel_values)
        t = frame_embeddings.shape[1]
        if t > self.config.window:
            raise ValueError(f"got {t} frames but the model's window is {self.config.window}: score longer videos "
                             "with score_video / score_stream")
        x = self.input_projection(frame_embeddings) + self.temporal_position_embeddings[:, :t]
        for layer in self.temporal_layers:
            x, _ = layer(x, None)
        hidden = self.temporal_layernorm(x)
        logits = self.classifier(self.dropout(hidden))
        loss = None if labels is None else framewise_cross_entropy(logits, labels, class_weights)
        return MERSpottingOutput(loss=loss, logits=logits, frame_embeddings=frame_embeddings, last_hidden_state=hidden)

    # ------------------------------------------------------------------------------ long videos
    @torch.no_grad()
    def score_video(self, pixel_values: torch.Tensor | np.ndarray, batch_size: int = 16) -> np.ndarray:
        """(N, 3, S, S) motion images of a whole video -> (N, 3) per-frame probabilities, window by window."""
        images = torch.as_tensor(pixel_values, dtype=torch.float32)
        plan = window_plan(images.shape[0], self.config.window)
        out = np.zeros((images.shape[0], self.config.num_labels), dtype=np.float32)
        for first in range(0, len(plan), batch_size):
            chunk = plan[first:first + batch_size]
            windows = self._score_windows([images[s:e] for s, e, _, _ in chunk])
            for (start, _stop, keep_from, keep_to), probs in zip(chunk, windows):
                out[keep_from:keep_to] = probs[keep_from - start:keep_to - start]
        return out

    @torch.no_grad()
    def score_stream(self, images: Iterable[torch.Tensor | np.ndarray]) -> Iterator[np.ndarray]:
        """Motion images (3, S, S) one at a time -> per-frame probabilities (3,) in order, holding at most one
        window of frames: the same windows and the same scores as `score_video` on the whole video."""
        window = self.config.window
        hop, quarter = max(1, window // 2), window // 4
        held: list[torch.Tensor] = []  # frames from `base` on
        base, k, seen = 0, 0, 0
        for image in images:
            held.append(torch.as_tensor(image, dtype=torch.float32))
            seen += 1
            while seen >= k * hop + window:  # window k is complete
                start = k * hop
                probs = self._score_windows([torch.stack(held[start - base:start - base + window])])[0]
                keep_from = 0 if k == 0 else start + quarter
                yield from probs[keep_from - start:start + quarter + hop - start]
                k += 1
                drop = k * hop - base
                del held[:drop]
                base += drop
        for start, stop, keep_from, keep_to in window_plan(seen, window):
            if start < k * hop:
                continue
            probs = self._score_windows([torch.stack(held[start - base:stop - base])])[0]
            yield from probs[keep_from - start:keep_to - start]

    def _score_windows(self, windows: list[torch.Tensor]) -> list[np.ndarray]:
        """Windows of (T_i, 3, S, S) -> softmax probabilities (T_i, 3) each (windows of one length share a batch)."""
        device = next(self.parameters()).device
        results: list[np.ndarray | None] = [None] * len(windows)
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            by_length.setdefault(w.shape[0], []).append(i)
        for _, members in by_length.items():
            batch = torch.stack([windows[i] for i in members]).to(device)
            probs = self(pixel_values=batch).logits.float().softmax(-1).cpu().numpy()
            for i, p in zip(members, probs):
                results[i] = p
        return results  # type: ignore[return-value]
