"""A built-in synthetic micro-expression set: the default data of the demo and the tests.

Why it looks the way it does: a micro-expression is a brief, tiny, local movement on a face that does
not otherwise change. A data set in which a single frame already gives the class away would teach a
model to look at appearance, and a demo trained on it would prove nothing about motion. So:

* every subject has an identity (head and feature geometry, skin tone, hair, skin texture, background);
* every clip starts from that subject's face in a *resting expression* of its own: a static warp made of
  the very action-unit (AU) fields the emotions use, with random signed strengths. A face whose brows
  rest low looks, on a single frame, just like a face lowering its brows;
* the emotion is a brief onset -> apex -> offset bump of an AU displacement field (a pixel or two at
  64x64), warped into the image, never drawn; intensity and exact position vary per clip;
* every clip, whatever its class, has slow head drift, light flicker (100 Hz mains at 200 fps) and
  sensor noise;
* classes are balanced within every subject, so identity says nothing about the label.

Only the change between the onset frame and a later frame reveals the class; `tests/test_synthetic.py`
checks that a linear classifier on single apex frames stays near chance under leave-one-subject-out
while the same classifier on onset->apex optical flow is well above it.

    from dataset_scripts import load_mer_dataset
    ds = load_mer_dataset("synthetic")                       # 8 subjects x 12 clips x 24 frames, 64 px
    ds = load_mer_dataset("synthetic", num_subjects=16, amplitude=1.0, seed=3)
    frames, onset, apex, offset, emotion = generate_clip(0, 0, "positive")   # one clip, no builder

The defaults build in a few seconds and are sized for the CPU demo of `train.py` (amplitude 2.0: at
1.5 the demo's tiny ViT reached LOSO UF1 0.46, at 2.0 0.71, while single frames stay near chance).

Two modes (`mode=`): "demo" (the above, the default) and "realistic", which renders what a high-speed
camera records: CASME II's 640x480 frames at 200 fps (camera="samm": SAMM-like 2040x1088), its 26
subjects with their real counts of its five classes, its timing, and action units moving 0.3-3 px at the
native resolution under larger head motion, flicker, noise and JPEG compression (details in
`_synthetic_realistic.py`). `apex_window=w` renders and stores only the onset, the w frames centred on
the apex and the offset, under their real frame numbers: what apex-centred sampling of up to w frames
reads, at a fraction of the cost (train.py --synthetic_mode realistic uses 16).

    ds = load_mer_dataset("synthetic", mode="realistic", apex_window=16)   # 249 clips, 5 classes

This module is the set: its builder (`SyntheticMER`: the config, the modes, the rows, the cache key) and its
public names. The demo clips are drawn by `_synthetic_demo`, the realistic ones by `_synthetic_realistic`,
and both are drawn with the face renderer of `_face_renderer`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import datasets
import numpy as np

from ._face_renderer import rng_stream
from ._source_hash import source_hash
from ._synthetic_demo import EMOTIONS, SyntheticClip, check_knobs, generate_clip
from ._synthetic_demo import FPS as DEMO_FPS
from ._synthetic_realistic import (
    CAMERAS,
    CASME2_CLASSES,
    CASME2_COUNTS,
    apex_window_indices,
    casme2_plan,
    clip_timing,
    generate_realistic_clip,
)
from ._synthetic_realistic import FPS as REALISTIC_FPS
from ._synthetic_realistic import _rng as _realistic_rng
from .common import mer_features
from .registry import DATASETS

_CLASS_SETS = (None, "3class", "all")
MODES = ("demo", "realistic")
# The generator of each mode: a mode's cache key leaves the other mode's generator out (`source_hash`), so an
# edit to the demo keeps a realistic build, which takes minutes, and the other way round.
GENERATORS = {"demo": generate_clip.__module__, "realistic": generate_realistic_clip.__module__}


@dataclass
class SyntheticMERConfig(datasets.BuilderConfig):
    """The knobs of the synthetic set; every one of them enters the cache fingerprint.

    `class_set` ("3class", "all" or None: the same three classes), `on_error` (nothing can fail here)
    and `lazy` (unsupported: there are no files to point at) exist so that every builder accepts the
    same keywords.
    """

    num_subjects: int | None = None  # None: 8 (demo), CASME II's 26 (realistic)
    clips_per_subject: int = 12
    num_frames: int = 24
    image_size: int = 64
    amplitude: float = 2.0
    seed: int = 0
    class_set: str | None = None
    on_error: str = "raise"
    lazy: bool = False
    mode: str = "demo"
    camera: str = "casme2"
    apex_window: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.validate()

    @property
    def subjects(self) -> int:
        """The number of subjects built (`num_subjects`, or the mode's default)."""
        if self.num_subjects is not None:
            return self.num_subjects
        return len(CASME2_COUNTS) if self.mode == "realistic" else 8

    def validate(self) -> None:
        """Raise a ValueError naming the offending option."""
        if self.mode not in MODES:
            raise ValueError(f"synthetic: mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.camera not in CAMERAS:
            raise ValueError(f"synthetic: camera must be one of {list(CAMERAS)}, got {self.camera!r}")
        if self.mode == "realistic":
            for name, default in (("clips_per_subject", 12), ("num_frames", 24), ("image_size", 64), ("amplitude", 2.0)):
                if getattr(self, name) != default:
                    raise ValueError(
                        f"synthetic: {name} is a demo-mode knob; mode='realistic' takes CASME II's composition, "
                        f"timing and camera (choose camera=, num_subjects=, seed=), got {name}={getattr(self, name)!r}"
                    )
            if isinstance(self.num_subjects, bool) or not (
                self.num_subjects is None or (isinstance(self.num_subjects, int) and 2 <= self.num_subjects <= len(CASME2_COUNTS))
            ):
                raise ValueError(
                    f"synthetic: num_subjects must be in [2, {len(CASME2_COUNTS)}] (CASME II's subjects) in "
                    f"realistic mode, got {self.num_subjects!r}"
                )
            if self.class_set not in (None, "5class", "all"):
                raise ValueError(f"synthetic: realistic mode has CASME II's 5 classes; class_set must be None, "
                                 f"'5class' or 'all', got {self.class_set!r}")
            if self.apex_window is not None and (
                isinstance(self.apex_window, bool) or not isinstance(self.apex_window, int) or self.apex_window < 1
            ):
                raise ValueError(f"synthetic: apex_window must be a positive number of frames or None, got {self.apex_window!r}")
        elif self.camera != "casme2" or self.apex_window is not None:
            raise ValueError("synthetic: camera and apex_window apply to mode='realistic' only")
        check_knobs(self.subjects, self.clips_per_subject, self.num_frames, self.image_size,
                    self.amplitude, self.seed)
        if self.mode == "demo" and self.class_set not in _CLASS_SETS:
            raise ValueError(f"synthetic: class_set must be one of {list(_CLASS_SETS)}, got {self.class_set!r}")
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"synthetic: on_error must be 'raise' or 'skip', got {self.on_error!r}")
        if self.lazy:
            raise ValueError(
                "synthetic: lazy=True is not supported: the synthetic frames exist only in memory, so there "
                "are no files whose paths could be stored; the frames are always embedded as PNG"
            )


class SyntheticMER(datasets.GeneratorBasedBuilder):
    """Builds the synthetic set: `SyntheticMER(cache_dir=..., num_subjects=4).download_and_prepare()`.

    The cache folder also carries a hash of the code that renders the mode (`_source_hash`: this module,
    the mode's generator, the face renderer), so a change to it never serves frames rendered by an older
    version.
    """

    BUILDER_CONFIG_CLASS = SyntheticMERConfig
    VERSION = datasets.Version("1.0.0")
    # The modes are the named configs: SyntheticMER(config_name="realistic") is SyntheticMER(mode="realistic").
    BUILDER_CONFIGS = [
        SyntheticMERConfig(name="demo", mode="demo", description="3 classes told apart only by a 1-2 px motion"),
        SyntheticMERConfig(name="realistic", mode="realistic",
                           description="CASME II-like recordings: 26 subjects, 5 classes, 640x480 at 200 fps"),
    ]
    DEFAULT_CONFIG_NAME = "demo"

    def __init__(self, *args: Any, hash: str | None = None, **kwargs: Any) -> None:
        if kwargs.get("config_name") is None and kwargs.get("mode") in MODES:
            kwargs["config_name"] = kwargs.pop("mode")  # that config: the same build and cache as by name
        mode = kwargs.get("mode") or kwargs.get("config_name") or getattr(kwargs.get("config"), "mode", None) or "demo"
        others = tuple(module for name, module in GENERATORS.items() if name != mode)
        super().__init__(*args, hash=hash or source_hash(__name__, leave_out=others), **kwargs)
        self.config.validate()  # a named config's attributes are overwritten without __post_init__

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=DATASETS["synthetic"].card_text,  # the registry owns the text
            license=DATASETS["synthetic"].license_text,
            features=mer_features(list(CASME2_CLASSES) if self.config.mode == "realistic" else EMOTIONS, lazy=False),
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={})]

    def _generate_examples(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        cfg = self.config
        if cfg.mode == "realistic":
            yield from self._generate_realistic()
            return
        width = max(2, len(str(cfg.subjects)))
        per_class = cfg.clips_per_subject // len(EMOTIONS)
        index = 0
        for subject in range(cfg.subjects):
            # Balanced classes in a random order of their own per subject.
            order = rng_stream(cfg.seed, subject, 0, 1).permutation(np.repeat(np.arange(len(EMOTIONS)), per_class))
            subject_id = f"synth_s{subject + 1:0{width}d}"
            for clip in range(cfg.clips_per_subject):
                emotion = EMOTIONS[int(order[clip])]
                rendered = generate_clip(subject, clip, emotion, num_frames=cfg.num_frames,
                                         image_size=cfg.image_size, amplitude=cfg.amplitude, seed=cfg.seed)
                start = int(rng_stream(cfg.seed, subject, clip + 1, 2).integers(1, 5000))  # like a cut from a take
                frames = [encode_png(f) for f in rendered.frames]
                numbers = list(range(start, start + cfg.num_frames))
                yield datasets.builder.Key(0, index), _example(
                    subject_id, clip, frames, numbers, start, rendered, emotion, int(order[clip]), DEMO_FPS
                )
                index += 1

    def _generate_realistic(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """CASME II's composition rendered by `generate_realistic_clip`; frames stored as the JPEGs rendered."""
        cfg = self.config
        for index, (subject, clip, emotion) in enumerate(casme2_plan(cfg.subjects, cfg.seed)):
            indices = None
            if cfg.apex_window is not None:
                indices = apex_window_indices(*clip_timing(_realistic_rng(cfg.seed, subject, clip + 1, 0)), cfg.apex_window)
            rendered = generate_realistic_clip(subject, clip, emotion, seed=cfg.seed, camera=cfg.camera, indices=indices)
            start = int(rng_stream(cfg.seed, subject, clip + 1, 2).integers(1, 5000))  # like a cut from a take
            subject_id = f"synth_s{subject + 1:02d}"
            numbers = [start + i for i in rendered.indices]
            yield datasets.builder.Key(0, index), _example(
                subject_id, clip, rendered.jpeg, numbers, start, rendered, emotion, CASME2_CLASSES.index(emotion),
                REALISTIC_FPS,
            )


def encode_png(frame: np.ndarray) -> bytes:
    """Lossless PNG bytes of an RGB uint8 frame (deterministic: same pixels, same bytes)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"synthetic: PNG encoding failed for a frame of shape {frame.shape}")
    return buf.tobytes()


def _example(subject_id: str, clip: int, frames: list[bytes], numbers: list[int], start: int, rendered: Any,
             emotion: str, label: int, fps: float) -> dict[str, Any]:
    """One row of the builders' schema: encoded frames under their frame numbers, timing shifted by `start`."""
    return {
        "dataset": "synthetic",
        "subject": subject_id,
        "clip_id": f"{subject_id}_c{clip + 1:02d}",
        "frames": [{"bytes": data, "path": None} for data in frames],
        "frame_numbers": numbers,
        "onset": start + rendered.onset,
        "apex": start + rendered.apex,
        "apex_source": "annotated",
        "offset": start + rendered.offset,
        "fps": fps,
        "action_units": rendered.action_units,
        "emotion": emotion,
        "label": label,
    }


__all__ = [
    "EMOTIONS",
    "MODES",
    "SyntheticClip",
    "SyntheticMER",
    "SyntheticMERConfig",
    "check_knobs",
    "encode_png",
    "generate_clip",
]
