"""The realistic mode of the synthetic set: micro-expressions at the motion scale of real recordings.

The demo set (`synthetic.py`, mode "demo") moves a 64 px face by 1-2 px: many times more, relative to
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
the builder stores every frame of the clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

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
RESTING_FRACTION = 0.035  # std of the resting-expression AU strengths, as a fraction of the face width
JPEG_QUALITY = (85, 95)

# AU -> Gaussian bumps (side, u, v offsets from a feature, sigma_u, sigma_v, dir_x, dir_y) are built in
# `_au_bumps` from the subject's feature layout; side mirrors u and dir_x.
REALISTIC_AUS = ("1+2", "4", "5", "6", "7", "9", "10", "12", "14", "15", "17", "26")
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
    return np.random.default_rng(np.random.SeedSequence([seed, 7919, *stream]))  # apart from the demo's streams


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


def _au_bumps(ident, face_px: np.ndarray) -> list[tuple[str, float, float, float, float, float, float]]:
    """(au, u, v, sigma_u, sigma_v, dir_x, dir_y) in face units (u, v) and unit directions."""
    from .synthetic import _brow_v

    bv, ev, eu = _brow_v(ident), ident.eye_v, ident.eye_u
    mv, mh, nv = ident.mouth_v, ident.mouth_half, ident.nose_v
    bumps = []
    for s in (-1.0, 1.0):
        bumps += [
            ("1+2", s * (eu - 0.02), bv, 0.26, 0.16, 0.0, -1.0),  # brows up
            ("4", s * (eu - 0.14), bv + 0.02, 0.20, 0.14, -s * 0.45, 0.89),  # brows down and together
            ("5", s * eu, ev - 0.06, 0.14, 0.06, 0.0, -1.0),  # upper lids up
            ("6", s * eu, ev + 0.20, 0.22, 0.12, 0.0, -1.0),  # cheeks up
            ("7", s * eu, ev + 0.07, 0.14, 0.06, 0.0, -1.0),  # lower lids up (tightened)
            ("9", s * 0.13, nv - 0.10, 0.10, 0.12, -s * 0.3, -0.95),  # nose sides wrinkle up
            ("10", s * 0.16, mv - 0.06, 0.18, 0.08, 0.0, -1.0),  # upper lip up
            ("12", s * mh, mv, 0.16, 0.12, s * 0.6, -0.8),  # lip corners up and out
            ("14", s * mh, mv, 0.12, 0.10, s * 1.0, 0.0),  # lip corners pulled back (dimpler)
            ("15", s * mh, mv + 0.02, 0.16, 0.12, 0.0, 1.0),  # lip corners down
        ]
    bumps.append(("17", 0.0, mv + 0.20, 0.30, 0.14, 0.0, -1.0))  # chin up
    bumps.append(("26", 0.0, mv + 0.22, 0.45, 0.18, 0.0, 1.0))  # jaw drop
    return bumps


def _field(centres: np.ndarray, sigmas: np.ndarray, vectors: np.ndarray, size: int) -> np.ndarray:
    """Sum of separable Gaussian bumps, each carrying a displacement vector: (size, size, 2) float32."""
    grid = np.arange(size, dtype=np.float64)
    gx = np.exp(-0.5 * ((grid[None, :] - centres[:, :1]) / sigmas[:, :1]) ** 2)  # (K, W)
    gy = np.exp(-0.5 * ((grid[None, :] - centres[:, 1:]) / sigmas[:, 1:]) ** 2)  # (K, H)
    fx = np.einsum("kh,kw->hw", gy * vectors[:, :1], gx)
    fy = np.einsum("kh,kw->hw", gy * vectors[:, 1:], gx)
    return np.dstack([fx, fy]).astype(np.float32)


@lru_cache(maxsize=2)
def _subject_head(seed: int, subject: int, camera: str):
    """The subject's head layer (premultiplied RGBA, square), its identity, face size and background."""
    from .synthetic import _render_layers, _subject_identity

    (width, height), (face_lo, face_hi) = CAMERAS[camera]
    rng = _rng(seed, subject, 0, 0)
    ident = _subject_identity(seed, subject)
    box_x, box_y, box_side = face_box(camera)
    # Face width about half the frame's (CASME II) but its height (chin to brow, ~axes[1] / axes[0] times
    # the width) inside the camera's face box.
    face_w = min(rng.uniform(face_lo, face_hi), 0.78 * box_side * ident.axes[0] / ident.axes[1])
    side = int(round(face_w / (2 * ident.axes[0])))
    # Skin texture at a camera's scale: pores and blotches of ~1-5 px, optics blur ~0.5 px.
    rgba, _ = _render_layers(ident, side, unit=1.5 * face_w / 300.0)
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
    bump = np.where(t <= apex, 0.5 * (1 - np.cos(np.pi * np.clip((t - onset) / (apex - onset), 0, 1))),
                    0.5 * (1 + np.cos(np.pi * np.clip((t - apex) / (offset - apex), 0, 1))))
    # AU bumps in layer pixels, jittered per clip.
    face_axes = np.array(ident.axes) * side
    bumps = _au_bumps(ident, face_axes)
    uv = np.array([(b[1], b[2]) for b in bumps]) + rng.normal(0, 0.03, (len(bumps), 2))
    centres = np.array(ident.centre) * side + uv * face_axes
    sigmas = np.array([(b[3], b[4]) for b in bumps]) * face_axes
    dirs = np.array([(b[5], b[6]) for b in bumps])
    names = [b[0] for b in bumps]
    asym = rng.uniform(0.85, 1.15, len(bumps))
    # Resting expression: every AU at a random signed static strength (a few px): appearance is no clue.
    rest = {au: rng.normal(0, RESTING_FRACTION * face_w) for au in REALISTIC_AUS}
    rest_coef = np.array([rest[n] for n in names]) * asym
    # The expression: the class's AUs; peak displacement log-uniform around the subject's intensity.
    primaries, secondaries, p_secondary, factor = CLASS_AUS[emotion]
    primary = primaries[int(rng.integers(len(primaries)))]
    secondary = secondaries[int(rng.integers(len(secondaries)))]
    use_secondary = rng.uniform() < p_secondary and secondary != primary
    peak = subject_intensity(seed, subject) * factor * float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    peak = float(np.clip(peak, MIN_PEAK_PX, MAX_PEAK_PX))
    secondary_ratio = rng.uniform(0.4, 0.9)
    strength = {primary: 1.0, **({secondary: secondary_ratio} if use_secondary else {})}
    expr_coef = np.array([strength.get(n, 0.0) for n in names]) * asym
    expr_field = _field(centres, sigmas, expr_coef[:, None] * dirs, side)
    expr_field *= peak / max(float(np.linalg.norm(expr_field, axis=2).max()), 1e-9)  # peak exactly `peak` px
    rest_field = _field(centres, sigmas, rest_coef[:, None] * dirs, side)
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
    # Frame grid -> head-layer coordinates (inverse similarity about the face centre).
    face_centre_layer = np.array(ident.centre) * side
    gx, gy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    chosen = list(range(num_frames)) if indices is None else [int(i) for i in indices]
    frames, jpegs = [], []
    for i in chosen:
        if not 0 <= i < num_frames:
            raise ValueError(f"synthetic (realistic): frame index {i} outside the clip's 0..{num_frames - 1}")
        noise_rng = _rng(seed, subject, clip + 1, 100 + i)
        cos, sin = np.cos(roll[i]) / scale[i], np.sin(roll[i]) / scale[i]
        px = gx - (placement[0] + drift[i, 0])
        py = gy - (placement[1] + drift[i, 1])
        qx = (cos * px + sin * py + face_centre_layer[0]).astype(np.float32)
        qy = (-sin * px + cos * py + face_centre_layer[1]).astype(np.float32)
        disp = rest_field + np.float32(bump[i]) * expr_field  # (side, side, 2), content moves by +disp
        at_q = cv2.remap(disp, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        head = cv2.remap(rgba, qx - at_q[..., 0], qy - at_q[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        rgb = (head[..., :3] + (1.0 - head[..., 3:]) * background) * np.float32(gain[i] * exposure)
        rgb += noise_rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(noise_std)
        image = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("synthetic (realistic): JPEG encoding failed")
        jpegs.append(buf.tobytes())
        frames.append(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
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
