"""Turn a builder dataset (see dataset_scripts/common.py) into stored flow, once.

`preprocess_dataset` runs `MERImageProcessor.compute_flow` over every clip with `datasets.map`
(several processes, a progress bar) and stores float16 flow, so training never recomputes flow and
only runs the cheap `encode_flow` per batch. The cache fingerprint is built from the input dataset's
fingerprint and the processor's JSON settings: a second run with the same settings loads the cached
Arrow file; any changed setting recomputes.

With `on_error="skip"` a clip whose flow cannot be computed (frames of two sizes, an undecodable frame,
no face found...) is left out instead of stopping the run, and named with its reason: read the list
with `preprocessing_skips(result)`: one skip report with the builders' (dataset_scripts' `BadClip`
records on the same marker line, where="preprocessing"; `skipped_clips(result)` reads both).
"""

from __future__ import annotations

from typing import Any

import cv2
import datasets
import numpy as np
from datasets.fingerprint import Hasher

from dataset_scripts import BadClip, record_skips, skipped_clips
from dataset_scripts._cache import discard_damaged_map_cache

from ..processing_mer import MERImageProcessor

# Bump when the stored values would change for identical settings (a fix in the flow code).
PREPROCESSING_VERSION = 2  # 2: the face is found on the apex frame, by dlib or by the most confident Haar box

REQUIRED_COLUMNS = ("frames", "frame_numbers", "onset", "apex", "offset")
ON_ERROR_CHOICES = ("raise", "skip")
ERROR_COLUMN = "preprocessing_error"
PREPROCESSING = "preprocessing"  # the `where` of the skip records this stage adds


def output_features(dataset: datasets.Dataset, processor: MERImageProcessor) -> datasets.Features:
    """Input columns minus `frames`, plus flow, sampled_frames, apex_used, apex_estimated and the crop:
    crop_box, crop_source, crop_score, crop_faces, crop_angle (see `MERImageProcessor.compute_flow`)."""
    channels = 2 if processor.input_mode == "flow" else 3
    size = processor.image_size
    features = {k: v for k, v in dataset.features.items() if k != "frames"}
    features.update(
        {
            "flow": datasets.Array4D(shape=(processor.num_frames, channels, size, size), dtype="float16"),
            "sampled_frames": datasets.List(datasets.Value("float32")),
            "apex_used": datasets.Value("int32"),
            "apex_estimated": datasets.Value("bool"),
            "crop_box": datasets.List(datasets.Value("int32")),
            "crop_source": datasets.Value("string"),
            "crop_score": datasets.Value("float32"),
            "crop_faces": datasets.Value("int32"),
            "crop_angle": datasets.Value("float32"),
        }
    )
    return datasets.Features(features)


def _clip_name(example: dict[str, Any]) -> str:
    parts = [str(example.get(k)) for k in ("dataset", "subject", "clip_id") if example.get(k) is not None]
    return "/".join(parts) or "clip"


def _placeholder(processor: MERImageProcessor, reason: str) -> dict[str, Any]:
    """The row of a clip skipped in preprocessing (filtered out before anything reads its flow)."""
    channels = 2 if processor.input_mode == "flow" else 3
    size = processor.image_size
    return {
        "flow": np.zeros((processor.num_frames, channels, size, size), np.float16),
        "sampled_frames": [], "apex_used": -1, "apex_estimated": False, "crop_box": [], "crop_source": "",
        "crop_score": 0.0, "crop_faces": 0, "crop_angle": 0.0, ERROR_COLUMN: reason,
    }


def _process_clip(example: dict[str, Any], processor: MERImageProcessor, skip: bool = False) -> dict[str, Any]:
    """One row -> its flow. A clip whose apex is missing (None or negative) gets it spotted."""
    apex = example["apex"]
    if apex is not None and apex < 0:
        apex = None
    try:
        result = processor.compute_flow(
            example["frames"], example["onset"], apex, example["offset"], example["frame_numbers"]
        )
    except (ValueError, FileNotFoundError) as err:
        if skip:
            return _placeholder(processor, str(err))
        raise ValueError(f"preprocessing clip {_clip_name(example)}: {err}") from err
    estimated = result["apex_estimated"] or example.get("apex_source") == "estimated"
    return {
        "flow": result["flow"].astype(np.float16),
        "sampled_frames": result["frame_numbers"],
        "apex_used": result["apex"],
        "apex_estimated": bool(estimated),
        **{k: result[k] for k in ("crop_box", "crop_source", "crop_score", "crop_faces", "crop_angle")},
        **({ERROR_COLUMN: ""} if skip else {}),
    }


