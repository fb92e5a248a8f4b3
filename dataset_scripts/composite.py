"""The MEGC2019 composite (CASME II + SAMM + SMIC-HS, 3 classes, 442 clips, 68 subjects).

Membership and labels come only from the official list shipped in this package
(`megc2019_composite_3class.csv`, rows `dataset,subject,clip,label` with 0 negative, 1 positive,
2 surprise): it cannot be rebuilt from a label mapping (five CASME II clips differ). Onset, apex, offset,
action units and the emotion as written come from each dataset's own sheet (SMIC-HS: its folders).

`data_dir` is a mapping {"casme2": ..., "samm": ..., "smic": ...}. A subset of the datasets, or a copy
with some subject folders missing, gives exactly the official rows of what is present; the build notes
(and `dataset.info.description`) name the absent datasets and subjects. Subjects are prefixed with
their dataset (`casme2_sub01`, `samm_006`, `smic_s1`) so that they are unique for leave-one-subject-out.
"""

from __future__ import annotations

import csv
import dataclasses
from importlib import resources
from typing import ClassVar

from ._builder import BuildPlan, MERBuilder
from ._parts import PartsMixin
from ._records import BadClip, ClipSpec, MERDataError
from ._sources import ClipSource, SheetSource
from .casme2 import CASME2Source
from .common import CLASS_SETS
from .registry import DATASETS
from .samm import SAMMSource
from .smic import SMICSource

OFFICIAL_LIST = "megc2019_composite_3class.csv"
SOURCES: dict[str, type[ClipSource]] = {"casme2": CASME2Source, "samm": SAMMSource, "smic": SMICSource}
NEEDS_MAPPING = "the composite needs data_dir={'casme2': ..., 'samm': ..., 'smic': ...} (a mapping)"


@dataclasses.dataclass(frozen=True)
class OfficialRow:
    dataset: str
    subject: str
    clip_id: str
    label: str
    where: str


def read_official_list() -> list[OfficialRow]:
    """The 442 rows of the official composite list shipped with the package."""
    resource = resources.files(__package__) / OFFICIAL_LIST
    rows = []
    with resource.open("r", encoding="utf-8", newline="") as handle:
        for number, cells in enumerate(csv.reader(handle), start=1):
            if not cells:
                continue
            where = f"{OFFICIAL_LIST} row {number}"
            if len(cells) != 4 or cells[0] not in SOURCES or cells[3] not in ("0", "1", "2"):
                raise MERDataError(f"expected dataset,subject,clip,label (0-2), got {cells}", where=where)
            label = CLASS_SETS["3class"][int(cells[3])]
            rows.append(OfficialRow(cells[0], cells[1].strip(), cells[2].strip(), label, where))
    return rows


class MEGC2019Composite(PartsMixin, MERBuilder):
    """The composite; class set 3class only."""

    PART_SOURCES = SOURCES
    PART_LABEL, PART_TITLE, NEEDS_MAPPING = "composite", "the composite", NEEDS_MAPPING

    DEFAULT_CLASS_SET = "3class"
    OFFERS_ALL = False
    CLASS_SET_LABELS: ClassVar[dict[str, list[str]]] = {"3class": CLASS_SETS["3class"]}
    DESCRIPTION = DATASETS["composite"].card_text  # the registry owns the texts (dataset_scripts/registry.py)
    CITATION = DATASETS["composite"].citation
    LICENSE = DATASETS["composite"].license_text

    def _validate_options(self) -> None:
        if self.class_set != "3class":
            raise ValueError(f"the MEGC2019 composite is defined for class set 3class only, got {self.class_set!r}")
        super()._validate_options()
        self._check_parts()

    def sources(self) -> dict[str, ClipSource]:
        return self._part_sources()

    def plan(self) -> BuildPlan:
        if getattr(self, "_mer_plan", None) is not None:
            return self._mer_plan
        sources = self.sources()
        plan = BuildPlan()
        absent_subjects: dict[str, set[str]] = {}
        absent_rows = 0
        indexes = {name: _index(source) for name, source in sources.items()}
        for row in read_official_list():
            source = sources.get(row.dataset)
            if source is None:
                absent_rows += 1
                continue
            try:
                subject = _subject(source, row)
            except MERDataError as exc:
                plan.bad.append(BadClip.from_error(row.dataset, row.subject, row.clip_id, row.where, exc))
                continue
            if not source.subject_present(subject):
                absent_subjects.setdefault(row.dataset, set()).add(subject)
                absent_rows += 1
                continue
            index = indexes[row.dataset]
            found = index.get((subject, row.clip_id)) or index.get((subject, ""))  # "": the whole subject is bad
            if found is None:
                plan.bad.append(
                    BadClip(
                        row.dataset,
                        subject,
                        row.clip_id,
                        row.where,
                        f"official clip {row.dataset} {subject}/{row.clip_id} is not annotated in the "
                        f"{row.dataset} copy at {source.data_dir}",
                    )
                )
            elif isinstance(found, BadClip):
                plan.bad.append(found)
            else:
                spec = dataclasses.replace(found, subject=f"{row.dataset}_{subject}")
                plan.clips.append((spec, row.label))
        plan.notes += _absence_notes(sorted(set(SOURCES) - set(sources)), absent_subjects, absent_rows)
        plan.notes += [note for source in sources.values() for note in source.notes]
        self._mer_plan = plan
        return plan


def _subject(source: ClipSource, row: OfficialRow) -> str:
    if isinstance(source, SheetSource):
        return source.subject_id(row.subject, row.where)
    return row.subject


def _index(source: ClipSource) -> dict[tuple[str, str], ClipSpec | BadClip]:
    index: dict[tuple[str, str], ClipSpec | BadClip] = {}
    for spec in source.specs():
        if isinstance(spec, ClipSpec):
            index[(spec.subject, spec.clip_id)] = spec
        else:
            index.setdefault((spec.subject, spec.clip_id), spec)
    return index


def _absence_notes(datasets_absent: list[str], subjects: dict[str, set[str]], rows: int) -> list[str]:
    notes = []
    if datasets_absent:
        notes.append(f"Datasets absent from data_dir: {', '.join(datasets_absent)}.")
    for name, absent in sorted(subjects.items()):
        notes.append(f"{name} subjects absent (no folder): {', '.join(sorted(absent))}.")
    if rows:
        notes.append(f"{rows} official row(s) left out because their dataset or subject is absent.")
    return notes
