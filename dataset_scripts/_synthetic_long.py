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
* the face: the renderer of the other synthetic modes (`synthetic._render_layers`), a face about 0.6 of
  the frame wide; displacements are drawn at CAS(ME)^2's native scale (a ~280 px face in 640x480) and
  scaled with the face, so the ratio of motion to face size is the real one at any `image_size`;
* the events: action-unit displacement fields (`_synthetic_realistic`) from the row's AUs (its emotion's
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
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import datasets
import numpy as np

from ._long import Event, QuirkCounts, event_type, long_features, make_event
from ._synthetic_realistic import REALISTIC_AUS, RESTING_FRACTION, _au_bumps, _field
from .registry import DATASETS
from .synthetic import _render_layers, _subject_identity

FPS = 30.0
ROWS_FILE = Path(__file__).with_name("casme_sq_code_final.csv")
NATIVE_FACE_PX = 280.0  # face width in CAS(ME)^2's 640x480 frames: the scale of the displacements below
FACE_FRACTION = 0.6  # face width / frame width
MICRO_PX = (1.0, 4.0)  # peak displacement at the apex, native pixels (log-uniform)
MACRO_PX = (4.0, 16.0)
TALK_PX = (4.0, 10.0)  # jaw displacement at a syllable's peak
HEAD_PX = (6.0, 30.0)  # rigid head movements
BLINKS_PER_MINUTE = (10.0, 20.0)
JPEG_QUALITY = (85, 95)
WINDOW_MARGIN = 30  # frames kept before the first and after the last event of a window
MAX_SUBJECTS = 22
EMOTION_AUS: dict[str, tuple[str, str]] = {  # CAS(ME)^2's emotion words -> (primary, secondary) AU
    "positive": ("12", "6"),
    "negative": ("4", "15"),
    "surprise": ("1+2", "26"),
    "others": ("7", "4"),
}
DEFAULTS = {"num_subjects": 6, "videos_per_subject": 2, "num_frames": 600, "image_size": 128, "seed": 0}


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 104729, *stream]))  # apart from the other modes


