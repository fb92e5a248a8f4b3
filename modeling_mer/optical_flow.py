"""Dense optical flow (OpenCV, no CNN): the estimators, reducing flow to a size, removing the head's motion.

Flow is always computed on grayscale uint8 frames and returned as a float32 (H, W, 2) array of pixel
displacements (u to the right, v downwards) from the first frame to the second, which is what
`cv2.calcOpticalFlowFarneback` returns. Estimators are cached per process: DIS and TV-L1 objects are
costly to build and are not picklable, so they must never live on the processor itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

# The paper's Farneback parameters: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags.
FARNEBACK_PARAMS = (0.5, 3, 15, 3, 5, 1.2, 0)

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FlowMethod:
    """One optical-flow estimator: `make()` builds the (prev_gray, next_gray) -> (H, W, 2) float32 function
    (once per process), `description` is the text of `--help` and the docs, `missing()` says why it cannot
    run here (None when it can)."""

    name: str
    make: Callable[[], FlowFn]
    description: str
    missing: Callable[[], str | None] = lambda: None


# The flow methods, in one registry: the processor's `flow=` check, train.py's --flow choices and --help
# derive from it. A new method is one function that builds the estimator plus one register_flow_method line.
FLOW_METHODS: dict[str, FlowMethod] = {}


def register_flow_method(name: str, make: Callable[[], FlowFn], description: str,
                         missing: Callable[[], str | None] | None = None) -> FlowMethod:
    """Add a flow method (`flow=name` in the processor, `--flow name` in train.py)."""
    if name in FLOW_METHODS:
        raise ValueError(f"flow method {name!r} is already registered")
    method = FlowMethod(name, make, description, missing or (lambda: None))
    FLOW_METHODS[name] = method
    flow_function.cache_clear()
    return method


def _farneback() -> FlowFn:
    return lambda prev, nxt: cv2.calcOpticalFlowFarneback(prev, nxt, None, *FARNEBACK_PARAMS)


def _dis() -> FlowFn:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return lambda prev, nxt: dis.calc(prev, nxt, None)


def _tvl1() -> FlowFn:
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return lambda prev, nxt: tvl1.calc(prev, nxt, None)


def _tvl1_missing() -> str | None:
    if hasattr(cv2, "optflow"):
        return None
    return "flow='tvl1' needs cv2.optflow: install opencv-contrib-python-headless (the contrib build; any version from 4.8)"


def check_flow_method(method: str) -> str:
    """Validate a flow method name early, with the list of valid names in the error."""
    if method not in FLOW_METHODS:
        raise ValueError(f"flow={method!r} is not supported; choose one of {list(FLOW_METHODS)}")
    reason = FLOW_METHODS[method].missing()
    if reason:
        raise ValueError(reason)
    return method


@cache
def flow_function(method: str) -> FlowFn:
    """A function (prev_gray, next_gray) -> (H, W, 2) float32 flow for `method`."""
    return FLOW_METHODS[check_flow_method(method)].make()


register_flow_method("farneback", _farneback, "OpenCV's Farneback with the paper's parameters (SLSTT)")
register_flow_method("dis", _dis, "OpenCV's DIS, medium preset: fast, robust on low-texture faces")
register_flow_method("tvl1", _tvl1, "TV-L1 (opencv-contrib's cv2.optflow): the most accurate, the slowest", _tvl1_missing)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) or gray (H, W) uint8 -> contiguous gray uint8 (H, W) (DIS rejects views)."""
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def dense_flow(prev: np.ndarray, nxt: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Flow from `prev` to `nxt` (RGB or gray uint8 frames of one size) as float32 (H, W, 2)."""
    return flow_function(method)(to_gray(prev), to_gray(nxt)).astype(np.float32, copy=False)


HEAD_MOTIONS = ("none", "translation", "affine")


def reduce_flow(flow: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 2) flow in pixels of an H x W image -> (size, size, 2) in pixels of a size x size image.

    Area averaging (each output vector is the mean displacement of the input pixels it covers) then the
    vectors rescaled by size / W and size / H: a 1 px motion at 240 px is 0.133 px at 32 px, the same
    motion measured in the smaller image's pixels. Flow computed on a large crop and reduced this way
    keeps sub-pixel motion that flow computed on the small image itself would lose in quantisation.
    """
    height, width = flow.shape[:2]
    if (height, width) == (size, size):
        return flow.astype(np.float32, copy=False)
    interpolation = cv2.INTER_AREA if size <= min(height, width) else cv2.INTER_LINEAR
    reduced = cv2.resize(flow.astype(np.float32, copy=False), (size, size), interpolation=interpolation)
    reduced[..., 0] *= size / width
    reduced[..., 1] *= size / height
    return reduced


def remove_head_motion(flow: np.ndarray, model: str = "affine", region: float = 0.7, iterations: int = 3) -> np.ndarray:
    """Subtract the rigid motion of the face region from a (H, W, 2) flow field.

    The head drifts, tilts and approaches the camera by more than a micro-expression moves the face
    (a few pixels against a fraction of one): that motion is one translation ("translation") or one
    affine field ("affine": translation, rotation, scale and shear) over the face, fitted here by
    iteratively reweighted least squares (Huber-like weights, so the local expression and the static
    background count little) on the central `region` fraction of the crop, where the face is, and
    subtracted everywhere. What remains is the non-rigid, local motion.
    """
    if model not in HEAD_MOTIONS:
        raise ValueError(f"head_motion={model!r} is not supported; choose one of {list(HEAD_MOTIONS)}")
    if model == "none":
        return flow
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs, ys = xs / width - 0.5, ys / height - 0.5  # centred, in crop units
    basis = np.stack([np.ones_like(xs), xs, ys], axis=-1) if model == "affine" else np.ones((height, width, 1), np.float32)
    inside = (np.abs(xs) <= region / 2) & (np.abs(ys) <= region / 2)
    a, b = basis[inside].astype(np.float64), flow[inside].astype(np.float64)  # (N, P), (N, 2)
    weights = np.ones(len(b))
    for _ in range(iterations + 1):
        sw = np.sqrt(weights)[:, None]
        coef, *_ = np.linalg.lstsq(a * sw, b * sw, rcond=None)  # (P, 2)
        residual = np.linalg.norm(b - a @ coef, axis=1)
        scale = 1.5 * float(np.median(residual)) + 1e-6
        weights = 1.0 / np.maximum(1.0, residual / scale)
    rigid = (basis.reshape(-1, basis.shape[-1]) @ coef).reshape(height, width, 2)
    return (flow - rigid).astype(np.float32)
