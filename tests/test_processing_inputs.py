"""MERImageProcessor accepts a clip in every usual container and gives the same tensor for the same frames:
PIL lists, numpy and torch (T, H, W, C) / (T, C, H, W) in uint8 or float [0, 1], frame lists of arrays or
tensors, a video file (lossless, so its frames are the same frames) and a frame folder."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from PIL import Image

from modeling_mer.processing_mer import MERImageProcessor, as_frames

SIZE, T = 48, 6


def colour_frames() -> np.ndarray:
    """(T, H, W, 3) uint8 whose channels differ (a swapped channel order would show) and that move."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (SIZE + 8, SIZE + 8), dtype=np.uint8)
    frames = []
    for t in range(T):
        moved = np.roll(base, shift=(t % 3, t // 2), axis=(0, 1))[4 : 4 + SIZE, 4 : 4 + SIZE]
        frames.append(np.stack([moved, moved // 2 + 40, 255 - moved], axis=-1))
    return np.stack(frames)


FRAMES = colour_frames()


def processors() -> list[MERImageProcessor]:
    """One that passes the frames themselves (channel order shows), one that computes flow."""
    return [
        MERImageProcessor(image_size=SIZE, num_frames=4, crop="none", input_mode="frames"),
        MERImageProcessor(image_size=SIZE, num_frames=4, crop="none", encoding="uv", flow="dis"),
    ]


def write_video(path, frames: np.ndarray) -> None:
    """Lossless (PNG codec, RGB): decoding gives the very frames written."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=30)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "rgb24"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def containers(tmp_path) -> dict[str, object]:
    thwc = FRAMES
    tchw = np.ascontiguousarray(thwc.transpose(0, 3, 1, 2))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(thwc):
        Image.fromarray(frame).save(folder / f"img{i}.png")
    write_video(tmp_path / "clip.avi", thwc)
    return {
        "list of uint8 arrays": list(thwc),
        "list of PIL images": [Image.fromarray(f) for f in thwc],
        "list of image files": sorted(str(p) for p in folder.iterdir()),
        "numpy THWC uint8": thwc,
        "numpy TCHW uint8": tchw,
        "numpy THWC float": thwc.astype(np.float32) / 255,
        "numpy TCHW float64": tchw.astype(np.float64) / 255,
        "torch THWC uint8": torch.from_numpy(thwc),
        "torch TCHW uint8": torch.from_numpy(tchw),
        "torch TCHW float": torch.from_numpy(tchw).float() / 255,
        "torch THWC float": torch.from_numpy(thwc).float() / 255,
        "list of torch CHW float frames": [torch.from_numpy(f).float() / 255 for f in tchw],
        "list of numpy CHW uint8 frames": list(tchw),
        "frame folder": folder,
        "frame folder (str)": str(folder),
        "video file": tmp_path / "clip.avi",
    }


def test_every_container_of_the_same_frames_gives_the_same_tensor(tmp_path):
    inputs = containers(tmp_path)
    for proc in processors():
        expected = proc(list(FRAMES))["pixel_values"]
        assert expected.shape == (1, 4, 3, SIZE, SIZE) and expected.std() > 0
        for name, clip in inputs.items():
            got = proc(clip)["pixel_values"]
            torch.testing.assert_close(got, expected, rtol=0, atol=0, msg=f"{name} ({proc.input_mode})")


def test_batches_of_tensors_give_each_clip_in_order():
    proc = processors()[0]
    second = np.ascontiguousarray(FRAMES[::-1])
    one, two = proc(list(FRAMES))["pixel_values"], proc(list(second))["pixel_values"]
    expected = torch.cat([one, two])
    batch = torch.from_numpy(np.stack([FRAMES, second])).permute(0, 1, 4, 2, 3)  # (B, T, C, H, W)
    torch.testing.assert_close(proc(batch)["pixel_values"], expected, rtol=0, atol=0)
    torch.testing.assert_close(proc(batch.float() / 255)["pixel_values"], expected, rtol=0, atol=0)
    listed = [torch.from_numpy(FRAMES), torch.from_numpy(second)]
    torch.testing.assert_close(proc(listed)["pixel_values"], expected, rtol=0, atol=0)
    torch.testing.assert_close(proc(np.stack([FRAMES, second]))["pixel_values"], expected, rtol=0, atol=0)


def test_gray_and_rgba_arrays():
    gray = FRAMES[..., 0]
    expected = as_frames(list(gray))  # (H, W) frames are gray: as they are
    np.testing.assert_array_equal(as_frames(torch.from_numpy(gray)[:, None])[0][..., 0], gray[0])  # (T, 1, H, W)
    assert len(expected) == T
    rgba = np.concatenate([FRAMES, np.full((T, SIZE, SIZE, 1), 255, np.uint8)], axis=-1)
    proc = processors()[0]
    torch.testing.assert_close(
        proc(torch.from_numpy(rgba).permute(0, 3, 1, 2))["pixel_values"], proc(list(FRAMES))["pixel_values"]
    )


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        # a known range (random values printed with 6 digits read "2" as often as "1.99...": a flaky test)
        (torch.linspace(0.25, 1.75, T * 3 * SIZE * SIZE).reshape(T, 3, SIZE, SIZE),
         r"the clip: float frames must lie in \[0, 1\] \(got 0\.25\.\.1\.75\); give uint8"),
        (np.full((T, SIZE, SIZE, 3), np.nan, np.float32), r"float frames must lie in \[0, 1\]"),
        (np.zeros((T, 5, SIZE, 7), np.uint8), r"cannot tell the channel axis of shape \(5, 48, 7\)"),
        (np.zeros((SIZE, SIZE, 3), np.uint8)[None, None, None], r"a 5-d|clip array must be"),
        (torch.zeros(T, SIZE, SIZE, 3, dtype=torch.int32) + 300, r"integer frames must lie in 0\.\.255"),
        (np.zeros((T, SIZE, SIZE, 3), bool), "frames must be uint8 .0-255. or float in .0, 1., got dtype bool"),
    ],
)
def test_bad_arrays_are_refused_in_one_line(clip, message):
    with pytest.raises(ValueError, match=message) as err:
        processors()[0](clip)
    assert "\n" not in str(err.value)
