"""Schema and label sets shared by every micro-expression builder.

Every builder yields examples with exactly these columns, so that preprocessing and training never need
to know which dataset a clip came from.
"""

from __future__ import annotations

import datasets

from modeling_mer.configuration_mer import CLASS_SETS  # the official orders, shared with the models

__all__ = ["APEX_SOURCES", "CLASS_SETS", "mer_features"]

APEX_SOURCES = ("annotated", "estimated")


def mer_features(label_names: list[str], lazy: bool = False) -> datasets.Features:
    """The columns of one clip.

    `lazy=True` stores frame paths instead of embedded image bytes (fast to build, but the cache then
    depends on the original files staying where they are).
    """
    frame_feature = datasets.Value("string") if lazy else datasets.Image()
    return datasets.Features(
        {
            "dataset": datasets.Value("string"),
            "subject": datasets.Value("string"),
            "clip_id": datasets.Value("string"),
            "frames": datasets.List(frame_feature),
            "frame_numbers": datasets.List(datasets.Value("int32")),
            "onset": datasets.Value("int32"),
            "apex": datasets.Value("int32"),
            "apex_source": datasets.Value("string"),
            "offset": datasets.Value("int32"),
            "fps": datasets.Value("float32"),
            "action_units": datasets.Value("string"),
            "emotion": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(label_names)),
        }
    )
