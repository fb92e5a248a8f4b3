"""MERSpottingProcessor: a long video -> per-frame motion on the face, streamed; per-frame scores -> intervals.

    video (file, frame folder, frame list, array)      decoded one frame at a time (video_io.VideoStream)
      -> the face found once (crop settings as the recogniser's) and followed: re-detected every
         `track_every` seconds, the box moved when the head has moved
      -> feature frames at `feature_rate` Hz (every frame of a 30 fps video, every ~6.7th at 200 fps)
      -> flow from the frame `lag` seconds earlier to this one, on the face crop at `flow_size` px,
         the head's rigid motion removed (robust affine fit), area-reduced to `image_size`   [stored once]
      -> u, v, magnitude in units of `motion_unit` of the face side (softly bounded)        [per batch]

Memory is bounded by the lag, not the video's length: a frame is kept only while a later feature frame
still needs it as the start of its flow (about lag x feature_rate frames), and `stream_features` yields
one feature frame at a time. The reverse direction, `post_process`, turns per-frame class probabilities
into intervals the SoftNet way (moving-average smoothing, threshold, peaks at least one interval apart,
interval = peak +/- half width), with the settings the model's config carries.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.image_processing_utils import BaseImageProcessor

try:  # in a try block, which transformers' remote-code import check skips: this names the pip package
    import cv2  # noqa: F401
except ImportError as err:
    raise ImportError(
        'MERSpottingProcessor needs OpenCV and PyAV: pip install "opencv-contrib-python-headless>=4.8" av'
    ) from err

from .face_crop import CROPS, CascadeFileMixin, crop_resize, locate_face
from .flow_encoding import encode_motion
from .optical_flow import (
    HEAD_MOTIONS,
    check_flow_method,
    dense_flow,
    reduce_flow,
    remove_head_motion,
    to_gray,
)
from .video_io import VideoStream, list_frame_folder, open_frames, open_video, to_rgb_array

__all__ = ["MERSpottingProcessor", "window_plan", "smooth", "find_peaks", "scores_to_intervals"]

SPOT_TYPES = ("micro", "macro")


# ------------------------------------------------------------------------------------------- windows
def window_plan(num_frames: int, window: int) -> list[tuple[int, int, int, int]]:
    """Overlapping windows over `num_frames` feature frames and the frames each one scores.

    Windows start every window // 2 frames and hold `window` frames (the last ones fewer). Window k
    scores the frames of its middle half, [start + window // 4, start + window // 4 + window // 2) (window
    0 from frame 0), so every frame is scored once, with at least a quarter window of context on each
    side where the video has it. Returns (start, stop, keep_from, keep_to) per window. The rule depends
    only on frames already seen, so a stream can apply it as frames arrive (`MERForExpressionSpotting.
    score_stream`) and give what the whole-video pass gives.
    """
    if window < 2:
        raise ValueError(f"window must be >= 2 frames, got {window}")
    hop, quarter = max(1, window // 2), window // 4
    plan, k = [], 0
    while True:
        start = k * hop
        keep_from = 0 if k == 0 else start + quarter
        keep_to = start + quarter + hop
        if keep_from >= num_frames:
            break
        plan.append((start, min(start + window, num_frames), keep_from, min(keep_to, num_frames)))
        k += 1
    return plan


# -------------------------------------------------------------------------------- post-processing
def smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over `width` frames (odd; edges averaged over the frames that exist)."""
    values = np.asarray(values, dtype=np.float64)
    if width <= 1 or values.size == 0:
        return values.copy()
    half = width // 2
    padded = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(values.size)
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, values.size)
    return np.round((padded[hi] - padded[lo]) / (hi - lo), 9)  # equal windows give equal values: flat tops stay flat


