"""Small generated long videos with known micro- and macro-expressions, for the spotting tests and bench.

Not a dataset (the long-video synthetic mode of `dataset_scripts` is that): a fast generator of one video
at a time, in memory or streamed, whose physics contains what fools spotters. A textured face on a
textured background; expressions are local, smooth displacement fields (a brow raise, a lip-corner pull)
with a rise-and-release time course (micro: 8-14 frames at 30 fps and a small amplitude; macro: 30-70
frames, larger); distractors are eye blinks (a fast, large, local change of intensity), slow head drift,
sudden head movements (rigid translations), a slow lighting change and sensor noise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

# Regions of the face (centre u, v in face units -0.5..0.5, radius) and the direction they move.
_AU_REGIONS = {
    "brow_raise": ((-0.18, -0.22), (0.18, -0.22), 0.11, (0.0, -1.0)),
    "brow_lower": ((-0.15, -0.20), (0.15, -0.20), 0.10, (0.0, 1.0)),
    "lip_pull": ((-0.16, 0.22), (0.16, 0.22), 0.09, (1.0, -0.6)),
    "lip_press": ((-0.08, 0.25), (0.08, 0.25), 0.09, (0.0, -1.0)),
}
_EYES = ((-0.17, -0.08), (0.17, -0.08))


@dataclass
class SyntheticLongVideo:
    """A generated recording: its geometry, its events (inclusive frame ranges) and how to render it."""

    num_frames: int
    fps: float
    width: int
    height: int
    face_box: tuple[int, int, int, int]
    events: list[dict] = field(default_factory=list)  # onset, apex, offset, type, emotion, action_units
    blinks: list[tuple[int, int]] = field(default_factory=list)
    head_moves: list[tuple[int, int, float, float]] = field(default_factory=list)
    seed: int = 0
    micro_px: float = 1.0  # peak displacement of a micro-expression, in pixels of the frame

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """(index, RGB uint8) one frame at a time (memory: one frame plus the static layers)."""
        renderer = _Renderer(self)
        for t in range(self.num_frames):
            yield t, renderer.frame(t)

    def array(self) -> np.ndarray:
        return np.stack([f for _, f in self.frames()])


def _course(t: int, onset: int, apex: int, offset: int) -> float:
    """0 at onset, 1 at apex, 0 at offset (raised cosine on each side)."""
    if t < onset or t > offset:
        return 0.0
    if t <= apex:
        return 0.5 - 0.5 * np.cos(np.pi * (t - onset) / max(1, apex - onset))
    return 0.5 + 0.5 * np.cos(np.pi * (t - apex) / max(1, offset - apex))


def make_long_video(
    seed: int,
    num_frames: int = 900,
    fps: float = 30.0,
    width: int = 160,
    height: int = 120,
    micro: int = 4,
    macro: int = 2,
    blinks: int = 5,
    head_moves: int = 2,
    micro_px: float | None = None,
) -> SyntheticLongVideo:
    """A video of `num_frames` with `micro` + `macro` non-overlapping expressions, blinks and head moves.

    Durations scale with fps (a micro-expression 0.27-0.47 s, a macro 1-2.3 s, a blink 0.17-0.23 s).
    `micro_px`: peak displacement of a micro-expression (default 1.2 % of the face side, about 1.4 px on a
    120 px face: visible to flow, far below a blink or a head movement).
    """
    rng = np.random.default_rng(seed)
    side = int(min(width, height) * 0.8)
    box = ((width - side) // 2, (height - side) // 2, side, side)
    video = SyntheticLongVideo(num_frames, fps, width, height, box, seed=seed,
                               micro_px=micro_px if micro_px is not None else 0.012 * side)
    occupied = np.zeros(num_frames, dtype=bool)
    margin = int(0.3 * fps)

    def place(length: int) -> int | None:
        for _ in range(200):
            onset = int(rng.integers(margin, max(margin + 1, num_frames - length - margin)))
            if not occupied[max(0, onset - margin):onset + length + margin].any():
                occupied[onset:onset + length] = True
                return onset
        return None

    kinds = ["micro"] * micro + ["macro"] * macro
    for kind in rng.permutation(kinds):
        length = int(round(fps * (rng.uniform(0.27, 0.47) if kind == "micro" else rng.uniform(1.0, 2.3))))
        onset = place(length)
        if onset is None:
            continue
        apex = onset + int(round(length * rng.uniform(0.35, 0.55)))
        au = str(rng.choice(list(_AU_REGIONS)))
        emotion = {"brow_raise": "surprise", "brow_lower": "negative", "lip_pull": "positive", "lip_press": "negative"}[au]
        video.events.append({"onset": onset, "apex": apex, "offset": onset + length - 1, "type": str(kind),
                             "emotion": emotion, "action_units": au})
    for _ in range(blinks):
        length = int(round(fps * rng.uniform(0.17, 0.23)))
        onset = place(length)
        if onset is not None:
            video.blinks.append((onset, onset + length - 1))
    for _ in range(head_moves):
        length = int(round(fps * rng.uniform(0.3, 0.6)))
        onset = place(length)
        if onset is not None:
            dx, dy = rng.uniform(-0.05, 0.05, 2) * side
            video.head_moves.append((onset, onset + length - 1, float(dx), float(dy)))
    video.events.sort(key=lambda e: e["onset"])
    return video


class _Renderer:
    """Static layers of one video, and the warp of each frame."""

    def __init__(self, video: SyntheticLongVideo):
        self.v = video
        rng = np.random.default_rng(video.seed + 1_000_003)
        h, w = video.height, video.width

        def texture(sigma: float) -> np.ndarray:
            noise = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), sigma)
            return (noise - noise.min()) / (np.ptp(noise) + 1e-6)

        x0, y0, side, _ = video.face_box
        self.cx, self.cy, self.side = x0 + side / 2, y0 + side / 2, side
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        self.xs, self.ys = xs, ys
        self.u, self.v_ = (xs - self.cx) / side, (ys - self.cy) / side
        face = ((self.u / 0.42) ** 2 + (self.v_ / 0.5) ** 2) <= 1.0
        base = 70 + 60 * texture(max(1.0, w / 40))
        skin = 120 + 70 * texture(max(0.8, side / 60)) + 40 * (1 - np.hypot(self.u, self.v_))
        self.image = np.where(face, skin, base).astype(np.float32)
        for (eu, ev) in _EYES:  # dark eyes and brows: structure the flow can follow
            self.image[np.hypot(self.u - eu, (self.v_ - ev) * 1.8) < 0.06] = 40
            self.image[np.hypot(self.u - eu, (self.v_ - ev + 0.12) * 4) < 0.09] = 60
        self.image[np.hypot(self.u * 0.6, (self.v_ - 0.24) * 3) < 0.07] = 80  # mouth
        self.lids = sum(np.exp(-(((self.u - eu) / 0.08) ** 2 + ((self.v_ - ev + 0.02) / 0.05) ** 2)) for eu, ev in _EYES)
        self.fields = {}
        for name, (left, right, radius, (du, dv)) in _AU_REGIONS.items():
            weight = sum(np.exp(-(((self.u - cu) ** 2 + (self.v_ - cv) ** 2) / radius**2)) for cu, cv in (left, right))
            sign_u = np.where(self.u < 0, -1.0, 1.0) if du else 0.0
            self.fields[name] = (weight * du * sign_u, weight * dv)
        self.drift = rng.uniform(0, 2 * np.pi, 4)
        self.noise_rng = np.random.default_rng(video.seed + 7)

    def frame(self, t: int) -> np.ndarray:
        v = self.v
        fu = np.zeros_like(self.xs)
        fv = np.zeros_like(self.ys)
        for e in v.events:
            c = _course(t, e["onset"], e["apex"], e["offset"])
            if c:
                amp = (v.micro_px if e["type"] == "micro" else 3.0 * v.micro_px) * c
                du, dv = self.fields[e["action_units"]]
                fu += amp * du
                fv += amp * dv
        for onset, offset in v.blinks:  # the lids sweep down over the eyes and back: fast, large, local
            c = _course(t, onset, (onset + offset) // 2, offset)
            if c:
                fv += 0.05 * self.side * c * self.lids
        seconds = t / v.fps
        hx = 0.02 * self.side * np.sin(2 * np.pi * seconds / 17 + self.drift[0])
        hy = 0.015 * self.side * np.sin(2 * np.pi * seconds / 23 + self.drift[1])
        for onset, offset, dx, dy in v.head_moves:
            if t >= onset:
                share = min(1.0, (t - onset) / max(1, offset - onset))
                hx, hy = hx + dx * share, hy + dy * share
        # backward map: the pixel at x shows the texture at x - displacement
        frame = cv2.remap(self.image, (self.xs - fu - hx).astype(np.float32), (self.ys - fv - hy).astype(np.float32),
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame = frame * (1 + 0.08 * np.sin(2 * np.pi * seconds / 29 + self.drift[2]))  # lighting
        frame = frame + self.noise_rng.normal(0, 1.5, frame.shape)
        gray = np.clip(frame, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
