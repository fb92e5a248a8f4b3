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
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import datasets
import numpy as np

from . import _synthetic_realistic
from ._synthetic_realistic import (
    CAMERAS,
    CASME2_CLASSES,
    CASME2_COUNTS,
    apex_window_indices,
    casme2_plan,
    clip_timing,
    generate_realistic_clip,
)
from ._synthetic_realistic import _rng as _realistic_rng
from .common import CLASS_SETS, mer_features
from .registry import DATASETS

EMOTIONS: list[str] = list(CLASS_SETS["3class"])  # negative, positive, surprise
FPS = 200.0
REFERENCE_SIZE = 64  # displacements are given in pixels of a 64x64 image and scale with image_size
SUPERSAMPLE = 2  # render and warp at 2x, then area-downsample: sub-pixel motion without blur artefacts
MAX_AMPLITUDE = 4.0  # beyond this the AU warps start to fold over themselves
RESTING_STD = 1.5  # px (at 64x64) spread of the resting-expression AU strengths
SECONDARY_AU_PROB = 0.7

# AUs: name -> list of (side, centre (u, v) in face units, sigma (u, v), direction (x, y)).
# Face units: u = (x - face_cx) / face_ax, v = (y - face_cy) / face_ay; `side` mirrors u and the
# horizontal direction. Centres refer to the subject's feature layout (filled in by `_au_units`).
AU_NAMES = ("1+2", "4", "6", "12", "15", "26")
EMOTION_AUS: dict[str, tuple[str, str]] = {  # emotion -> (primary AU, secondary AU)
    "negative": ("4", "15"),  # brow lowerer, lip corner depressor
    "positive": ("12", "6"),  # lip corner puller, cheek raiser
    "surprise": ("1+2", "26"),  # inner+outer brow raiser, jaw drop
}


@dataclass(frozen=True)
class _Identity:
    """Everything that stays fixed for one subject (positions in face units, colours in [0, 1])."""

    centre: tuple[float, float]  # face centre, fraction of the image
    axes: tuple[float, float]  # face semi-axes, fraction of the image
    eye_u: float
    eye_v: float
    eye_size: float
    brow_gap: float
    brow_len: float
    brow_tilt: float
    nose_v: float
    mouth_v: float
    mouth_half: float
    lip: float
    skin: np.ndarray
    hair: np.ndarray
    lips: np.ndarray
    background: np.ndarray
    texture_seed: int


@dataclass
class SyntheticClip:
    """One generated clip. `onset`, `apex` and `offset` index into `frames`.

    Iterating gives `(frames, onset, apex, offset, emotion)`, so
    `frames, onset, apex, offset, emotion = generate_clip(...)` works.
    """

    frames: list[np.ndarray]  # num_frames x (H, W, 3) uint8 RGB
    onset: int
    apex: int
    offset: int
    emotion: str
    action_units: str
    au_strengths: dict[str, float] = field(default_factory=dict)  # class AU peak, px at 64x64

    def __iter__(self) -> Iterator[Any]:
        return iter((self.frames, self.onset, self.apex, self.offset, self.emotion))


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """Independent, reproducible random streams keyed by (seed, subject, clip, purpose)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def _subject_identity(seed: int, subject: int) -> _Identity:
    rng = _rng(seed, subject, 0, 0)
    skin_t = rng.uniform(0.0, 1.0)
    light, dark = np.array([0.96, 0.80, 0.68]), np.array([0.42, 0.28, 0.20])
    skin = (1 - skin_t) * light + skin_t * dark + rng.normal(0, 0.02, 3)
    hair = rng.uniform(0.04, 0.45) * np.array([1.0, 0.78, 0.58]) + rng.normal(0, 0.01, 3)
    return _Identity(
        centre=(0.5 + rng.uniform(-0.04, 0.04), 0.52 + rng.uniform(-0.04, 0.04)),
        axes=(rng.uniform(0.29, 0.35), rng.uniform(0.38, 0.44)),
        eye_u=rng.uniform(0.36, 0.46),
        eye_v=rng.uniform(-0.24, -0.10),
        eye_size=rng.uniform(0.13, 0.18),
        brow_gap=rng.uniform(0.12, 0.24),
        brow_len=rng.uniform(0.20, 0.27),
        brow_tilt=rng.uniform(-12.0, 12.0),
        nose_v=rng.uniform(0.16, 0.28),
        mouth_v=rng.uniform(0.50, 0.62),
        mouth_half=rng.uniform(0.26, 0.36),
        lip=rng.uniform(0.05, 0.08),
        skin=np.clip(skin, 0.05, 1.0),
        hair=np.clip(hair, 0.0, 1.0),
        lips=np.clip(skin * np.array([0.95, 0.62, 0.62]), 0.0, 1.0),
        background=rng.uniform(0.25, 0.8, 3),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Unit-variance Gaussian noise blurred to a correlation length of `sigma` pixels."""
    noise = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma)
    return noise / max(float(noise.std()), 1e-6)