def find_peaks(values: np.ndarray, height: float, distance: int) -> list[int]:
    """Local maxima >= height (a flat top counts once, at its middle), taken from the highest down, each at
    least `distance` frames from those kept. Returns the kept indices in time order."""
    values = np.asarray(values, dtype=np.float64)
    candidates, i, n = [], 0, values.size
    while i < n:
        j = i
        while j + 1 < n and values[j + 1] == values[i]:
            j += 1
        left = values[i - 1] if i > 0 else -np.inf
        right = values[j + 1] if j + 1 < n else -np.inf
        if values[i] >= height and values[i] > left and values[i] > right:
            candidates.append((i + j) // 2)
        i = j + 1
    kept: list[int] = []
    for c in sorted(candidates, key=lambda k: (-values[k], k)):
        if all(abs(c - k) >= distance for k in kept):
            kept.append(c)
    return sorted(kept)


def scores_to_intervals(
    scores: dict[str, np.ndarray],
    frame_indices: Sequence[int],
    rate: float,
    thresholds: dict[str, float],
    half_widths: dict[str, float],
    smoothing: float,
    shift: float = 0.0,
) -> list[dict[str, Any]]:
    """Per-feature-frame scores of each type -> intervals in the video's frame indices.

    `rate`: feature frames per second. Per type: moving average over `smoothing` seconds, peaks >= the
    type's threshold at least one interval apart, interval = peak +/- half width (seconds -> feature
    frames, at least 1), clipped to the video; `shift` (seconds, may be negative) moves the peak first
    (the baseline centres its interval on the middle of the flow's lag). Returns dicts with onset, offset,
    apex (frame indices), type, score (the smoothed peak), sorted by onset.
    """
    frames = np.asarray(frame_indices, dtype=np.int64)
    out = []
    for kind, values in scores.items():
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            continue
        if values.shape != frames.shape:
            raise ValueError(f"{kind} scores have {values.size} frames, frame_indices {frames.size}")
        k = max(1, int(round(half_widths[kind] * rate)))
        width = max(1, int(round(smoothing * rate)) | 1)
        curve = smooth(values, width)
        for peak in find_peaks(curve, thresholds[kind], 2 * k):
            centre = min(max(peak + int(round(shift * rate)), 0), values.size - 1)
            lo, hi = max(0, centre - k), min(values.size - 1, centre + k)
            out.append({"onset": int(frames[lo]), "offset": int(frames[hi]), "apex": int(frames[centre]),
                        "type": kind, "score": float(curve[peak])})
    return sorted(out, key=lambda r: (r["onset"], r["type"]))


# ----------------------------------------------------------------------------------------- processor
class MERSpottingProcessor(CascadeFileMixin, BaseImageProcessor):
    """Streamed per-frame motion features of long videos, and intervals from per-frame scores.

    Args:
        image_size: side of the per-frame motion image the model sees (the flow is area-reduced to it).
        flow_size: side of the face crop the flow is computed on (small: speed on CPUs; the crop's own side
            if that is smaller).
        lag: seconds between the two frames of each flow (about half a micro-expression: 0.2 s is 6 frames
            at 30 fps, 40 at 200 fps).
        feature_rate: feature frames per second; a faster video is subsampled to it (every frame of a
            slower one is used), so a model sees the same time scale whatever the camera.
        flow: "farneback" (default), "dis" or "tvl1".
        head_motion: "affine" (default), "translation" or "none": the face's rigid motion removed from each flow.
        crop, crop_margin, face_threshold, on_no_face: where the face is, as for the recogniser ("haar",
            "dlib", "dlib-box", "dlib-landmarks", "none" or [x, y, w, h]); on_no_face "full_frame" (default)
            or "error".
        track_every: seconds between re-detections of the face (0: never); the box moves when the new
            detection's centre is more than `track_tolerance` of the side away (or its side changes by more).
        motion_unit: displacement, as a fraction of the face side, that the encoding maps to 1.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        image_size: int = 16,
        flow_size: int = 64,
        lag: float = 0.2,
        feature_rate: float = 30.0,
        flow: str = "farneback",
        head_motion: str = "affine",
        crop: str | list[int] = "haar",
        crop_margin: float = 0.1,
        face_threshold: float | None = None,
        on_no_face: str = "full_frame",
        track_every: float = 1.0,
        track_tolerance: float = 0.1,
        motion_unit: float = 0.0025,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image_size = image_size
        self.flow_size = flow_size
        self.lag = lag
        self.feature_rate = feature_rate
        self.flow = flow
        self.head_motion = head_motion
        self.crop = list(crop) if isinstance(crop, list | tuple) else crop
        self.crop_margin = crop_margin
        self.face_threshold = face_threshold
        self.on_no_face = on_no_face
        self.track_every = track_every
        self.track_tolerance = track_tolerance
        self.motion_unit = motion_unit
        self._validate()


    def _validate(self) -> None:
        for name in ("image_size", "flow_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                raise ValueError(f"{name} must be an integer >= 2 (pixels), got {value!r}")
        if self.flow_size < self.image_size:
            raise ValueError(f"flow_size ({self.flow_size}) must be >= image_size ({self.image_size})")
        for name in ("lag", "feature_rate", "motion_unit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("track_every", "track_tolerance", "crop_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        check_flow_method(self.flow)
        if self.head_motion not in HEAD_MOTIONS:
            raise ValueError(f"head_motion={self.head_motion!r} is not supported; choose one of {list(HEAD_MOTIONS)}")
        if self.on_no_face not in ("error", "full_frame"):
            raise ValueError(f"on_no_face must be 'error' or 'full_frame', got {self.on_no_face!r}")
        if isinstance(self.crop, str) and self.crop not in CROPS:
            raise ValueError(f"crop={self.crop!r} is not supported; use one of {list(CROPS)} or [x, y, w, h]")

    # ------------------------------------------------------------------------------ geometry of time
    def lag_frames(self, fps: float) -> int:
        """The lag in the video's frames (at least 1)."""
        return max(1, int(round(self.lag * fps)))

    def step(self, fps: float) -> float:
        """Video frames per feature frame (1 when the video is not faster than feature_rate)."""
        return max(1.0, fps / self.feature_rate)

    def rate(self, fps: float) -> float:
        """Feature frames per second of a video at `fps`."""
        return fps / self.step(fps)

    @staticmethod
    def _target(i: int, step: float) -> int:
        return int(math.floor(i * step + 0.5))

    def _is_target(self, j: int, step: float) -> bool:
        i = int(math.floor(j / step))
        return any(self._target(c, step) == j for c in (i - 1, i, i + 1, i + 2) if c >= 0)

    # ------------------------------------------------------------------------------------ streaming
    def open(self, video: Any, fps: float | None = None) -> VideoStream:
        """A `VideoStream` over a video file, a frame folder or a list of frame files (fps needed for frames)."""
        if isinstance(video, VideoStream):
            return video
        path = Path(video) if isinstance(video, str | os.PathLike) else None
        if path is not None and path.is_dir():
            files, _ = list_frame_folder(path)
            return open_frames(files, fps or 0.0, source=path)
        if path is not None:
            stream = open_video(path)
            if fps:
                stream.fps = float(fps)
            return stream
        if isinstance(video, list | tuple) and video and isinstance(video[0], str | os.PathLike):
            return open_frames(list(video), fps or 0.0)
        raise ValueError(f"cannot open {type(video).__name__} as a video: give a file, a frame folder or frame paths")

    def stream_features(
        self, frames: Iterable[tuple[int, np.ndarray]], fps: float, where: str = "video"
    ) -> Iterator[dict[str, Any]]:
        """(frame_index, frame) pairs in order -> one dict per feature frame, as soon as it can be computed.

        Keys: index (feature frame number from 0), frame (the video frame index), flow float32 (2, S, S)
        (u, v in pixels of the image_size image, head motion removed), magnitude (mean flow magnitude at
        flow_size, as a fraction of the face side: the training-free baseline's signal), box [x, y, w, h].
        Frames are held only while a later feature frame needs them.
        """
        if not fps or fps <= 0:
            raise ValueError(f"{where}: the frame rate is unknown; pass fps=")
        lag, step = self.lag_frames(fps), self.step(fps)
        kept: dict[int, np.ndarray] = {}
        box, angle, last_track, next_i = None, 0.0, None, 0
        track_frames = self.track_every * fps
        for index, frame in frames:
            gray = to_gray(np.asarray(frame))
            if box is None:
                face = locate_face(gray, self.crop, self.crop_margin, self.on_no_face, f"{where}, frame {index}",
                                   threshold=self.face_threshold, cascade_file=getattr(self, "_cascade_file", None))
                box, angle, last_track = face.box, face.angle, index
            elif track_frames and isinstance(self.crop, str) and self.crop != "none" and index - last_track >= track_frames:
                box = self._follow(gray, box, f"{where}, frame {index}")
                last_track = index
            if index == 0 or self._is_target(index + lag, step):
                kept[index] = gray
            while self._target(next_i, step) <= index:
                target = self._target(next_i, step)
                if target == index:
                    source = max(0, index - lag)
                    first = kept.get(source, kept.get(min(kept)) if kept else gray)
                    yield self._feature(next_i, index, first, gray, box, angle)
                next_i += 1
            for old in [k for k in kept if k < index - lag]:
                del kept[old]

    def _follow(self, gray: np.ndarray, box: list[int] | tuple[int, ...], where: str) -> tuple[int, ...]:
        """The box after a re-detection: the new one when the face has moved, else the old one (steady crops)."""
        try:
            face = locate_face(gray, self.crop, self.crop_margin, "error", where, threshold=self.face_threshold,
                               cascade_file=getattr(self, "_cascade_file", None))
        except ValueError:  # no face this time: keep following the last one
            return tuple(box)
        x, y, w, h = box
        nx, ny, nw, nh = face.box
        moved = math.hypot((nx + nw / 2) - (x + w / 2), (ny + nh / 2) - (y + h / 2)) > self.track_tolerance * w
        resized = abs(nw - w) > self.track_tolerance * w
        return tuple(face.box) if moved or resized else tuple(box)

    def _feature(self, i: int, index: int, first: np.ndarray, second: np.ndarray, box, angle: float) -> dict[str, Any]:
        side = max(self.image_size, min(self.flow_size, int(box[2]), int(box[3])))
        a = crop_resize(first, tuple(box), side, angle)
        b = crop_resize(second, tuple(box), side, angle)
        flow = remove_head_motion(dense_flow(a, b, self.flow), self.head_motion)
        magnitude = float(np.linalg.norm(flow, axis=-1).mean()) / side
        small = reduce_flow(flow, self.image_size)
        return {"index": i, "frame": int(index), "flow": np.ascontiguousarray(small.transpose(2, 0, 1)),
                "magnitude": magnitude, "box": [int(v) for v in box]}

    def video_features(self, video: Any, fps: float | None = None) -> dict[str, Any]:
        """Every feature frame of a video at once (for the feature store): flow float16 (N, 2, S, S),
        frames int64 (N,), magnitude float32 (N,), boxes int32 (N, 4), fps, rate, num_frames, source.

        `video`: a file, a frame folder, a list of frame files (with fps), a `VideoStream`, or an array
        (T, H, W, 3) / list of frames (with fps). Memory: the features (N x 2 x S x S) plus the lag's frames.
        """
        if isinstance(video, np.ndarray) or (isinstance(video, list | tuple) and video and not isinstance(video[0], str | os.PathLike)):
            if not fps:
                raise ValueError("frames given as arrays need fps=")
            frames = ((i, to_rgb_array(f, f"frame {i}")) for i, f in enumerate(video))
            where, count = "frames", len(video)
            features = list(self.stream_features(frames, fps, where))
        else:
            with self.open(video, fps) as stream:
                fps = stream.fps if not fps else fps
                where = str(stream.path)
                features = list(self.stream_features(stream.frames(), fps, where))
                count = stream.decoded
        if not features:
            raise ValueError(f"{where}: no frames")
        s = self.image_size
        return {
            "flow": np.stack([f["flow"] for f in features]).astype(np.float16).reshape(-1, 2, s, s),
            "frames": np.asarray([f["frame"] for f in features], dtype=np.int64),
            "magnitude": np.asarray([f["magnitude"] for f in features], dtype=np.float32),
            "boxes": np.asarray([f["box"] for f in features], dtype=np.int32),
            "fps": float(fps), "rate": self.rate(fps), "num_frames": int(count), "source": where,
        }

    # ------------------------------------------------------------------------------------- encoding
    def encode(self, flow: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(..., 2, S, S) flow -> (..., 3, S, S) motion channels (u, v, magnitude in motion units, bounded)."""
        flow = torch.as_tensor(np.asarray(flow, dtype=np.float32) if isinstance(flow, np.ndarray) else flow).float()
        return encode_motion(flow, self.motion_unit * self.image_size)

    def __call__(self, videos: Any = None, fps: float | None = None, return_tensors: str | None = "pt", **kwargs: Any):
        """One video -> `pixel_values` (1, N, 3, S, S) for the whole video, with `frames` (1, N) (a short video;
        a long one goes through `stream_features` and the model's `score_stream`)."""
        if kwargs:
            raise TypeError(f"MERSpottingProcessor got unexpected arguments {sorted(kwargs)}")
        features = self.video_features(videos, fps)
        from transformers.image_processing_utils import BatchFeature

        data = {"pixel_values": self.encode(features["flow"]).unsqueeze(0).numpy(),
                "frames": features["frames"][None]}
        return BatchFeature(data=data, tensor_type=return_tensors)

    # ------------------------------------------------------------------------------- post-processing
    def post_process(
        self,
        probabilities: np.ndarray,
        frame_indices: Sequence[int],
        fps: float,
        thresholds: dict[str, float],
        half_widths: dict[str, float],
        smoothing: float,
    ) -> list[dict[str, Any]]:
        """(N, 3) per-feature-frame probabilities (background, micro, macro) -> intervals with onset, offset,
        apex (video frame indices), their times in seconds, type and score."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.ndim != 2 or probabilities.shape[1] != 3:
            raise ValueError(f"probabilities must be (frames, 3), got {probabilities.shape}")
        scores = {kind: probabilities[:, c] for c, kind in enumerate(SPOT_TYPES, start=1)}
        intervals = scores_to_intervals(scores, frame_indices, self.rate(fps), thresholds, half_widths, smoothing)
        for r in intervals:
            r["start_seconds"], r["end_seconds"] = r["onset"] / fps, (r["offset"] + 1) / fps
        return intervals
