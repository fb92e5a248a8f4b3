"""The timeline figure of a spotted recording: motion and class scores over time, the spotted intervals
coloured by emotion (by type without a recogniser), the ground truth when given, a face thumbnail at
each apex."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

TYPE_COLOURS = {"micro": "#d62728", "macro": "#1f77b4"}
EMOTION_COLOURS = ["#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]


def draw_timeline(path: str | Path, result: dict[str, Any], intervals: list[dict], thumbnails: list[np.ndarray],
                  ground_truth: list[dict] | None = None, title: str = "") -> Path:
    """Write the figure to `path` (PNG); `result` is `spot.spot_video`'s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    fps = result["fps"]
    seconds = np.asarray(result["frames"], dtype=np.float64) / fps
    probs = np.asarray(result["probabilities"])
    emotions = sorted({r["emotion"] for r in intervals if r.get("emotion")})
    colour = {e: EMOTION_COLOURS[i % len(EMOTION_COLOURS)] for i, e in enumerate(emotions)}
    rows = 3 if ground_truth is not None else 2
    fig, axes = plt.subplots(rows, 1, figsize=(14, 2.2 * rows + 1.2), sharex=True,
                             gridspec_kw={"height_ratios": [3, 2] + ([1] if rows == 3 else [])})
    ax = axes[0]
    motion = np.asarray(result["magnitude"], dtype=np.float64)
    ax.plot(seconds, motion / max(motion.max(), 1e-12), color="0.55", lw=0.8, label="motion (head motion removed)")
    from modeling_mer.processing_spotting import smooth

    width = max(1, int(round(result.get("smoothing", 0.0) * result.get("rate", fps))) | 1)
    for kind, column in (("micro", 1), ("macro", 2)):  # the smoothed scores the thresholds apply to
        ax.plot(seconds, smooth(probs[:, column], width), color=TYPE_COLOURS[kind], lw=1.0, label=f"{kind} score")
        if "thresholds" in result:
            ax.axhline(result["thresholds"][kind], color=TYPE_COLOURS[kind], lw=0.7, ls="--")
    ax.set_ylim(0, 1.45)
    ax.set_ylabel("score")
    ax.legend(loc="upper right", fontsize=8, ncol=3)
    for r, thumb in zip(intervals, thumbnails):
        c = colour.get(r.get("emotion"), TYPE_COLOURS[r["type"]])
        ax.axvspan(r["onset"] / fps, (r["offset"] + 1) / fps, color=c, alpha=0.25)
        image = OffsetImage(thumb, cmap="gray", zoom=0.5)
        ax.add_artist(AnnotationBbox(image, (r["apex"] / fps, 1.22), frameon=False))
    band = axes[1]
    for r in intervals:
        c = colour.get(r.get("emotion"), TYPE_COLOURS[r["type"]])
        y = 1 if r["type"] == "micro" else 0
        band.barh(y, (r["offset"] + 1 - r["onset"]) / fps, left=r["onset"] / fps, color=c, height=0.7)
        label = r.get("emotion") or f"{r['score']:.2f}"
        band.text((r["onset"] + r["offset"]) / 2 / fps, y, label, ha="center", va="center", fontsize=7)
    band.set_yticks([0, 1], ["macro", "micro"])
    band.set_ylim(-0.6, 1.6)
    band.set_ylabel("spotted")
    if ground_truth is not None:
        gt = axes[2]
        for e in ground_truth:
            y = 1 if str(e["type"]).startswith("micro") else 0
            gt.barh(y, (e["offset"] + 1 - e["onset"]) / fps, left=e["onset"] / fps, color="0.3", height=0.7)
            if e.get("emotion"):
                gt.text((e["onset"] + e["offset"]) / 2 / fps, y, str(e["emotion"]), ha="center", va="center",
                        fontsize=7, color="white")
        gt.set_yticks([0, 1], ["macro", "micro"])
        gt.set_ylim(-0.6, 1.6)
        gt.set_ylabel("ground truth")
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, max(result["num_frames"] / fps, 1e-3))
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colour.values()]
    if handles:
        axes[1].legend(handles, list(colour), loc="upper right", fontsize=8, ncol=len(handles))
    fig.suptitle(title or "spotted intervals")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
