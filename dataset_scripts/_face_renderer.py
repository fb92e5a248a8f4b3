"""The face renderer of the synthetic sets: a subject's face, its action-unit fields, and the camera.

One concern, shared by the three generators (`_synthetic_demo`: the demo clips, `_synthetic_realistic`:
CASME II-like clips, `_synthetic_long_video`: CAS(ME)^2-like long videos), which differ only in what they
draw (timing, amplitudes, head motion, distractors), never in how a face is drawn:

* the subject: `subject_identity` (head and feature geometry, skin, hair, background colours, texture
  seed) and `render_layers` (the head as a premultiplied RGBA layer over a still background);
* the action units (AUs): `au_bumps` (Gaussian bumps of displacement placed on the subject's features),
  `AULayout` (one clip's jittered bumps in layer pixels) and its displacement fields (`bump_field`), the
  resting expression (`resting_strengths`) and the onset -> apex -> offset time course (`raised_cosine`);
* the camera: `render_frame` warps the head layer by the frame's rigid head pose and displacement field,
  composites it over the background, applies the light gain and sensor noise and JPEG-compresses it.

Random streams: `rng_stream(seed, *stream)`; the subject's identity uses (seed, subject, 0, 0), each
generator keys its own draws apart (`_rng` of each).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

REFERENCE_SIZE = 64  # the demo's displacements are given in pixels of a 64x64 image; the default texture scale
# The AUs the face models, in the order of their bumps (`au_bumps`).
AUS = ("1+2", "4", "5", "6", "7", "9", "10", "12", "14", "15", "17", "26")
RESTING_FRACTION = 0.035  # std of the resting-expression AU strengths, as a fraction of the face width


def rng_stream(seed: int, *stream: int) -> np.random.Generator:
    """Independent, reproducible random streams keyed by (seed, subject, clip, purpose)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


@dataclass(frozen=True)
class FaceIdentity:
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


