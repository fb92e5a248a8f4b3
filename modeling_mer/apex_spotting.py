"""Finding the apex (and the onset and offset) of the expression in a clip nobody annotated.

Why not "the frame with the largest flow from the first frame": long-term flow from frame 0 measures
everything that changed since frame 0, and in a real recording the head drifts, rolls and the light
slowly changes, so that quantity grows with time and its maximum falls on the clip's LAST frame whenever
the drift outweighs the expression (47 of the demo's 96 clips; the realistic mode's head motion is larger
than its expression by design). Subtracting a rigid fit of the head helps but leaves what the fit cannot
model (sway, roll, lighting, interpolation error), which still grows with the distance from frame 0.

The score used here is how far the face at frame t departs from the straight path between two anchor
frames a < t < b (the given onset and offset, else the clip's first and last frames), measured by flow on
frame t itself:

    field(t) = w_a H(flow(t -> a)) + w_b H(flow(t -> b)),   w_a = (b - t) / (b - a),  w_b = (t - a) / (b - a)
    score(t) = mean over the face of | G(field)(t) |

where H removes the head's rigid (affine) motion (`optical_flow.remove_head_motion`, the processor's own),
after registration: the anchor is first warped onto frame t by the rigid part of a first flow, and the flow
measured again, since flow errs in proportion to the motion it measures and a rigid fit of the raw flow
leaves a residual that follows the drift. Both flows start on frame t's grid. For a face whose expression
displacement is B(t) * F (B rises from 0 at the onset to 1 at the apex and falls back) with neutral anchors,
the field is -B(t) * F: the expression's own time course at full size, largest at the apex whatever the
rise and fall times. Any motion linear in time over [a, b] cancels exactly (whatever its size: slow drift,
a steady roll, a lighting ramp), the affine fit removes most of what is rigid and not linear, and nothing in
the score grows with t, so a late frame has no advantage. G smooths the field as vectors before the
magnitude is taken (a Gaussian over 1/20 of the clip in time and 1/56 of the crop in space): the expression
is the same field F in neighbouring frames and neighbouring pixels while the noise is not, so averaging
vectors keeps the one and cancels the other, where averaging magnitudes would add the noise up.

Why not the second difference flow(t -> t-k) + flow(t -> t+k), used before: it is the same idea with
anchors t +/- k that move with t, so it reads the expression at 2 frames per score only (noise), and its
peak moves away from the apex when the rise and the fall differ (even smoothed, its error correlated 0.49
with fall - rise on the realistic set). Measured fold-honestly on 110 clips of the realistic synthetic set (0.3-3 px
expressions under larger head motion, bench/unannotated.py): mean |found - annotated apex| 6.2 frames ->
3.7, clips 9+ frames off 21 -> 10, accuracy without annotations 0.818 -> 0.891 (annotated 0.900).

Onset and offset, when not given, come from flow from the found apex to every frame (head motion
removed): the expression's displacement relative to the apex rises as one moves away from the apex and
stops rising where the expression has not started (before the onset) or has ended (after the offset).
The onset is the latest frame before the apex where that displacement has reached `plateau` (0.98) of its
largest value on that side (so a neutral frame, erring earlier rather than inside the rise), the offset
the earliest such frame after it. The threshold is close to 1 because the recogniser measures flow FROM
the onset: an onset inside the rise removes part of the expression from every sampled flow (0.9 put the
found onset a median 3 frames after the annotated one on the realistic synthetic set; 0.98 a median 2
before; bench/unannotated_onset_sweep.py: 0.9-0.98 alike, 0.8 and below worse). The recogniser's apex-centred sampling then reads frames around the
apex with flow from a neutral onset, as with annotated clips.

Everything runs on the crop shrunk to `max_side` pixels (112 by default): finding a peak in time needs
the mean of the flow over the face, not its detail, and 4 flows per frame at that size cost a few ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .optical_flow import check_flow_method, flow_function, remove_head_motion, to_gray

__all__ = ["ExpressionWindow", "find_expression", "motion_profile", "spot_apex"]

SCORE_REGION = 0.6  # central fraction of the crop averaged by the score: the face, not the flow artefacts at its borders
FIT_REGION = 0.5  # central fraction of the crop the head's rigid motion is fitted on: inside the face, no static background
# Smoothing of the departure field before its magnitude is taken (vectors, so that noise averages out instead
# of adding up): in time a Gaussian of this fraction of the clip (a clip cut around one expression scales with
# it; 4 frames of an 80-frame clip at 200 fps), in space one of this fraction of the crop's side (2 px at 112,
# well inside an action unit's extent). Chosen on the realistic synthetic set (bench/unannotated.py).
TEMPORAL_SIGMA = 1 / 20
SPATIAL_SIGMA = 1 / 56


@dataclass(frozen=True)
class ExpressionWindow:
    """Indices into the frames given: onset <= apex <= offset (onset < apex < offset with 3+ frames)."""

    onset: int
    apex: int
    offset: int
    scores: np.ndarray  # (n,) the motion profile the apex was picked on (0 outside the searched range)


def _grays(frames: Sequence[np.ndarray], max_side: int | None, start: int = 0) -> list[np.ndarray]:
    """`frames` (frame `start` first) in gray, shrunk to `max_side`: done once per clip, for the anchors' range."""
    grays = [to_gray(np.asarray(f)) for f in frames]
    shape = grays[0].shape
    for i, g in enumerate(grays):
        if g.shape != shape:
            raise ValueError(f"apex spotting: frame {start + i} has size {g.shape}, frame {start} has {shape}")
    if max_side is not None and max(shape) > max_side:
        scale = max_side / max(shape)
        size = (max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale)))
        grays = [cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in grays]
    return grays


