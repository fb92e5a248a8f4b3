"""Which frames feed the model, and how missing in-between frames are synthesised without a CNN.

Positions are indices into the clip, possibly fractional: a fractional position lies between two real
frames and is synthesised (the official code calls RIFE, a CNN, here: linear blending or flow-based
warping). The onset itself is never sampled: flow is measured from it, so it would be all zeros.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .optical_flow import dense_flow

SAMPLINGS = ("apex", "uniform")
INTERPOLATIONS = ("blend", "warp")


def apex_positions(onset: int, apex: int, offset: int, num_frames: int) -> np.ndarray:
    """`num_frames` positions centred on the apex inside (onset, offset].

    With enough frames, a run of consecutive frames with the apex in the middle (index num_frames // 2),
    shifted to stay inside (onset, offset]. Otherwise, evenly spaced positions from the onset up to
    the apex (apex in the middle slot) and from the apex to the offset (offset in the last slot).
    """
    if offset - onset >= num_frames:
        start = min(max(apex - num_frames // 2, onset + 1), offset - num_frames + 1)
        return np.arange(start, start + num_frames, dtype=np.float64)
    centre = num_frames // 2
    left = onset + (apex - onset) * np.arange(1, centre + 2) / (centre + 1)  # ends on the apex
    right_count = num_frames - centre - 1
    right = apex + (offset - apex) * np.arange(1, right_count + 1) / max(right_count, 1)
    return np.concatenate([left, right])


def uniform_positions(onset: int, offset: int, num_frames: int) -> np.ndarray:
    """`num_frames` evenly spaced positions in (onset, offset], ending on the offset.

    Rounded to real frames when the clip has at least `num_frames` frames after the onset (the spacing
    is then >= 1, so no frame repeats); fractional (synthesised) otherwise.
    """
    positions = onset + (offset - onset) * np.arange(1, num_frames + 1) / num_frames
    if offset - onset >= num_frames:
        positions = np.round(positions)
    return positions


def sample_positions(sampling: str, onset: int, apex: int, offset: int, num_frames: int) -> np.ndarray:
    """Dispatch on the processor's `sampling` setting; indices are clip indices, not frame numbers."""
    if sampling == "apex":
        return apex_positions(onset, apex, offset, num_frames)
    if sampling == "uniform":
        return uniform_positions(onset, offset, num_frames)
    raise ValueError(f"sampling={sampling!r} is not supported; choose one of {list(SAMPLINGS)}")


def positions_to_frame_numbers(positions: np.ndarray, frame_numbers: list[int]) -> list[float]:
    """Clip positions -> frame numbers (interpolated between neighbours for synthesised frames)."""
    return [float(x) for x in np.interp(positions, np.arange(len(frame_numbers)), frame_numbers)]


def _warp(image: np.ndarray, flow: np.ndarray, factor: float) -> np.ndarray:
    """Backward-warp `image` by `factor` times `flow`: out(p) = image(p + factor * flow(p))."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = grid_x + factor * flow[..., 0]
    map_y = grid_y + factor * flow[..., 1]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def synthesise(
    frame_at: Callable[[int], np.ndarray],
    position: float,
    interpolation: str,
    flow_method: str,
    pair_flows: dict[int, np.ndarray],
) -> np.ndarray:
    """The frame at a (possibly fractional) clip position.

    blend: (1 - a) * frame[i] + a * frame[i + 1]. warp: both neighbours are moved along the flow between
    them to time a, then blended, which keeps edges sharp where blending would ghost them. `pair_flows`
    caches the neighbour flows across calls of one clip.
    """
    index = int(np.floor(position + 1e-9))
    alpha = float(position - index)
    if alpha < 1e-6:
        return frame_at(index)
    first, second = frame_at(index), frame_at(index + 1)
    if interpolation == "warp":
        if index not in pair_flows:
            pair_flows[index] = dense_flow(first, second, flow_method)
        flow = pair_flows[index]
        first = _warp(first, flow, -alpha)
        second = _warp(second, flow, 1.0 - alpha)
    elif interpolation != "blend":
        raise ValueError(f"interpolation={interpolation!r} is not supported; choose one of {list(INTERPOLATIONS)}")
    mixed = (1.0 - alpha) * first.astype(np.float32) + alpha * second.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
