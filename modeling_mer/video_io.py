"""Reading a clip: a list of frames, a video file (PyAV) or a folder of frame images.

Frames are decoded lazily and only once: a CASME II clip has tens of 640x480 JPEGs but the processor
needs about a dozen of them when the apex is known, so decoding everything would dominate the cost of
preprocessing a dataset. Image sizes are checked up front from the file headers, which is cheap.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def to_rgb_array(frame: Any, where: str) -> np.ndarray:
    """One frame (PIL image or uint8 array, gray/RGB/RGBA) -> contiguous RGB uint8 (H, W, 3)."""
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    array = np.asarray(frame)
    if array.dtype != np.uint8:
        raise ValueError(f"{where}: frames must be uint8 images, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        return np.ascontiguousarray(np.repeat(array[..., None], 3, axis=-1))
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"{where}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {array.shape}")
    return np.ascontiguousarray(array[..., :3])


class Clip(Sequence):
    """An ordered clip of RGB uint8 frames with their frame numbers, decoded on first access.

    Items given at construction may be arrays, PIL images, image file paths, or `{"bytes", "path"}`
    dicts as stored by `datasets.Image(decode=False)`.
    """

    def __init__(self, items: Sequence[Any], frame_numbers: Sequence[int], source: str) -> None:
        self.source = source
        self._items = list(items)
        self._cache: dict[int, np.ndarray] = {}
        if len(self._items) < 2:
            raise ValueError(f"{source}: a clip needs at least 2 frames, got {len(self._items)}")
        numbers = [int(n) for n in frame_numbers]
        if len(numbers) != len(self._items):
            raise ValueError(
                f"{source}: frame_numbers has {len(numbers)} entries for {len(self._items)} frames"
            )
        if any(b <= a for a, b in zip(numbers, numbers[1:])):
            raise ValueError(f"{source}: frame_numbers must be strictly increasing, got {numbers[:20]}...")
        self.frame_numbers = numbers
        sizes = [self._size(i) for i in range(len(self._items))]
        check_one_size(sizes, numbers, source)
        self.size = sizes[0]  # (width, height)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        if index not in self._cache:
            where = self._where(index)
            try:
                self._cache[index] = to_rgb_array(self._open(index), where)
            except (OSError, SyntaxError) as err:  # e.g. a truncated JPEG: its header read, its pixels not
                raise ValueError(f"{where}: cannot decode image: {err}") from err
        return self._cache[index]

    def _where(self, index: int) -> str:
        """The clip, the frame and, when the frame came from a file, that file."""
        item = self._items[index]
        path = item.get("path") if isinstance(item, dict) else item if isinstance(item, str | os.PathLike) else None
        return f"{self.source}, frame {index}" + (f" ({path})" if path else "")

    def _open(self, index: int) -> Any:
        item = self._items[index]
        if isinstance(item, dict):
            if item.get("bytes") is not None:
                return _open_image(io.BytesIO(item["bytes"]), f"{self.source}, frame {index}")
            item = item.get("path")
        if isinstance(item, str | os.PathLike):
            return _open_image(item, f"{self.source}, frame {index} ({item})")
        return item

    def _size(self, index: int) -> tuple[int, int]:
        item = self._open(index)
        if isinstance(item, Image.Image):
            return item.size
        array = np.asarray(item)
        if array.ndim < 2:
            raise ValueError(f"{self.source}, frame {index}: not an image (shape {array.shape})")
        return (int(array.shape[1]), int(array.shape[0]))


def check_one_size(sizes: Sequence[tuple[int, int]], numbers: Sequence[int], source: str) -> None:
    """All frames of a clip have one (width, height): flow between frames of different sizes means nothing."""
    for i, size in enumerate(sizes):
        if size != sizes[0]:
            raise ValueError(
                f"{source}: frame {i} (frame number {numbers[i]}) is {size[0]}x{size[1]} (WxH) but "
                f"frame 0 is {sizes[0][0]}x{sizes[0][1]}; all frames of a clip must have one size"
            )


def _open_image(file: Any, where: str) -> Image.Image:
    try:
        return Image.open(file)
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # UnidentifiedImageError is an OSError
        raise ValueError(f"{where}: cannot read image: {err}") from err


def frame_number_from_name(name: str) -> int | None:
    """The last group of digits in a file name: img46.jpg -> 46, 006_05562.jpg -> 5562."""
    digits = re.findall(r"\d+", Path(name).stem)
    return int(digits[-1]) if digits else None


def list_frame_folder(folder: Path) -> tuple[list[Path], list[int]]:
    """Image files of a folder in numeric order, with the numbers found in their names."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise ValueError(f"{folder}: folder holds no frame images (looked for {', '.join(IMAGE_SUFFIXES)})")
    numbers = [frame_number_from_name(p.name) for p in files]
    unnumbered = [p.name for p, n in zip(files, numbers) if n is None]
    if unnumbered:
        raise ValueError(f"{folder}: frame images need a number in their name, these have none: {unnumbered[:5]}")
    order = sorted(range(len(files)), key=lambda i: numbers[i])
    files, numbers = [files[i] for i in order], [numbers[i] for i in order]
    duplicates = sorted({n for a, n in zip(numbers, numbers[1:]) if a == n})
    if duplicates:
        raise ValueError(f"{folder}: several frame images carry the same number: {duplicates[:5]}")
    return files, [int(n) for n in numbers]


