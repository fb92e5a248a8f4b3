"""UF1/UAR and the other MEGC figures, the run's reports, model cards and the `evaluate` module
(`mer_metric/`). Nothing here ships with a model."""
