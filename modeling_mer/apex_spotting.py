"""Finding the apex (and the onset and offset) of the expression in a clip nobody annotated.

Why not "the frame with the largest flow from the first frame": long-term flow from frame 0 measures
everything that changed since frame 0, and in a real recording the head drifts, rolls and the light
slowly changes, so that quantity grows with time and its maximum falls on the clip's LAST frame whenever
the drift outweighs the expression (47 of the demo's 96 clips; the realistic mode's head motion is larger
than its expression by design). Subtracting a rigid fit of the head helps but leaves what the fit cannot
model (sway, roll, lighting, interpolation error), which still grows with the distance from frame 0.

The score used here is a second difference in time, measured by flow on the frame itself:

    score(t) = mean over the face of | H(flow(t -> t-k)) + H(flow(t -> t+k)) |,  k = min(lag, t, n-1-t)

where H removes the head's rigid (affine) motion (`optical_flow.remove_head_motion`, the processor's own),
after registration: the neighbour is first warped onto frame t by the rigid part of a first flow, and
the flow measured again, since flow errs in proportion to the motion it measures and a rigid fit of the
raw flow leaves a residual that follows the drift. Both flows start on frame t's grid. For a face whose expression displacement is B(t) * field (B rises
from 0 at the onset to 1 at the apex and falls back), the sum is (B(t-k) + B(t+k) - 2 B(t)) * field:
largest where B peaks, and it reaches 2 * field at the apex once t +/- k lie outside the expression.
Any motion that is linear in time over [t-k, t+k] cancels exactly (whatever its size: slow drift, a
steady roll, a lighting ramp), and the affine fit removes most of what is rigid and not linear. Nothing
in the score grows with t, so a late frame has no advantage; near the ends k shrinks with the distance to
the end (the first and last frames score 0), a mild bias TOWARDS the middle, which a clip cut around one
expression has anyway, and which an apex 2-3 frames from an end still overcomes (the tests plant one).

Onset and offset, when not given, come from flow from the found apex to every frame (head motion
removed): the expression's displacement relative to the apex rises as one moves away from the apex and
stops rising where the expression has not started (before the onset) or has ended (after the offset).
The onset is the latest frame before the apex where that displacement has reached `plateau` (0.98) of its
largest value on that side (so a neutral frame, erring earlier rather than inside the rise), the offset
the earliest such frame after it. The threshold is close to 1 because the recogniser measures flow FROM
the onset: an onset inside the rise removes part of the expression from every sampled flow (0.9 put the
found onset a median 3 frames after the annotated one on the realistic synthetic set; 0.98 a median 2
before). Measured fold-honestly (bench/unannotated.py's folds and models, 110 realistic clips): accuracy
without annotations 0.818 at 0.9, 0.95 and 0.98 alike (annotated timing: 0.900), 0.773 / 0.709 / 0.564 at
0.8 / 0.7 / 0.5; demo set 0.740 (0.9) -> 0.760 (0.98), annotated 0.740. What is left of the gap there
is the apex: the 21 clips whose found apex is 9+ frames off score 0.52 (0.90 with annotated timing); the
56 within 3 frames score 0.95 (0.93). The recogniser's apex-centred sampling then reads frames around the
apex with flow from a neutral onset, as with annotated clips.

Everything runs on the crop shrunk to `max_side` pixels (112 by default): finding a peak in time needs
the mean of the flow over the face, not its detail, and 2 flows per frame at that size cost a few ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .optical_flow import check_flow_method, flow_function, remove_head_motion, to_gray

__all__ = ["ExpressionWindow", "default_lag", "find_expression", "motion_profile"]

SCORE_REGION = 0.6  # central fraction of the crop averaged by the score: the face, not the flow artefacts at its borders
FIT_REGION = 0.5  # central fraction of the crop the head's rigid motion is fitted on: inside the face, no static background


@dataclass(frozen=True)
class ExpressionWindow:
    """Indices into the frames given: onset <= apex <= offset (onset < apex < offset with 3+ frames)."""

    onset: int
    apex: int
    offset: int
    scores: np.ndarray  # (n,) the motion profile the apex was picked on (0 outside the searched range)


def default_lag(num_frames: int) -> int:
    """k of the second difference: a quarter of the clip (at least 1). A clip cut around one expression
    spends about half its length in it (CASME II: onset->apex 30 frames of a ~70-frame clip), so t +/- k
    leaves the expression at the apex; a larger k only widens the peak, never moves it."""
    return max(1, num_frames // 4)


def _grays(frames: Sequence[np.ndarray], max_side: int | None) -> list[np.ndarray]:
    grays = [to_gray(np.asarray(f)) for f in frames]
    shape = grays[0].shape
    for i, g in enumerate(grays):
        if g.shape != shape:
            raise ValueError(f"apex spotting: frame {i} has size {g.shape}, frame 0 has {shape}")
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


def motion_profile(
    frames: Sequence[np.ndarray],
    *,
    lag: int | None = None,
    method: str = "farneback",
    max_side: int | None = 112,
    head_motion: str = "affine",
    first: int = 0,
    last: int | None = None,
) -> np.ndarray:
    """(n,) second-difference motion score of every frame (module docstring); frames outside
    [first, last] (and the two end frames) score 0. 4 flows per scored frame at `max_side` pixels."""
    if len(frames) == 0:
        raise ValueError("apex spotting needs at least 1 frame, got none")
    grays = _grays(frames, max_side)
    fn = flow_function(check_flow_method(method))
    grid = np.mgrid[0 : grays[0].shape[0], 0 : grays[0].shape[1]].astype(np.float32)
    n = len(grays)
    lag = default_lag(n) if lag is None else lag
    last = n - 1 if last is None else last
    scores = np.zeros(n)
    for t in range(max(first, 1), min(last, n - 2) + 1):
        k = min(lag, t, n - 1 - t)
        back = _registered_residual(fn, grays[t], grays[t - k], head_motion, grid)
        ahead = _registered_residual(fn, grays[t], grays[t + k], head_motion, grid)
        scores[t] = _face_mean(back + ahead)
    return scores


def _pick_peak(scores: np.ndarray, first: int, last: int) -> int:
    """Argmax of the profile smoothed over 3 frames, inside [first, last]."""
    smooth = np.convolve(scores, np.array([0.25, 0.5, 0.25]), mode="same")
    return first + int(np.argmax(smooth[first : last + 1]))


def find_expression(
    frames: Sequence[np.ndarray],
    onset: int | None = None,
    offset: int | None = None,
    *,
    lag: int | None = None,
    method: str = "farneback",
    max_side: int | None = 112,
    head_motion: str = "affine",
    plateau: float = 0.98,
) -> ExpressionWindow:
    """Onset, apex and offset (indices into `frames`) of the expression; a given onset/offset is kept and
    bounds the search (SMIC-HS and CASME II's "/" rows give both but no apex).

    With onset and offset given the apex lies in (onset, offset] (never the onset: flow is measured from
    it). Found ones satisfy onset < apex < offset whenever the clip has 3 frames or more; a 1-2 frame clip
    gives (0, n-1, n-1).
    """
    n = len(frames)
    if n == 0:
        raise ValueError("apex spotting needs at least 1 frame, got none")
    lo = 0 if onset is None else int(onset)
    hi = n - 1 if offset is None else int(offset)
    if not 0 <= lo < hi <= n - 1:
        if n >= 2 or onset is not None or offset is not None:
            raise ValueError(f"apex spotting: need 0 <= onset < offset <= {n - 1}, got onset={onset}, offset={offset}")
    # The apex must leave room for a found onset before it / offset after it.
    first = lo + 1 if onset is not None else max(lo, 1)
    last = min(hi - 1 if offset is not None else n - 2, hi)
    if n <= 2 or (hi - lo < 2 and onset is not None and offset is not None) or first > last:
        return ExpressionWindow(lo, hi, hi, np.zeros(n))  # too short to search: the apex is the last frame
    if onset is not None and offset is not None:
        # Only the annotated window is searched: it is scored as a clip of its own (k from its length).
        window = list(frames[lo : hi + 1])
        scores = np.zeros(n)
        scores[lo : hi + 1] = motion_profile(window, lag=lag, method=method, max_side=max_side, head_motion=head_motion)
        apex = _pick_peak(scores, lo + 1, hi) if scores[lo + 1 : hi + 1].any() else hi
        return ExpressionWindow(lo, apex, hi, scores)
    scores = motion_profile(frames, lag=lag, method=method, max_side=max_side, head_motion=head_motion,
                            first=first, last=last)
    apex = _pick_peak(scores, first, last)
    found_onset, found_offset = _boundaries(frames, apex, lo, hi, onset is None, offset is None,
                                            method=method, max_side=max_side, head_motion=head_motion, plateau=plateau)
    return ExpressionWindow(found_onset, apex, found_offset, scores)


def _boundaries(frames, apex, lo, hi, need_onset, need_offset, *, method, max_side, head_motion, plateau):
    """Onset / offset from the apex-referenced displacement (module docstring); given ones are kept."""
    grays = _grays(frames, max_side)
    fn = flow_function(check_flow_method(method))
    grid = np.mgrid[0 : grays[0].shape[0], 0 : grays[0].shape[1]].astype(np.float32)

    def displacement(t: int) -> float:
        return _face_mean(_registered_residual(fn, grays[apex], grays[t], head_motion, grid))

    onset, offset = lo, hi
    if need_onset:
        before = np.array([displacement(t) for t in range(lo, apex)])  # frames lo..apex-1
        reached = np.nonzero(before >= plateau * before.max())[0]
        onset = lo + int(reached.max()) if before.max() > 0 else lo
        onset = min(onset, apex - 1)
    if need_offset:
        after = np.array([displacement(t) for t in range(apex + 1, hi + 1)])  # frames apex+1..hi
        reached = np.nonzero(after >= plateau * after.max())[0]
        offset = apex + 1 + int(reached.min()) if after.max() > 0 else hi
        offset = max(offset, apex + 1)
    return onset, offset
