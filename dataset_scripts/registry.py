"""The dataset registry: one entry per dataset, the single owner of what the package says about it.

Everything that lists or describes datasets derives from `DATASETS`: `load_mer_dataset` dispatches
through it, `DATASET_NAMES` and train.py's `--dataset` choices are its keys, the model card takes the
title, licence, citation and card text from it, and the dataset card written by `dataset_scripts.hub`
too. The builders themselves read their description, citation, licence and homepage from their entry.

Adding a dataset is its own file (a `datasets.GeneratorBasedBuilder`) plus one `register_dataset` call:

    register_dataset(DatasetSpec(
        name="casme3", builder="dataset_scripts.casme3:CASME3", kind="clips", title="CAS(ME)^3 (...)",
        class_sets=("4class", "all"), license_name="casme3-research-agreement", license_text="...",
        citation="@article{...}", card_text="CAS(ME)^3 (Li et al., 2022), from the user's licensed copy.",
    ))

The builder is named "module:Class" and imported only when the dataset is loaded, so importing this
module imports neither `datasets` nor torch (train.py's `--help` stays fast).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any

KINDS = ("clips", "long")
FILE_OPTIONS = ("lazy", "spot_apex", "release", "sheet")  # what the builders over a user's copy accept


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset.

    name: the registry key (`load_mer_dataset(name)`, `--dataset name`, `MERConfig.train_datasets`).
    builder: "module:Class" of its `datasets` builder, imported lazily.
    kind: "clips" (recognition: one example per clip) or "long" (spotting: one example per long video).
    title: who made it, for sentences ("CASME II (Institute of Psychology, Chinese Academy of Sciences)").
    class_sets: the class sets `class_set=` accepts (the builder's configs), the default first.
    license_name: a short name of its licence (the dataset card's `license_name`, or a Hub licence id
        such as "apache-2.0" when `research_only` is False).
    license_text: one sentence of terms (the built dataset's `info.license`).
    citation: BibTeX ("" when there is none to cite).
    card_text: what the model card and the dataset card print about the data.
    hub_id: its id on the Hugging Face Hub, if it is published there (the model card's `datasets:`
        metadata lists only these).
    research_only: licensed by its owners for non-commercial research, no redistribution: weights
        trained on it inherit that.
    needs_data_dir: read from the user's copy (`data_dir=`); False for generated sets.
    options: the keyword options `load_mer_dataset` passes through (None: any, the builder checks them).
    parts: the datasets a composite is made of (their licences and citations apply too).
    homepage: where to request the data.
    """

    name: str
    builder: str
    kind: str
    title: str
    class_sets: tuple[str, ...]
    license_name: str
    license_text: str
    citation: str
    card_text: str
    hub_id: str | None = None
    research_only: bool = True
    needs_data_dir: bool = True
    options: tuple[str, ...] | None = FILE_OPTIONS
    parts: tuple[str, ...] = ()
    homepage: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"dataset name {self.name!r}: use lower-case letters, digits and _ (it is a CLI choice)")
        if not re.fullmatch(r"[\w.]+:\w+", self.builder):
            raise ValueError(f"dataset {self.name}: builder must be 'module:Class', got {self.builder!r}")
        if self.kind not in KINDS:
            raise ValueError(f"dataset {self.name}: kind must be one of {list(KINDS)}, got {self.kind!r}")
        if not self.class_sets or isinstance(self.class_sets, str):
            raise ValueError(f"dataset {self.name}: class_sets must be a non-empty tuple of names, got {self.class_sets!r}")
        for field in ("title", "license_name", "license_text", "card_text"):
            if not str(getattr(self, field)).strip():
                raise ValueError(f"dataset {self.name}: {field} is empty")
        if self.hub_id is not None and not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", self.hub_id):
            raise ValueError(f"dataset {self.name}: hub_id must be a Hub dataset id such as 'org/name', got {self.hub_id!r}")

    def builder_class(self) -> Any:
        """The builder class (imports its module: `datasets` and what the builder needs)."""
        module, _, attribute = self.builder.partition(":")
        try:
            return getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"dataset {self.name}: cannot import its builder {self.builder} ({exc})") from exc

    @property
    def default_class_set(self) -> str:
        return self.class_sets[0]


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec, *, replace: bool = False) -> DatasetSpec:
    """Add `spec` to `DATASETS` (a second entry of the same name is an error unless `replace=True`)."""
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"register_dataset takes a DatasetSpec, got {type(spec).__name__}")
    if spec.name in DATASETS and not replace and DATASETS[spec.name] != spec:
        raise ValueError(f"dataset {spec.name!r} is already registered ({DATASETS[spec.name].builder})")
    unknown = [part for part in spec.parts if part not in DATASETS]
    if unknown:
        raise ValueError(f"dataset {spec.name}: its parts {unknown} are not registered (register them first)")
    DATASETS[spec.name] = spec
    return spec


