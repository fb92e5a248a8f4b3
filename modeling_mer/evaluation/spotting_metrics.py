"""Spotting metrics (MEGC): interval IoU, one-to-one matching, pooled F1 (micro, macro, overall), STRS.

The implementation lives in `spot_metric/spot_figures.py`, beside the `evaluate` module, so that folder is
self-contained (numpy only) and works copied anywhere; this module is the name the package imports. The
definitions, the matching order and where the public MEGC / STRS scripts differ are documented there.
"""

from __future__ import annotations

from .spot_metric.spot_figures import (
    IOU_THRESHOLD,
    TYPES,
    analysis_figures,
    compute_spotting_metrics,
    compute_spotting_metrics_from_rows,
    interval_iou,
    match_video,
    prf,
)

__all__ = [
    "IOU_THRESHOLD",
    "TYPES",
    "analysis_figures",
    "compute_spotting_metrics",
    "compute_spotting_metrics_from_rows",
    "interval_iou",
    "match_video",
    "prf",
]
