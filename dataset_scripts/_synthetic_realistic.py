"""The realistic mode of the synthetic set: micro-expressions at the motion scale of real recordings.

The demo set (`_synthetic_demo.py`, mode "demo") moves a 64 px face by 1-2 px: many times more, relative to
the face, than a real micro-expression. This mode renders what a high-speed camera records instead:

* the camera: CASME II-like 640x480 frames at 200 fps with the face about half the frame width
  (camera="casme2"), or SAMM-like 2040x1088 frames with a ~400 px face (camera="samm");
* the composition: CASME II's 26 subjects with their real per-subject counts of the five classes
  (disgust, happiness, repression, surprise, others: 63/32/27/28/99 clips, 249 in all);
* the timing: onset -> apex 10-60 frames (0.05-0.3 s, median 30 as in CASME II), apex -> offset 10-90
  (median 30), a few frames before the onset and after the offset, as in a clip cut from a take;
* the expression: action-unit (AU) displacement fields (happiness AU6+12, surprise AU1+2 (+5 or 26),
  disgust AU9 or 10 (+4), repression AU14, 15 or 17 (+ another of them), others AU4 and/or 7, weaker)
  whose peak displacement is 0.3-3 px at the native resolution: log-uniform per clip around a
  per-subject intensity. Everything else is a nuisance: a per-clip resting expression made of the same
  AUs (larger than the expression, static), head drift, roll and scale change (larger than the
  expression), illumination flicker, sensor noise, JPEG compression (CASME II ships JPEG frames).

So the class is only in a sub-pixel-to-few-pixel local motion, under a larger rigid motion, exactly the
regime where computing flow on a 32 px model input or min-max normalising it loses everything.
`generate_realistic_clip(..., indices=[...])` renders only the frames asked for (tests and baselines);
the builder (`synthetic.py`) stores every frame of the clip.

One concern: drawing and rendering one CASME II-like clip (composition, timing, camera, the expression's
and the nuisances' draws). The face, its AU fields and the camera's warp, noise and JPEG are
`_face_renderer`'s, shared with the demo and the long videos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ._face_renderer import (
    AUS,
    au_layout,
    raised_cosine,
    render_frame,
    render_layers,
    resting_strengths,
    rng_stream,
    subject_identity,
)

# Frame size (width, height) and face width range (pixels) of each camera.
CAMERAS: dict[str, tuple[tuple[int, int], tuple[float, float]]] = {
    "casme2": ((640, 480), (290.0, 330.0)),
    "samm": ((2040, 1088), (380.0, 420.0)),
}
FPS = 200.0
CASME2_CLASSES = ("disgust", "happiness", "repression", "surprise", "others")
# CASME II's 5-class composition (from its coding sheet): subject -> clips of each class, in the order
# of CASME2_CLASSES. 26 subjects, 249 clips: disgust 63, happiness 32, repression 27, surprise 28, others 99.
CASME2_COUNTS: tuple[tuple[int, int, int, int, int], ...] = (
    (2, 1, 0, 0, 6), (0, 1, 5, 3, 4), (4, 0, 0, 1, 2), (3, 0, 0, 0, 2), (1, 1, 0, 5, 12),
    (1, 1, 0, 2, 1), (5, 0, 0, 0, 4), (0, 0, 1, 0, 2), (0, 5, 5, 0, 3), (0, 0, 0, 0, 13),
    (4, 0, 0, 0, 6), (5, 2, 0, 4, 1), (0, 2, 0, 0, 6), (0, 3, 0, 0, 1), (1, 1, 0, 1, 0),
    (0, 2, 1, 0, 1), (14, 7, 9, 1, 3), (0, 0, 0, 0, 3), (3, 3, 0, 5, 4), (2, 0, 0, 0, 9),
    (0, 0, 1, 0, 1), (0, 0, 2, 0, 0), (4, 1, 3, 0, 4), (2, 0, 0, 4, 4), (3, 0, 0, 2, 2),
    (9, 2, 0, 0, 5),
)
MIN_PEAK_PX, MAX_PEAK_PX = 0.3, 3.0  # peak AU displacement at the apex, native pixels
JPEG_QUALITY = (85, 95)
REALISTIC_AUS = AUS  # the face's AUs (`_face_renderer.au_bumps`), every one of them in the resting expression
# emotion -> (primary AU choices, secondary AU choices, probability of a secondary AU, intensity factor)
CLASS_AUS: dict[str, tuple[tuple[str, ...], tuple[str, ...], float, float]] = {
    "happiness": (("12",), ("6",), 0.7, 1.0),
    "surprise": (("1+2",), ("5", "26"), 0.6, 1.0),
    "disgust": (("9", "10"), ("4",), 0.6, 1.0),
    "repression": (("14", "15", "17"), ("14", "15", "17"), 0.4, 1.0),
    "others": (("4", "7"), ("4", "7"), 0.3, 0.7),
}


@dataclass
class RealisticClip:
    """One rendered clip: `frames[i]` is frame `indices[i]` of the clip (all frames unless asked otherwise)."""

    frames: list[np.ndarray]  # (H, W, 3) uint8 RGB, JPEG-compressed like the stored frames
    jpeg: list[bytes]  # the same frames as JPEG bytes
    indices: list[int]
    num_frames: int
    onset: int
    apex: int
    offset: int
    emotion: str
    action_units: str
    peak_px: float  # the largest expression displacement at the apex, native pixels
    head_px: float  # the largest rigid head displacement (onset -> apex) over the face, native pixels
    extra: dict[str, float] = field(default_factory=dict)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return rng_stream(seed, 7919, *stream)  # apart from the demo's streams


def face_box(camera: str) -> tuple[int, int, int]:
    """(x, y, side) of a square that holds every subject's face in `camera`'s frames, whatever the head
    drift: a stand-in for a face detector (`--crop x,y,w,h`), so the benchmark measures the motion
    pipeline and not the detector."""
    (width, height), _ = CAMERAS[camera]
    side = height if camera == "casme2" else 600
    return (width - side) // 2, (height - side) // 2, side


def subject_intensity(seed: int, subject: int) -> float:
    """A subject's expressiveness: the median peak displacement of its clips, in native pixels."""
    return float(np.clip(np.exp(_rng(seed, subject, 0, 5).normal(np.log(1.0), 0.35)), 0.5, 2.0))


