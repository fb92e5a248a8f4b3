"""The processor inside a saved model folder: AutoImageProcessor and the video-classification pipeline."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoImageProcessor, pipeline

from modeling_mer import MERConfig, MERForVideoClassification, MERImageProcessor
from modeling_mer.pipeline_mer import CUSTOM_PIPELINES
from tests.test_processing import locally_moved_clip, write_video

LABELS = ["negative", "positive", "surprise"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny model + processor folder, as pushed to the Hub."""
    folder = tmp_path_factory.mktemp("model")
    config = MERConfig.from_preset("tiny", labels=LABELS)
    config.custom_pipelines = CUSTOM_PIPELINES  # the entry that selects MERVideoClassificationPipeline
    MERForVideoClassification(config).save_pretrained(folder)
    MERImageProcessor(image_size=32, num_frames=config.num_frames, crop="none").save_pretrained(folder)
    return folder


def test_folder_holds_processor_code_and_auto_map(model_dir):
    saved = json.loads((model_dir / "preprocessor_config.json").read_text())
    assert saved["auto_map"]["AutoImageProcessor"] == "processing_mer.MERImageProcessor"
    for name in ("processing_mer.py", "pipeline_mer.py", "optical_flow.py", "video_io.py", "face_crop.py"):
        assert (model_dir / name).is_file(), name
    loaded = AutoImageProcessor.from_pretrained(model_dir, trust_remote_code=True)
    assert type(loaded).__name__ == "MERImageProcessor" and loaded.num_frames == 8 and loaded.crop == "none"


def test_pipeline_on_a_video_file_samples_across_the_whole_clip(model_dir, tmp_path):
    # 25 frames, a local (expression-like) motion peaking at frame 18: far beyond the first num_frames=8 the
    # stock pipeline reads (a whole-frame shift would be head motion, which apex spotting removes)
    frames = locally_moved_clip([(max(0.0, 2.0 - abs(i - 18) * 0.4), 0.0) for i in range(25)])
    video = tmp_path / "clip.mp4"
    write_video(video, frames, "libx264")
    pipe = pipeline("video-classification", model=str(model_dir), trust_remote_code=True)
    assert type(pipe).__name__ == "MERVideoClassificationPipeline"
    inputs = pipe.preprocess(str(video))
    assert set(inputs) == {"pixel_values"} and inputs["pixel_values"].shape == (1, 8, 3, 32, 32)
    processor = pipe.image_processor
    whole = processor(str(video))
    assert whole["apex"].tolist() == [18]  # spotted in the whole file
    torch.testing.assert_close(inputs["pixel_values"], whole["pixel_values"])
    first_frames = processor(frames[:8])["pixel_values"]
    assert not torch.allclose(inputs["pixel_values"], first_frames)
    results = pipe(str(video), top_k=2)
    assert len(results) == 2 and {r["label"] for r in results} <= set(LABELS)
    assert sum(r["score"] for r in pipe(str(video))) == pytest.approx(1.0, abs=1e-5)
    annotated = pipe.preprocess(str(video), onset=4, apex=12, offset=20)
    torch.testing.assert_close(
        annotated["pixel_values"], processor(str(video), onset=4, apex=12, offset=20)["pixel_values"]
    )


def test_clip_geometry_is_checked_in_one_place_with_one_message(model_dir):
    """The config owns num_frames/image_size/patch_size; the pipeline, mer-predict and training all call
    check_processor_geometry, so a disagreeing processor fails the same way everywhere."""
    from modeling_mer.configuration_mer import check_processor_geometry

    config = MERConfig.from_pretrained(model_dir)
    check_processor_geometry(config, MERImageProcessor.for_config(config, crop="none"))  # built from it: agrees
    wrong = MERImageProcessor(image_size=48, num_frames=4, crop="none")
    expected = (
        "processor geometry does not match the model: num_frames 4 (the model's config: 8); image_size 48 (the "
        "model's config: 32). The config owns num_frames=8, image_size=32, patch_size=8: use the processor saved "
        "with the model or MERImageProcessor.for_config(config, ...)"
    )
    with pytest.raises(ValueError) as direct:
        check_processor_geometry(config, wrong)
    assert str(direct.value) == expected
    with pytest.raises(ValueError) as piped:
        pipeline("video-classification", model=str(model_dir), image_processor=wrong)
    assert str(piped.value) == expected
    with pytest.raises(ValueError) as built:
        MERImageProcessor.for_config(config, image_size=48, num_frames=4)
    assert str(built.value) == expected
    config.vision_config.image_size = 36  # a config edited after construction (not a multiple of the patch)
    with pytest.raises(ValueError, match="the config's image_size 36 is not a multiple of its patch_size 8"):
        check_processor_geometry(config, MERImageProcessor(image_size=36, num_frames=8, crop="none"))
