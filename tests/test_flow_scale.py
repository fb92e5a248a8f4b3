"""Flow resolution independent of the model input: flow at flow_size on the crop, area-reduced to
image_size with the vectors rescaled; rigid head-motion removal; old processors keep their behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from modeling_mer.optical_flow import reduce_flow, remove_head_motion
from modeling_mer.processing_mer import MERImageProcessor

NATIVE = 240  # the crop's side in the recording's pixels


def texture(size: int, seed: int = 0) -> np.ndarray:
    """Skin-like gray texture: fine grain (~2 px) over blotches, float32 in 0..255."""
    rng = np.random.default_rng(seed)
    fine = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 1.5)
    coarse = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 6.0)
    image = fine / fine.std() + coarse / coarse.std()
    return np.clip(128 + 35 * image, 0, 255).astype(np.float32)


def warped(base: np.ndarray, map_dx: np.ndarray, map_dy: np.ndarray) -> np.ndarray:
    """The texture moved by (map_dx, map_dy) pixels at each output pixel, cut to NATIVE x NATIVE, RGB uint8."""
    pad = (base.shape[0] - NATIVE) // 2
    grid_x, grid_y = np.meshgrid(np.arange(base.shape[1], dtype=np.float32), np.arange(base.shape[0], dtype=np.float32))
    full_dx = np.pad(map_dx, pad, mode="edge").astype(np.float32)
    full_dy = np.pad(map_dy, pad, mode="edge").astype(np.float32)
    moved = cv2.remap(base, grid_x - full_dx, grid_y - full_dy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    gray = np.clip(np.rint(moved[pad:-pad, pad:-pad]), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)


def translated_clip(dx: float, dy: float) -> list[np.ndarray]:
    """onset, then the pattern translated by (dx, dy) native pixels (three identical frames). The onset is
    itself at a fractional offset, so that every frame is resampled alike, as a camera samples them."""
    base = texture(NATIVE + 32)
    start = np.full((NATIVE, NATIVE), 0.37, np.float32), np.full((NATIVE, NATIVE), 0.21, np.float32)
    moved = warped(base, start[0] + dx, start[1] + dy)
    return [warped(base, *start), moved, moved, moved]


@pytest.mark.parametrize(("dx", "dy"), [(0.6, -0.3), (-0.35, 0.25)])
def test_sub_pixel_translation_at_flow_size_then_reduced_keeps_its_amplitude(dx: float, dy: float) -> None:
    """A sub-pixel translation of the native crop: flow at flow_size reduced to image_size must equal the
    translation expressed in image_size pixels, direction and amplitude (within 10 %)."""
    image_size = 32
    proc = MERImageProcessor(image_size=image_size, num_frames=2, crop="none", flow_size=NATIVE)
    flow = proc.compute_flow(translated_clip(dx, dy), apex=2)["flow"]  # (T, 2, 32, 32), px at 32
    assert flow.shape == (2, 2, image_size, image_size)
    expected = np.array([dx, dy]) * image_size / NATIVE
    measured = np.median(flow[:, :, 4:-4, 4:-4].reshape(2, 2, -1), axis=-1)  # (T, 2)
    for vector in measured:
        assert abs(np.linalg.norm(vector) / np.linalg.norm(expected) - 1) < 0.10, (vector, expected)
        assert np.degrees(np.arccos(vector @ expected / np.linalg.norm(vector) / np.linalg.norm(expected))) < 10
    # The field is uniform: every reduced vector (away from the border) is near the translation.
    spread = np.abs(flow[:, :, 4:-4, 4:-4] - expected[None, :, None, None]).max()
    assert spread < 0.5 * np.linalg.norm(expected)


def test_reduce_flow_averages_areas_and_rescales_vectors() -> None:
    field = np.zeros((8, 8, 2), np.float32)
    field[:4, :4] = (2.0, -4.0)  # top-left quarter moves, the rest is still
    reduced = reduce_flow(field, 2)
    assert reduced.shape == (2, 2, 2)
    np.testing.assert_allclose(reduced[0, 0], [2.0 / 4, -4.0 / 4])  # same motion in pixels 4x larger
    np.testing.assert_allclose(reduced[1, 1], [0.0, 0.0])
    mixed = reduce_flow(np.dstack([np.tile([0.0, 4.0], (8, 4)), np.zeros((8, 8))]).astype(np.float32), 4)
    np.testing.assert_allclose(mixed[..., 0], 1.0)  # area mean of 0 and 4 (=2) in pixels 2x larger


@pytest.mark.parametrize("model", ["translation", "affine"])
def test_head_motion_removal_keeps_the_local_expression(model: str) -> None:
    size = 96
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    angle, shift = np.deg2rad(0.8), (2.5, -1.5)  # a head roll about the centre plus a drift
    rigid_x = shift[0] + (np.cos(angle) - 1) * (xs - size / 2) - np.sin(angle) * (ys - size / 2)
    rigid_y = shift[1] + np.sin(angle) * (xs - size / 2) + (np.cos(angle) - 1) * (ys - size / 2)
    local = 0.6 * np.exp(-(((xs - 35) / 6) ** 2 + ((ys - 60) / 5) ** 2))  # an AU moving 0.6 px upwards
    flow = np.dstack([rigid_x, rigid_y - local]).astype(np.float32)
    cleaned = remove_head_motion(flow, model)
    if model == "affine":
        assert np.abs(cleaned[..., 0]).max() < 0.05
        assert abs(cleaned[60, 35, 1] + 0.6) < 0.05  # the expression survives
        assert np.abs(cleaned[10:20, 70:90]).max() < 0.05  # the rest is still
    else:  # a translation removes the drift, the roll's field remains
        assert abs(np.median(cleaned[..., 0])) < 0.05 and abs(np.median(cleaned[..., 1])) < 0.05
    assert remove_head_motion(flow, "none") is flow
    with pytest.raises(ValueError, match="head_motion='rigid'"):
        remove_head_motion(flow, "rigid")


def test_processor_head_motion_and_flow_size_settings(tmp_path: Path) -> None:
    proc = MERImageProcessor(image_size=32, num_frames=2, crop="none", flow_size=128, head_motion="affine")
    proc.save_pretrained(tmp_path)
    loaded = MERImageProcessor.from_pretrained(tmp_path)
    assert (loaded.flow_size, loaded.head_motion) == (128, "affine")
    for bad, message in (({"flow_size": 0}, "flow_size"), ({"flow_size": 1.5}, "flow_size"),
                         ({"head_motion": "rigid"}, "head_motion")):
        with pytest.raises(ValueError, match=message):
            MERImageProcessor(**bad)


def test_saved_processor_without_the_new_keys_keeps_the_old_behaviour(tmp_path: Path) -> None:
    """A preprocessor_config.json written before flow_size/head_motion existed: flow at image_size."""
    old = {"image_processor_type": "MERImageProcessor", "image_size": 32, "num_frames": 2, "crop": "none",
           "flow": "farneback", "encoding": "hsv", "uv_scale": 5.0, "input_mode": "flow", "sampling": "apex"}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(old))
    loaded = MERImageProcessor.from_pretrained(tmp_path)
    assert loaded.flow_size is None and loaded.head_motion == "none"
    clip = translated_clip(1.5, 0.0)
    from_old = loaded.compute_flow(clip, apex=2)["flow"]
    small = [cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in clip]
    direct = MERImageProcessor(image_size=32, num_frames=2, crop="none").compute_flow(small, apex=2)["flow"]
    np.testing.assert_array_equal(from_old, direct)  # flow computed on the 32 px frames, as before


def test_motion_encoding_keeps_amplitude_in_physical_units() -> None:
    """encoding="motion": the same native displacement gives the same input at any image_size; twice the
    motion gives twice the signal (in the linear range); large motions are bounded, not clipped flat."""
    import torch

    from modeling_mer.flow_encoding import MOTION_BOUND, encode_motion

    for size in (32, 64):
        proc = MERImageProcessor(image_size=size, num_frames=1, crop="none", encoding="motion", motion_unit=0.002)
        native = 240  # px of the crop; 0.24 px native = 0.5 unit
        flow = torch.zeros(1, 2, size, size)
        flow[:, 0] = 0.24 * size / native
        encoded = proc.encode_flow(flow)
        assert encoded.shape == (1, 3, size, size)
        assert torch.allclose(encoded[:, 0], torch.full_like(encoded[:, 0], 0.24 / (0.002 * native)), atol=0.01)
    small = encode_motion(torch.full((2, 4, 4), 0.1), 1.0)[0, 0, 0]
    double = encode_motion(torch.full((2, 4, 4), 0.2), 1.0)[0, 0, 0]
    assert abs(double / small - 2) < 0.01
    huge = encode_motion(torch.full((2, 4, 4), 50.0), 1.0)
    assert huge.abs().max() <= MOTION_BOUND and huge[0].min() > 0.98 * MOTION_BOUND
    with pytest.raises(ValueError, match="motion_unit"):
        MERImageProcessor(encoding="motion", motion_unit=0)
