"""Flow images -> 3-channel pictures for a ViT, vectorised in torch over any leading dimensions.

Both encoders take flow shaped (..., 2, H, W) (u, v in pixels) and return RGB in [0, 1] shaped
(..., 3, H, W). Training encodes per batch after flow-aware augmentation, so these must be cheap and
deterministic; the processor uses the very same functions, so inference matches training exactly.
"""

from __future__ import annotations

import math

import torch

# OpenCV's HSV->RGB sector table: for each 60-degree sector, which of (v, p, q, t) goes to (b, g, r).
_SECTOR_BGR = torch.tensor([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]])


def _check_flow(flow: torch.Tensor) -> None:
    if flow.ndim < 3 or flow.shape[-3] != 2:
        raise ValueError(f"flow must be shaped (..., 2, H, W), got {tuple(flow.shape)}")


def encode_hsv(flow: torch.Tensor) -> torch.Tensor:
    """The official SLSTT drawing: hue = flow angle, full saturation, value = min-max magnitude.

    Emulates the OpenCV recipe bit for bit in its 8-bit steps: hue = floor(angle_deg / 2) in 0..179,
    value = floor(min-max normalised magnitude * 255) per image (0 everywhere when the magnitude is
    constant, as `cv2.normalize` does), `cv2.COLOR_HSV2RGB` on 8-bit levels, divided by 255; agrees with OpenCV within one level.
    The flooring mirrors numpy's truncation when the official code assigns floats into a uint8 array.
    The amplitude of the motion is lost (each image is stretched to 0..255): use `encode_uv` to keep it.
    """
    _check_flow(flow)
    flow = flow.float()
    u, v = flow[..., 0, :, :], flow[..., 1, :, :]
    magnitude = torch.hypot(u, v)
    angle = torch.rad2deg(torch.atan2(v, u)) % 360.0
    hue = torch.floor(angle / 2.0)
    low = magnitude.amin(dim=(-2, -1), keepdim=True)
    span = magnitude.amax(dim=(-2, -1), keepdim=True) - low
    scale = torch.where(span > 1e-12, 255.0 / span.clamp_min(1e-12), torch.zeros_like(span))
    value = torch.floor((magnitude - low) * scale).clamp(0, 255) / 255.0
    # HSV -> RGB with saturation 1 (OpenCV's float algorithm on h * 2 degrees).
    h = hue * 2.0 / 60.0
    h = torch.where(h >= 6.0, h - 6.0, h)
    sector = torch.floor(h)
    frac = h - sector
    table = torch.stack([value, torch.zeros_like(value), value * (1 - frac), value * frac], dim=-1)
    index = _SECTOR_BGR.to(flow.device)[sector.long()]  # (..., H, W, 3) indices into table, as b, g, r
    bgr = torch.gather(table, -1, index)
    rgb = bgr.flip(-1).movedim(-1, -3)
    # OpenCV's 8-bit conversion lands on the floor of these values (measured: 98% exact, else 1 level).
    return torch.floor(rgb * 255.0 + 1e-3) / 255.0


def encode_uv(flow: torch.Tensor, scale: float) -> torch.Tensor:
    """u, v and magnitude as three channels with one fixed scale for every clip.

    Channels: 0.5 + u / (2 * scale), 0.5 + v / (2 * scale), magnitude / scale, clipped to [0, 1]; a
    displacement of `scale` pixels (at the processor's image_size) reaches the end of the range. Unlike
    the hsv drawing, a clip with twice the motion gives twice the signal.
    """
    _check_flow(flow)
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"uv_scale must be a positive number of pixels, got {scale!r}")
    flow = flow.float()
    u, v = flow[..., 0, :, :], flow[..., 1, :, :]
    channels = torch.stack([0.5 + u / (2 * scale), 0.5 + v / (2 * scale), torch.hypot(u, v) / scale], dim=-3)
    return channels.clamp(0.0, 1.0)


MOTION_BOUND = 3.0  # |channel| stays below this: large motions (a blink, a head turn left over) are compressed


def encode_motion(flow: torch.Tensor, unit: float) -> torch.Tensor:
    """u, v and magnitude in units of `unit` pixels, for models trained on real-scale micro-motion.

    Channels: u / unit, v / unit, magnitude / unit - 1, each passed through MOTION_BOUND * tanh(x /
    MOTION_BOUND): linear (amplitude kept, sign kept) up to about twice the unit, smoothly bounded beyond.
    No mean/std normalisation follows (the channels are already in standard units). The processor passes
    `unit = motion_unit * image_size` (`motion_unit` a fraction of the face crop's side), so the same
    physical motion gives the same input whatever the image_size or flow_size. Unlike `encode_uv`, which
    clips at its scale, the typical motion lands near 1 and the rare large one is not cut off.
    """
    _check_flow(flow)
    if not (isinstance(unit, int | float) and math.isfinite(unit) and unit > 0):
        raise ValueError(f"motion unit must be a positive number of pixels, got {unit!r}")
    flow = flow.float()
    u, v = flow[..., 0, :, :], flow[..., 1, :, :]
    channels = torch.stack([u / unit, v / unit, torch.hypot(u, v) / unit - 1.0], dim=-3)
    return MOTION_BOUND * torch.tanh(channels / MOTION_BOUND)


def normalize(images: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """(x - mean) / std per channel on (..., 3, H, W)."""
    mean_t = torch.tensor(mean, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    std_t = torch.tensor(std, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    return (images - mean_t) / std_t
