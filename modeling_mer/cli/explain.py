"""Where the model looked: spatial attention rollout over the face and a weight per sampled frame.

Spatial: attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020)
through the ViT of each flow image. Raw attention of one layer says little, because the residual
connection carries each token on to the next layer; rollout averages the heads, adds the identity for
the residual, renormalises the rows and multiplies the layers, and the CLS row of the product is how
much each patch fed the frame embedding. It is a map of information flow, not a causal attribution.

Temporal: how much each sampled frame fed the clip embedding.
    transformer aggregator -> the same rollout through the temporal layers, row of the clip token;
    lstm aggregator        -> gradient x input at the frame embeddings (the LSTM's inputs), L2 norm
                              per frame, for the predicted class: a recurrent net has no attention;
    mean aggregator        -> uniform: the clip embedding is exactly the average of the frames;
    any other registered aggregator -> gradient x input, as the lstm.
Each `Explanation` carries the name of the method that produced its temporal weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

TEMPORAL_METHODS = {
    "transformer": "clip-token attention rollout",
    "lstm": "gradient x input norm per frame",
    "mean": "uniform (mean aggregation)",
}


@dataclass
class Explanation:
    """One clip's explanation.

    logits: (num_labels,) of the forward pass that was explained.
    target: the class index explained (the predicted one unless asked otherwise).
    spatial: (frames, grid_h, grid_w) rollout of the CLS token over the patches, each frame summing to 1.
    temporal: (frames,) weight of each sampled frame, summing to 1.
    temporal_method: how `temporal` was obtained (see `TEMPORAL_METHODS`).
    """

    logits: np.ndarray
    target: int
    spatial: np.ndarray
    temporal: np.ndarray
    temporal_method: str


def attention_rollout(attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-layer attention `(..., heads, N, N)` (first layer first) -> rollout `(..., N, N)`.

    Row i of the result is how much each input token flowed into output token i, residuals included.
    """
    if not attentions:
        raise ValueError("attention_rollout needs the attention of at least one layer")
    rollout = None
    for layer in attentions:
        if layer is None:
            raise ValueError("a layer returned no attention weights: run the model with eager attention")
        joint = layer.float().mean(dim=-3)  # average the heads: (..., N, N)
        joint = joint + torch.eye(joint.shape[-1], dtype=joint.dtype, device=joint.device)  # the residual
        joint = joint / joint.sum(dim=-1, keepdim=True)
        rollout = joint if rollout is None else joint @ rollout  # later layers act on earlier mixtures
    return rollout