@lru_cache(maxsize=2)
def _subject_head(seed: int, subject: int, camera: str):
    """The subject's head layer (premultiplied RGBA, square), its identity, face size and background."""
    (width, height), (face_lo, face_hi) = CAMERAS[camera]
    rng = _rng(seed, subject, 0, 0)
    ident = subject_identity(seed, subject)
    box_x, box_y, box_side = face_box(camera)
    # Face width about half the frame's (CASME II) but its height (chin to brow, ~axes[1] / axes[0] times
    # the width) inside the camera's face box.
    face_w = min(rng.uniform(face_lo, face_hi), 0.78 * box_side * ident.axes[0] / ident.axes[1])
    side = int(round(face_w / (2 * ident.axes[0])))
    # Skin texture at a camera's scale: pores and blotches of ~1-5 px, optics blur ~0.5 px.
    rgba, _ = render_layers(ident, side, unit=1.5 * face_w / 300.0)
    tint = rng.uniform(0.3, 0.75, 3).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    background = tint * (1.0 + 0.10 * (xx / width - 0.5) - 0.06 * (yy / height - 0.5))[..., None]
    jitter = rng.uniform(-0.04, 0.04, 2) * box_side
    placement = np.array([box_x + box_side / 2, box_y + box_side / 2]) + jitter  # where the face centre sits
    for array in (rgba, background):
        array.setflags(write=False)
    return ident, rgba, background.astype(np.float32), face_w, placement