def _face_mean(flow: np.ndarray) -> float:
    """Mean displacement magnitude over the central SCORE_REGION of the crop."""
    h, w = flow.shape[:2]
    dy, dx = int(round(h * (1 - SCORE_REGION) / 2)), int(round(w * (1 - SCORE_REGION) / 2))
    inner = flow[dy : h - dy or None, dx : w - dx or None]
    return float(np.linalg.norm(inner, axis=-1).mean())


def _registered_residual(fn, frame: np.ndarray, other: np.ndarray, head_motion: str, grid: np.ndarray) -> np.ndarray:
    """Flow frame -> other with the head's motion removed, measured after registering `other` onto `frame`.

    Flow estimators err in proportion to the motion they measure (on smooth skin a translation is not
    recovered as one), so subtracting a rigid fit from the raw flow leaves a residual that follows the
    head motion. Hence two passes: the rigid (affine) part of a first flow warps `other` onto `frame`,
    then the flow of what is left -- the non-rigid motion, no longer riding on the drift -- is measured,
    and its own rigid part removed."""
    first = fn(frame, other)
    rigid = first - remove_head_motion(first, head_motion, region=FIT_REGION)
    registered = cv2.remap(other, grid[1] + rigid[..., 0], grid[0] + rigid[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return remove_head_motion(fn(frame, registered), head_motion, region=FIT_REGION)


def _smooth_in_time(fields: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of (n, ...) `fields` along time, `sigma` frames, the end values repeated."""
    if sigma < 0.5 or len(fields) < 2:
        return fields
    radius = int(3 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    index = np.arange(len(fields))
    out = np.zeros_like(fields)
    for offset, weight in zip(offsets, kernel):
        out += np.float32(weight) * fields[np.clip(index + offset, 0, len(fields) - 1)]
    return out


def motion_profile(
    frames: Sequence[np.ndarray],
    *,
    method: str = "farneback",
    max_side: int | None = 112,
    head_motion: str = "affine",
    first: int = 0,
    last: int | None = None,
) -> np.ndarray:
    """(n,) score of every frame strictly between the anchors `first` and `last` (module docstring): how far
    the face departs from the straight path between them; the anchors and frames outside score 0.
    4 flows per scored frame at `max_side` pixels; only frames first..last are read."""
    if len(frames) == 0:
        raise ValueError("apex spotting needs at least 1 frame, got none")
    n = len(frames)
    last = n - 1 if last is None else last
    if not 0 <= first <= last <= n - 1:
        raise ValueError(f"apex spotting: need 0 <= first <= last <= {n - 1}, got first={first}, last={last}")
    scores = np.zeros(n)
    grays = _grays(frames[first : last + 1], max_side, start=first)
    scores[first : last + 1] = _departure(grays, flow_function(check_flow_method(method)), head_motion)
    return scores


def _grid(gray: np.ndarray) -> np.ndarray:
    return np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]].astype(np.float32)


def _departure(grays: list[np.ndarray], fn, head_motion: str) -> np.ndarray:
    """The score of each of `grays` with its first and last as the anchors (which score 0)."""
    span = len(grays) - 1
    scores = np.zeros(span + 1)
    if span < 2:
        return scores
    height, width = grays[0].shape
    grid = _grid(grays[0])
    blur = max(height, width) * SPATIAL_SIGMA
    fields = np.zeros((span + 1, height, width, 2), np.float32)  # the anchors' own rows stay 0
    for t in range(1, span):
        ahead = t / span
        field = ((1 - ahead) * _registered_residual(fn, grays[t], grays[0], head_motion, grid)
                 + ahead * _registered_residual(fn, grays[t], grays[span], head_motion, grid))
        fields[t] = cv2.GaussianBlur(field, (0, 0), blur) if blur > 0 else field
    fields = _smooth_in_time(fields, (span + 1) * TEMPORAL_SIGMA)
    for t in range(1, span):
        scores[t] = _face_mean(fields[t])
    return scores


def find_expression(
    frames: Sequence[np.ndarray],
    onset: int | None = None,
    offset: int | None = None,
    *,
    method: str = "farneback",
    max_side: int | None = 112,
    head_motion: str = "affine",
    plateau: float = 0.98,
) -> ExpressionWindow:
    """Onset, apex and offset (indices into `frames`) of the expression; a given onset/offset is kept and
    bounds the search (SMIC-HS and CASME II's "/" rows give both but no apex).

    The apex lies strictly between the anchors (the given onset/offset, else the clip's ends) when they are
    2+ frames apart, else it is the last anchor; found bounds satisfy onset < apex < offset whenever the
    clip has 3 frames or more; a 1-2 frame clip gives (0, n-1, n-1).
    """
    n = len(frames)
    if n == 0:
        raise ValueError("apex spotting needs at least 1 frame, got none")
    lo = 0 if onset is None else int(onset)
    hi = n - 1 if offset is None else int(offset)
    if not 0 <= lo < hi <= n - 1:
        if n >= 2 or onset is not None or offset is not None:
            raise ValueError(f"apex spotting: need 0 <= onset < offset <= {n - 1}, got onset={onset}, offset={offset}")
    if hi - lo < 2:  # no frame between the anchors: the apex is the last frame
        return ExpressionWindow(lo, hi, hi, np.zeros(n))
    # The anchors are the given onset/offset (neutral by definition) or the clip's ends; only lo..hi is read,
    # once, for both the score and the boundaries.
    grays = _grays(frames[lo : hi + 1], max_side, start=lo)
    fn = flow_function(check_flow_method(method))
    scores = np.zeros(n)
    scores[lo : hi + 1] = _departure(grays, fn, head_motion)
    apex = lo + 1 + int(np.argmax(scores[lo + 1 : hi]))
    found_onset, found_offset = _boundaries(grays, apex - lo, onset is None, offset is None, fn=fn,
                                            head_motion=head_motion, plateau=plateau)
    return ExpressionWindow(lo + found_onset, apex, lo + found_offset, scores)


def _boundaries(grays, apex, need_onset, need_offset, *, fn, head_motion, plateau):
    """Onset / offset (indices into `grays`, whose ends are the given or default bounds) from the
    apex-referenced displacement (module docstring); a bound not needed stays at its end."""
    grid = _grid(grays[0])
    last = len(grays) - 1

    def displacement(t: int) -> float:
        return _face_mean(_registered_residual(fn, grays[apex], grays[t], head_motion, grid))

    onset, offset = 0, last
    if need_onset:
        before = np.array([displacement(t) for t in range(0, apex)])  # frames 0..apex-1
        reached = np.nonzero(before >= plateau * before.max())[0]
        onset = int(reached.max()) if before.max() > 0 else 0
        onset = min(onset, apex - 1)
    if need_offset:
        after = np.array([displacement(t) for t in range(apex + 1, last + 1)])  # frames apex+1..last
        reached = np.nonzero(after >= plateau * after.max())[0]
        offset = apex + 1 + int(reached.min()) if after.max() > 0 else last
        offset = max(offset, apex + 1)
    return onset, offset


def spot_apex(frames: Sequence[np.ndarray], method: str = "farneback", max_side: int | None = 128) -> int:
    """Index into `frames` (the onset first, the offset last) of the apex of the expression between them.

    Found by `find_expression`: how far the face departs from the straight path between the onset and
    the offset (flow with the head's motion removed), which slow drift cannot push to the last frame (the
    largest long-term flow from the onset, used before, landed on the last frame in half of the demo's
    clips). Frames are shrunk to `max_side` pixels on their longest side first (None keeps them). Never
    returns 0 (flow is measured from the onset). The dataset builders' entry point for a missing apex.
    """
    if len(frames) < 2:
        raise ValueError(f"spot_apex needs at least 2 frames, got {len(frames)}")
    return find_expression(frames, 0, len(frames) - 1, method=method, max_side=max_side).apex