def cls_rollout_grid(spatial_attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    """ViT attentions per layer `(B, T, heads, 1+P, 1+P)` -> CLS rollout on the patch grid `(B, T, gh, gw)`.

    The CLS token's own share is dropped and the patch shares renormalised to sum to 1 per frame.
    """
    rollout = attention_rollout(spatial_attentions)  # (B, T, 1+P, 1+P)
    patches = rollout[..., 0, 1:]  # (B, T, P)
    side = int(round(patches.shape[-1] ** 0.5))
    if side * side != patches.shape[-1]:
        raise ValueError(f"{patches.shape[-1]} patch tokens do not form a square grid")
    patches = patches / patches.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return patches.reshape(*patches.shape[:-1], side, side)


def clip_token_rollout(temporal_attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    """Temporal attentions per layer `(B, heads, 1+T, 1+T)` -> weight per frame `(B, T)`, summing to 1."""
    rollout = attention_rollout(temporal_attentions)  # (B, 1+T, 1+T)
    frames = rollout[:, 0, 1:]
    return frames / frames.sum(dim=-1, keepdim=True).clamp_min(1e-12)


class _CaptureInputs:
    """Forward pre-hook that makes the aggregator's frame embeddings a leaf requiring grad and keeps it.

    Attributing at the frame embeddings (rather than at the pixels) works with a frozen spatial
    encoder too, which runs without gradients (`freeze_spatial`, the official setting).
    """

    def __init__(self) -> None:
        self.frames: torch.Tensor | None = None

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        frames = args[0].detach().requires_grad_(True)
        self.frames = frames
        return (frames, *args[1:])


def explain(
    model: nn.Module,
    pixel_values: torch.Tensor,
    target: int | None = None,
    interpolate_pos_encoding: bool | None = None,
) -> Explanation:
    """Run `model` (a `MERForVideoClassification` with eager attention) on ONE clip and explain it.

    pixel_values: (1, frames, 3, H, W) as the processor makes them. target: class to explain for the
    gradient-based temporal weights; by default the predicted class.
    """
    if pixel_values.dim() != 5 or pixel_values.shape[0] != 1:
        raise ValueError(f"explain takes one clip, pixel_values (1, frames, 3, H, W), got {tuple(pixel_values.shape)}")
    config = model.config
    if config._attn_implementation != "eager":
        raise ValueError(
            "explain needs attention weights: load the model with attn_implementation='eager' "
            f"(it uses {config._attn_implementation!r})"
        )
    aggregation = config.aggregation
    capture = _CaptureInputs()
    gradient = aggregation not in ("transformer", "mean")  # the lstm, and any aggregator registered later
    handle = model.mer.aggregator.register_forward_pre_hook(capture) if gradient else None
    was_training = model.training
    model.eval()
    try:
        with torch.set_grad_enabled(gradient):
            outputs = model(
                pixel_values=pixel_values,
                output_attentions=True,
                interpolate_pos_encoding=interpolate_pos_encoding,
            )
        logits = outputs.logits[0].detach().float()
        target = int(logits.argmax()) if target is None else int(target)
        if not 0 <= target < logits.shape[-1]:
            raise ValueError(f"target={target} is not a class index (the model has {logits.shape[-1]} classes)")
        spatial = cls_rollout_grid(outputs.spatial_attentions)[0]
        temporal = _temporal_weights(aggregation, outputs, capture, target, pixel_values.shape[1])
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    return Explanation(
        logits=logits.cpu().numpy(),
        target=target,
        spatial=spatial.detach().cpu().numpy(),
        temporal=temporal.detach().cpu().numpy(),
        temporal_method=TEMPORAL_METHODS.get(aggregation, TEMPORAL_METHODS["lstm"]),
    )


def _temporal_weights(
    aggregation: str, outputs: object, capture: _CaptureInputs, target: int, num_frames: int
) -> torch.Tensor:
    if aggregation == "transformer":
        return clip_token_rollout(outputs.temporal_attentions)[0]
    if aggregation == "mean":
        return torch.full((num_frames,), 1.0 / num_frames)
    if capture.frames is None:
        raise RuntimeError("the LSTM aggregator was not called: cannot attribute the frames")
    (grad,) = torch.autograd.grad(outputs.logits[0, target], capture.frames)
    scores = (grad * capture.frames).detach()[0].float().norm(dim=-1)  # (T,)
    total = scores.sum()
    if total <= 0:  # a flat gradient: no frame mattered more than another
        return torch.full((num_frames,), 1.0 / num_frames)
    return scores / total


def heat_on_face(heat: np.ndarray, image_size: int, patch_size: int, display_size: int) -> np.ndarray:
    """Patch-grid map `(gh, gw)` -> `(display_size, display_size)` aligned with the face crop.

    Scaled by its largest patch (1 = the most attended patch), not min-max: a near-uniform rollout
    should look near-uniform. The grid covers `gh * patch_size` of the `image_size` input pixels (a
    strided patch embedding drops the remainder); the uncovered border is NaN, drawn transparent.
    """
    gh, gw = heat.shape
    top = float(heat.max())
    scaled = heat.astype(np.float32) / top if top > 0 else np.zeros_like(heat, dtype=np.float32)
    span_h, span_w = min(gh * patch_size, image_size), min(gw * patch_size, image_size)
    placed = np.full((image_size, image_size), np.nan, dtype=np.float32)
    placed[:span_h, :span_w] = cv2.resize(scaled, (span_w, span_h), interpolation=cv2.INTER_NEAREST)
    # nearest keeps patch boundaries honest (one value per patch) and NaN out of the interpolation
    return cv2.resize(placed, (display_size, display_size), interpolation=cv2.INTER_NEAREST)


def save_figure(
    path: str | Path,
    face: np.ndarray,
    heat: np.ndarray,
    flow_image: np.ndarray,
    temporal: np.ndarray,
    frame_numbers: Sequence[float],
    shown_index: int,
    temporal_method: str,
    title: str,
) -> Path:
    """Write the four-panel figure (face, rollout on the face, flow image, frame weights) as a PNG.

    face: RGB uint8 (S, S, 3) crop of the shown frame; heat: (S, S) in [0, 1], NaN where no patch
    covers the face (see `heat_on_face`); flow_image: RGB in
    [0, 1], what the ViT saw for that frame. Written only to `path` (it shows a face), with the Agg
    canvas: no display and no global pyplot state.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"--explain {path}: folder {path.parent} does not exist")
    figure = Figure(figsize=(14, 3.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.5]})
    shown = _frame_label(frame_numbers[shown_index])
    axes[0].imshow(face)
    axes[0].set_title(f"face, frame {shown}")
    axes[1].imshow(face)
    overlay = axes[1].imshow(heat, cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0)
    axes[1].set_title("attention rollout, CLS -> patches")
    figure.colorbar(overlay, ax=axes[1], fraction=0.046, pad=0.04, label="relative to the top patch")
    axes[2].imshow(np.clip(flow_image, 0.0, 1.0))
    axes[2].set_title(f"flow onset -> frame {shown}")
    for ax in axes[:3]:
        ax.set_axis_off()
    colours = ["tab:red" if i == shown_index else "tab:blue" for i in range(len(temporal))]
    axes[3].bar(range(len(temporal)), temporal, color=colours)
    axes[3].set_xticks(range(len(temporal)), [_frame_label(n) for n in frame_numbers], rotation=45, fontsize=8)
    axes[3].set_xlabel("sampled frame (red: shown)")
    axes[3].set_ylabel("weight")
    axes[3].set_title(f"frame weights: {temporal_method}", fontsize=10)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def _frame_label(number: float) -> str:
    """Frame numbers are fractional for synthesised frames: 12.0 -> '12', 12.5 -> '12.5'."""
    return str(int(number)) if float(number).is_integer() else f"{number:.2f}".rstrip("0")


__all__ = [
    "Explanation",
    "TEMPORAL_METHODS",
    "attention_rollout",
    "clip_token_rollout",
    "cls_rollout_grid",
    "explain",
    "heat_on_face",
    "save_figure",
]