def clip_timing(rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(num_frames, onset, apex, offset) at 200 fps, with CASME II's spread of durations."""
    rise = int(np.clip(round(np.exp(rng.normal(np.log(30), 0.35))), 10, 60))  # 0.05-0.3 s
    fall = int(np.clip(round(np.exp(rng.normal(np.log(30), 0.45))), 10, 90))
    before, after = int(rng.integers(3, 16)), int(rng.integers(3, 16))
    onset = before
    return before + rise + fall + after + 1, onset, onset + rise, onset + rise + fall


def generate_realistic_clip(
    subject: int,
    clip: int,
    emotion: str,
    *,
    seed: int = 0,
    camera: str = "casme2",
    indices: list[int] | None = None,
    expression: bool = True,
) -> RealisticClip:
    """Render clip `clip` of subject `subject` showing `emotion` (a CASME II class), deterministically.

    `indices` selects the frames to render (default: all). `expression=False` renders the very same
    clip (nuisances, timing) without the expression: the null control of the tests.
    """
    if emotion not in CLASS_AUS:
        raise ValueError(f"synthetic (realistic): unknown emotion {emotion!r}; expected one of {list(CLASS_AUS)}")
    if camera not in CAMERAS:
        raise ValueError(f"synthetic: camera must be one of {list(CAMERAS)}, got {camera!r}")
    ident, rgba, background, face_w, placement = _subject_head(seed, subject, camera)
    (width, height), _ = CAMERAS[camera]
    side = rgba.shape[0]
    rng = _rng(seed, subject, clip + 1, 0)
    num_frames, onset, apex, offset = clip_timing(rng)
    # The expression's time course: raised-cosine rise to the apex, fall to the offset.
    t = np.arange(num_frames, dtype=np.float64)
    bump = raised_cosine(t, onset, apex, offset)
    # AU bumps in layer pixels, jittered per clip.
    layout = au_layout(ident, side, rng, jitter=0.03)
    # Resting expression: every AU at a random signed static strength (a few px): appearance is no clue.
    rest = resting_strengths(rng, face_w)
    # The expression: the class's AUs; peak displacement log-uniform around the subject's intensity.
    primaries, secondaries, p_secondary, factor = CLASS_AUS[emotion]
    primary = primaries[int(rng.integers(len(primaries)))]
    secondary = secondaries[int(rng.integers(len(secondaries)))]
    use_secondary = rng.uniform() < p_secondary and secondary != primary
    peak = subject_intensity(seed, subject) * factor * float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    peak = float(np.clip(peak, MIN_PEAK_PX, MAX_PEAK_PX))
    secondary_ratio = rng.uniform(0.4, 0.9)
    strength = {primary: 1.0, **({secondary: secondary_ratio} if use_secondary else {})}
    expr_field = layout.field(strength)
    expr_field *= peak / max(float(np.linalg.norm(expr_field, axis=2).max()), 1e-9)  # peak exactly `peak` px
    rest_field = layout.field(rest)
    # Rigid head motion: drift, roll and scale about the face centre, larger than the expression.
    tau = t / max(num_frames - 1, 1)
    direction = rng.uniform(0, 2 * np.pi)
    drift = rng.uniform(1.0, 6.0) * tau[:, None] * np.array([np.cos(direction), np.sin(direction)])
    drift += rng.uniform(0, 1.0) * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * tau + rng.uniform(0, 6.3))[:, None] \
        * np.array([1.0, 0.4])
    roll = np.deg2rad(rng.uniform(-1.0, 1.0) * tau + rng.uniform(0, 0.3) * np.sin(2 * np.pi * tau * rng.uniform(0.5, 1.5)))
    scale = 1.0 + rng.uniform(-0.006, 0.006) * tau
    # Light and camera.
    gain = (1 + rng.uniform(0, 0.015) * np.cos(np.pi * t + rng.uniform(0, 2 * np.pi))
            + rng.uniform(-0.02, 0.02) * (tau - 0.5) + rng.normal(0, 0.004, num_frames))
    noise_std = rng.uniform(1.0, 3.0) / 255.0
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    exposure = rng.uniform(0.8, 1.1)
    if not expression:
        expr_field = expr_field * 0.0
    face_centre_layer = np.array(ident.centre) * side
    grid = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    chosen = list(range(num_frames)) if indices is None else [int(i) for i in indices]
    frames, jpegs = [], []
    for i in chosen:
        if not 0 <= i < num_frames:
            raise ValueError(f"synthetic (realistic): frame index {i} outside the clip's 0..{num_frames - 1}")
        disp = rest_field + np.float32(bump[i]) * expr_field  # (side, side, 2), content moves by +disp
        frame, jpeg = render_frame(rgba, disp, background, grid=grid, face_centre=face_centre_layer,
                                   position=placement + drift[i], roll=roll[i], scale=scale[i],
                                   gain=gain[i] * exposure, noise=_rng(seed, subject, clip + 1, 100 + i),
                                   noise_std=noise_std, quality=quality, where="synthetic (realistic)")
        frames.append(frame)
        jpegs.append(jpeg)
    # The head's rigid displacement onset -> apex, largest over the face box (for the physics tests).
    corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]]) * (face_w / 2)

    def moved(k: int) -> np.ndarray:
        c, s = np.cos(roll[k]) * scale[k], np.sin(roll[k]) * scale[k]
        return corners @ np.array([[c, s], [-s, c]]) + drift[k]

    head_px = float(np.linalg.norm(moved(apex) - moved(onset), axis=1).max())
    aus = "+".join(sorted(strength, key=REALISTIC_AUS.index))
    return RealisticClip(frames, jpegs, chosen, num_frames, onset, apex, offset, emotion, aus,
                         peak if expression else 0.0, head_px, {"face_width": face_w})


def apex_window_indices(num_frames: int, onset: int, apex: int, offset: int, window: int) -> list[int]:
    """The frames an apex-centred sampler of up to `window` frames reads: the onset, `window` consecutive
    frames centred on the apex inside (onset, offset], and the offset."""
    start = min(max(apex - window // 2, onset + 1), max(offset - window, onset + 1))
    middle = list(range(start, min(start + window, offset)))
    return [onset, *middle, offset]


def casme2_plan(num_subjects: int, seed: int) -> list[tuple[int, int, str]]:
    """(subject, clip, emotion) of every clip: CASME II's first `num_subjects` subjects with their counts,
    in a random order per subject."""
    plan = []
    for subject in range(num_subjects):
        emotions = [e for e, n in zip(CASME2_CLASSES, CASME2_COUNTS[subject]) for _ in range(n)]
        order = _rng(seed, subject, 0, 1).permutation(len(emotions))
        plan += [(subject, clip, emotions[k]) for clip, k in enumerate(order)]
    return plan
