"""One square face box per clip, from OpenCV's Haar cascade on the onset frame (no CNN).

A single box for the whole clip keeps the face still between frames, so the long-term flow measures
facial motion and not box jitter. Detection runs on a copy shrunk to `DETECT_SIDE` pixels for speed.
"""

from __future__ import annotations

import warnings
from functools import cache

import cv2
import numpy as np

DETECT_SIDE = 320
CASCADE_FILE = "haarcascade_frontalface_default.xml"

Box = tuple[int, int, int, int]  # x, y, width, height in pixels of the full frame


@cache
def _cascade() -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + CASCADE_FILE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"cannot load the Haar cascade {path}: install opencv-contrib-python-headless<5")
    return cascade


def detect_face(frame: np.ndarray) -> Box | None:
    """The largest frontal face in an RGB uint8 frame, or None."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, DETECT_SIDE / max(gray.shape))
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    min_side = max(20, min(gray.shape) // 5)
    faces = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: int(f[2]) * int(f[3]))
    return tuple(int(round(c / scale)) for c in (x, y, w, h))  # type: ignore[return-value]


def square_box(face: Box, margin: float, width: int, height: int) -> Box:
    """A square around `face`, grown by `margin` of its side on each side, shifted to fit the frame."""
    x, y, w, h = face
    side = min(int(round(max(w, h) * (1 + 2 * margin))), width, height)
    cx, cy = x + w / 2, y + h / 2
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return (x0, y0, side, side)


def check_box(box: object, width: int, height: int, where: str) -> Box:
    """Validate a user-given [x, y, w, h] box against the frame size."""
    if not (isinstance(box, list | tuple) and len(box) == 4 and all(isinstance(c, int | np.integer) for c in box)):
        raise ValueError(f"{where}: crop must be 'haar', 'none' or [x, y, w, h] integers, got {box!r}")
    x, y, w, h = (int(c) for c in box)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"{where}: crop box {[x, y, w, h]} does not fit inside the {width}x{height} frames")
    return (x, y, w, h)


def face_box(
    onset_frame: np.ndarray, crop: str | list[int], margin: float, on_no_face: str, where: str
) -> Box:
    """The crop box for a clip, following the processor's `crop` / `on_no_face` settings."""
    height, width = onset_frame.shape[:2]
    if crop == "none":
        return (0, 0, width, height)
    if crop != "haar":
        return check_box(crop, width, height, where)
    face = detect_face(onset_frame)
    if face is not None:
        return square_box(face, margin, width, height)
    if on_no_face == "full_frame":
        warnings.warn(f"{where}: no face found on the onset frame; using the full frame", stacklevel=3)
        return (0, 0, width, height)
    raise ValueError(
        f"{where}: no face found on the onset frame by the Haar cascade; pass crop='none' for pre-cropped "
        "faces, crop=[x, y, w, h], or on_no_face='full_frame'"
    )


def crop_resize(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    """Cut `box` out of `frame` and resize it to size x size (area filter when shrinking)."""
    x, y, w, h = box
    patch = frame[y : y + h, x : x + w]
    shrink = w > size or h > size
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
