"""The long synthetic mode: long face videos for spotting, timed by CAS(ME)^2's real annotation rows.

    from dataset_scripts import load_mer_dataset
    ds = load_mer_dataset("synthetic_long")                     # 6 subjects x 2 videos x 600 frames, 128 px
    ds = load_mer_dataset("synthetic_long", num_subjects=12, num_frames=None, image_size=160, seed=1)
    video = generate_long_video(0, real_events, num_frames=600)  # one video, no builder (tests, benches)

What a spotter meets in a real recording, rendered:

* timing: CAS(ME)^2's rows (dataset_scripts/casme_sq_code_final.csv, the MEGC ground truth; offset 0 read
  as the apex, as for the real set): each synthetic video is a window of `num_frames` frames at 30 fps
  cut from one real video where its events are densest (micro-expressions first), keeping their onsets,
  apexes, offsets, types, action units and emotion words; subjects are the participants with the most
  videos holding a micro-expression, each keeping its own videos (LOSO folds stay honest);
* the face: the renderer of the other synthetic modes (`_face_renderer`), a face about 0.6 of
  the frame wide; displacements are drawn at CAS(ME)^2's native scale (a ~280 px face in 640x480) and
  scaled with the face, so the ratio of motion to face size is the real one at any `image_size`;
* the events: action-unit displacement fields (`_face_renderer`) from the row's AUs (its emotion's
  AUs when the row's are not modelled), raised-cosine onset -> apex -> offset; peak displacement 1-4
  native px for a micro-expression (0.3-1.1 px at the default 128 px), 4-16 for a macro-expression;
* what fools spotters: eye blinks (10-20 a minute, 5-10 frames, the lid sweeping the whole eye: large,
  fast and local), head movements (nods, turns that stay, tilts: 6-30 native px over 10-40 frames, plus
  slow drift and breathing sway), talking (bursts of 1-3 s of jaw and lip motion at 2-3 Hz with the
  mouth opening), lighting (a slow swing, sudden exposure steps of 3-8 % and flicker), sensor noise and
  JPEG compression (quality 85-95, as CAS(ME)^2's JPEG frames).

Talking and head movements are kept clear of the annotated events (so a label never covers a larger
motion than its own); blinks are not (people blink during expressions). The builder writes the frames
once as JPEG files into a folder beside its Arrow cache and stores their paths (CONTRACTS §4), so that
spotting code reads them like CAS(ME)^2's frame folders.

This module is the set: its builder (`SyntheticLong`, its config and cache key) and its public names. The
timing is `_synthetic_long_plan`'s (the real rows, the windows), the rendering `_synthetic_long_video`'s.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from ._long import Event, long_features
from ._source_hash import source_hash
from ._synthetic_long_plan import MAX_SUBJECTS, WINDOW_MARGIN, plan_videos, real_videos
from ._synthetic_long_video import FPS, NATIVE_FACE_PX, LongVideo, generate_long_video
from .registry import DATASETS

DEFAULTS = {"num_subjects": 6, "videos_per_subject": 2, "num_frames": 600, "image_size": 128, "seed": 0}


@dataclass
class SyntheticLongConfig(datasets.BuilderConfig):
    """The knobs of the long synthetic set (each enters the cache fingerprint).

    num_subjects (1-22), videos_per_subject (1-15), num_frames per video (None: each real video's whole
    span), image_size (square frames), seed. class_set ("all") and on_error exist so that every builder
    accepts the same keywords (nothing here can be bad input)."""

    num_subjects: int = DEFAULTS["num_subjects"]
    videos_per_subject: int = DEFAULTS["videos_per_subject"]
    num_frames: int | None = DEFAULTS["num_frames"]
    image_size: int = DEFAULTS["image_size"]
    seed: int = DEFAULTS["seed"]
    class_set: str | None = None
    on_error: str = "raise"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.validate()

    def validate(self) -> None:
        checks = {"num_subjects": (self.num_subjects, 1, MAX_SUBJECTS), "videos_per_subject": (self.videos_per_subject, 1, 15),
                  "image_size": (self.image_size, 32, 1024), "seed": (self.seed, 0, 2**63 - 1)}
        if self.num_frames is not None:
            checks["num_frames"] = (self.num_frames, 90, 20000)
        for name, (value, low, high) in checks.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise ValueError(f"synthetic_long: {name} must be an integer in [{low}, {high}], got {value!r}")
        if self.class_set not in (None, "all"):
            raise ValueError(f"synthetic_long: the long set has one class set, 'all' (got {self.class_set!r})")
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"synthetic_long: on_error must be 'raise' or 'skip', got {self.on_error!r}")


class SyntheticLong(datasets.GeneratorBasedBuilder):
    """Builds the long synthetic set: `SyntheticLong(cache_dir=..., num_subjects=2).download_and_prepare()`."""

    BUILDER_CONFIG_CLASS = SyntheticLongConfig
    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIGS = [SyntheticLongConfig(name="all", description="CAS(ME)^2-timed long videos at 30 fps")]
    DEFAULT_CONFIG_NAME = "all"

    def __init__(self, *args: Any, hash: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, hash=hash or source_hash(__name__), **kwargs)
        self.config.validate()

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=DATASETS["synthetic_long"].card_text,
            license=DATASETS["synthetic_long"].license_text,
            features=long_features(),
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN)]

    def frames_dir(self) -> Path:
        """Where the frames are written: beside the Arrow cache, keyed by the same fingerprint."""
        cache = Path(self._cache_dir)
        return cache.parent / f"{cache.name}_frames"

    def _generate_examples(self) -> Iterator[tuple[int, dict[str, Any]]]:
        cfg = self.config
        for index, item in enumerate(plan_videos(cfg.num_subjects, cfg.videos_per_subject, cfg.num_frames)):
            subject_id = f"synth_s{item['subject'] + 1:02d}"
            video_id = f"{subject_id}_v{index + 1:02d}"
            folder = self.frames_dir() / subject_id / video_id
            length = item["num_frames"]
            paths = [folder / f"img{n}.jpg" for n in range(1, length + 1)]
            first = item["start"]
            events = [Event(e.onset - first + 1, e.apex - first + 1 if e.apex > 0 else -1, e.offset - first + 1,
                            e.type, e.action_units, e.emotion, e.where) for e in item["events"]]
            if not (folder / ".complete").is_file():
                rendered = generate_long_video(item["subject"], events, num_frames=length, image_size=cfg.image_size,
                                               seed=cfg.seed, video=index)
                partial = folder.with_name(folder.name + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                partial.mkdir(parents=True)
                for path, data in zip(paths, rendered.jpeg):
                    (partial / path.name).write_bytes(data)
                (partial / ".complete").write_text(f"{length}\n")
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(partial, folder)
            yield index, {
                "dataset": "synthetic_long",
                "subject": subject_id,
                "video_id": video_id,
                "fps": FPS,
                "num_frames": length,
                "frames": [str(p) for p in paths],
                "frame_numbers": list(range(1, length + 1)),
                "events": [
                    {"onset": e.onset, "apex": e.apex if e.onset <= e.apex <= e.offset else -1, "offset": e.offset,
                     "type": e.type, "action_units": e.action_units, "emotion": e.emotion}
                    for e in events
                ],
            }


def describe_plan(num_subjects: int = 6, videos_per_subject: int = 2, num_frames: int | None = 600) -> str:
    """One line per rendered video: which real CAS(ME)^2 video and window it is timed by."""
    lines = []
    for index, item in enumerate(plan_videos(num_subjects, videos_per_subject, num_frames)):
        micro = sum(e.type == "micro" for e in item["events"])
        lines.append(f"synth_s{item['subject'] + 1:02d}_v{index + 1:02d}: participant {item['participant']} "
                     f"{item['expression']} frames {item['start']}..{item['start'] + item['num_frames'] - 1} "
                     f"({len(item['events'])} events, {micro} micro)")
    return "\n".join(lines)


__all__ = [
    "FPS",
    "NATIVE_FACE_PX",
    "WINDOW_MARGIN",
    "LongVideo",
    "SyntheticLong",
    "SyntheticLongConfig",
    "describe_plan",
    "generate_long_video",
    "plan_videos",
    "real_videos",
]
