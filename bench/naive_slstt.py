"""The official SLSTT forward pass, re-implemented as the baseline of `bench/throughput.py`.

Why it exists: the speed-up of this project is only meaningful against the way the official code
executes, so this module mirrors that execution rather than our own: float32, eager attention (an explicit
`softmax(QK^T / sqrt(d)) V`), one ViT call per frame in a Python loop with the backbone under
`torch.no_grad()` (frozen, as in the official training), and the LSTM stepped one frame at a time
(`nn.LSTM` fed a length-1 sequence and its carried state). The parameter names are those of the official
checkpoints (`vit.transformer.blocks.N.attn.proj_q`, `lstm.weight_ih_l0`, `fc1`, ...), so the golden
fixtures in `shared/reference/` load into it unchanged and `tests/test_bench.py` checks that it
reproduces the official logits.

One deliberate difference: the official patch embedding is a strided `nn.Conv2d`; the project has no
convolution anywhere, so here it is the same linear map over `F.unfold` patches (identical mathematics,
weight kept in the conv layout `(hidden, channels, patch, patch)`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class NaiveSLSTTConfig:
    """Dimensions of the official model (defaults: ViT-B/16 at 384, LSTM 3x512, FC 512->256->5)."""

    image_size: int = 384
    patch_size: int = 16
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    num_classes: int = 5
    aggregation: str = "lstm"  # "lstm" (SLSTT-LSTM) or "mean" (SLSTT-Mean)
    lstm_hidden_size: int = 512
    lstm_num_layers: int = 3
    fc1_out: int = 256
    layer_norm_eps: float = 1e-6
    gelu_approximate: str = "tanh"

    def __post_init__(self) -> None:
        if self.aggregation not in ("lstm", "mean"):
            raise ValueError(f"aggregation must be 'lstm' or 'mean', got {self.aggregation!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})")


class UnfoldPatchEmbedding(nn.Module):
    """Strided-conv patch embedding computed as `F.unfold` + matrix product (no convolution)."""

    def __init__(self, channels: int, hidden: int, patch: int):
        super().__init__()
        self.patch = patch
        self.weight = nn.Parameter(torch.randn(hidden, channels, patch, patch) * 0.02)
        self.bias = nn.Parameter(torch.zeros(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, kernel_size=self.patch, stride=self.patch)  # (B, C*p*p, L), channel-major
        w = self.weight.reshape(self.weight.shape[0], -1)  # (D, C*p*p), same ordering
        return cols.transpose(1, 2) @ w.t() + self.bias  # (B, L, D)


class PositionalEmbedding1D(nn.Module):
    def __init__(self, seq_len: int, dim: int):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.randn(1, seq_len, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embedding


class MultiHeadedSelfAttention(nn.Module):
    """Eager attention, as the official code: scores materialised, softmax, then the product with V."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.proj_q = nn.Linear(dim, dim)
        self.proj_k = nn.Linear(dim, dim)
        self.proj_v = nn.Linear(dim, dim)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = (p(x).view(b, s, self.heads, -1).transpose(1, 2) for p in (self.proj_q, self.proj_k, self.proj_v))
        scores = q @ k.transpose(-2, -1) / (k.shape[-1] ** 0.5)  # (B, H, S, S)
        h = F.softmax(scores, dim=-1) @ v
        return h.transpose(1, 2).reshape(b, s, d)


class PositionWiseFeedForward(nn.Module):
    def __init__(self, dim: int, ff_dim: int, approximate: str):
        super().__init__()
        self.fc1 = nn.Linear(dim, ff_dim)
        self.fc2 = nn.Linear(ff_dim, dim)
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate=self.approximate))


class Block(nn.Module):
    def __init__(self, cfg: NaiveSLSTTConfig):
        super().__init__()
        dim = cfg.hidden_size
        self.attn = MultiHeadedSelfAttention(dim, cfg.num_attention_heads)
        self.proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.pwff = PositionWiseFeedForward(dim, cfg.intermediate_size, cfg.gelu_approximate)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.proj(self.attn(self.norm1(x)))
        return x + self.pwff(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, cfg: NaiveSLSTTConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class ViT(nn.Module):
    """The official ViT; `features` gives the final-LayerNorm CLS token of ONE frame batch `(B, 3, H, W)`."""

    def __init__(self, cfg: NaiveSLSTTConfig):
        super().__init__()
        dim = cfg.hidden_size
        self.patch_embedding = UnfoldPatchEmbedding(3, dim, cfg.patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.positional_embedding = PositionalEmbedding1D((cfg.image_size // cfg.patch_size) ** 2 + 1, dim)
        self.transformer = Transformer(cfg)
        self.norm = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.fc = nn.Linear(dim, cfg.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embedding(x)  # (B, L, D)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.transformer(self.positional_embedding(x))
        return self.norm(x)[:, 0]


class NaiveSLSTT(nn.Module):
    """SLSTT-LSTM / SLSTT-Mean executed frame by frame, as the official training and evaluation loops do."""

    def __init__(self, cfg: NaiveSLSTTConfig):
        super().__init__()
        self.cfg = cfg
        self.vit = ViT(cfg)
        self.lstm = nn.LSTM(cfg.hidden_size, cfg.lstm_hidden_size, num_layers=cfg.lstm_num_layers)
        self.fc1 = nn.Linear(cfg.lstm_hidden_size, cfg.fc1_out)
        self.fc2 = nn.Linear(cfg.fc1_out, cfg.num_classes)
        self.vit.requires_grad_(False)  # frozen backbone; only the head learns
        if cfg.aggregation == "mean":
            self.vit.fc.requires_grad_(True)  # SLSTT-Mean learns the ViT's own classifier

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """`clips (batch, frames, 3, H, W)` -> logits `(batch, classes)`."""
        if clips.dim() != 5:
            raise ValueError(f"clips must be (batch, frames, 3, H, W), got shape {tuple(clips.shape)}")
        state = None
        out = None
        frame_logits = []
        for t in range(clips.shape[1]):  # one ViT call per frame
            with torch.no_grad():
                feat = self.vit.features(clips[:, t])  # (B, D)
            if self.cfg.aggregation == "mean":
                frame_logits.append(self.vit.fc(feat))
            else:
                out, state = self.lstm(feat.unsqueeze(0), state)  # one LSTM step: (1, B, hidden)
        if self.cfg.aggregation == "mean":
            return torch.stack(frame_logits, dim=1).mean(dim=1)
        return self.fc2(F.relu(self.fc1(out[-1])))


def load_official_state_dict(model: NaiveSLSTT, state_dict: dict[str, torch.Tensor]) -> None:
    """Load an official-format state dict (`module.` prefixes allowed); fail on any missing or extra key."""
    cleaned = {k.removeprefix("module."): v for k, v in state_dict.items() if not k.startswith("__")}
    missing, unexpected = model.load_state_dict(cleaned, strict=False)
    if missing or unexpected:
        raise ValueError(f"official state dict does not match: missing={missing}, unexpected={unexpected}")


__all__ = ["NaiveSLSTTConfig", "NaiveSLSTT", "load_official_state_dict"]