def get_dataset(name: str) -> DatasetSpec:
    """The entry of `name`; an unknown name is a ValueError listing the registered ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}") from None


def dataset_names(kind: str | None = None) -> tuple[str, ...]:
    """The registered names, in registration order (those of one kind if given)."""
    return tuple(name for name, spec in DATASETS.items() if kind is None or spec.kind == kind)


def expand_parts(names: list[str] | tuple[str, ...]) -> list[str]:
    """`names` followed by the parts of any composite among them that are not listed already."""
    out = list(names)
    for name in names:
        spec = DATASETS.get(name)
        out += [part for part in (spec.parts if spec else ()) if part not in out]
    return out


def help_text(kind: str | None = None) -> str:
    """One line per dataset (name: title), for `--help` and the docs."""
    return "; ".join(f"{spec.name}: {spec.title}" for spec in DATASETS.values() if kind is None or spec.kind == kind)


_NO_REDISTRIBUTION = "non-commercial research use only after signing its licence agreement; no redistribution"

register_dataset(DatasetSpec(
    name="casme2",
    builder="dataset_scripts.casme2:CASME2",
    kind="clips",
    title="CASME II (Institute of Psychology, Chinese Academy of Sciences)",
    class_sets=("5class", "all"),
    license_name="casme2-research-agreement",
    license_text=f"CASME II licence agreement (Institute of Psychology, CAS): {_NO_REDISTRIBUTION}",
    citation=(
        "@article{yan2014casme2, title={CASME II: An Improved Spontaneous Micro-Expression Database and the "
        "Baseline Evaluation}, author={Yan, Wen-Jing and Li, Xiaobai and Wang, Su-Jing and Zhao, Guoying and "
        "Liu, Yong-Jin and Chen, Yu-Hsin and Fu, Xiaolan}, journal={PLoS ONE}, volume={9}, number={1}, "
        "year={2014}}"
    ),
    card_text=(
        "CASME II (Yan et al., 2014): spontaneous micro-expressions of 26 subjects filmed at 200 fps, read "
        "from the user's licensed copy."
    ),
    homepage="http://casme.psych.ac.cn/casme/e2",
))
register_dataset(DatasetSpec(
    name="samm",
    builder="dataset_scripts.samm:SAMM",
    kind="clips",
    title="SAMM (Manchester Metropolitan University)",
    class_sets=("5class", "all"),
    license_name="samm-research-agreement",
    license_text=f"SAMM licence agreement (Manchester Metropolitan University): {_NO_REDISTRIBUTION}",
    citation=(
        "@article{davison2018samm, title={SAMM: A Spontaneous Micro-Facial Movement Dataset}, author={Davison, "
        "Adrian K. and Lansley, Cliff and Costen, Nicholas and Tan, Kevin and Yap, Moi Hoon}, journal={IEEE "
        "Transactions on Affective Computing}, volume={9}, number={1}, pages={116--129}, year={2018}}"
    ),
    card_text=(
        "SAMM (Davison et al., 2018): spontaneous micro-movements of 29 subjects filmed at 200 fps in "
        "grayscale, read from the user's licensed copy."
    ),
    homepage="http://www2.docm.mmu.ac.uk/STAFF/M.Yap/dataset.php",
))
register_dataset(DatasetSpec(
    name="smic",
    builder="dataset_scripts.smic:SMIC",
    kind="clips",
    title="SMIC-HS (University of Oulu)",
    class_sets=("3class", "all"),
    license_name="smic-research-agreement",
    license_text=f"SMIC licence agreement (University of Oulu): {_NO_REDISTRIBUTION}",
    citation=(
        "@inproceedings{li2013smic, title={A Spontaneous Micro-expression Database: Inducement, Collection and "
        "Baseline}, author={Li, Xiaobai and Pfister, Tomas and Huang, Xiaohua and Zhao, Guoying and "
        "Pietik{\\\"a}inen, Matti}, booktitle={IEEE International Conference on Automatic Face and Gesture "
        "Recognition (FG)}, year={2013}}"
    ),
    card_text=(
        "SMIC-HS (Li et al., 2013): spontaneous micro-expressions of the 16 subjects with clips, filmed at "
        "100 fps, read from the user's licensed copy."
    ),
    homepage="https://www.oulu.fi/cmvs/node/41319",
))
register_dataset(DatasetSpec(
    name="composite",
    builder="dataset_scripts.composite:MEGC2019Composite",
    kind="clips",
    title="the MEGC2019 composite (CASME II, SAMM and SMIC-HS clips on the official list)",
    class_sets=("3class",),
    license_name="megc2019-parts-research-agreements",
    license_text=f"Each part keeps its own licence (CASME II, SAMM, SMIC): {_NO_REDISTRIBUTION}",
    citation=(
        "@inproceedings{see2019megc, title={MEGC 2019 -- The Second Facial Micro-Expressions Grand Challenge}, "
        "author={See, John and Yap, Moi Hoon and Li, Jingting and Hong, Xiaopeng and Wang, Su-Jing}, "
        "booktitle={IEEE International Conference on Automatic Face and Gesture Recognition (FG)}, year={2019}}"
    ),
    card_text=(
        "The MEGC2019 composite (3 classes: negative, positive, surprise): the CASME II, SAMM and SMIC-HS "
        "clips on the official list, 68 subjects, from the user's licensed copies."
    ),
    parts=("casme2", "samm", "smic"),
))
register_dataset(DatasetSpec(
    name="synthetic",
    builder="dataset_scripts.synthetic:SyntheticMER",
    kind="clips",
    title="the built-in synthetic set (rendered faces, dataset_scripts/synthetic.py)",
    class_sets=("3class", "5class", "all"),
    license_name="apache-2.0",
    license_text="Apache-2.0, like the code that renders it: no person is shown, no third-party terms apply.",
    citation="",
    card_text=(
        "The built-in synthetic micro-expression set (dataset_scripts/synthetic.py): rendered faces whose "
        "class shows only as a brief, low-amplitude action-unit warp over head drift, flicker and sensor "
        "noise (mode 'demo': 3 classes; mode 'realistic': CASME II's composition, timing and camera). It "
        "demonstrates the pipeline; weights trained on it are of no use on real faces."
    ),
    research_only=False,
    needs_data_dir=False,
    options=None,
))

# Long videos (spotting): one example per recording with its events (dataset_scripts/_long.py).
register_dataset(DatasetSpec(
    name="casme_sq",
    builder="dataset_scripts.casme_sq:CASMESq",
    kind="long",
    title="CAS(ME)^2 long videos (Institute of Psychology, Chinese Academy of Sciences)",
    class_sets=("all",),
    license_name="casme-sq-research-agreement",
    license_text=f"CAS(ME)^2 licence agreement (Institute of Psychology, CAS): {_NO_REDISTRIBUTION}",
    citation=(
        "@article{qu2018casmesq, title={CAS(ME)$^2$: A Database for Spontaneous Macro-Expression and "
        "Micro-Expression Spotting and Recognition}, author={Qu, Fangbing and Wang, Su-Jing and Yan, Wen-Jing "
        "and Li, He and Wu, Shuhang and Fu, Xiaolan}, journal={IEEE Transactions on Affective Computing}, "
        "volume={9}, number={4}, pages={424--436}, year={2018}}"
    ),
    card_text=(
        "CAS(ME)^2 (Qu et al., 2018), part A: long videos of 22 subjects at 30 fps with 357 annotated macro- "
        "and micro-expressions (57 micro) in 95 labelled videos, read from the user's licensed copy for "
        "spotting."
    ),
    homepage="http://casme.psych.ac.cn/casme/e3",
))
register_dataset(DatasetSpec(
    name="samm_lv",
    builder="dataset_scripts.samm_lv:SAMMLV",
    kind="long",
    title="SAMM Long Videos (Manchester Metropolitan University)",
    class_sets=("all",),
    license_name="samm-lv-research-agreement",
    license_text=f"SAMM Long Videos licence agreement (Manchester Metropolitan University): {_NO_REDISTRIBUTION}",
    citation=(
        "@inproceedings{yap2020sammlv, title={SAMM Long Videos: A Spontaneous Facial Micro- and Macro-Expressions "
        "Dataset}, author={Yap, Chuin Hong and Kendrick, Connah and Yap, Moi Hoon}, booktitle={IEEE International "
        "Conference on Automatic Face and Gesture Recognition (FG)}, pages={771--776}, year={2020}}"
    ),
    card_text=(
        "SAMM Long Videos (Yap et al., 2020): 147 long videos of 30 subjects filmed at 200 fps in grayscale "
        "with 502 annotated macro- and micro-movements (159 micro), read from the user's licensed copy for "
        "spotting."
    ),
    homepage="http://www2.docm.mmu.ac.uk/STAFF/M.Yap/dataset.php",
))
register_dataset(DatasetSpec(
    name="casme3_a",
    builder="dataset_scripts.casme3_a:CASME3A",
    kind="long",
    title="CAS(ME)^3 Part A long videos (Institute of Psychology, Chinese Academy of Sciences)",
    class_sets=("all",),
    license_name="casme3-research-agreement",
    license_text=f"CAS(ME)^3 licence agreement (Institute of Psychology, CAS): {_NO_REDISTRIBUTION}",
    citation=(
        "@article{li2023casme3, title={CAS(ME)$^3$: A Third Generation Facial Spontaneous Micro-Expression "
        "Database with Depth Information and High Ecological Validity}, author={Li, Jingting and Dong, Zizhao "
        "and Lu, Shaoyuan and Wang, Su-Jing and Yan, Wen-Jing and Ma, Yinhuan and Liu, Ye and Huang, Changbing "
        "and Fu, Xiaolan}, journal={IEEE Transactions on Pattern Analysis and Machine Intelligence}, "
        "volume={45}, number={3}, pages={2782--2800}, year={2023}}"
    ),
    card_text=(
        "CAS(ME)^3 Part A (Li et al., 2023): long RGB recordings at 30 fps (the depth maps are not read) with "
        "annotated macro- and micro-expressions (onset, apex, offset, action units, objective class, emotion), "
        "read from the user's licensed copy for spotting."
    ),
    homepage="http://casme.psych.ac.cn/casme/e4",
))
register_dataset(DatasetSpec(
    name="long_composite",
    builder="dataset_scripts.long_composite:LongComposite",
    kind="long",
    title="CAS(ME)^2, SAMM Long Videos and CAS(ME)^3 Part A together (spotting; subjects keyed by dataset)",
    class_sets=("all",),
    license_name="long-videos-parts-research-agreements",
    license_text=(
        f"Each part keeps its own licence (CAS(ME)^2, SAMM Long Videos, CAS(ME)^3): {_NO_REDISTRIBUTION}"
    ),
    citation="",  # no paper defines the set: the cards cite its parts (CAS(ME)^2, SAMM-LV, CAS(ME)^3)
    card_text=(
        "CAS(ME)^2, SAMM Long Videos and CAS(ME)^3 Part A (any of them) together for spotting: each video "
        "keeps its dataset, subject, fps and frame numbering, every event the same fields (objective_class "
        "\"\" outside CAS(ME)^3); leave-one-subject-out over the subjects of all the parts given, keyed by "
        "dataset, figures per dataset and pooled; read from the user's licensed copies."
    ),
    parts=("casme_sq", "samm_lv", "casme3_a"),
))
register_dataset(DatasetSpec(
    name="synthetic_long",
    builder="dataset_scripts._synthetic_long:SyntheticLong",
    kind="long",
    title="the built-in synthetic long videos (rendered faces, dataset_scripts/_synthetic_long.py)",
    class_sets=("all",),
    license_name="apache-2.0",
    license_text=(
        "Apache-2.0, like the code that renders it: no person is shown. Its event timings are CAS(ME)^2's "
        "published annotation rows (frame numbers, types and emotion words, no images)."
    ),
    citation="",
    card_text=(
        "The built-in synthetic long videos (dataset_scripts/_synthetic_long.py): rendered faces at 30 fps "
        "carrying CAS(ME)^2's real event timings, micro-expressions moving a fraction of a pixel to a few "
        "pixels, larger and longer macro-expressions, and the distractors of real recordings (eye blinks, "
        "head movements, talking, lighting changes, sensor noise, JPEG). It exercises spotting without "
        "licensed data; weights trained on it are of no use on real faces."
    ),
    research_only=False,
    needs_data_dir=False,
    options=None,
))

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "dataset_names",
    "expand_parts",
    "get_dataset",
    "help_text",
    "register_dataset",
]
