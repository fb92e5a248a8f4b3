"""Rendering one long synthetic video for spotting: CAS(ME)^2-timed events among what fools spotters.

One concern: `generate_long_video` draws and renders one video of `num_frames` frames at 30 fps in which
given events (onset, apex, offset, type, AUs: `_synthetic_long_plan` takes them from the real rows)
happen, among the distractors of a real recording: blinks, head movements, talking, lighting steps,
sensor noise and JPEG (what each is and why: `_synthetic_long`). The face, its AU fields and the camera
are `_face_renderer`'s, shared with the clip modes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
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

if TYPE_CHECKING:
    from ._long import Event

FPS = 30.0
NATIVE_FACE_PX = 280.0  # face width in CAS(ME)^2's 640x480 frames: the scale of the displacements below
FACE_FRACTION = 0.6  # face width / frame width
MICRO_PX = (1.0, 4.0)  # peak displacement at the apex, native pixels (log-uniform)
MACRO_PX = (4.0, 16.0)
TALK_PX = (4.0, 10.0)  # jaw displacement at a syllable's peak
HEAD_PX = (6.0, 30.0)  # rigid head movements
BLINKS_PER_MINUTE = (10.0, 20.0)
JPEG_QUALITY = (85, 95)
EMOTION_AUS: dict[str, tuple[str, str]] = {  # CAS(ME)^2's emotion words -> (primary, secondary) AU
    "positive": ("12", "6"),
    "negative": ("4", "15"),
    "surprise": ("1+2", "26"),
    "others": ("7", "4"),
}


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return rng_stream(seed, 104729, *stream)  # apart from the other modes


@dataclass
class LongVideo:
    """One rendered video: frames (RGB after JPEG) and their JPEG bytes, events with frame indices from 0,
    and every distractor with its frames (for tests and for reading results)."""

    frames: list[np.ndarray]
    jpeg: list[bytes]
    events: list[dict[str, Any]]  # onset/apex/offset (0-based indices), type, action_units, emotion, peak_px
    blinks: list[tuple[int, int, float]] = field(default_factory=list)  # (start, end, closure)
    head_moves: list[tuple[int, int, str, float]] = field(default_factory=list)  # (start, end, kind, px)
    talking: list[tuple[int, int]] = field(default_factory=list)
    light_steps: list[tuple[int, float]] = field(default_factory=list)  # (frame, relative gain change)
    face_px: float = 0.0  # face width, frame pixels
    scale: float = 0.0  # frame pixels per native (CAS(ME)^2) pixel


def _event_aus(action_units: str, emotion: str) -> list[str]:
    """The row's AUs that the face models (1 or 2 -> 1+2), else its emotion's pair."""
    aus: list[str] = []
    for token in re_split_aus(action_units):
        au = "1+2" if token in ("1", "2") else token
        if au in AUS and au not in aus:
            aus.append(au)
    return aus or list(EMOTION_AUS.get(emotion.lower(), EMOTION_AUS["others"]))


def re_split_aus(text: str) -> list[str]:
    """'L4+R10B+14' -> ['4', '10', '14'] (sides and intensities dropped)."""
    return re.findall(r"\d+", str(text))


def _clear_of(start: int, end: int, busy: list[tuple[int, int]], gap: int) -> bool:
    return all(end + gap < a or start - gap > b for a, b in busy)


def _place(rng: np.random.Generator, n: int, length: tuple[int, int], busy: list[tuple[int, int]], gap: int,
           num_frames: int) -> list[tuple[int, int]]:
    """Up to n intervals of a random length, clear of `busy` (and of each other) by `gap` frames."""
    placed: list[tuple[int, int]] = []
    for _ in range(n):
        for _try in range(30):
            size = int(rng.integers(length[0], length[1] + 1))
            if num_frames - size - 2 <= 2:
                break
            start = int(rng.integers(2, num_frames - size - 2))
            if _clear_of(start, start + size, busy + placed, gap):
                placed.append((start, start + size))
                break
    return sorted(placed)


def generate_long_video(
    subject: int,
    events: list[Event],
    *,
    num_frames: int,
    image_size: int = 128,
    seed: int = 0,
    video: int = 0,
    frame_offset: int = 1,
) -> LongVideo:
    """Render one long video of `num_frames` frames in which `events` happen (their frame numbers minus
    `frame_offset` are frame indices). Deterministic for (seed, subject, video)."""
    if not 32 <= image_size <= 1024:
        raise ValueError(f"synthetic_long: image_size must be in [32, 1024], got {image_size}")
    rng = _rng(seed, subject, video + 1, 0)
    ident = subject_identity(seed, subject)
    face_w = FACE_FRACTION * image_size * float(_rng(seed, subject, 0, 1).uniform(0.93, 1.07))
    scale = face_w / NATIVE_FACE_PX
    side = int(round(face_w / (2 * ident.axes[0])))
    rgba, _ = render_layers(ident, side, unit=max(0.8, 1.5 * face_w / 300.0))
    tint = _rng(seed, subject, 0, 2).uniform(0.3, 0.75, 3).astype(np.float32)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32)
    background = tint * (1.0 + 0.10 * (xx / image_size - 0.5) - 0.06 * (yy / image_size - 0.5))[..., None]
    t = np.arange(num_frames, dtype=np.float64)

    # Action-unit bumps in layer pixels; a resting expression of the same AUs, static through the video.
    face_axes = np.array(ident.axes) * side
    layout = au_layout(ident, side, rng, jitter=0.02)
    rest_field = layout.field(resting_strengths(rng, face_w))

    def au_field(strengths: dict[str, float], peak: float) -> np.ndarray:
        out = layout.field(strengths)
        return out * np.float32(peak / max(float(np.linalg.norm(out, axis=2).max()), 1e-9))

    # The annotated events.
    rendered_events, courses, fields = [], [], []
    for event in events:
        onset, offset = event.onset - frame_offset, event.offset - frame_offset
        if onset < 0 or offset >= num_frames:
            raise ValueError(f"synthetic_long: event {event.onset}..{event.offset} outside the video's frames")
        apex = event.apex - frame_offset if event.apex > 0 else onset + round(0.4 * (offset - onset))
        low, high = MICRO_PX if event.type == "micro" else MACRO_PX
        peak = float(np.exp(rng.uniform(np.log(low), np.log(high)))) * scale
        aus = _event_aus(event.action_units, event.emotion)
        strengths = {au: (1.0 if i == 0 else float(rng.uniform(0.4, 0.9))) for i, au in enumerate(aus)}
        fields.append(au_field(strengths, peak))
        courses.append(raised_cosine(t, onset, apex, offset))
        rendered_events.append({"onset": onset, "apex": event.apex - frame_offset if event.apex > 0 else -1,
                                "offset": offset, "type": event.type, "action_units": event.action_units,
                                "emotion": event.emotion, "peak_px": peak})
    busy = [(e["onset"], e["offset"]) for e in rendered_events]
    minutes = num_frames / FPS / 60.0

    # Talking: bursts of jaw and lip motion with the mouth opening.
    talking = _place(rng, int(rng.poisson(3.0 * minutes + 0.5)), (30, 90), busy, 15, num_frames)
    talk = np.zeros(num_frames)
    for start, end in talking:
        rate, phase = rng.uniform(2.0, 3.0), rng.uniform(0, np.pi)
        envelope = np.clip(np.minimum(t - start, end - t) / 4.0, 0, 1)  # 4-frame ramps in and out
        talk += envelope * np.abs(np.sin(2 * np.pi * rate * (t - start) / FPS + phase)) * rng.uniform(0.6, 1.0)
    talk_field = au_field({"26": 1.0, "10": 0.3, "17": 0.2}, float(rng.uniform(*TALK_PX)) * scale)

    # Head: nods, turns that stay, tilts (clear of the events), slow drift and breathing sway.
    moves = _place(rng, int(rng.poisson(6.0 * minutes + 0.5)), (10, 40), busy + talking, 10, num_frames)
    shift = np.zeros((num_frames, 2))
    roll = np.zeros(num_frames)
    head_moves = []
    for start, end in moves:
        kind = ("nod", "turn", "tilt")[int(rng.integers(3))]
        size = float(rng.uniform(*HEAD_PX)) * scale
        if kind == "nod":
            shift[:, 1] += size * raised_cosine(t, start, (start + end) / 2, end)
        elif kind == "turn":
            direction = rng.choice([-1.0, 1.0])
            shift[:, 0] += direction * size * 0.5 * (1 - np.cos(np.pi * np.clip((t - start) / (end - start), 0, 1)))
        else:
            roll += np.deg2rad(rng.choice([-1.0, 1.0]) * size / (face_w / 2) * 57.3) * raised_cosine(
                t, start, (start + end) / 2, end)
        head_moves.append((start, end, kind, size))
    drift = np.cumsum(rng.normal(0, 0.02, (num_frames, 2)), axis=0) * scale * 10
    drift = cv2.GaussianBlur(drift.astype(np.float32), (1, 0), sigmaX=1, sigmaY=15).astype(np.float64)
    sway = np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * t / FPS + rng.uniform(0, 6.3)) * rng.uniform(0.5, 1.5) * scale
    shift[:, 1] += sway
    shift += drift
    placement = np.array([image_size / 2, image_size / 2]) + rng.uniform(-0.03, 0.03, 2) * image_size

    # Blinks: the lid sweeps down over the eye and back (anywhere, events included).
    count = int(round(rng.uniform(*BLINKS_PER_MINUTE) * minutes))
    blink_starts = np.sort(rng.choice(np.arange(2, max(num_frames - 12, 3)), size=min(count, max(num_frames // 20, 0)),
                                      replace=False)) if count else np.array([], int)
    closure = np.zeros(num_frames)
    blinks = []
    for start in blink_starts:
        if blinks and start < blinks[-1][1] + 8:
            continue
        close, hold, open_ = int(rng.integers(2, 4)), int(rng.integers(0, 3)), int(rng.integers(3, 6))
        depth = float(rng.uniform(0.6, 1.0))
        course = np.concatenate([np.linspace(0, 1, close + 1)[1:], np.ones(hold), np.linspace(1, 0, open_ + 1)[1:]])
        end = min(int(start) + len(course), num_frames)
        closure[int(start):end] = np.maximum(closure[int(start):end], depth * course[: end - int(start)])
        blinks.append((int(start), end - 1, depth))

    # Light: a slow swing, exposure steps, flicker; then sensor noise and JPEG.
    gain = 1 + rng.uniform(0.01, 0.03) * np.sin(2 * np.pi * t / (FPS * rng.uniform(5, 20)) + rng.uniform(0, 6.3))
    light_steps = []
    for _ in range(int(rng.poisson(2.0 * minutes + 0.3))):
        at, size = int(rng.integers(5, num_frames - 5)), float(rng.choice([-1, 1]) * rng.uniform(0.03, 0.08))
        gain = gain + size * np.clip((t - at) / rng.uniform(3, 8), 0, 1)
        light_steps.append((at, size))
    gain = gain + rng.normal(0, 0.003, num_frames)
    noise_std = rng.uniform(1.0, 3.0) / 255.0
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))

    # Lid and mouth geometry in layer pixels.
    cx, cy = ident.centre[0] * side, ident.centre[1] * side
    ax, ay = face_axes
    eyes = []
    for s in (-1, 1):
        ex, ey = cx + s * ident.eye_u * ax, cy + ident.eye_v * ay
        a, b = ident.eye_size * ax * 1.2, ident.eye_size * ax * 0.5 * 1.5
        x0, x1 = int(max(ex - a - 1, 0)), int(min(ex + a + 2, side))
        y0, y1 = int(max(ey - b - 1, 0)), int(min(ey + b + 2, side))
        gy_, gx_ = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        eyes.append((y0, y1, x0, x1, ((gx_ - ex) / a) ** 2 + ((gy_ - ey) / b) ** 2 <= 1.0, gy_, ey - b, 2 * b))
    lid_colour = np.append(ident.skin * 0.8, 1.0).astype(np.float32)
    lash_colour = np.array([0.08, 0.06, 0.05, 1.0], np.float32)
    mouth = (cx, cy + ident.mouth_v * ay, ident.mouth_half * ax * 0.8, ident.lip * ay * 2.2)

    grid = np.meshgrid(np.arange(image_size, dtype=np.float32), np.arange(image_size, dtype=np.float32))
    face_centre = np.array(ident.centre) * side
    frames, jpegs = [], []
    for i in range(num_frames):
        layer = rgba
        if closure[i] > 0 or talk[i] > 0.05:
            layer = rgba.copy()
            if talk[i] > 0.05:
                cv2.ellipse(layer, (int(round(mouth[0] * 16)), int(round(mouth[1] * 16))),
                            (max(1, int(mouth[2] * 16)), max(1, int(mouth[3] * talk[i] * 16))), 0, 0, 360,
                            (0.12, 0.04, 0.04, 1.0), -1, cv2.LINE_AA, 4)
            for y0, y1, x0, x1, inside, rows, top, height in eyes if closure[i] > 0 else ():
                edge = top + closure[i] * height
                patch = layer[y0:y1, x0:x1]
                patch[inside & (rows <= edge)] = lid_colour
                patch[inside & (np.abs(rows - edge) < 0.8)] = lash_colour
        disp = rest_field + np.float32(talk[i]) * talk_field
        for course, event_field in zip(courses, fields):
            if course[i] > 0:
                disp = disp + np.float32(course[i]) * event_field
        frame, jpeg = render_frame(layer, disp, background, grid=grid, face_centre=face_centre,
                                   position=placement + shift[i], roll=roll[i], gain=gain[i],
                                   noise=_rng(seed, subject, video + 1, 100 + i), noise_std=noise_std,
                                   quality=quality, where="synthetic_long")
        frames.append(frame)
        jpegs.append(jpeg)
    return LongVideo(frames, jpegs, rendered_events, blinks, head_moves, talking, light_steps, face_w, scale)


__all__ = ["FPS", "NATIVE_FACE_PX", "LongVideo", "generate_long_video"]
