"""CAS(ME)^2 and SAMM Long Videos together (spotting over both, `--dataset long_composite`).

`data_dir` is a mapping {"casme_sq": ..., "samm_lv": ...} (train.py: `--data_dir casme_sq=DIR samm_lv=DIR`);
either part alone works too. Every video keeps its own dataset, subject, video id, fps and frame numbering
(CAS(ME)^2 at 30 fps, SAMM-LV at 200 fps: the spotting processor brings both to its 30 Hz feature rate and
keeps each video's own frame numbers); subjects are keyed by (dataset, subject) by the protocols, so that two
datasets' subject "1"s never merge. Each part is read exactly as on its own, with the same quirks handled and
the same bad-input rules (one line naming file and row; `on_error="skip"`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from ._builder import BuildPlan
from ._long import LongVideoBuilder, LongVideoSource
from ._records import BadClip
from .casme_sq import CASMESqSource
from .registry import DATASETS
from .samm_lv import SAMMLVSource

PARTS: dict[str, type[LongVideoSource]] = {"casme_sq": CASMESqSource, "samm_lv": SAMMLVSource}
NEEDS_MAPPING = "long_composite needs data_dir={'casme_sq': ..., 'samm_lv': ...} (a mapping; either part alone works)"


class LongComposite(LongVideoBuilder):
    """The long-video datasets together: one example per video of each part given in `data_dir`."""

    DESCRIPTION = DATASETS["long_composite"].card_text  # the registry owns the texts
    CITATION = DATASETS["long_composite"].citation
    HOMEPAGE = ""
    LICENSE = DATASETS["long_composite"].license_text
    PARTS: ClassVar[dict[str, type[LongVideoSource]]] = PARTS

    def __init__(self, *args: Any, data_dir: Any = None, **kwargs: Any):
        if isinstance(data_dir, Mapping):
            kwargs["data_dirs"] = {str(k): os.path.normpath(os.fspath(v)) for k, v in data_dir.items()}
            data_dir = None
        if data_dir is not None:
            raise ValueError(f"{NEEDS_MAPPING}, got {data_dir!r}")
        super().__init__(*args, **kwargs)

    def _validate_options(self) -> None:
        if self.config.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be one of ('raise', 'skip'), got {self.config.on_error!r}")
        if self.class_set != "all":
            raise ValueError(f"{self.name}: a long-video set has one class set, 'all' (got {self.class_set!r})")
        dirs = self.config.data_dirs
        if not dirs:
            raise ValueError(NEEDS_MAPPING)
        unknown = sorted(set(dirs) - set(PARTS))
        if unknown:
            raise ValueError(f"unknown long_composite part(s) {unknown} in data_dir; expected {sorted(PARTS)}")
        sheets = self.config.sheet
        if sheets is not None and not (isinstance(sheets, Mapping) and set(sheets) <= set(dirs)):
            raise ValueError("for long_composite, sheet must map a dataset name in data_dir to its sheet path")

    def sources(self) -> dict[str, LongVideoSource]:
        self._validate_options()
        sheets = self.config.sheet or {}
        return {name: PARTS[name](path, release=self.config.release, sheet=sheets.get(name))
                for name, path in sorted(self.config.data_dirs.items())}

    def plan(self) -> BuildPlan:
        if getattr(self, "_mer_plan", None) is None:
            plan = BuildPlan()
            absent = sorted(set(PARTS) - set(self.config.data_dirs or {}))
            for name, source in self.sources().items():
                for entry in source.read():
                    if isinstance(entry, BadClip):
                        plan.bad.append(entry)
                    else:
                        plan.clips.append((entry, ""))
                root, release = source.frame_root()
                plan.notes.append(f"{name}: frames from the {release} release ({root}).")
                plan.notes += source.notes
                plan.notes += source.quirks.notes(name)
            if absent:
                plan.notes.append(f"Datasets absent from data_dir: {', '.join(absent)}.")
            self._mer_plan = plan
        return self._mer_plan


__all__ = ["LongComposite", "PARTS"]