def subject_identity(seed: int, subject: int) -> FaceIdentity:
    rng = rng_stream(seed, subject, 0, 0)
    skin_t = rng.uniform(0.0, 1.0)
    light, dark = np.array([0.96, 0.80, 0.68]), np.array([0.42, 0.28, 0.20])
    skin = (1 - skin_t) * light + skin_t * dark + rng.normal(0, 0.02, 3)
    hair = rng.uniform(0.04, 0.45) * np.array([1.0, 0.78, 0.58]) + rng.normal(0, 0.01, 3)
    return FaceIdentity(
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


def render_layers(ident: FaceIdentity, hi: int, unit: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The subject's head as an RGBA layer and the static background, both float32 at `hi` pixels.

    `unit`: the pixel scale of texture and blur (default: `hi / REFERENCE_SIZE`, the demo's 64 px look
    scaled up; the realistic modes pass a camera's scale, so skin has pixel-scale texture).

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


# -- action units -----------------------------------------------------------------------------------


def brow_v(ident: FaceIdentity) -> float:
    """Vertical face-unit position of the brows (the renderer and the AU fields must agree)."""
    return ident.eye_v - ident.brow_gap - ident.eye_size * ident.axes[0] * 0.5 / ident.axes[1]


def au_bumps(ident: FaceIdentity) -> list[tuple[str, float, float, float, float, float, float]]:
    """The Gaussian bumps of every AU in `AUS`: (au, u, v, sigma_u, sigma_v, dir_x, dir_y), in face units
    (u, v) and unit directions, placed on the subject's features; the two sides mirror u and dir_x."""
    bv, ev, eu = brow_v(ident), ident.eye_v, ident.eye_u
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


def bump_field(centres: np.ndarray, sigmas: np.ndarray, vectors: np.ndarray, size: int) -> np.ndarray:
    """Sum of separable Gaussian bumps, each carrying a displacement vector: (size, size, 2) float32."""
    grid = np.arange(size, dtype=np.float64)
    gx = np.exp(-0.5 * ((grid[None, :] - centres[:, :1]) / sigmas[:, :1]) ** 2)  # (K, W)
    gy = np.exp(-0.5 * ((grid[None, :] - centres[:, 1:]) / sigmas[:, 1:]) ** 2)  # (K, H)
    fx = np.einsum("kh,kw->hw", gy * vectors[:, :1], gx)
    fy = np.einsum("kh,kw->hw", gy * vectors[:, 1:], gx)
    return np.dstack([fx, fy]).astype(np.float32)


@dataclass(frozen=True)
class AULayout:
    """One clip's (or video's) AU bumps in pixels of a square head layer of `side` pixels: positions
    jittered per clip, a per-bump asymmetry of strength. `field(strengths)` is the displacement field of
    AU strengths (au -> signed strength, the AUs not named at 0)."""

    names: list[str]
    centres: np.ndarray  # (K, 2) layer pixels
    sigmas: np.ndarray  # (K, 2) layer pixels
    dirs: np.ndarray  # (K, 2) unit directions
    asym: np.ndarray  # (K,) strength factor of each bump
    side: int

    def field(self, strengths: dict[str, float]) -> np.ndarray:
        coef = np.array([strengths.get(n, 0.0) for n in self.names]) * self.asym
        return bump_field(self.centres, self.sigmas, coef[:, None] * self.dirs, self.side)


def au_layout(ident: FaceIdentity, side: int, rng: np.random.Generator, jitter: float) -> AULayout:
    """Draw one clip's AU layout: every bump of `au_bumps` moved by N(0, jitter) face units, then an
    asymmetry factor in [0.85, 1.15] per bump (in this order, from `rng`)."""
    face_axes = np.array(ident.axes) * side
    bumps = au_bumps(ident)
    uv = np.array([(b[1], b[2]) for b in bumps]) + rng.normal(0, jitter, (len(bumps), 2))
    centres = np.array(ident.centre) * side + uv * face_axes
    sigmas = np.array([(b[3], b[4]) for b in bumps]) * face_axes
    dirs = np.array([(b[5], b[6]) for b in bumps])
    asym = rng.uniform(0.85, 1.15, len(bumps))
    return AULayout([b[0] for b in bumps], centres, sigmas, dirs, asym, side)


def resting_strengths(rng: np.random.Generator, face_px: float) -> dict[str, float]:
    """A resting expression: every AU at a random signed static strength (std RESTING_FRACTION of the face
    width `face_px`), so that appearance alone is no clue to an expression."""
    return {au: rng.normal(0, RESTING_FRACTION * face_px) for au in AUS}


def raised_cosine(t: np.ndarray, onset: float, apex: float, offset: float) -> np.ndarray:
    """An expression's time course at times `t`: 0 outside (onset, offset), a raised-cosine rise to 1 at the
    apex and a fall back to 0."""
    rise = 0.5 * (1 - np.cos(np.pi * np.clip((t - onset) / max(apex - onset, 1.0), 0, 1)))
    fall = 0.5 * (1 + np.cos(np.pi * np.clip((t - apex) / max(offset - apex, 1.0), 0, 1)))
    out = np.where(t <= apex, rise, fall)
    out[(t < onset) | (t > offset)] = 0.0
    return out


# -- the camera -------------------------------------------------------------------------------------


def render_frame(
    layer: np.ndarray,
    disp: np.ndarray,
    background: np.ndarray,
    *,
    grid: tuple[np.ndarray, np.ndarray],
    face_centre: np.ndarray,
    position: np.ndarray,
    roll: float,
    gain: float,
    noise: np.random.Generator,
    noise_std: float,
    quality: int,
    scale: float = 1.0,
    where: str = "synthetic",
) -> tuple[np.ndarray, bytes]:
    """One frame as a camera records it: (RGB uint8 after JPEG, the JPEG bytes).

    The head layer (premultiplied RGBA, square, its face centre at `face_centre`) is moved by its
    displacement field `disp` (layer pixels, content moves by +disp), rolled by `roll` radians and scaled
    by `scale` about the face centre, which lands at `position` of the frame whose pixel grid is `grid`
    (x, y float32); then composited over `background`, multiplied by the light `gain`, given Gaussian
    sensor noise of `noise_std` (drawn from `noise`) and JPEG-compressed at `quality`."""
    gx, gy = grid
    cos, sin = np.cos(roll) / scale, np.sin(roll) / scale
    px = gx - position[0]
    py = gy - position[1]
    qx = (cos * px + sin * py + face_centre[0]).astype(np.float32)  # frame grid -> head-layer coordinates
    qy = (-sin * px + cos * py + face_centre[1]).astype(np.float32)
    at_q = cv2.remap(disp, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    head = cv2.remap(layer, qx - at_q[..., 0], qy - at_q[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    rgb = (head[..., :3] + (1.0 - head[..., 3:]) * background) * np.float32(gain)
    rgb += noise.standard_normal(rgb.shape, dtype=np.float32) * np.float32(noise_std)
    image = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"{where}: JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), buf.tobytes()


__all__ = [
    "AULayout",
    "AUS",
    "FaceIdentity",
    "REFERENCE_SIZE",
    "RESTING_FRACTION",
    "au_bumps",
    "au_layout",
    "brow_v",
    "bump_field",
    "raised_cosine",
    "render_frame",
    "render_layers",
    "resting_strengths",
    "rng_stream",
    "subject_identity",
]
