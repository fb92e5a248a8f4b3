"""MERImageProcessor: flow direction and size, encodings, sampling, apex spotting, I/O, crops, errors."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import matplotlib.cbook
import numpy as np
import pytest
import torch
from PIL import Image

from modeling_mer.apex_spotting import spot_apex
from modeling_mer.flow_encoding import encode_hsv, encode_uv
from modeling_mer.frame_sampling import apex_positions, synthesise, uniform_positions
from modeling_mer.processing_mer import MERImageProcessor

SIZE = 64


def texture(size: int = SIZE + 16, seed: int = 0) -> np.ndarray:
    """A smooth random gray texture: every pixel has gradient, so flow is well defined."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur((rng.random((size, size)) * 255).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def shifted_clip(shifts: list[tuple[float, float]], rgb: bool = True) -> list[np.ndarray]:
    """Frames of the texture translated by (dx, dy) pixels, cut to SIZE x SIZE."""
    base = texture()
    frames = []
    for dx, dy in shifts:
        matrix = np.float32([[1, 0, dx], [0, 1, dy]])
        moved = cv2.warpAffine(base, matrix, base.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        crop = moved[8 : 8 + SIZE, 8 : 8 + SIZE]
        frames.append(np.repeat(crop[..., None], 3, axis=-1) if rgb else crop)
    return frames


def processor(**kwargs) -> MERImageProcessor:
    settings = {"image_size": SIZE, "num_frames": 5, "crop": "none"} | kwargs
    return MERImageProcessor(**settings)


def centre(x: np.ndarray) -> np.ndarray:
    return x[..., 16:-16, 16:-16]


# ---------------------------------------------------------------------------------------------- flow
@pytest.mark.parametrize("method", ["farneback", "dis", "tvl1"])
def test_translated_pattern_gives_flow_of_right_direction_and_size(method):
    shifts = [(0.0, 0.0), (1.0, -0.5), (2.0, -1.0), (3.0, -1.5), (2.0, -1.0), (1.0, -0.5)]
    result = processor(flow=method).compute_flow(shifted_clip(shifts), apex=3)
    flow = result["flow"]
    assert flow.shape == (5, 2, SIZE, SIZE) and flow.dtype == np.float32
    # apex-centred run of 5 real frames inside (0, 5]: positions 1..5
    assert result["frame_numbers"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    expected = np.array(shifts[1:])
    measured = np.stack([np.median(centre(flow[:, 0]), axis=(1, 2)), np.median(centre(flow[:, 1]), axis=(1, 2))], 1)
    np.testing.assert_allclose(measured, expected, atol=0.25)


def test_hsv_encoding_colours_follow_the_flow_angle():
    # magnitudes vary over the image (min-max normalisation needs a range); direction is constant
    ramp = torch.linspace(0.5, 3.0, SIZE).expand(SIZE, SIZE)
    zero = torch.zeros_like(ramp)
    right, left, down = (torch.stack(uv) for uv in ((ramp, zero), (-ramp, zero), (zero, ramp)))
    rgb = encode_hsv(torch.stack([right, left, down]))  # (3, 3, S, S)
    brightest = rgb[..., -1]  # the largest magnitude sits in the last column: value 1
    torch.testing.assert_close(brightest[0].mean(1), torch.tensor([1.0, 0.0, 0.0]))  # right: red
    torch.testing.assert_close(brightest[1].mean(1), torch.tensor([0.0, 1.0, 1.0]))  # left: cyan
    torch.testing.assert_close(brightest[2].mean(1), torch.tensor([127.5 / 255, 1.0, 0.0]), atol=1 / 255, rtol=0)
    assert rgb[0, :, :, 0].abs().max() == 0  # smallest magnitude: value 0, black
    assert encode_hsv(torch.ones(2, 8, 8)).abs().max() == 0  # constant magnitude: cv2.normalize gives 0


def test_hsv_encoding_matches_the_opencv_recipe():
    rng = np.random.default_rng(1)
    flow = (rng.standard_normal((48, 48, 2)) * 3).astype(np.float32)
    magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    hsv = np.zeros((48, 48, 3), np.uint8)
    hsv[..., 0] = angle * 180 / np.pi / 2
    hsv[..., 1] = 255
    hsv[..., 2] = cv2.normalize(magnitude, None, 0, 255, cv2.NORM_MINMAX)
    reference = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32) / 255
    ours = encode_hsv(torch.from_numpy(flow).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    difference = np.abs(ours - reference) * 255
    # equal up to OpenCV's uint8 rounding, which changes between releases (4.14 rounds HSV2RGB differently
    # from earlier 4.x on ~14% of values): never more than 2 levels of 255, almost always within one
    assert difference.max() <= 2.0 + 1e-4 and np.mean(difference < 1.5) > 0.995


def test_uv_encoding_keeps_amplitude_with_a_fixed_scale():
    flow = torch.zeros(2, 2, 4, 4)
    flow[0, 0] = 1.0  # 1 px right
    flow[1, 0] = 2.0  # 2 px right: twice the signal (hsv would draw both the same)
    flow[1, 1] = -2.0  # and 2 px up
    uv = encode_uv(flow, scale=4.0)
    torch.testing.assert_close(uv[0, :, 0, 0], torch.tensor([0.5 + 1 / 8, 0.5, 1 / 4]))
    torch.testing.assert_close(uv[1, :, 0, 0], torch.tensor([0.5 + 2 / 8, 0.5 - 2 / 8, 8**0.5 / 4]))
    assert encode_uv(torch.full((2, 1, 1), 100.0), scale=4.0).max() == 1.0  # clipped


def test_uv_processor_on_translated_pattern():
    shifts = [(0.0, 0.0), (2.0, 0.0), (2.0, 0.0), (2.0, 0.0), (2.0, 0.0), (2.0, 0.0)]
    proc = processor(encoding="uv", uv_scale=4.0, image_mean=[0, 0, 0], image_std=[1, 1, 1])
    pixels = proc(shifted_clip(shifts), apex=3)["pixel_values"][0]
    assert pixels.shape == (5, 3, SIZE, SIZE)
    assert abs(float(centre(pixels[:, 0]).median()) - (0.5 + 2 / 8)) < 0.03  # u = +2 px
    assert abs(float(centre(pixels[:, 1]).median()) - 0.5) < 0.03  # v = 0


@pytest.mark.parametrize("settings", [{}, {"encoding": "uv"}, {"input_mode": "frames"}])
def test_call_equals_encode_flow_of_compute_flow(settings):
    frames = shifted_clip([(0, 0), (1, 0), (2, 1), (3, 1), (2, 0), (1, 0), (0, 0)])
    proc = processor(**settings)
    out = proc(frames, onset=1, apex=3, offset=6)
    stage = proc.compute_flow(frames, onset=1, apex=3, offset=6)
    channels = 3 if settings.get("input_mode") == "frames" else 2
    assert stage["flow"].shape == (5, channels, SIZE, SIZE)
    torch.testing.assert_close(out["pixel_values"], proc.encode_flow(torch.from_numpy(stage["flow"]))[None])
    # vectorised over leading dims
    batch = torch.from_numpy(np.stack([stage["flow"]] * 2))
    torch.testing.assert_close(proc.encode_flow(batch)[1], out["pixel_values"][0])
    assert out["frame_numbers"].tolist() == [stage["frame_numbers"]]
    assert out["apex"].tolist() == [3] and out["apex_estimated"].tolist() == [False]


def test_frames_mode_returns_normalised_crops():
    frames = shifted_clip([(0, 0)] * 6)
    proc = processor(input_mode="frames", image_mean=[0.5] * 3, image_std=[0.5] * 3)
    stage = proc.compute_flow(frames)
    np.testing.assert_allclose(stage["flow"][0, 0], frames[1][..., 0] / 255, atol=1e-6)
    assert proc(frames, return_tensors="np")["pixel_values"].min() >= -1.0


# ------------------------------------------------------------------------------------------ sampling
def test_apex_sampling_long_clips():
    np.testing.assert_array_equal(apex_positions(0, 20, 40, 11), np.arange(15, 26))  # apex in the middle
    np.testing.assert_array_equal(apex_positions(0, 2, 40, 11), np.arange(1, 12))  # clamped after onset
    np.testing.assert_array_equal(apex_positions(0, 39, 40, 11), np.arange(30, 41))  # clamped at offset
    np.testing.assert_array_equal(apex_positions(5, 10, 16, 11), np.arange(6, 17))  # exactly 11 frames


def test_apex_sampling_short_clip_is_synthesised_around_the_apex():
    positions = apex_positions(0, 3, 6, 11)
    np.testing.assert_allclose(positions, [0.5, 1, 1.5, 2, 2.5, 3, 3.6, 4.2, 4.8, 5.4, 6])
    assert positions[5] == 3 and positions[-1] == 6


def test_uniform_sampling():
    np.testing.assert_array_equal(uniform_positions(0, 40, 11), [4, 7, 11, 15, 18, 22, 25, 29, 33, 36, 40])
    np.testing.assert_allclose(uniform_positions(0, 5, 10), np.arange(1, 11) / 2)


def test_processor_reports_sheet_frame_numbers_for_short_clip():
    frames = shifted_clip([(0, 0), (1, 0), (2, 0), (1, 0)])
    numbers = [46, 47, 48, 49]  # e.g. CASME II img46.jpg ... img49.jpg
    result = processor(num_frames=5).compute_flow(frames, onset=46, apex=48, offset=49, frame_numbers=numbers)
    assert result["frame_numbers"] == pytest.approx([46.6667, 47.3333, 48.0, 48.5, 49.0], abs=1e-3)
    assert result["apex"] == 48 and result["onset"] == 46 and result["offset"] == 49
    uniform = processor(num_frames=4, sampling="uniform").compute_flow(frames, frame_numbers=numbers)
    assert uniform["frame_numbers"] == pytest.approx([46.75, 47.5, 48.25, 49.0])


@pytest.mark.parametrize("interpolation", ["blend", "warp"])
def test_synthesised_in_between_frames(interpolation):
    frames = shifted_clip([(0.0, 0.0), (4.0, 0.0)], rgb=False)
    truth = shifted_clip([(2.0, 0.0)], rgb=False)[0].astype(np.float32)
    middle = synthesise(lambda i: frames[i], 0.5, interpolation, "farneback", {})
    assert middle.dtype == np.uint8 and middle.shape == frames[0].shape
    error = np.abs(centre(middle.astype(np.float32)) - centre(truth)).mean()
    if interpolation == "blend":
        np.testing.assert_array_equal(middle, np.rint(frames[0] / 2 + frames[1] / 2).astype(np.uint8))
        assert error > 3  # blending ghosts a 4 px motion
    else:
        assert error < 3  # warping moves the pattern halfway
    np.testing.assert_array_equal(synthesise(lambda i: frames[i], 1.0, interpolation, "farneback", {}), frames[1])


# ------------------------------------------------------------------------------------------ apex
def test_spot_apex_finds_planted_apex():
    # a local, expression-like motion: a translation of the whole frame is the head's, which spotting removes
    shifts = [(0.0, 0.0), (0.5, 0), (1.0, 0), (1.5, 0), (2.5, 0), (3.5, 0.5), (2.0, 0), (1.0, 0), (0.5, 0)]
    assert spot_apex(locally_moved_clip(shifts)) == 5
    gray = [f[..., 0] for f in locally_moved_clip(shifts)]
    assert spot_apex(gray, method="dis", max_side=None) == 5
    with pytest.raises(ValueError, match="at least 2 frames"):
        spot_apex(shifted_clip([(0, 0)]))


def locally_moved_clip(shifts: list[tuple[float, float]]) -> list[np.ndarray]:
    """Frames of the texture whose central region (a Gaussian patch) moves by (dx, dy): a local, expression-
    like motion. A translation of the whole frame is the head's motion, which apex spotting removes."""
    base = texture().astype(np.float32)
    ys, xs = np.mgrid[0 : base.shape[0], 0 : base.shape[1]].astype(np.float32)
    c = base.shape[0] / 2
    patch = np.exp(-((xs - c) ** 2 + (ys - c) ** 2) / (2 * 10.0**2)).astype(np.float32)
    frames = []
    for dx, dy in shifts:
        moved = cv2.remap(base, xs - np.float32(dx) * patch, ys - np.float32(dy) * patch, cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)
        crop = np.clip(np.rint(moved[8 : 8 + SIZE, 8 : 8 + SIZE]), 0, 255).astype(np.uint8)
        frames.append(np.repeat(crop[..., None], 3, axis=-1))
    return frames


def test_processor_spots_apex_when_not_given():
    shifts = [(0.0, 0.0), (0.5, 0), (1.0, 0), (1.5, 0), (2.5, 0), (3.5, 0.5), (2.0, 0), (1.0, 0), (0.5, 0)]
    numbers = list(range(100, 109))
    out = processor()(locally_moved_clip(shifts), frame_numbers=numbers)
    assert out["apex"].tolist() == [105] and out["apex_estimated"].tolist() == [True]
    assert out["frame_numbers"][0].tolist() == [103, 104, 105, 106, 107]
    # the spotting window is onset..offset
    out = processor()(locally_moved_clip(shifts), onset=101, offset=108, frame_numbers=numbers)
    assert out["apex"].tolist() == [105]


# ------------------------------------------------------------------------------------------ save/load
def test_save_load_round_trip(tmp_path):
    proc = MERImageProcessor(
        image_size=112, num_frames=7, crop=[10, 20, 100, 100], crop_margin=0.2, on_no_face="full_frame",
        sampling="uniform", interpolation="warp", flow="dis", encoding="uv", uv_scale=3.0,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25],
    )
    proc.save_pretrained(tmp_path)
    loaded = MERImageProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == proc.to_dict()
    assert loaded.crop == [10, 20, 100, 100] and loaded.encoding == "uv" and loaded.image_std == [0.25] * 3
    override = MERImageProcessor.from_pretrained(tmp_path, num_frames=3)
    assert override.num_frames == 3 and override.flow == "dis"
    frames = shifted_clip([(0, 0), (1, 0), (2, 0), (1, 0)])
    small = [cv2.resize(f, (64, 64)) for f in frames]
    a = processor(encoding="uv", flow="dis")
    a.save_pretrained(tmp_path / "b")
    b = MERImageProcessor.from_pretrained(tmp_path / "b")
    torch.testing.assert_close(a(small)["pixel_values"], b(small)["pixel_values"])


# ------------------------------------------------------------------------------------------ I/O
def write_video(path: Path, frames: list[np.ndarray], codec: str) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "0"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize(("codec", "suffix"), [("libx264", "mp4"), ("mjpeg", "avi")])
def test_video_file_input(tmp_path, codec, suffix):
    shifts = [(0.0, 0.0), (0.5, 0), (1.0, 0), (2.0, 0), (3.0, 0), (2.0, 0), (1.0, 0), (0.5, 0)]
    frames = shifted_clip(shifts)
    path = tmp_path / f"clip.{suffix}"
    write_video(path, frames, codec)
    proc = processor()
    out = proc(str(path))
    assert out["pixel_values"].shape == (1, 5, 3, SIZE, SIZE)
    # a translation of the whole frame is head motion to apex spotting: no expression, any inner frame
    assert 0 < out["apex"].tolist()[0] < len(frames) - 1 and out["apex_estimated"].tolist() == [True]
    flow = proc.compute_flow(path, apex=4)["flow"]
    assert abs(float(np.median(centre(flow[2, 0]))) - 3.0) < 0.5  # decoded frame 4 moved 3 px right


def test_a_video_is_decoded_only_up_to_the_offset(tmp_path):
    from modeling_mer.video_io import load_clip

    shifts = [(0.0, 0.0), (0.5, 0), (1.0, 0), (2.0, 0), (3.0, 0), (2.0, 0), (1.0, 0), (0.5, 0)]
    path = tmp_path / "clip.avi"
    write_video(path, shifted_clip(shifts), "mjpeg")
    assert len(load_clip(path)) == 8
    assert len(load_clip(path, last_frame=5)) == 6
    proc = processor()
    assert proc.compute_flow(path, offset=5)["flow"].shape[0] == proc.num_frames
    with pytest.raises(ValueError, match="offset"):
        proc.compute_flow(path, onset=0, offset=12)


def test_frame_folder_uses_numbers_in_file_names(tmp_path):
    frames = shifted_clip([(0, 0), (1, 0), (2, 0), (3, 0), (2, 0), (1, 0)])
    for number, frame in zip([8, 9, 10, 11, 12, 13], frames):  # numeric, not lexical, order
        Image.fromarray(frame).save(tmp_path / f"img{number}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    result = processor().compute_flow(tmp_path, onset=8, apex=11, offset=13)
    assert result["frame_numbers"] == [9.0, 10.0, 11.0, 12.0, 13.0]
    assert abs(float(np.median(centre(result["flow"][2, 0]))) - 3.0) < 0.25


def test_pil_and_grayscale_frames_are_accepted():
    gray = shifted_clip([(0, 0), (1, 0), (2, 0)], rgb=False)
    from_gray = processor(num_frames=2).compute_flow(gray)["flow"]
    from_pil = processor(num_frames=2).compute_flow([Image.fromarray(g) for g in gray])["flow"]
    np.testing.assert_array_equal(from_gray, from_pil)


# ------------------------------------------------------------------------------------------ crops
def face_frames(count: int = 3) -> list[np.ndarray]:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
        face = np.asarray(Image.open(file).convert("RGB"))
    canvas = np.full((640, 720, 3), 90, np.uint8)
    frames = []
    for i in range(count):
        frame = canvas.copy()
        frame[20 + i : 620 + i, 100:612] = face
        frames.append(frame)
    return frames


def test_haar_crop_is_one_square_face_box():
    result = processor(crop="haar", num_frames=2).compute_flow(face_frames())
    x, y, w, h = result["crop_box"]
    assert w == h and 150 < w < 400
    assert 100 <= x and x + w <= 612 and 20 <= y and y + h <= 620  # inside the pasted portrait
    assert result["flow"].shape == (2, 2, SIZE, SIZE)
    wider = processor(crop="haar", crop_margin=0.3, num_frames=2).compute_flow(face_frames())["crop_box"]
    assert wider[2] > w


def test_no_face_error_or_full_frame_with_warning():
    frames = [np.full((120, 160, 3), 100, np.uint8), np.full((120, 160, 3), 101, np.uint8)]
    with pytest.raises(ValueError, match="no face found"):
        processor(crop="haar")(frames)
    with pytest.warns(UserWarning, match="no face found"):
        result = processor(crop="haar", on_no_face="full_frame", num_frames=1).compute_flow(frames)
    assert result["crop_box"] == [0, 0, 160, 120]


def test_user_box_and_none_crop():
    frames = shifted_clip([(0, 0), (2, 0), (2, 0)])
    boxed = processor(crop=[8, 8, 32, 32], num_frames=2).compute_flow(frames)
    assert boxed["crop_box"] == [8, 8, 32, 32]
    assert abs(float(np.median(boxed["flow"][0, 0])) - 4.0) < 0.5  # 2 px scaled up twice
    assert processor(num_frames=2).compute_flow(frames)["crop_box"] == [0, 0, SIZE, SIZE]
    with pytest.raises(ValueError, match=r"crop box \[40, 40, 32, 32\] does not fit"):
        processor(crop=[40, 40, 32, 32])(frames)


# ------------------------------------------------------------------------------------------ errors
def test_bad_videos_name_the_file(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 10)
    with pytest.raises(ValueError, match="garbage.mp4: cannot read video"):
        processor()(str(garbage))
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.avi"):
        processor()(empty)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        processor()(tmp_path / "missing.mp4")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="folder holds no frame images"):
        processor()(tmp_path / "folder")


def test_bad_frames():
    frames = shifted_clip([(0, 0), (1, 0), (2, 0)])
    with pytest.raises(ValueError, match="at least 2 frames, got 1"):
        processor()(frames[:1])
    with pytest.raises(ValueError, match=r"frame 2 \(frame number 2\) is 32x64"):
        processor()(frames[:2] + [frames[2][:, :32]])
    with pytest.raises(ValueError, match=r"frame 1: float frames must lie in \[0, 1\] \(got 54\.\.242\); give uint8"):
        processor()([frames[0], frames[1].astype(np.float32)])
    with pytest.raises(ValueError, match="frame_numbers has 2 entries for 3 frames"):
        processor()(frames, frame_numbers=[1, 2])
    with pytest.raises(ValueError, match="strictly increasing"):
        processor()(frames, frame_numbers=[1, 3, 2])
    with pytest.raises(TypeError, match="frames_or_path must be"):
        processor()(42)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"onset": 7}, "onset=7 is not a frame of the clip"),
        ({"offset": 99}, "offset=99 is not a frame of the clip"),
        ({"apex": -1}, "apex=-1 is not a frame of the clip"),
        ({"onset": 2, "apex": 1, "offset": 4}, "apex=1 lies outside onset=2..offset=4"),
        ({"onset": 3, "offset": 3}, "offset=3 must come after onset=3"),
    ],
)
def test_onset_apex_offset_outside_the_clip(kwargs, message):
    frames = shifted_clip([(0, 0), (1, 0), (2, 0), (1, 0), (0, 0)])
    with pytest.raises(ValueError, match=message):
        processor()(frames, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"flow": "raft"}, "flow"), ({"encoding": "rgb"}, "encoding"), ({"sampling": "random"}, "sampling"),
        ({"interpolation": "rife"}, "interpolation"), ({"crop": "mtcnn"}, "crop"), ({"crop": [1, 2, 3]}, "crop"),
        ({"on_no_face": "skip"}, "on_no_face"), ({"input_mode": "rgb"}, "input_mode"),
        ({"num_frames": 0}, "num_frames"), ({"image_size": 1.5}, "image_size"), ({"uv_scale": 0}, "uv_scale"),
        ({"image_std": [1, 0, 1]}, "image_std"), ({"crop_margin": -0.1}, "crop_margin"),
    ],
)
def test_bad_settings_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MERImageProcessor(**kwargs)


def test_encode_flow_checks_channels():
    with pytest.raises(ValueError, match=r"expects \(\.\.\., 2, H, W\)"):
        processor().encode_flow(torch.zeros(5, 3, 8, 8))
