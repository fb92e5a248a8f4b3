"""CAS(ME)^2, SAMM Long Videos and CAS(ME)^3 Part A together (spotting over them, `--dataset long_composite`).

`data_dir` is a mapping {"casme_sq": ..., "samm_lv": ..., "casme3_a": ...} (train.py: `--data_dir casme_sq=DIR
samm_lv=DIR casme3_a=DIR`); any subset of the three parts works, one part alone too. Every video keeps its own
dataset, subject, video id, fps and frame numbering (CAS(ME)^2 and CAS(ME)^3 at 30 fps, CAS(ME)^3's numbers
starting above 1 with gaps; SAMM-LV at 200 fps: the spotting processor brings each to its 30 Hz feature rate
and keeps each video's own frame numbers); subjects are keyed by (dataset, subject) by the protocols, so that
two datasets' subjects never merge (CAS(ME)^3's spNO.1 stays apart from every other dataset's). Each part is
read exactly as on its own, with the same quirks handled and the same bad-input rules (one line naming file
and row; `on_error="skip"`).

One schema whatever subset is given: every event carries the extra fields of every part (`EVENT_EXTRAS`:
CAS(ME)^3's `objective_class`), "" where a part has no such column (CAS(ME)^2, SAMM-LV).
"""

from __future__ import annotations

from typing import ClassVar

from ._builder import BuildPlan
from ._long import LongVideoBuilder, LongVideoSource
from ._parts import PartsMixin
from ._records import BadClip
from .casme3_a import CASME3A, CASME3ASource
from .casme_sq import CASMESq, CASMESqSource
from .registry import DATASETS
from .samm_lv import SAMMLV, SAMMLVSource

PARTS: dict[str, type[LongVideoSource]] = {
    "casme_sq": CASMESqSource, "samm_lv": SAMMLVSource, "casme3_a": CASME3ASource,
}
NEEDS_MAPPING = ("long_composite needs data_dir={'casme_sq': ..., 'samm_lv': ..., 'casme3_a': ...} "
                 "(a mapping; any of the parts, one alone too)")
# The event fields beyond CONTRACTS §4 that any part has (only CAS(ME)^3 Part A's objective_class). The
# composite's schema always carries all of them, whichever parts `data_dir` names: one dataset name, one
# schema (a cache, a feature store or a model card never sees two shapes of "long_composite", and runs on
# different subsets concatenate); a part without the field gets "" as a part's sheet without the column does.
EVENT_EXTRAS: tuple[str, ...] = tuple(dict.fromkeys(f for b in (CASMESq, SAMMLV, CASME3A) for f in b.EVENT_EXTRAS))


class LongComposite(PartsMixin, LongVideoBuilder):
    """The long-video datasets together: one example per video of each part given in `data_dir`."""

    DESCRIPTION = DATASETS["long_composite"].card_text  # the registry owns the texts
    CITATION = DATASETS["long_composite"].citation  # "": no paper defines the set; the cards cite its parts
    HOMEPAGE = ""
    LICENSE = DATASETS["long_composite"].license_text
    PARTS: ClassVar[dict[str, type[LongVideoSource]]] = PARTS
    PART_SOURCES = PARTS
    PART_LABEL, PART_TITLE, NEEDS_MAPPING = "long_composite", "long_composite", NEEDS_MAPPING
    EVENT_EXTRAS = EVENT_EXTRAS

    def _validate_options(self) -> None:
        if self.config.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be one of ('raise', 'skip'), got {self.config.on_error!r}")
        if self.class_set != "all":
            raise ValueError(f"{self.name}: a long-video set has one class set, 'all' (got {self.class_set!r})")
        self._check_parts()

    def sources(self) -> dict[str, LongVideoSource]:
        self._validate_options()
        return self._part_sources()

    def plan(self) -> BuildPlan:
        if getattr(self, "_mer_plan", None) is None:
            plan = BuildPlan()
            absent = sorted(set(PARTS) - set(self.config.data_dirs or {}))
            for name, source in self.sources().items():
                for entry in source.read():
                    if isinstance(entry, BadClip):
                        plan.bad.append(entry)
                    else:
                        for event in entry.events:  # one schema for every part (EVENT_EXTRAS above)
                            event.extras = {**dict.fromkeys(EVENT_EXTRAS, ""), **event.extras}
                        plan.clips.append((entry, ""))
                root, release = source.frame_root()
                plan.notes.append(f"{name}: frames from the {release} release ({root}).")
                plan.notes += source.notes
                plan.notes += source.quirks.notes(name)
            if absent:
                plan.notes.append(f"Datasets absent from data_dir: {', '.join(absent)}.")
            self._mer_plan = plan
        return self._mer_plan


__all__ = ["EVENT_EXTRAS", "LongComposite", "PARTS"]