# -- the real timings -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def real_videos() -> dict[tuple[int, str], tuple[Event, ...]]:
    """(participant, expression) -> its events, read from CAS(ME)^2's rows as the casme_sq builder reads them."""
    videos: dict[tuple[int, str], list[Event]] = {}
    quirks = QuirkCounts()
    with open(ROWS_FILE, newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            where = f"{ROWS_FILE.name} row {number}"
            event = make_event(row["onset"], row["apex"], row["offset"], event_type(row["type"], where),
                               row["action_units"], row["emotion"], where, quirks)
            videos.setdefault((int(row["participant"]), row["video"].rsplit("_", 1)[0]), []).append(event)
    return {key: tuple(sorted(events, key=lambda e: (e.onset, e.offset))) for key, events in videos.items()}


def _window(events: tuple[Event, ...], num_frames: int | None) -> tuple[int, int, list[Event]]:
    """(first real frame, length, events inside) of the window holding the most micro-, then all events."""
    if num_frames is None:
        return 1, max(e.offset for e in events) + WINDOW_MARGIN, list(events)
    starts = {max(1, e.onset - WINDOW_MARGIN) for e in events}
    starts |= {max(1, e.offset + WINDOW_MARGIN - num_frames + 1) for e in events}

    def inside(start: int) -> list[Event]:
        return [e for e in events if e.onset >= start and e.offset <= start + num_frames - 1 - WINDOW_MARGIN // 3]

    best = max(sorted(starts), key=lambda s: (sum(e.type == "micro" for e in inside(s)), len(inside(s)), -s))
    return best, num_frames, inside(best)


def plan_videos(num_subjects: int, videos_per_subject: int, num_frames: int | None) -> list[dict[str, Any]]:
    """Which real videos are rendered: participants ranked by their videos holding a micro-expression
    (then by events), each with its own `videos_per_subject` videos ranked the same way."""
    videos = real_videos()
    per_participant: dict[int, list[str]] = {}
    for participant, expression in videos:
        per_participant.setdefault(participant, []).append(expression)

    def video_rank(key: tuple[int, str]) -> tuple:
        events = videos[key]
        return (-sum(e.type == "micro" for e in events), -len(events), key[1])

    def participant_rank(p: int) -> tuple:
        keys = [(p, x) for x in per_participant[p]]
        return (-sum(any(e.type == "micro" for e in videos[k]) for k in keys), -sum(len(videos[k]) for k in keys), p)

    plan = []
    for index, participant in enumerate(sorted(per_participant, key=participant_rank)[:num_subjects]):
        keys = sorted(((participant, x) for x in per_participant[participant]), key=video_rank)[:videos_per_subject]
        for key in keys:
            start, length, events = _window(videos[key], num_frames)
            plan.append({"subject": index, "participant": participant, "expression": key[1], "start": start,
                         "num_frames": length, "events": events})
    return plan


# -- rendering ------------------------------------------------------------------------------------


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


def _raised_cosine(t: np.ndarray, onset: float, apex: float, offset: float) -> np.ndarray:
    rise = 0.5 * (1 - np.cos(np.pi * np.clip((t - onset) / max(apex - onset, 1.0), 0, 1)))
    fall = 0.5 * (1 + np.cos(np.pi * np.clip((t - apex) / max(offset - apex, 1.0), 0, 1)))
    out = np.where(t <= apex, rise, fall)
    out[(t < onset) | (t > offset)] = 0.0
    return out


def _event_aus(action_units: str, emotion: str) -> list[str]:
    """The row's AUs that the face models (1 or 2 -> 1+2), else its emotion's pair."""
    aus: list[str] = []
    for token in re_split_aus(action_units):
        au = "1+2" if token in ("1", "2") else token
        if au in REALISTIC_AUS and au not in aus:
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
    image_size: int = DEFAULTS["image_size"],
    seed: int = 0,
    video: int = 0,
    frame_offset: int = 1,
) -> LongVideo:
    """Render one long video of `num_frames` frames in which `events` happen (their frame numbers minus
    `frame_offset` are frame indices). Deterministic for (seed, subject, video)."""
    if not 32 <= image_size <= 1024:
        raise ValueError(f"synthetic_long: image_size must be in [32, 1024], got {image_size}")
    rng = _rng(seed, subject, video + 1, 0)
    ident = _subject_identity(seed, subject)
    face_w = FACE_FRACTION * image_size * float(_rng(seed, subject, 0, 1).uniform(0.93, 1.07))
    scale = face_w / NATIVE_FACE_PX
    side = int(round(face_w / (2 * ident.axes[0])))
    rgba, _ = _render_layers(ident, side, unit=max(0.8, 1.5 * face_w / 300.0))
    tint = _rng(seed, subject, 0, 2).uniform(0.3, 0.75, 3).astype(np.float32)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32)
    background = tint * (1.0 + 0.10 * (xx / image_size - 0.5) - 0.06 * (yy / image_size - 0.5))[..., None]
    t = np.arange(num_frames, dtype=np.float64)

    # Action-unit bumps in layer pixels; a resting expression of the same AUs, static through the video.
    face_axes = np.array(ident.axes) * side
    bumps = _au_bumps(ident, face_axes)
    names = [b[0] for b in bumps]
    uv = np.array([(b[1], b[2]) for b in bumps]) + rng.normal(0, 0.02, (len(bumps), 2))
    centres = np.array(ident.centre) * side + uv * face_axes
    sigmas = np.array([(b[3], b[4]) for b in bumps]) * face_axes
    dirs = np.array([(b[5], b[6]) for b in bumps])
    asym = rng.uniform(0.85, 1.15, len(bumps))
    rest = {au: rng.normal(0, RESTING_FRACTION * face_w) for au in REALISTIC_AUS}
    rest_field = _field(centres, sigmas, (np.array([rest[n] for n in names]) * asym)[:, None] * dirs, side)

    def au_field(strengths: dict[str, float], peak: float) -> np.ndarray:
        coef = np.array([strengths.get(n, 0.0) for n in names]) * asym
        out = _field(centres, sigmas, coef[:, None] * dirs, side)
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
        courses.append(_raised_cosine(t, onset, apex, offset))
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
            shift[:, 1] += size * _raised_cosine(t, start, (start + end) / 2, end)
        elif kind == "turn":
            direction = rng.choice([-1.0, 1.0])
            shift[:, 0] += direction * size * 0.5 * (1 - np.cos(np.pi * np.clip((t - start) / (end - start), 0, 1)))
        else:
            roll += np.deg2rad(rng.choice([-1.0, 1.0]) * size / (face_w / 2) * 57.3) * _raised_cosine(
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

    gx, gy = np.meshgrid(np.arange(image_size, dtype=np.float32), np.arange(image_size, dtype=np.float32))
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
        cos, sin = np.cos(roll[i]), np.sin(roll[i])
        px = gx - (placement[0] + shift[i, 0])
        py = gy - (placement[1] + shift[i, 1])
        qx = (cos * px + sin * py + face_centre[0]).astype(np.float32)
        qy = (-sin * px + cos * py + face_centre[1]).astype(np.float32)
        at_q = cv2.remap(disp, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        head = cv2.remap(layer, qx - at_q[..., 0], qy - at_q[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        rgb = (head[..., :3] + (1.0 - head[..., 3:]) * background) * np.float32(gain[i])
        rgb += _rng(seed, subject, video + 1, 100 + i).standard_normal(rgb.shape, dtype=np.float32) * np.float32(noise_std)
        image = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("synthetic_long: JPEG encoding failed")
        jpegs.append(buf.tobytes())
        frames.append(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return LongVideo(frames, jpegs, rendered_events, blinks, head_moves, talking, light_steps, face_w, scale)


# -- the builder ----------------------------------------------------------------------------------


def _source_hash() -> str:
    parts = [Path(__file__).read_bytes(), ROWS_FILE.read_bytes()]
    from . import _long, _synthetic_realistic, synthetic

    parts += [Path(m.__file__).read_bytes() for m in (_long, _synthetic_realistic, synthetic)]
    return hashlib.sha256(b"".join(parts)).hexdigest()[:16]


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
        super().__init__(*args, hash=hash or _source_hash(), **kwargs)
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


__all__ = ["LongVideo", "SyntheticLong", "describe_plan", "generate_long_video", "plan_videos", "real_videos"]
