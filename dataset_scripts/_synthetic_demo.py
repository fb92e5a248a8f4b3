"""The demo mode of the synthetic set: 64 px faces whose emotion is only in a 1-2 px motion (`generate_clip`).

One concern: drawing and rendering one demo clip (why it looks the way it does: `synthetic.py`). The face
itself (identity, layers, AU bumps, time course) is `_face_renderer`'s; here are the demo's draws (timing,
AU strengths, resting expression, head drift, light flicker, noise) and its warp (the AU field and the head
shift at 2x, area-downsampled).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from ._face_renderer import (
    REFERENCE_SIZE,
    FaceIdentity,
    au_bumps,
    raised_cosine,
    render_layers,
    rng_stream,
    subject_identity,
)
from .common import CLASS_SETS

EMOTIONS: list[str] = list(CLASS_SETS["3class"])  # negative, positive, surprise
FPS = 200.0
SUPERSAMPLE = 2  # render and warp at 2x, then area-downsample: sub-pixel motion without blur artefacts
MAX_AMPLITUDE = 4.0  # beyond this the AU warps start to fold over themselves
RESTING_STD = 1.5  # px (at 64x64) spread of the resting-expression AU strengths
SECONDARY_AU_PROB = 0.7


# The demo's AUs, a subset of the face's (`_face_renderer.au_bumps`: Gaussian bumps in face units
# u = (x - face_cx) / face_ax, v = (y - face_cy) / face_ay, on the subject's feature layout).
AU_NAMES = ("1+2", "4", "6", "12", "15", "26")
EMOTION_AUS: dict[str, tuple[str, str]] = {  # emotion -> (primary AU, secondary AU)
    "negative": ("4", "15"),  # brow lowerer, lip corner depressor
    "positive": ("12", "6"),  # lip corner puller, cheek raiser
    "surprise": ("1+2", "26"),  # inner+outer brow raiser, jaw drop
}


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
    """The demo's random streams, keyed by (seed, subject, clip, purpose); (seed, subject, 0, 0) is the identity's."""
    return rng_stream(seed, *stream)


def _au_units(ident: FaceIdentity) -> list[tuple[str, float, float, float, float, float, float]]:
    """The Gaussian bumps of the demo's AUs (`AU_NAMES`): (au, u, v, sigma_u, sigma_v, dir_x, dir_y), in face units."""
    return [bump for bump in au_bumps(ident) if bump[0] in AU_NAMES]


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
def _subject_layers(seed: int, subject: int, hi: int) -> tuple[FaceIdentity, np.ndarray, np.ndarray]:
    ident = subject_identity(seed, subject)
    rgba, background = render_layers(ident, hi)
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


def _plan_clip(ident: FaceIdentity, rng: np.random.Generator, emotion: str, num_frames: int,
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
    bump = raised_cosine(np.arange(num_frames, dtype=np.float64), onset, apex, offset)
    return _ClipPlan(onset, apex, offset, bump, centres, sigmas, dirs, rest_coef, expr_coef,
                     {au: float(v) for au, v in strengths.items()}, (placement + drift) * px, gain,
                     rng.uniform(1.0, 3.0) / 255.0)


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


__all__ = ["EMOTIONS", "SyntheticClip", "check_knobs", "generate_clip"]
