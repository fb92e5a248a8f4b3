"""The `datasets` builders behind CASME II, SAMM, SMIC-HS and the MEGC2019 composite.

The datasets arrive as folders the user unpacked by hand, with coding sheets in slightly different
shapes. What is the same across them is split by concern, so that each dataset module only says how its
sheet and folders are named:

* `_records`: a clip to read (`ClipSpec`), a clip that cannot be used (`BadClip`), `MERDataError`;
* `_sheets`: reading a coding sheet (.xlsx or .csv), its column row wherever it is;
* `_layout`: finding the sheet and the frame folders below the folder the user pointed at;
* `_sources`: one source per dataset, turning sheet rows or folders into ClipSpecs;
* `_clips`: one clip's frames in frame order, with every check, into an example;
* `_skips`: the skip report kept on the built dataset;
* `_source_hash`: the cache key, a hash of the code that builds one dataset;
* here: the builder base classes, which own `on_error` ("raise" or "skip") and use that key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import datasets

from ._cache import repair_builder_cache
from ._clips import make_example
from ._records import BadClip, ClipSpec, MERDataError, os_error
from ._skips import build_description, excluded_note, format_skip_report
from ._source_hash import source_hash
from ._sources import ClipSource
from .common import mer_features

logger = datasets.logging.get_logger(__name__)

ON_ERROR_CHOICES = ("raise", "skip")


@dataclass
class MERBuilderConfig(datasets.BuilderConfig):
    """Options of the real-dataset builders; every field enters the cache fingerprint.

    class_set: "5class" / "3class" / "all" (None: the dataset's default).
    on_error: "raise" stops at the first bad clip; "skip" leaves it out and reports it.
    lazy: store frame paths instead of embedded image bytes.
    spot_apex: estimate a missing apex with optical-flow spotting (False: the clip's midpoint).
    release: "auto", "raw" or "cropped" frame folders.
    sheet: path of the coding sheet when it cannot be found by name (composite: one per dataset).
    data_dirs: the composite's {"casme2": ..., "samm": ..., "smic": ...}.
    """

    class_set: str | None = None
    on_error: str = "raise"
    lazy: bool = False
    spot_apex: bool = True
    release: str = "auto"
    sheet: str | dict[str, str] | None = None
    data_dirs: dict[str, str] | None = None


@dataclass
class BuildPlan:
    """What a build will do: the clips with their class names, the bad clips, and notes for the report."""

    clips: list[tuple[ClipSpec, str]] = field(default_factory=list)
    bad: list[BadClip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class MERBuilder(datasets.GeneratorBasedBuilder):
    """Base of the real-dataset builders: one `train` split (LOSO folds are made by subject later).

    Each class set is a named config (`BUILDER_CONFIGS`, made from `CLASS_SET_LABELS` plus "all" unless
    `OFFERS_ALL` is False), the default one being `DEFAULT_CLASS_SET`: `CASME2(config_name="all",
    data_dir=...)` and `CASME2(class_set="all", data_dir=...)` are the same build.
    """

    BUILDER_CONFIG_CLASS = MERBuilderConfig
    VERSION = datasets.Version("1.0.0")
    DEFAULT_CLASS_SET: ClassVar[str]
    CLASS_SET_LABELS: ClassVar[dict[str, list[str]]]
    OFFERS_ALL: ClassVar[bool] = True
    DESCRIPTION: ClassVar[str]
    CITATION: ClassVar[str] = ""
    HOMEPAGE: ClassVar[str] = ""
    LICENSE: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "CLASS_SET_LABELS" in cls.__dict__:
            names = [*cls.CLASS_SET_LABELS, *(["all"] if cls.OFFERS_ALL else [])]
            cls.BUILDER_CONFIGS = [
                MERBuilderConfig(
                    name=name,
                    class_set=name,
                    description=f"classes: {', '.join(cls.CLASS_SET_LABELS[name])}" if name != "all"
                    else "every annotated emotion, as written (sorted)",
                )
                for name in names
            ]
            cls.DEFAULT_CONFIG_NAME = cls.DEFAULT_CLASS_SET

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("hash", source_hash(type(self).__module__))  # this dataset's own code (`_source_hash`)
        class_set, config_name = kwargs.get("class_set"), kwargs.get("config_name")
        if class_set in {config.name for config in self.BUILDER_CONFIGS} and config_name in (None, class_set):
            kwargs["config_name"] = kwargs.pop("class_set")  # that config: the same build and cache as by name
        elif config_name is not None and class_set is not None and config_name != class_set:
            raise ValueError(f"config_name={config_name!r} and class_set={class_set!r} disagree: the configs are the class sets")
        super().__init__(*args, **kwargs)

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        """datasets' own, after a damaged cached build (a cut or emptied Arrow file) is named and removed,
        so that it is built again rather than failing the same way on every run (`_cache`)."""
        repair_builder_cache(self)
        super().download_and_prepare(*args, **kwargs)

    # -- class set and plan -----------------------------------------------------------------------

    @property
    def class_set(self) -> str:
        return self.config.class_set or self.DEFAULT_CLASS_SET

    def _validate_options(self) -> None:
        if self.config.on_error not in ON_ERROR_CHOICES:
            raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {self.config.on_error!r}")
        if self.class_set not in {*self.CLASS_SET_LABELS, "all"}:
            choices = ", ".join([*self.CLASS_SET_LABELS, "all"])
            raise ValueError(f"class set {self.class_set!r} is not defined for {self.name}; choose from {choices}")

    def plan(self) -> BuildPlan:
        """The clips to build with their class names; computed once per builder."""
        raise NotImplementedError

    def label_names(self) -> list[str]:
        if self.class_set == "all":
            return sorted({label for _, label in self.plan().clips})
        return list(self.CLASS_SET_LABELS[self.class_set])

    # -- datasets hooks ---------------------------------------------------------------------------

    def _info(self) -> datasets.DatasetInfo:
        self._validate_options()
        return datasets.DatasetInfo(
            description=self.DESCRIPTION,
            features=mer_features(self.label_names(), lazy=self.config.lazy),
            citation=self.CITATION,
            homepage=self.HOMEPAGE,
            license=self.LICENSE,
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN)]

    def _generate_examples(self) -> Iterator[tuple[int, dict[str, Any]]]:
        plan = self.plan()
        skip = self.config.on_error == "skip"
        skipped: list[BadClip] = []
        for bad in plan.bad:
            if not skip:
                raise bad.error()
            skipped.append(bad)
        key = 0
        for spec, label in plan.clips:
            try:
                try:
                    example = make_example(spec, label, lazy=self.config.lazy, spot_apex=self.config.spot_apex)
                except OSError as exc:  # a path the OS refuses (too long, no permission): this clip only
                    raise os_error(exc, spec.where) from exc
            except MERDataError as exc:
                if not skip:
                    raise
                skipped.append(BadClip.from_error(spec.dataset, spec.subject, spec.clip_id, spec.where, exc))
                continue
            yield key, example
            key += 1
        if key == 0:
            raise MERDataError(f"{self.name}: no usable clip ({len(skipped)} skipped); nothing to build")
        self.info.description = build_description(self.DESCRIPTION, plan.notes, skipped)
        if skipped:
            logger.info(format_skip_report(skipped))


class SingleSourceBuilder(MERBuilder):
    """A builder over one dataset folder (CASME II, SAMM, SMIC-HS)."""

    SOURCE: ClassVar[type[ClipSource]]

    def _validate_options(self) -> None:
        super()._validate_options()
        if self.config.data_dir is None:
            raise ValueError(
                f"{self.name} needs data_dir=<the folder you unpacked>: the dataset is licensed and is never downloaded"
            )

    def source(self) -> ClipSource:
        if getattr(self, "_mer_source", None) is None:
            self._validate_options()
            self._mer_source = self.SOURCE(self.config.data_dir, release=self.config.release, sheet=self.config.sheet)
        return self._mer_source

    def plan(self) -> BuildPlan:
        if getattr(self, "_mer_plan", None) is None:
            source = self.source()
            plan = BuildPlan()
            excluded: Counter[str] = Counter()
            for spec in source.specs():
                if isinstance(spec, BadClip):
                    plan.bad.append(spec)
                elif self.class_set == "all" or spec.emotion_key in self.CLASS_SET_LABELS[self.class_set]:
                    plan.clips.append((spec, spec.emotion_key))
                else:
                    excluded[spec.emotion_key] += 1
            plan.notes.append(f"Frames from the {source._frame_root()[1]} release.")
            plan.notes += source.notes
            plan.notes += excluded_note(self.class_set, excluded)
            self._mer_plan = plan
        return self._mer_plan