def preprocess_dataset(
    dataset: datasets.Dataset,
    processor: MERImageProcessor,
    num_proc: int | None = None,
    desc: str = "Optical flow",
    cache_file_name: str | None = None,
    load_from_cache_file: bool = True,
    on_error: str = "raise",
) -> datasets.Dataset:
    """A builder dataset -> the same rows with `flow` (T, C, S, S) float16 instead of `frames`.

    Args:
        dataset: rows with at least frames, frame_numbers, onset, apex, offset. Frames may be embedded
            images (`List(Image())`) or paths (`List(Value("string"))`); images are decoded lazily.
        processor: its settings decide the output and enter the cache fingerprint.
        num_proc: worker processes for `datasets.map` (None: one); each worker runs OpenCV single-threaded.
            OpenCV's thread count in this process is restored afterwards.
        cache_file_name: where to store the result; by default next to the dataset's own cache files
            (a dataset held only in memory has none and is recomputed: save it to disk first).
        on_error: "raise" stops at the first clip whose flow fails, naming it; "skip" leaves such clips
            out (see `preprocessing_skips`).
    """
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    skip = on_error == "skip"
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise ValueError(f"preprocess_dataset: the dataset lacks the columns {missing} (has {dataset.column_names})")
    frames_feature = dataset.features["frames"]
    inner = getattr(frames_feature, "feature", None)
    if isinstance(inner, datasets.Image):
        # Decode lazily inside the processor: only the frames it samples are ever decoded.
        dataset = dataset.cast_column("frames", datasets.List(datasets.Image(decode=False)))
    fingerprint = Hasher.hash(
        (dataset._fingerprint, processor.to_json_string(), PREPROCESSING_VERSION, "preprocess_dataset", on_error)
    )
    # Workers run OpenCV single-threaded (the pool already uses the cores). This must be set here,
    # before map forks them: cv2.setNumThreads inside a forked child tears down the parent's thread
    # pool, whose threads do not exist there, and deadlocks.
    threads = cv2.getNumThreads()
    if num_proc and num_proc > 1:
        cv2.setNumThreads(1)
    features = output_features(dataset, processor)
    if skip:
        features[ERROR_COLUMN] = datasets.Value("string")
    if load_from_cache_file and (cache_file_name or dataset.cache_files):  # a damaged cached table is computed again
        target = cache_file_name or dataset._get_cache_file_path(fingerprint)
        discard_damaged_map_cache(target, len(dataset), "flow table")
    try:
        mapped = dataset.map(
            _process_clip,
            fn_kwargs={"processor": processor, "skip": skip},
            remove_columns=["frames"],
            features=features,
            num_proc=num_proc,
            desc=desc,
            new_fingerprint=fingerprint,
            cache_file_name=cache_file_name,
            load_from_cache_file=load_from_cache_file,
        )
    finally:
        cv2.setNumThreads(threads)
    if not skip:
        return mapped
    errors = mapped[ERROR_COLUMN]
    skipped = [
        BadClip(*(str(row.get(k) or "") for k in ("dataset", "subject", "clip_id")), PREPROCESSING, errors[i])
        for i, row in ((i, mapped[i]) for i, error in enumerate(errors) if error)
    ] if any(errors) else []
    kept = mapped.select([i for i, error in enumerate(errors) if not error]) if skipped else mapped
    kept = kept.remove_columns(ERROR_COLUMN)
    return record_skips(kept, skipped)


def preprocessing_skips(dataset: datasets.Dataset) -> list[dict[str, str]]:
    """The clips `preprocess_dataset(on_error="skip")` left out: {clip, dataset, subject, clip_id, where, reason}
    (the skip report's records of this stage; `skipped_clips` gives the builder's too)."""
    return [entry for entry in skipped_clips(dataset) if entry["where"] == PREPROCESSING]