def _render_layers(ident: _Identity, hi: int, unit: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The subject's head as an RGBA layer and the static background, both float32 at `hi` pixels.

    `unit`: the pixel scale of texture and blur (default: `hi / REFERENCE_SIZE`, the demo's 64 px look
    scaled up; the realistic mode passes a camera's scale, so skin has pixel-scale texture).

    Warping only the head layer keeps the background still while the head moves, as in a real
    recording with a fixed camera.
    """
    cx, cy = ident.centre[0] * hi, ident.centre[1] * hi
    ax, ay = ident.axes[0] * hi, ident.axes[1] * hi
    shift = 4
    scale = 1 << shift

    def pt(u: float, v: float) -> tuple[int, int]:
        return (round((cx + u * ax) * scale), round((cy + v * ay) * scale))

    def ax2(a: float, b: float) -> tuple[int, int]:
        return (max(1, round(a * scale)), max(1, round(b * scale)))

    def ellipse(img: np.ndarray, u: float, v: float, a: float, b: float, angle: float, color) -> None:
        cv2.ellipse(img, pt(u, v), ax2(a, b), angle, 0, 360, tuple(float(c) for c in color), -1, cv2.LINE_8, shift)

    rng = np.random.default_rng(ident.texture_seed)
    head = np.zeros((hi, hi, 3), np.float32)
    alpha = np.zeros((hi, hi), np.float32)
    # Hair behind the face (a fringe on top and at the sides), then the face.
    ellipse(head, 0, -0.12, ax * 1.12, ay * 1.02, 0, ident.hair)
    ellipse(alpha, 0, -0.12, ax * 1.12, ay * 1.02, 0, (1.0,))
    ellipse(head, 0, 0, ax, ay, 0, ident.skin)
    ellipse(alpha, 0, 0, ax, ay, 0, (1.0,))
    # Soft shading: darker towards the face outline.
    yy, xx = np.mgrid[0:hi, 0:hi].astype(np.float32)
    r2 = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2
    head *= (1.0 - 0.18 * np.clip(r2, 0, 1.3))[..., None]
    for side in (-1, 1):
        eu, ev = side * ident.eye_u, ident.eye_v
        ew, eh = ident.eye_size * ax, ident.eye_size * ax * 0.5
        ellipse(head, eu, ev, ew * 1.25, eh * 1.6, 0, ident.skin * 0.78)  # eye socket shadow
        ellipse(head, eu, ev, ew, eh, 0, (0.93, 0.92, 0.90))  # sclera
        ellipse(head, eu, ev, eh * 0.9, eh * 0.9, 0, ident.hair * 0.6 + 0.05)  # iris
        ellipse(head, eu, ev, eh * 0.4, eh * 0.4, 0, (0.03, 0.03, 0.03))  # pupil
        bv = ev - ident.brow_gap - ident.eye_size * ax * 0.5 / ay
        ellipse(head, side * (ident.eye_u - 0.02), bv, ident.brow_len * ax, 0.032 * ay,
                side * ident.brow_tilt, ident.hair * 0.85)
        ellipse(head, side * 0.09, ident.nose_v, 0.035 * ax, 0.025 * ay, 0, ident.skin * 0.45)  # nostril
    ellipse(head, 0.0, ident.nose_v - 0.12, 0.06 * ax, 0.16 * ay, 0, ident.skin * 0.88)  # nose ridge shade
    ellipse(head, 0.0, ident.mouth_v, ident.mouth_half * ax, ident.lip * ay * 1.6, 0, ident.lips)
    ellipse(head, 0.0, ident.mouth_v, ident.mouth_half * ax * 0.96, 0.012 * ay, 0, ident.lips * 0.45)
    # Skin texture (pores, blotches) at two scales, fixed per subject: gives flow something to track.
    fine = _smooth_noise(rng, hi, 0.8 * hi / REFERENCE_SIZE if unit is None else 0.8 * unit)
    coarse = _smooth_noise(rng, hi, 3.0 * hi / REFERENCE_SIZE if unit is None else 3.0 * unit)
    head *= (1.0 + 0.05 * fine + 0.05 * coarse)[..., None]
    head = cv2.GaussianBlur(head, (0, 0), 0.35 * hi / REFERENCE_SIZE if unit is None else 0.35 * unit)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.5 * hi / REFERENCE_SIZE if unit is None else 0.5 * unit)
    gradient = np.linspace(-0.08, 0.08, hi, dtype=np.float32)
    background = ident.background[None, None, :].astype(np.float32) * (1.0 + gradient[:, None, None])
    background = background * (1.0 + 0.04 * _smooth_noise(rng, hi, 4.0 * hi / REFERENCE_SIZE))[..., None]
    background = np.broadcast_to(background, (hi, hi, 3)).astype(np.float32)
    rgba = np.dstack([head * alpha[..., None], alpha]).astype(np.float32)  # premultiplied
    return rgba, background


def _brow_v(ident: _Identity) -> float:
    """Vertical face-unit position of the brows (the renderer and the AU fields must agree)."""
    return ident.eye_v - ident.brow_gap - ident.eye_size * ident.axes[0] * 0.5 / ident.axes[1]


def _au_units(ident: _Identity) -> list[tuple[str, float, float, float, float, float, float]]:
    """The Gaussian bumps of every AU: (au, u, v, sigma_u, sigma_v, dir_x, dir_y), in face units."""
    bv = _brow_v(ident)
    units: list[tuple[str, float, float, float, float, float, float]] = []
    for s in (-1.0, 1.0):
        units += [
            ("1+2", s * (ident.eye_u - 0.02), bv, 0.26, 0.16, 0.0, -1.0),  # brows up
            ("4", s * (ident.eye_u - 0.14), bv + 0.02, 0.20, 0.14, -s * 0.45, 0.89),  # brows down, in
            ("6", s * ident.eye_u, ident.eye_v + 0.20, 0.22, 0.12, 0.0, -1.0),  # cheeks up
            ("12", s * ident.mouth_half, ident.mouth_v, 0.16, 0.12, s * 0.6, -0.8),  # corners up, out
            ("15", s * ident.mouth_half, ident.mouth_v + 0.02, 0.16, 0.12, 0.0, 1.0),  # corners down
        ]
    units.append(("26", 0.0, ident.mouth_v + 0.22, 0.45, 0.18, 0.0, 1.0))  # jaw drop
    return units


def _time_course(num_frames: int, onset: int, apex: int, offset: int) -> np.ndarray:
    """0 outside (onset, offset), a raised-cosine rise to 1 at the apex and a fall back to 0."""
    t = np.arange(num_frames, dtype=np.float64)
    rise = 0.5 * (1 - np.cos(np.pi * np.clip((t - onset) / (apex - onset), 0, 1)))
    fall = 0.5 * (1 + np.cos(np.pi * np.clip((t - apex) / (offset - apex), 0, 1)))
    return np.where(t <= apex, rise, fall)


def check_knobs(
    num_subjects: int = 1,
    clips_per_subject: int = 3,
    num_frames: int = 24,
    image_size: int = 64,
    amplitude: float = 2.0,
    seed: int = 0,
) -> None:
    """Raise a ValueError naming the first bad knob (shared by the builder and `generate_clip`, which
    leaves the subject and clip counts at harmless defaults)."""
    ints = {"num_subjects": (num_subjects, 1, 999), "clips_per_subject": (clips_per_subject, 3, 9999),
            "num_frames": (num_frames, 3, 10000), "image_size": (image_size, 32, 1024),
            "seed": (seed, 0, 2**63 - 1)}
    for name, (value, low, high) in ints.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"synthetic: {name} must be an integer, got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"synthetic: {name} must be in [{low}, {high}], got {value}")
    if clips_per_subject % len(EMOTIONS):
        raise ValueError(
            f"synthetic: clips_per_subject must be a multiple of {len(EMOTIONS)} so that every subject has "
            f"as many clips of each class ({', '.join(EMOTIONS)}), got {clips_per_subject}"
        )
    if isinstance(amplitude, bool) or not isinstance(amplitude, (int, float, np.floating, np.integer)):
        raise ValueError(f"synthetic: amplitude must be a number of pixels, got {amplitude!r}")
    if not (math.isfinite(amplitude) and 0.0 <= amplitude <= MAX_AMPLITUDE):
        raise ValueError(
            f"synthetic: amplitude must be in [0, {MAX_AMPLITUDE}] pixels (at 64x64; larger warps fold "
            f"over), got {amplitude}"
        )


@lru_cache(maxsize=4)
def _subject_layers(seed: int, subject: int, hi: int) -> tuple[_Identity, np.ndarray, np.ndarray]:
    ident = _subject_identity(seed, subject)
    rgba, background = _render_layers(ident, hi)
    rgba.setflags(write=False)
    background.setflags(write=False)
    return ident, rgba, background


@dataclass
class _ClipPlan:
    """The per-clip random draws, all in hi-res pixels (see `_plan_clip`)."""

    onset: int
    apex: int
    offset: int
    bump: np.ndarray  # (T,) expression time course, 0..1
    centres: np.ndarray  # (K, 2) AU bump centres
    sigmas: np.ndarray  # (K, 2)
    dirs: np.ndarray  # (K, 2) unit directions
    rest_coef: np.ndarray  # (K,) resting-expression strength of each bump
    expr_coef: np.ndarray  # (K,) expression strength at the apex
    strengths: dict[str, float]  # class AU -> peak strength, px at 64x64
    head_shift: np.ndarray  # (T, 2) placement + drift
    gain: np.ndarray  # (T,) illumination
    noise_std: float


def _plan_clip(ident: _Identity, rng: np.random.Generator, emotion: str, num_frames: int,
               hi: int, amplitude: float) -> _ClipPlan:
    """Draw everything random about one clip. The draw order is fixed (the secondary AU's strength is
    drawn even when the AU is off) so a clip's nuisances do not depend on its emotion."""
    px = hi / REFERENCE_SIZE  # hi-res pixels per pixel of a 64x64 image
    face_px = np.array(ident.axes) * hi
    # Timing: onset near the start, offset near the end, apex 35-60 % of the way.
    margin = num_frames // 10
    onset = int(rng.integers(0, margin + 1))
    offset = num_frames - 1 - int(rng.integers(0, margin + 1))
    apex = int(np.clip(onset + round((offset - onset) * rng.uniform(0.35, 0.6)), onset + 1, offset - 1))
    # AU bumps, positions jittered per clip; a resting strength for every AU, the class's AUs on top.
    units = _au_units(ident)
    jitter = rng.normal(0, 0.04, (2, len(units)))
    uv = np.array([(u[1], u[2]) for u in units]) + jitter.T
    centres = np.array(ident.centre) * hi + uv * face_px
    sigmas = np.array([(u[3], u[4]) for u in units]) * face_px
    dirs = np.array([(u[5], u[6]) for u in units])
    resting = {au: float(np.clip(rng.normal(0, RESTING_STD), -2 * RESTING_STD, 2 * RESTING_STD))
               for au in AU_NAMES}
    primary, secondary = EMOTION_AUS[emotion]
    strengths = {primary: amplitude * rng.uniform(0.6, 1.4)}
    secondary_strength = amplitude * rng.uniform(0.6, 1.4)
    if rng.uniform() < SECONDARY_AU_PROB:
        strengths[secondary] = secondary_strength
    asym = rng.uniform(0.85, 1.15, len(units))
    rest_coef = np.array([resting[u[0]] for u in units]) * asym * px
    expr_coef = np.array([strengths.get(u[0], 0.0) for u in units]) * asym * px
    # Head: a static placement offset plus a slow drift (linear and a gentle sway).
    placement = rng.uniform(-3.0, 3.0, 2)
    angle = rng.uniform(0, 2 * np.pi)
    drift_len = rng.uniform(0, 1.2)
    sway, sway_freq, sway_phase = rng.uniform(0, 0.3), rng.uniform(0.5, 1.5), rng.uniform(0, 2 * np.pi)
    tau = np.arange(num_frames) / max(num_frames - 1, 1)
    drift = (drift_len * tau)[:, None] * np.array([np.cos(angle), np.sin(angle)])
    drift += (sway * np.sin(2 * np.pi * sway_freq * tau + sway_phase))[:, None] * np.array([1.0, 0.3])
    # Light: 100 Hz mains flicker sampled at 200 fps, a slow ramp and per-frame jitter.
    gain = (1 + rng.uniform(0, 0.02) * np.cos(np.pi * np.arange(num_frames) + rng.uniform(0, 2 * np.pi))
            + rng.uniform(-0.03, 0.03) * (tau - 0.5) + rng.normal(0, 0.006, num_frames))
    return _ClipPlan(onset, apex, offset, _time_course(num_frames, onset, apex, offset), centres, sigmas,
                     dirs, rest_coef, expr_coef, {au: float(v) for au, v in strengths.items()},
                     (placement + drift) * px, gain, rng.uniform(1.0, 3.0) / 255.0)


def _warp_head(rgba: np.ndarray, plan: _ClipPlan, t: int) -> np.ndarray:
    """The head layer at frame t: moved by the head shift and the AU field (resting + expression)."""
    hi = rgba.shape[0]
    grid = np.arange(hi, dtype=np.float64)
    dx, dy = plan.head_shift[t]
    coef = plan.rest_coef + plan.bump[t] * plan.expr_coef
    # The field is a sum of separable Gaussian bumps that move with the head.
    gx = np.exp(-0.5 * ((grid[None, :] - dx - plan.centres[:, :1]) / plan.sigmas[:, :1]) ** 2)  # (K, W)
    gy = np.exp(-0.5 * ((grid[None, :] - dy - plan.centres[:, 1:]) / plan.sigmas[:, 1:]) ** 2)  # (K, H)
    # einsum's own loop rather than BLAS, whose threads fight each other on a busy machine.
    field_x = np.einsum("kh,kw->hw", gy * (coef * plan.dirs[:, 0])[:, None], gx)  # (H, W)
    field_y = np.einsum("kh,kw->hw", gy * (coef * plan.dirs[:, 1])[:, None], gx)
    map_x = (grid[None, :] - dx - field_x).astype(np.float32)
    map_y = (grid[:, None] - dy - field_y).astype(np.float32)
    return cv2.remap(rgba, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def generate_clip(
    subject: int,
    clip: int,
    emotion: str,
    *,
    num_frames: int = 24,
    image_size: int = 64,
    amplitude: float = 2.0,
    seed: int = 0,
) -> SyntheticClip:
    """Render clip `clip` of subject `subject` (0-based) showing `emotion`, deterministically.

    The nuisances (resting expression, head drift, flicker, noise, timing) depend only on
    (seed, subject, clip), so the same clip rendered with another emotion differs only in the
    expression itself: handy for controlled experiments. `amplitude` is the nominal peak displacement
    of the expression in pixels of a 64x64 image (it scales with `image_size`); 0 gives clips with no
    expression at all (a null control).
    """
    check_knobs(num_frames=num_frames, image_size=image_size, amplitude=amplitude, seed=seed)
    for name, value in (("subject", subject), ("clip", clip)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"synthetic: {name} must be a non-negative integer, got {value!r}")
    if emotion not in EMOTIONS:
        raise ValueError(f"synthetic: unknown emotion {emotion!r}; expected one of {EMOTIONS}")
    hi = image_size * SUPERSAMPLE
    ident, rgba, background = _subject_layers(seed, int(subject), hi)
    plan = _plan_clip(ident, _rng(seed, int(subject), int(clip) + 1, 0), emotion, num_frames, hi, amplitude)
    noise_rng = _rng(seed, int(subject), int(clip) + 1, 1)
    bg_small = cv2.resize(background, (image_size, image_size), interpolation=cv2.INTER_AREA)
    frames = []
    for t in range(num_frames):
        # Warp at hi-res, area-downsample, composite over the still background (premultiplied alpha).
        small = cv2.resize(_warp_head(rgba, plan, t), (image_size, image_size), interpolation=cv2.INTER_AREA)
        rgb = (small[..., :3] + (1.0 - small[..., 3:]) * bg_small) * plan.gain[t]
        rgb = rgb + noise_rng.normal(0, plan.noise_std, rgb.shape)  # sensor noise
        frames.append(np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8))
    aus = sorted((au for au in EMOTION_AUS[emotion] if au in plan.strengths), key=AU_NAMES.index)
    return SyntheticClip(frames, plan.onset, plan.apex, plan.offset, emotion, "+".join(aus), plan.strengths)


_CLASS_SETS = (None, "3class", "all")
MODES = ("demo", "realistic")
_SOURCE_HASH = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


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

    The cache folder also carries a hash of this file, so a change to the generator never serves
    frames rendered by an older version.
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
        mode = kwargs.get("mode") or kwargs.get("config_name") or getattr(kwargs.get("config"), "mode", None)
        realistic = mode == "realistic"
        super().__init__(*args, hash=hash or (_realistic_source_hash() if realistic else _SOURCE_HASH), **kwargs)
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
            order = _rng(cfg.seed, subject, 0, 1).permutation(np.repeat(np.arange(len(EMOTIONS)), per_class))
            subject_id = f"synth_s{subject + 1:0{width}d}"
            for clip in range(cfg.clips_per_subject):
                emotion = EMOTIONS[int(order[clip])]
                rendered = generate_clip(subject, clip, emotion, num_frames=cfg.num_frames,
                                         image_size=cfg.image_size, amplitude=cfg.amplitude, seed=cfg.seed)
                start = int(_rng(cfg.seed, subject, clip + 1, 2).integers(1, 5000))  # like a cut from a take
                frames = [encode_png(f) for f in rendered.frames]
                numbers = list(range(start, start + cfg.num_frames))
                yield datasets.builder.Key(0, index), _example(
                    subject_id, clip, frames, numbers, start, rendered, emotion, int(order[clip])
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
            start = int(_rng(cfg.seed, subject, clip + 1, 2).integers(1, 5000))  # like a cut from a take
            subject_id = f"synth_s{subject + 1:02d}"
            numbers = [start + i for i in rendered.indices]
            yield datasets.builder.Key(0, index), _example(
                subject_id, clip, rendered.jpeg, numbers, start, rendered, emotion, CASME2_CLASSES.index(emotion)
            )


def _realistic_source_hash() -> str:
    """The realistic mode's cache key: its module and the parts of this file it renders with (edits elsewhere
    here, e.g. to the demo or the docs, keep a realistic build that takes minutes)."""
    parts = [Path(_synthetic_realistic.__file__).read_bytes()]
    parts += [inspect.getsource(f).encode() for f in (_subject_identity, _render_layers, _smooth_noise, _brow_v,
                                                        _Identity, SyntheticMER._generate_realistic, _rng)]
    return hashlib.sha256(b"".join(parts)).hexdigest()[:16]


def encode_png(frame: np.ndarray) -> bytes:
    """Lossless PNG bytes of an RGB uint8 frame (deterministic: same pixels, same bytes)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"synthetic: PNG encoding failed for a frame of shape {frame.shape}")
    return buf.tobytes()


def _example(subject_id: str, clip: int, frames: list[bytes], numbers: list[int], start: int, rendered: Any,
             emotion: str, label: int) -> dict[str, Any]:
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
        "fps": FPS,
        "action_units": rendered.action_units,
        "emotion": emotion,
        "label": label,
    }
