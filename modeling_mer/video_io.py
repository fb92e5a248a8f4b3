"""Reading a clip: a list of frames, a video file (PyAV) or a folder of frame images.

Frames are decoded lazily and only once: a CASME II clip has tens of 640x480 JPEGs but the processor
needs about a dozen of them when the apex is known, so decoding everything would dominate the cost of
preprocessing a dataset. Image sizes are checked up front from the file headers, which is cheap.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator, Sequence
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


class VideoError(ValueError):
    """A video file or frame sequence that cannot be read: one line naming the file."""


# When a video file is read without bounds (no offset), the decoded clip may hold at most this many bytes
# of RGB frames: 256 MiB is about 1,100 frames at 320x240, 290 at 640x480 (CASME II clips have 30-150).
UNBOUNDED_CLIP_BYTES = 256 * 2**20


def _import_av(path: Any) -> Any:
    try:  # decoding files only: frame folders and frame lists need no PyAV
        import av
    except ImportError as err:
        raise ImportError(f"{path}: reading a video file needs PyAV: pip install av") from err
    return av


def _upright(array: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a decoded frame by `rotation` degrees clockwise (the display matrix's turn) so it is upright."""
    turns = (rotation // 90) % 4  # always a copy: numpy-owned memory, not a view pinning FFmpeg's frame
    return np.array(array) if turns == 0 else np.ascontiguousarray(np.rot90(array, k=-turns))


def _clockwise(frame: Any) -> int:
    """The clockwise display turn of a decoded PyAV frame (its display matrix), snapped to 0/90/180/270.

    PyAV's `VideoFrame.rotation` is counter-clockwise in [-180, 180]; phones write -90 (counter-clockwise)
    for a portrait recording, which FFmpeg's tools and the old `rotate` tag call 90.
    """
    try:
        ccw = frame.rotation
    except (AttributeError, ValueError):  # no display matrix
        return 0
    return int(round(-float(ccw or 0) / 90.0)) * 90 % 360


class VideoStream:
    """Frames of a video file (PyAV) or of a list of image files, decoded one at a time.

    A context manager. `width`/`height` are those of the frames as yielded, i.e. after the display
    rotation (`rotation`: clockwise degrees, 0/90/180/270, read from the container's display matrix, as
    phones write it for portrait recordings) has been applied. `num_frames` is the container's count when
    it states one (None otherwise); `fps` is 0.0 when the file states no rate.
    """

    def __init__(self, path: Path, fps: float, width: int, height: int, rotation: int,
                 num_frames: int | None, files: list[Path] | None = None) -> None:
        self.path = path
        self.fps = fps
        self.width = width
        self.height = height
        self.rotation = rotation
        self.num_frames = num_frames
        self._files = files
        self.decoded = 0  # frames decoded by the last frames() pass (dropped ones included)
        self._open: list[Any] = []  # containers of running frames() iterators, closed by close()

    def __enter__(self) -> VideoStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        while self._open:
            self._open.pop().close()

    def __repr__(self) -> str:
        turned = f", rotation {self.rotation}" if self.rotation else ""
        return f"VideoStream({self.path}, {self.width}x{self.height}, {self.fps:g} fps, {self.num_frames} frames{turned})"

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(frame_index, RGB uint8 HxWx3) for start <= index < stop, indices counted from 0.

        Frames before `start` are decoded (a video has to be) and dropped without conversion; only the
        current frame is held.
        """
        if start < 0 or (stop is not None and stop < start):
            raise ValueError(f"{self.path}: frames({start}, {stop}): need 0 <= start <= stop")
        if self._files is not None:
            yield from self._image_frames(start, stop)
            return
        av = _import_av(self.path)
        index = -1
        if stop == start:
            return
        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as err:
            raise VideoError(f"{self.path}: cannot read video: {_one_line(err)}") from None
        self._open.append(container)
        try:
            for frame in container.decode(video=0):
                index += 1
                self.decoded = index + 1
                if index >= start:
                    yield index, _upright(frame.to_ndarray(format="rgb24"), _clockwise(frame))
                if stop is not None and index + 1 >= stop:
                    break
        except av.FFmpegError as err:
            raise VideoError(f"{self.path}: cannot decode frame {index + 1}: {_one_line(err)}") from None
        finally:
            container.close()
            if container in self._open:
                self._open.remove(container)

    def _image_frames(self, start: int, stop: int | None) -> Iterator[tuple[int, np.ndarray]]:
        files = self._files or []
        self.decoded = min(start, len(files))
        for index in range(start, len(files) if stop is None else min(stop, len(files))):
            self.decoded = index + 1
            where = f"{self.path}, frame {index} ({files[index]})"
            try:
                with _open_image(files[index], where) as image:
                    array = to_rgb_array(image, where)
            except (OSError, SyntaxError) as err:  # a truncated file: header read, pixels not
                raise VideoError(f"{where}: cannot decode image: {_one_line(err)}") from None
            except ValueError as err:
                raise VideoError(_one_line(err)) from None
            if (array.shape[1], array.shape[0]) != (self.width, self.height):
                raise VideoError(
                    f"{where}: is {array.shape[1]}x{array.shape[0]} (WxH) but frame 0 is {self.width}x{self.height}; "
                    "all frames of a sequence must have one size"
                )
            yield index, array


def _one_line(err: Any) -> str:
    return " ".join(str(err).split())


def open_video(path: str | os.PathLike) -> VideoStream:
    """A video file as a `VideoStream`; `VideoError` (one line naming the file) when it cannot be read.

    The first frame is decoded once here to learn the display rotation, so that width/height are the
    upright ones.
    """
    path = Path(path)
    av = _import_av(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: file has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            count = int(stream.frames or 0) or None
            first = next(iter(container.decode(video=0)), None)
            if first is None:
                raise VideoError(f"{path}: video holds no decodable frames")
            rotation = _clockwise(first)
            width, height = int(first.width), int(first.height)
    except av.FFmpegError as err:
        raise VideoError(f"{path}: cannot read video: {_one_line(err)}") from None
    if rotation in (90, 270):
        width, height = height, width
    return VideoStream(path, float(rate) if rate else 0.0, width, height, rotation, count)


def open_frames(paths: Sequence[str | os.PathLike], fps: float = 0.0, source: str | os.PathLike | None = None) -> VideoStream:
    """A list of image files, in order, as a `VideoStream` (frame i is paths[i]); the size is read from the
    first file's header. `source` names the sequence in messages (default: the first file's folder)."""
    files = [Path(p) for p in paths]
    if not files:
        raise VideoError(f"{source or 'frame list'}: no frame images")
    where = Path(source) if source is not None else files[0].parent
    try:
        with _open_image(files[0], f"{where}, frame 0 ({files[0]})") as image:
            width, height = image.size
    except ValueError as err:
        raise VideoError(_one_line(err)) from None
    return VideoStream(where, float(fps), int(width), int(height), 0, len(files), files)


def read_video(
    path: Path, last_index: int | None = None, first_index: int = 0, budget_bytes: int | None = UNBOUNDED_CLIP_BYTES
) -> tuple[list[np.ndarray], int]:
    """Frames first_index..last_index of a video file (RGB uint8, upright) and the index of the first.

    Frames before `first_index` are decoded and dropped. Without `last_index` the rest of the file is the
    clip, and it may hold at most `budget_bytes` of decoded frames (None: no limit): a recording of
    minutes is refused in one line, before decoding when the container states its length, instead of
    filling the memory.
    """
    with open_video(path) as video:
        frame_bytes = video.width * video.height * 3
        limit = None
        if last_index is None and budget_bytes is not None:
            limit = max(2, budget_bytes // max(1, frame_bytes))
            remaining = None if video.num_frames is None else video.num_frames - first_index
            if remaining is not None and remaining > limit:
                raise VideoError(_over_budget(video, first_index, remaining, budget_bytes))
        frames: list[np.ndarray] = []
        for _, array in video.frames(first_index, None if last_index is None else last_index + 1):
            frames.append(array)
            if limit is not None and len(frames) > limit:
                frames.clear()
                raise VideoError(_over_budget(video, first_index, None, budget_bytes))
        if not frames:
            if video.decoded > 0:
                raise VideoError(
                    f"{path}: onset={first_index} is not a frame of the clip (frame numbers 0..{video.decoded - 1})"
                )
            raise VideoError(f"{path}: video holds no decodable frames")
    return frames, first_index


def _over_budget(video: VideoStream, first: int, count: int | None, budget: int) -> str:
    size = f"{count:,} frames" if count is not None else "more frames than that"
    return (
        f"{video.path}: reading from frame {first} to the end is {size} of {video.width}x{video.height} "
        f"({video.fps:g} fps), over the {budget / 2**20:.0f} MiB of decoded frames allowed for a clip without an "
        "offset; a micro-expression lasts under half a second: give the clip's onset and offset "
        "(mer-predict --onset N --offset M)"
    )


def decode_from(onset: int | None, offset: int | None) -> int:
    """The first video frame worth decoding: the onset, when it is a usable one (>= 0, before the offset).

    Otherwise 0, so that the argument check reports the real problem.
    """
    if onset is None or onset < 0 or (offset is not None and offset <= onset):
        return 0
    return int(onset)


def decode_until(onset: int | None, offset: int | None) -> int | None:
    """The last video frame worth decoding: the offset, when it can be one (>= 0 and after the onset).

    Otherwise None, so that the whole file is read and the argument check reports the real problem
    (an offset before the onset, a negative offset) instead of a clip cut short.
    """
    if offset is None or offset < 0 or (onset is not None and offset <= onset):
        return None
    return int(offset)


def load_clip(
    frames_or_path: Any,
    frame_numbers: Sequence[int] | None = None,
    last_frame: int | None = None,
    first_frame: int = 0,
    budget_bytes: int | None = UNBOUNDED_CLIP_BYTES,
) -> Clip:
    """Frames, a video file or a frame folder -> `Clip`.

    Frame numbers default to 0..n-1, except for a folder, where they come from the file names (so a
    sheet's onset/apex/offset apply directly to e.g. CASME II's img46.jpg). Explicit `frame_numbers`
    always win. For a video file (streamed through `open_video`, rotation applied), `first_frame` and
    `last_frame` (frame numbers, e.g. the onset and offset) bound what is kept: frames before the first
    are decoded and dropped, decoding stops after the last, and a clip without a last frame may hold at
    most `budget_bytes` of frames (see `read_video`). Folders and frame lists are read lazily anyway.
    """
    if isinstance(frames_or_path, str | os.PathLike):
        path = Path(frames_or_path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such video file or frame folder")
        if path.is_dir():
            files, names = list_frame_folder(path)
            return Clip(files, frame_numbers if frame_numbers is not None else names, str(path))
        if frame_numbers is not None:  # the caller's numbering: onset/offset are not indices, read it all
            frames, first = read_video(path, None, 0, budget_bytes)
            return Clip(frames, frame_numbers, str(path))
        frames, first = read_video(path, last_frame, first_frame, budget_bytes)
        return Clip(frames, range(first, first + len(frames)), str(path))
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
