"""Dense optical flow (OpenCV, no CNN) and apex spotting.

Flow is always computed on grayscale uint8 frames and returned as a float32 (H, W, 2) array of pixel
displacements (u to the right, v downwards) from the first frame to the second, which is what
`cv2.calcOpticalFlowFarneback` returns. Estimators are cached per process: DIS and TV-L1 objects are
costly to build and are not picklable, so they must never live on the processor itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import cv2
import numpy as np

FLOW_METHODS = ("farneback", "dis", "tvl1")

# The paper's Farneback parameters: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags.
FARNEBACK_PARAMS = (0.5, 3, 15, 3, 5, 1.2, 0)

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def check_flow_method(method: str) -> str:
    """Validate a flow method name early, with the list of valid names in the error."""
    if method not in FLOW_METHODS:
        raise ValueError(f"flow={method!r} is not supported; choose one of {list(FLOW_METHODS)}")
    if method == "tvl1" and not hasattr(cv2, "optflow"):
        raise ValueError("flow='tvl1' needs cv2.optflow: install opencv-contrib-python-headless<5")
    return method


@cache
def flow_function(method: str) -> FlowFn:
    """A function (prev_gray, next_gray) -> (H, W, 2) float32 flow for `method`."""
    check_flow_method(method)
    if method == "farneback":

        def farneback(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return cv2.calcOpticalFlowFarneback(prev, nxt, None, *FARNEBACK_PARAMS)

        return farneback
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda prev, nxt: dis.calc(prev, nxt, None)
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return lambda prev, nxt: tvl1.calc(prev, nxt, None)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) or gray (H, W) uint8 -> contiguous gray uint8 (H, W) (DIS rejects views)."""
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def dense_flow(prev: np.ndarray, nxt: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Flow from `prev` to `nxt` (RGB or gray uint8 frames of one size) as float32 (H, W, 2)."""
    return flow_function(method)(to_gray(prev), to_gray(nxt)).astype(np.float32, copy=False)


def spot_apex(frames: Sequence[np.ndarray], method: str = "farneback", max_side: int | None = 128) -> int:
    """Index into `frames` of the frame with the largest mean flow magnitude from `frames[0]`.

    The apex of a micro-expression is its moment of largest displacement from the neutral onset, so the
    long-term flow from the first frame peaks there. Frames are shrunk to `max_side` pixels on their
    longest side first (None keeps them): spotting needs the location of the peak, not fine detail, and
    a CASME II clip has tens of frames. Never returns 0 (the onset has no motion by definition).
    """
    if len(frames) < 2:
        raise ValueError(f"spot_apex needs at least 2 frames, got {len(frames)}")
    grays = [to_gray(np.asarray(f)) for f in frames]
    shape = grays[0].shape
    for i, g in enumerate(grays):
        if g.shape != shape:
            raise ValueError(f"spot_apex: frame {i} has size {g.shape}, frame 0 has {shape}")
    if max_side is not None and max(shape) > max_side:
        scale = max_side / max(shape)
        size = (max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale)))
        grays = [cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in grays]
    fn = flow_function(check_flow_method(method))
    magnitudes = [float(np.linalg.norm(fn(grays[0], g), axis=-1).mean()) for g in grays[1:]]
    return 1 + int(np.argmax(magnitudes))
