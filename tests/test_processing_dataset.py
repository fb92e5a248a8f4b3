"""preprocess_dataset: flow columns, fingerprint cache, settings in the fingerprint, process pool, errors."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from PIL import Image

from modeling_mer.processing_mer import MERImageProcessor
from modeling_mer.training.preprocessing import preprocess_dataset
from tests.test_processing import locally_moved_clip

LABELS = ["negative", "positive", "surprise"]


def features(lazy: bool = False) -> datasets.Features:
    """The builder schema of dataset_scripts/common.py, spelled out so this test stands alone."""
    frame = datasets.Value("string") if lazy else datasets.Image()
    return datasets.Features(
        {
            "dataset": datasets.Value("string"), "subject": datasets.Value("string"),
            "clip_id": datasets.Value("string"), "frames": datasets.List(frame),
            "frame_numbers": datasets.List(datasets.Value("int32")), "onset": datasets.Value("int32"),
            "apex": datasets.Value("int32"), "apex_source": datasets.Value("string"),
            "offset": datasets.Value("int32"), "fps": datasets.Value("float32"),
            "action_units": datasets.Value("string"), "emotion": datasets.Value("string"),
            "label": datasets.ClassLabel(names=LABELS),
        }
    )


def fake_dataset(tmp_path, lazy: bool = False) -> datasets.Dataset:
    """Three clips saved to disk (so map has a cache directory), one with an estimated apex."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    peaks = [(3, "annotated"), (5, "annotated"), (-1, "estimated")]
    rows: dict[str, list] = {k: [] for k in features()}
    for n, (apex, source) in enumerate(peaks):
        shifts = [(min(i, 6 - abs(i - 6)) * 0.5, 0.0) for i in range(9)]  # peak at index 6
        frames = [Image.fromarray(f) for f in locally_moved_clip(shifts)]  # a local movement: head motion is removed
        if lazy:
            paths = []
            for i, frame in enumerate(frames):
                paths.append(str(tmp_path / f"c{n}_{i}.png"))
                frame.save(paths[-1])
            frames = paths
        numbers = list(range(10 * n, 10 * n + 9))
        row = {
            "dataset": "fake", "subject": f"s{n}", "clip_id": f"clip{n}", "frames": frames,
            "frame_numbers": numbers, "onset": numbers[0], "apex": numbers[apex] if apex >= 0 else -1,
            "apex_source": source, "offset": numbers[-1], "fps": 100.0, "action_units": "4",
            "emotion": LABELS[n], "label": n,
        }
        for key, value in row.items():
            rows[key].append(value)
    built = datasets.Dataset.from_dict(rows, features=features(lazy))
    built.save_to_disk(tmp_path / "raw")
    return datasets.load_from_disk(tmp_path / "raw")


def test_flow_columns_and_kept_columns(tmp_path):
    processor = MERImageProcessor(image_size=32, num_frames=5, crop="none")
    out = preprocess_dataset(fake_dataset(tmp_path), processor)
    assert "frames" not in out.column_names
    for column in ("label", "subject", "clip_id", "dataset", "emotion", "sampled_frames", "apex_used"):
        assert column in out.column_names
    assert out.features["flow"].dtype == "float16" and out.features["flow"].shape == (5, 2, 32, 32)
    flow = np.asarray(out[0]["flow"], dtype=np.float32)
    assert flow.shape == (5, 2, 32, 32)
    assert out["apex_used"] == [3, 15, 26]  # annotated, annotated, spotted (peak at index 6)
    assert out["apex_estimated"] == [False, False, True]
    assert out[0]["sampled_frames"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    # stored flow equals the processor's own (up to float16)
    clip = fake_dataset(tmp_path / "again")[1]
    direct = processor.compute_flow(clip["frames"], clip["onset"], clip["apex"], clip["offset"], clip["frame_numbers"])
    np.testing.assert_allclose(np.asarray(out[1]["flow"], np.float32), direct["flow"], atol=2e-2, rtol=1e-3)


def test_second_run_is_cached_and_settings_enter_the_fingerprint(tmp_path):
    raw = fake_dataset(tmp_path)
    processor = MERImageProcessor(image_size=32, num_frames=5, crop="none")
    first = preprocess_dataset(raw, processor)
    again = preprocess_dataset(raw, MERImageProcessor(image_size=32, num_frames=5, crop="none"))
    assert again._fingerprint == first._fingerprint
    assert again.cache_files == first.cache_files  # loaded from the same Arrow file, not recomputed
    changed = preprocess_dataset(raw, MERImageProcessor(image_size=32, num_frames=5, crop="none", flow="dis"))
    assert changed._fingerprint != first._fingerprint and changed.cache_files != first.cache_files
    encoded = preprocess_dataset(raw, MERImageProcessor(image_size=32, num_frames=5, crop="none", encoding="uv"))
    assert encoded._fingerprint != first._fingerprint


def test_process_pool_and_lazy_paths_match_single_process(tmp_path):
    processor = MERImageProcessor(image_size=32, num_frames=4, crop="none", sampling="uniform")
    single = preprocess_dataset(fake_dataset(tmp_path / "a"), processor)
    pooled = preprocess_dataset(fake_dataset(tmp_path / "b", lazy=True), processor, num_proc=2)
    assert pooled["sampled_frames"] == single["sampled_frames"]
    np.testing.assert_array_equal(np.asarray(pooled["flow"]), np.asarray(single["flow"]))


def test_frames_mode_stores_rgb(tmp_path):
    processor = MERImageProcessor(image_size=32, num_frames=3, crop="none", input_mode="frames")
    out = preprocess_dataset(fake_dataset(tmp_path), processor)
    assert out.features["flow"].shape == (3, 3, 32, 32)


def test_errors_name_the_clip_or_the_columns(tmp_path):
    raw = fake_dataset(tmp_path)
    with pytest.raises(ValueError, match=r"lacks the columns \['frames'\]"):
        preprocess_dataset(raw.remove_columns("frames"), MERImageProcessor())
    broken = raw.map(lambda row: {"offset": 999 if row["clip_id"] == "clip1" else row["offset"]})
    with pytest.raises(ValueError, match=r"clip fake/s1/clip1: .*offset=999 is not a frame"):
        preprocess_dataset(broken, MERImageProcessor(image_size=32, num_frames=3, crop="none"))
