"""MERImageProcessor: a clip (frames, video file or frame folder) -> SLSTT model inputs.

    clip -> one square face crop (dlib on the apex frame: the official landmark crop, else the detector's box)
         -> crop (+ optional eye-line alignment, the same for every frame) + resize to image_size
         -> num_frames positions centred on the apex in (onset, offset] (short clips: synthesised frames)
         -> long-term optical flow onset -> each position            [compute_flow: heavy, cacheable]
         -> hsv or uv drawing -> ImageNet mean/std                  [encode_flow: cheap, per batch]

The split lets datasets store flow once (`modeling_mer.training.preprocessing`) while training applies
flow-aware augmentation before the cheap encoding; `__call__` is exactly `encode_flow(compute_flow())`.
It is a `BaseImageProcessor` and not a `BaseVideoProcessor`, which needs torchvision.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.processing_utils import ImagesKwargs

try:  # in a try block, which transformers' remote-code import check skips: this names the pip package
    import cv2  # noqa: F401
except ImportError as err:
    raise ImportError(
        "MERImageProcessor needs OpenCV (face crop, sampling, optical flow) and PyAV (video files): "
        'pip install "opencv-contrib-python-headless>=4.8" av'
    ) from err

from .apex_spotting import find_expression
from .configuration_mer import check_processor_geometry
from .face_crop import CROPS, CascadeFileMixin, crop_resize, locate_face
from .flow_encoding import encode_hsv, encode_motion, encode_uv, normalize
from .frame_sampling import (
    INTERPOLATIONS,
    SAMPLINGS,
    positions_to_frame_numbers,
    sample_positions,
    synthesise,
)
from .optical_flow import (
    HEAD_MOTIONS,
    check_flow_method,
    dense_flow,
    reduce_flow,
    remove_head_motion,
    to_gray,
)
from .video_io import IMAGE_SUFFIXES, Clip, decode_from, decode_until, load_clip

__all__ = ["MERImageProcessor", "as_frames", "check_processor_geometry"]

ENCODINGS = ("hsv", "uv", "motion")
INPUT_MODES = ("flow", "frames")
NO_FACE_POLICIES = ("error", "full_frame")


class MERImageProcessorKwargs(ImagesKwargs, total=False):
    """Settings accepted by `from_pretrained(..., **kwargs)` overrides."""

    image_size: int
    num_frames: int
    crop: str | list[int]
    crop_margin: float
    on_no_face: str
    align: bool
    face_threshold: float
    sampling: str
    interpolation: str
    flow: str
    encoding: str
    uv_scale: float
    motion_unit: float
    input_mode: str
    spot_size: int
    flow_size: int | None
    head_motion: str


class MERImageProcessor(CascadeFileMixin, BaseImageProcessor):
    """Face crop, apex-centred sampling and long-term optical flow for micro-expression clips.

    Args:
        image_size: side of the square model input; flow is computed at this size, in its pixels.
        num_frames: flow images per clip (the paper: 11).
        crop: where the face is, found once per clip on the apex frame (the onset frame when the apex is
            to be spotted): "dlib" (dlib's HOG detector; the official square crop around the nose tip from
            dlib's 68 landmarks when `face_recognition_models` is installed, else the detector's box),
            "dlib-landmarks" or "dlib-box" (one of those explicitly), "haar" (OpenCV's Haar cascade, the
            most confident detection), "none" (already cropped), or [x, y, w, h]. The output's crop_source
            says which crop was used.
        crop_margin: fraction of the detected face side added on every side of a detector box (dlib-box,
            haar); the landmark crop has its own official size.
        on_no_face: "error" (naming the file and frame), or "full_frame" (the whole frame, with a warning),
            when no detection reaches face_threshold.
        align: rotate the crop so the eye line is level (dlib landmarks; one angle for the whole clip).
        face_threshold: the detection score a face needs; None: the detector's default (dlib 0.3, haar 4.0).
        sampling: "apex" (consecutive frames centred on the apex) or "uniform" (onset..offset).
        interpolation: "blend" or "warp", to synthesise frames for clips shorter than num_frames.
        flow: "farneback" (the paper's parameters), "dis" or "tvl1".
        encoding: "hsv" (the official drawing: each image min-max stretched, amplitude lost), "uv" (fixed
            scale `uv_scale`, clipped there) or "motion" (u, v, magnitude in units of `motion_unit`, softly
            bounded, no mean/std normalisation: amplitude kept; the default for training on real data).
        motion_unit: for encoding="motion": the displacement, as a fraction of the face crop's side, that
            maps to 1. Default 0.00125: 0.6 px on CASME II's 480 px crop, 0.4 px on a 300 px face, the
            typical peak displacement of a micro-expression (0.3-3 px at the camera's resolution).
        uv_scale: displacement in pixels (at image_size) that fills the uv range.
        flow_size: side at which flow is computed on the face crop (the crop's own side if that is
            smaller), then reduced to image_size by area averaging with the vectors rescaled; None: flow
            at image_size (processors saved before this setting). Real micro-motion is 0.3-3 px on a
            ~300 px face: at a 32 px model input it would be 0.03-0.3 px, below what flow can measure.
        head_motion: "none", "translation" or "affine": the rigid motion of the face region fitted
            robustly and subtracted from every flow image (a head drifts by more than it expresses).
        input_mode: "flow", or "frames" (the cropped RGB frames themselves, an ablation).
        spot_size: side the frames are shrunk to for apex spotting when no apex is given.
    """

    model_input_names = ["pixel_values"]
    valid_kwargs = MERImageProcessorKwargs
    # The processing options, in one list (the keys MERImageProcessorKwargs declares beyond transformers'
    # ImagesKwargs): train.py's processor flags and the model card's preprocessing table derive from it.
    option_names: tuple[str, ...] = tuple(k for k in MERImageProcessorKwargs.__annotations__ if k not in ImagesKwargs.__annotations__)

    def __init__(
        self,
        image_size: int = 224,
        num_frames: int = 11,
        crop: str | list[int] = "dlib",
        crop_margin: float = 0.1,
        on_no_face: str = "error",
        align: bool = False,
        face_threshold: float | None = None,
        sampling: str = "apex",
        interpolation: str = "blend",
        flow: str = "farneback",
        encoding: str = "hsv",
        uv_scale: float = 5.0,
        motion_unit: float = 0.00125,
        input_mode: str = "flow",
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        spot_size: int = 112,
        flow_size: int | None = None,
        head_motion: str = "none",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image_size = image_size
        self.num_frames = num_frames
        self.crop = list(crop) if isinstance(crop, list | tuple) else crop
        self.crop_margin = crop_margin
        self.on_no_face = on_no_face
        self.align = align
        self.face_threshold = face_threshold
        self.sampling = sampling
        self.interpolation = interpolation
        self.flow = flow
        self.encoding = encoding
        self.uv_scale = uv_scale
        self.motion_unit = motion_unit
        self.input_mode = input_mode
        self.image_mean = list(image_mean if image_mean is not None else IMAGENET_DEFAULT_MEAN)
        self.image_std = list(image_std if image_std is not None else IMAGENET_DEFAULT_STD)
        self.spot_size = spot_size
        self.flow_size = flow_size
        self.head_motion = head_motion
        self._validate()

    def _validate(self) -> None:
        """Reject bad settings at construction, naming the argument."""
        for name in ("image_size", "num_frames", "spot_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (2 if name != "num_frames" else 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        choices = {
            "on_no_face": NO_FACE_POLICIES,
            "sampling": SAMPLINGS,
            "interpolation": INTERPOLATIONS,
            "encoding": ENCODINGS,
            "input_mode": INPUT_MODES,
            "head_motion": HEAD_MOTIONS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not supported; choose one of {list(allowed)}")
        check_flow_method(self.flow)
        if isinstance(self.crop, str) and self.crop not in CROPS:
            raise ValueError(f"crop={self.crop!r} is not supported; use one of {list(CROPS)} or [x, y, w, h]")
        if not isinstance(self.crop, str) and not (len(self.crop) == 4 and all(isinstance(c, int) for c in self.crop)):
            raise ValueError(f"crop must be one of {list(CROPS)} or [x, y, w, h] integers, got {self.crop!r}")
        if not isinstance(self.align, bool):
            raise ValueError(f"align must be True or False, got {self.align!r}")
        if self.align and self.crop not in ("dlib", "dlib-landmarks"):
            raise ValueError(f"align=True needs the landmark crop (crop='dlib' or 'dlib-landmarks'), not crop={self.crop!r}")
        if self.face_threshold is not None and (
            isinstance(self.face_threshold, bool) or not isinstance(self.face_threshold, int | float)
        ):
            raise ValueError(f"face_threshold must be a number or None (the detector's default), got {self.face_threshold!r}")
        if not isinstance(self.crop_margin, int | float) or not 0 <= self.crop_margin <= 1:
            raise ValueError(f"crop_margin must be a fraction in [0, 1], got {self.crop_margin!r}")
        if self.flow_size is not None and (
            not isinstance(self.flow_size, int) or isinstance(self.flow_size, bool) or self.flow_size < 2
        ):
            raise ValueError(f"flow_size must be a positive integer (pixels) or None (flow at image_size), got {self.flow_size!r}")
        if isinstance(self.motion_unit, bool) or not isinstance(self.motion_unit, int | float) or not 0 < self.motion_unit < 1:
            raise ValueError(f"motion_unit must be a fraction of the crop side in (0, 1), got {self.motion_unit!r}")
        if not isinstance(self.uv_scale, int | float) or self.uv_scale <= 0:
            raise ValueError(f"uv_scale must be a positive number of pixels, got {self.uv_scale!r}")
        for name in ("image_mean", "image_std"):
            if len(getattr(self, name)) != 3:
                raise ValueError(f"{name} must hold 3 values (R, G, B), got {getattr(self, name)!r}")
        if any(s <= 0 for s in self.image_std):
            raise ValueError(f"image_std must be positive, got {self.image_std!r}")


    @classmethod
    def for_config(cls, config: Any, **settings: Any) -> MERImageProcessor:
        """A processor making the clips `config` (a `MERConfig`) describes: its num_frames and image_size, with
        any other setting from `settings` (geometry given there must agree: see `check_processor_geometry`)."""
        processor = cls(**({"image_size": config.image_size, "num_frames": config.num_frames} | settings))
        check_processor_geometry(config, processor)
        return processor

    # ----------------------------------------------------------------------------------------------
    def __call__(  # type: ignore[override]
        self,
        videos: Any = None,
        onset: int | list[int | None] | None = None,
        apex: int | list[int | None] | None = None,
        offset: int | list[int | None] | None = None,
        frame_numbers: list[int] | list[list[int] | None] | None = None,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """One clip, or a list of clips -> `pixel_values` (batch, num_frames, 3, image_size, image_size).

        `videos` (also the first positional argument) is one clip (a video file, a frame folder, a list of
        frames: PIL images, image files or arrays, or one numpy array / torch tensor (T, H, W, C) or
        (T, C, H, W), uint8 or float in [0, 1]: see `as_frames`) or a list of clips (files, folders, frame
        lists, arrays), which gives a batch in that order; a 5-d array or tensor (B, T, ...) is a batch too.
        The same frames give the same tensor whatever their container. onset/apex/offset are frame numbers
        (as in the datasets' sheets), matching `frame_numbers` (default 0..n-1, or the numbers in the file
        names of a frame folder); for a batch each is a list with one entry per clip (or None for all).
        Without apex it is spotted (`apex_spotting`: head motion removed, not drawn to the clip's ends) and
        `apex_estimated` is True; without onset/offset as well, they are found around it (a neutral frame
        before the rise, one after the fall) and the whole input is searched. Also returned: `frame_numbers` (batch, num_frames), `apex` and `apex_estimated` (batch,).
        """
        if kwargs:
            raise TypeError(f"MERImageProcessor got unexpected arguments {sorted(kwargs)}")
        if videos is None:
            raise TypeError("MERImageProcessor needs a clip or a list of clips (positional, or videos=...)")
        videos = _tensor_to_numpy(videos)
        batched = _is_batch_of_clips(videos)
        clips = list(videos) if batched else [videos]
        settings = {
            name: _one_per_clip(name, value, len(clips), batched)
            for name, value in (("onset", onset), ("apex", apex), ("offset", offset), ("frame_numbers", frame_numbers))
        }
        results = [
            self.compute_flow(clip, *(settings[name][i] for name in ("onset", "apex", "offset", "frame_numbers")))
            for i, clip in enumerate(clips)
        ]
        pixel_values = self.encode_flow(torch.from_numpy(np.stack([r["flow"] for r in results])))
        data = {
            "pixel_values": pixel_values.numpy(),
            "frame_numbers": np.asarray([r["frame_numbers"] for r in results], dtype=np.float64),
            "apex": np.asarray([r["apex"] for r in results], dtype=np.int64),
            "apex_estimated": np.asarray([r["apex_estimated"] for r in results], dtype=bool),
        }
        return BatchFeature(data=data, tensor_type=return_tensors)

    def compute_flow(
        self,
        frames: Any,
        onset: int | None = None,
        apex: int | None = None,
        offset: int | None = None,
        frame_numbers: list[int] | None = None,
    ) -> dict[str, Any]:
        """The heavy stage: crop, sample, flow. Returns plain numpy / python values.

        Keys: flow float32 (num_frames, C, S, S) with C=2 (u, v in pixels at image_size) for
        input_mode="flow" or C=3 (RGB in [0, 1]) for "frames"; frame_numbers (float, fractional for
        synthesised frames); apex (frame number); apex_estimated; onset; offset; and the crop:
        crop_box [x, y, w, h] in the original frame's pixels, crop_source (dlib-landmarks, dlib-box, haar,
        box, none or full_frame), crop_score (the detection's score, None without detection), crop_faces
        (detections at or above face_threshold; the best one is used), crop_angle (degrees of alignment),
        crop_frame (the frame number the face was found on).
        """
        clip = frames if isinstance(frames, Clip) else load_clip(  # a video keeps only onset..offset
            as_frames(frames), frame_numbers, decode_until(onset, offset), decode_from(onset, offset)
        )
        onset_i = self._index(clip, "onset", onset, default=0)
        offset_i = self._index(clip, "offset", offset, default=len(clip) - 1)
        if offset_i <= onset_i:
            raise ValueError(f"{clip.source}: offset={clip.frame_numbers[offset_i]} must come after onset={clip.frame_numbers[onset_i]}")
        face_i = onset_i if apex is None else self._index(clip, "apex", apex, default=onset_i)
        face_i = face_i if onset_i <= face_i <= offset_i else onset_i  # a bad apex is reported below
        face = locate_face(
            clip[face_i], self.crop, self.crop_margin, self.on_no_face, f"{clip.source}, frame {clip.frame_numbers[face_i]}",
            align=self.align, threshold=self.face_threshold, cascade_file=getattr(self, "_cascade_file", None),
        )
        prepared: dict[int, np.ndarray] = {}
        side = self._work_side(face.box)

        def frame_at(i: int) -> np.ndarray:
            if i not in prepared:
                prepared[i] = crop_resize(clip[i], face.box, side, face.angle)
            return prepared[i]

        apex_estimated = apex is None
        if apex_estimated:  # apex_spotting: not biased to the clip's ends; a missing onset/offset found too
            onset_i, apex_i, offset_i = self._spot(clip, frame_at, onset_i if onset is not None else None,
                                                   offset_i if offset is not None else None)
        else:
            apex_i = self._index(clip, "apex", apex, default=0)
            if not onset_i <= apex_i <= offset_i:
                raise ValueError(f"{clip.source}: apex={apex} lies outside onset={onset}..offset={offset}")
        positions = sample_positions(self.sampling, onset_i, apex_i, offset_i, self.num_frames)
        pair_flows: dict[int, np.ndarray] = {}
        sampled = [synthesise(frame_at, p, self.interpolation, self.flow, pair_flows) for p in positions]
        if self.input_mode == "frames":
            stack = np.stack(sampled).astype(np.float32) / 255.0  # (T, S, S, 3)
        else:
            reference = to_gray(frame_at(onset_i))
            stack = np.stack([  # (T, S, S, 2): flow at `side`, rigid head motion removed, reduced to image_size
                reduce_flow(remove_head_motion(dense_flow(reference, to_gray(f), self.flow), self.head_motion), self.image_size)
                for f in sampled
            ])
        return {
            "flow": np.ascontiguousarray(stack.transpose(0, 3, 1, 2), dtype=np.float32),
            "frame_numbers": positions_to_frame_numbers(positions, clip.frame_numbers),
            "apex": clip.frame_numbers[apex_i],
            "apex_estimated": apex_estimated,
            "onset": clip.frame_numbers[onset_i],
            "offset": clip.frame_numbers[offset_i],
            **face.record(),
            "crop_frame": clip.frame_numbers[face_i],
        }

    def encode_flow(self, flow: torch.Tensor) -> torch.Tensor:
        """The cheap stage: (..., T, C, S, S) flow (or frames) -> normalised (..., T, 3, S, S).

        Works on any leading dims and any device, so training can encode a batch after flow-aware
        augmentation (a horizontal flip must flip W and negate u).
        """
        channels = 2 if self.input_mode == "flow" else 3
        if flow.ndim < 3 or flow.shape[-3] != channels:
            raise ValueError(
                f"encode_flow expects (..., {channels}, H, W) for input_mode={self.input_mode!r}, got {tuple(flow.shape)}"
            )
        flow = flow.float()
        if self.input_mode == "frames":
            images = flow
        elif self.encoding == "hsv":
            images = encode_hsv(flow)
        elif self.encoding == "motion":  # already in standard units: no image mean/std
            return encode_motion(flow, self.motion_unit * self.image_size)
        else:
            images = encode_uv(flow, self.uv_scale)
        return normalize(images, self.image_mean, self.image_std)

    def _spot(self, clip: Clip, frame_at: Any, onset_i: int | None, offset_i: int | None) -> tuple[int, int, int]:
        """(onset, apex, offset) indices of a clip whose apex is not given (`apex_spotting.find_expression`,
        on the face crop shrunk to spot_size). Given bounds are kept; found ones are widened, within the
        clip, so that apex-centred sampling of num_frames frames fits between them. A clip of at most
        num_frames + 2 frames has no room for neutral margins: it stays whole and only its apex is found."""
        if onset_i is None and offset_i is None and len(clip) <= self.num_frames + 2:
            onset_i, offset_i = 0, len(clip) - 1
        frames = [frame_at(i) for i in range(len(clip))]
        found = find_expression(frames, onset_i, offset_i, max_side=self.spot_size)
        onset, apex, offset = found.onset, found.apex, found.offset
        if onset_i is None:
            onset = min(onset, max(0, apex - self.num_frames // 2 - 1))
        if offset_i is None:
            offset = max(offset, min(len(clip) - 1, apex + self.num_frames - self.num_frames // 2 - 1))
        return onset, apex, offset

    def _work_side(self, box: Any) -> int:
        """The side the crop is resized to before flow: flow_size capped at the crop's own side (never
        upsampled), or image_size (no flow_size, or input_mode="frames")."""
        if self.flow_size is None or self.input_mode == "frames":
            return self.image_size
        return max(self.image_size, min(self.flow_size, max(int(box[2]), int(box[3]))))

    @staticmethod
    def _index(clip: Clip, name: str, number: int | None, default: int) -> int:
        """Frame number -> index into the clip, with an error naming the argument."""
        if number is None:
            return default
        try:
            return clip.frame_numbers.index(int(number))
        except (ValueError, TypeError):
            numbers = clip.frame_numbers
            raise ValueError(
                f"{clip.source}: {name}={number!r} is not a frame of the clip (frame numbers {numbers[0]}..{numbers[-1]})"
            ) from None


def _is_batch_of_clips(videos: Any) -> bool:
    """A list of clips (files, folders, frame lists, (T, H, W, C) arrays) rather than one clip's frames."""
    if isinstance(videos, np.ndarray | torch.Tensor):
        return videos.ndim == 5
    if not isinstance(videos, list | tuple) or not videos:
        return False
    first = videos[0]
    if isinstance(first, str | os.PathLike):  # a video file or frame folder, not one frame's image file
        return Path(first).is_dir() or Path(first).suffix.lower() not in IMAGE_SUFFIXES
    return isinstance(first, list | tuple | Clip) or (isinstance(first, np.ndarray | torch.Tensor) and first.ndim == 4)


def _tensor_to_numpy(value: Any) -> Any:
    """A torch tensor as a numpy array (on the CPU, detached); anything else as it is."""
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value


_CHANNELS = (1, 3, 4)  # gray, RGB, RGBA


def as_frames(clip: Any) -> Any:
    """One clip in any accepted form -> what `load_clip` reads: RGB uint8 `(H, W, C)` frames, or the clip as
    it is (a video file or frame folder path, a list of PIL images or image files).

    Accepted arrays, numpy or torch, for the whole clip `(T, H, W, C)` or `(T, C, H, W)` and for one frame
    `(H, W, C)`, `(C, H, W)` or `(H, W)`, with C 1, 3 or 4: uint8 (0-255), or float in [0, 1] (as
    torchvision's and transformers' video tensors; rounded to the uint8 the same frames would have). The
    layout is channels-last when the last axis is a channel count, else channels-first when the axis
    before H is one. So the same frames give the same tensor whatever their container.
    """
    clip = _tensor_to_numpy(clip)
    if isinstance(clip, np.ndarray):
        if clip.ndim != 4:
            raise ValueError(
                f"a clip array must be (frames, height, width, channels) or (frames, channels, height, width), "
                f"got shape {clip.shape}"
            )
        return list(_uint8_frames(clip, "the clip", channel_axis=1))
    if isinstance(clip, list | tuple) and any(isinstance(f, np.ndarray | torch.Tensor) for f in clip):
        return [_one_frame(frame, i) for i, frame in enumerate(clip)]
    return clip


def _one_frame(frame: Any, index: int) -> Any:
    """One frame of a list: an array as (H, W, C) uint8; a PIL image or an image file as it is."""
    if not isinstance(frame, np.ndarray | torch.Tensor):
        return frame
    array = _tensor_to_numpy(frame)
    if array.ndim == 2:  # gray (H, W)
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"frame {index}: expected an (H, W, C), (C, H, W) or (H, W) image, got shape {array.shape}")
    return _uint8_frames(array[None], f"frame {index}", channel_axis=1)[0]


def _uint8_frames(array: np.ndarray, what: str, channel_axis: int) -> np.ndarray:
    """(T, H, W, C) or (T, C, H, W), uint8 or float in [0, 1] -> (T, H, W, C) uint8."""
    if array.shape[-1] not in _CHANNELS:
        if array.shape[channel_axis] not in _CHANNELS:
            raise ValueError(
                f"{what}: cannot tell the channel axis of shape {array.shape[1:]}: give (H, W, C) or (C, H, W) "
                f"frames with C in {list(_CHANNELS)}"
            )
        array = np.moveaxis(array, channel_axis, -1)
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{what}: frames must be uint8 (0-255) or float in [0, 1], got dtype {array.dtype}")
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if np.issubdtype(array.dtype, np.floating):
        if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > 1:
            raise ValueError(
                f"{what}: float frames must lie in [0, 1] (got {low:g}..{high:g}); give uint8 for 0-255 values"
            )
        return np.rint(array.astype(np.float64) * 255).astype(np.uint8)
    if low < 0 or high > 255:  # other integer types holding 0-255 values
        raise ValueError(f"{what}: integer frames must lie in 0..255 (got {low:g}..{high:g})")
    return array.astype(np.uint8)


def _one_per_clip(name: str, value: Any, count: int, batched: bool) -> list[Any]:
    """A per-clip setting for every clip of the call: as given for one clip, a list of `count` for a batch."""
    if not batched:
        return [value]
    if value is None:
        return [None] * count
    if not isinstance(value, list | tuple) or len(value) != count:
        raise ValueError(f"{name}: a batch of {count} clips needs a list of {count} values (or None), got {value!r}")
    return list(value)