def read_video(path: Path, last_index: int | None = None) -> list[np.ndarray]:
    """The frames of a video file as RGB uint8, decoded with PyAV (whatever FFmpeg reads).

    `last_index` stops decoding after that frame (the clip's offset): a user's recording may run for
    minutes of high-resolution frames that the clip never needs in memory.
    """
    try:  # decoding files only: frame folders and frame lists need no PyAV
        import av
    except ImportError as err:
        raise ImportError(f"{path}: reading a video file needs PyAV: pip install av") from err

    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: file has no video stream")
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if last_index is not None and len(frames) > last_index:
                    break
    except av.FFmpegError as err:
        raise ValueError(f"{path}: cannot read video: {err}") from err
    if not frames:
        raise ValueError(f"{path}: video holds no decodable frames")
    return frames


def decode_until(onset: int | None, offset: int | None) -> int | None:
    """The last video frame worth decoding: the offset, when it can be one (>= 0 and after the onset).

    Otherwise None, so that the whole file is read and the argument check reports the real problem
    (an offset before the onset, a negative offset) instead of a clip cut short.
    """
    if offset is None or offset < 0 or (onset is not None and offset <= onset):
        return None
    return int(offset)


def load_clip(
    frames_or_path: Any, frame_numbers: Sequence[int] | None = None, last_frame: int | None = None
) -> Clip:
    """Frames, a video file or a frame folder -> `Clip`.

    Frame numbers default to 0..n-1, except for a folder, where they come from the file names (so a
    sheet's onset/apex/offset apply directly to e.g. CASME II's img46.jpg). Explicit `frame_numbers`
    always win. `last_frame` (a video's frame number, e.g. the offset) stops decoding a video file there;
    folders and frame lists are read lazily anyway.
    """
    if isinstance(frames_or_path, str | os.PathLike):
        path = Path(frames_or_path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such video file or frame folder")
        if path.is_dir():
            files, names = list_frame_folder(path)
            return Clip(files, frame_numbers if frame_numbers is not None else names, str(path))
        frames = read_video(path, last_frame if frame_numbers is None else None)
        return Clip(frames, frame_numbers if frame_numbers is not None else range(len(frames)), str(path))
    if isinstance(frames_or_path, np.ndarray) and frames_or_path.ndim == 4:
        frames_or_path = list(frames_or_path)
    if not isinstance(frames_or_path, Sequence) or isinstance(frames_or_path, bytes):
        raise TypeError(
            "frames_or_path must be a list of frames, a (T, H, W, C) array, a video file path or a frame "
            f"folder, got {type(frames_or_path).__name__}"
        )
    items = list(frames_or_path)
    numbers = frame_numbers if frame_numbers is not None else range(len(items))
    return Clip(items, numbers, f"clip of {len(items)} frames")
