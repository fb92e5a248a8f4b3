"""UF1, UAR, accuracy, per-class, per-fold and per-dataset figures (the MEGC convention).

The implementation lives in `mer_metric/mer_figures.py`, beside the `evaluate` module, so that folder
is self-contained (numpy and scikit-learn only) and works copied anywhere; this module is the name the
rest of the package imports.
"""

from __future__ import annotations

from .mer_metric.mer_figures import compute_mer_metrics, confusion_matrix

__all__ = ["compute_mer_metrics", "confusion_matrix"]
