"""The model card: one builder for `save_pretrained` / `push_to_hub` and for train.py's card with results.

A card says what the weights may be used for, so its licence follows the data they were trained on
(`MERConfig.train_datasets`): the built-in synthetic set carries no third-party terms (the code's
Apache-2.0 applies), while CASME II, SAMM and SMIC are licensed by their owners for non-commercial
research without redistribution, and weights trained on them inherit that (`license: other`). This file
ships with the model (the modeling file imports it), so it imports nothing from this package.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

CODE_LICENSE = "apache-2.0"
RESEARCH_ONLY_LICENSE = "mer-datasets-research-only"
UNKNOWN_DATA_LICENSE = "unrecorded-training-data"

SLSTT_CITATION = """@article{zhang2022slstt,
  title={Short and Long Range Relation Based Spatio-Temporal Transformer for Micro-Expression Recognition},
  author={Zhang, Liangfei and Hong, Xiaopeng and Arandjelovi{\\'c}, Ognjen and Zhao, Guoying},
  journal={IEEE Transactions on Affective Computing},
  year={2022}
}"""

# name -> (what it is, its citation, licensed for research only). The citations are the builders' own.
DATASETS: dict[str, tuple[str, str, bool]] = {
    "synthetic": ("the built-in synthetic set (rendered faces, dataset_scripts/synthetic.py)", "", False),
    "casme2": (
        "CASME II (Institute of Psychology, Chinese Academy of Sciences)",
        "@article{yan2014casme2, title={CASME II: An Improved Spontaneous Micro-Expression Database and the "
        "Baseline Evaluation}, author={Yan, Wen-Jing and Li, Xiaobai and Wang, Su-Jing and Zhao, Guoying and "
        "Liu, Yong-Jin and Chen, Yu-Hsin and Fu, Xiaolan}, journal={PLoS ONE}, volume={9}, number={1}, "
        "year={2014}}",
        True,
    ),
    "samm": (
        "SAMM (Manchester Metropolitan University)",
        "@article{davison2018samm, title={SAMM: A Spontaneous Micro-Facial Movement Dataset}, author={Davison, "
        "Adrian K. and Lansley, Cliff and Costen, Nicholas and Tan, Kevin and Yap, Moi Hoon}, journal={IEEE "
        "Transactions on Affective Computing}, volume={9}, number={1}, pages={116--129}, year={2018}}",
        True,
    ),
    "smic": (
        "SMIC-HS (University of Oulu)",
        "@inproceedings{li2013smic, title={A Spontaneous Micro-expression Database: Inducement, Collection and "
        "Baseline}, author={Li, Xiaobai and Pfister, Tomas and Huang, Xiaohua and Zhao, Guoying and "
        "Pietik{\\\"a}inen, Matti}, booktitle={IEEE International Conference on Automatic Face and Gesture "
        "Recognition (FG)}, year={2013}}",
        True,
    ),
    "composite": (
        "the MEGC2019 composite (CASME II, SAMM and SMIC-HS clips on the official list)",
        "@inproceedings{see2019megc, title={MEGC 2019 -- The Second Facial Micro-Expressions Grand Challenge}, "
        "author={See, John and Yap, Moi Hoon and Li, Jingting and Hong, Xiaopeng and Wang, Su-Jing}, "
        "booktitle={IEEE International Conference on Automatic Face and Gesture Recognition (FG)}, year={2019}}",
        True,
    ),
}
COMPOSITE_PARTS = ("casme2", "samm", "smic")

# What the processor exported with a model needs (pip names); the processor's import error names them too.
PROCESSOR_REQUIREMENTS = ["transformers>=5", "torch", "opencv-contrib-python-headless>=4.8", "av", "dlib-bin"]
OPTIONAL_REQUIREMENTS = {"face_recognition_models": 'the official landmark crop (crop="dlib" or "dlib-landmarks")'}

INTENDED_USE = """## Intended use

Research on facial micro-expression recognition: reproducing and comparing methods under a
subject-independent protocol. Not for judging a person's honesty, emotions or intentions in hiring,
policing, border control, education, insurance or any decision about people: the training sets are
small (tens of subjects, mostly young adults from a few universities), posed under laboratory
conditions, and accuracy on other people, cameras and settings is unknown."""

DEFAULT_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

An SLSTT-style micro-expression recogniser (Zhang et al., IEEE Trans. Affective Computing 2022,
arXiv 2112.05851) with no convolutional network: a ViT encodes each long-term optical-flow image
(onset -> frame), a temporal {{ aggregation }} aggregator combines the {{ num_frames }} frames, and a
head predicts one of: {{ label_names | join(", ") }}.

{{ provenance }}

{{ intended_use }}

{{ usage }}

{{ requirements }}

{{ license_section }}

{{ citation_section }}
"""


def _hub_id(name: str | None) -> str | None:
    """A Hub model id usable as `base_model` metadata (not a local folder)."""
    if not name or Path(name).expanduser().exists():
        return None
    return name if re.fullmatch(r"[\w.-]+/[\w.-]+", name) else None


def _expand(datasets: Sequence[str]) -> list[str]:
    names = list(datasets)
    return names + [part for part in COMPOSITE_PARTS if "composite" in names and part not in names]


def license_terms(train_datasets: Sequence[str] | None) -> dict[str, Any]:
    """`license` / `license_name` metadata and the card's licence text for weights trained on these datasets."""
    if not train_datasets:
        return {
            "metadata": {"license": "other", "license_name": UNKNOWN_DATA_LICENSE},
            "text": (
                "The code is licensed Apache-2.0. The data these weights were trained on is not recorded "
                "(`config.train_datasets`), so no licence can be stated for them: weights inherit the terms of "
                "their training data. Set `model.config.train_datasets` (e.g. `[\"casme2\"]`) before saving."
            ),
        }
    licensed = [name for name in _expand(train_datasets) if DATASETS.get(name, ("", "", True))[2]]
    licensed = [name for name in licensed if name != "composite"] or licensed  # its parts are listed
    if not licensed:
        return {
            "metadata": {"license": CODE_LICENSE},
            "text": (
                "Apache-2.0, for the code and for these weights, which were trained only on the built-in "
                "synthetic set (rendered faces: no person, no third-party terms). They demonstrate the "
                "pipeline and are of no use on real faces."
            ),
        }
    names = ", ".join(DATASETS[n][0] if n in DATASETS else n for n in licensed)
    return {
        "metadata": {"license": "other", "license_name": RESEARCH_ONLY_LICENSE},
        "text": (
            f"**Research use only.** These weights were trained on {names}. Those datasets are face videos of "
            "real people, licensed by their owners for non-commercial research after a signed agreement, and "
            "may not be redistributed. The weights inherit those terms: use them only for non-commercial "
            "research, and share them only with people who signed the same agreements (keep the repository "
            "private). The code is licensed Apache-2.0; no dataset frames are included in this repository."
        ),
    }


def citations(train_datasets: Sequence[str] | None) -> list[str]:
    """SLSTT's BibTeX, then the training datasets' (the composite brings its three parts)."""
    found = [DATASETS[n][1] for n in _expand(train_datasets or []) if n in DATASETS and DATASETS[n][1]]
    return [SLSTT_CITATION, *dict.fromkeys(found)]


def usage_text(repo_or_path: str) -> str:
    """A usage snippet that runs as written (the test of this module executes it)."""
    return f"""## Usage

The processor crops the face, samples frames around the apex and computes optical flow from the onset; a
video file or a folder of numbered frames is one clip (frame numbers for onset/apex/offset; without them the
whole input is the clip and the apex is spotted).

```python
from transformers import pipeline

classifier = pipeline("video-classification", model="{repo_or_path}", trust_remote_code=True)
print(classifier("clip.mp4"))  # or classifier("frames/", onset=46, apex=59, offset=86)
```

```python
import torch
from transformers import AutoImageProcessor, AutoModelForVideoClassification

processor = AutoImageProcessor.from_pretrained("{repo_or_path}", trust_remote_code=True)
model = AutoModelForVideoClassification.from_pretrained("{repo_or_path}", trust_remote_code=True)
inputs = processor(videos=["clip.mp4", "clip.mp4"])  # a list of clips is a batch; one clip works too
with torch.no_grad():
    logits = model(pixel_values=inputs["pixel_values"]).logits
print([model.config.id2label[i] for i in logits.argmax(-1).tolist()])
```

With the `modeling_mer` package installed, `import modeling_mer` registers the classes and the pipeline, and
`trust_remote_code` is not needed."""


def requirements_text() -> str:
    optional = "; ".join(f"`{name}` for {what}" for name, what in OPTIONAL_REQUIREMENTS.items())
    packages = " ".join(f'"{p}"' if any(c in p for c in "<>=,") else p for p in PROCESSOR_REQUIREMENTS)
    return f"""## Requirements

The processor that comes with this model (remote code) needs OpenCV for the face crop and the optical flow,
PyAV to decode video files and dlib for the default face crop:

```bash
pip install {packages}
```

Optional: {optional}. Without OpenCV or PyAV the processor stops with an error naming the package to install."""


def build_model_card(
    *,
    label_names: Sequence[str],
    train_datasets: Sequence[str] | None,
    pretrained_spatial: str | None = None,
    repo_or_path: str = "path/to/model",
    model_name: str | None = None,
    eval_results: list[EvalResult] | None = None,
    tags: Sequence[str] = (),
    template: str | None = None,
    **template_vars: Any,
) -> ModelCard:
    """The card: metadata (licence, base model, pipeline, library, datasets, model-index) and text.

    `template` is a Jinja template (default: `DEFAULT_TEMPLATE`); it receives `usage`, `requirements`,
    `license_section`, `citation_section`, `provenance`, `intended_use`, `label_names`, `model_name` and
    `template_vars`.
    `eval_results` (huggingface_hub `EvalResult`s) become the model-index.
    """
    train_datasets = list(train_datasets) if train_datasets else None
    model_name = model_name or Path(repo_or_path).name or "mer-model"
    terms = license_terms(train_datasets)
    base_model = _hub_id(pretrained_spatial)
    card_data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        pipeline_tag="video-classification",
        base_model=base_model,
        datasets=_expand(train_datasets) if train_datasets else None,
        tags=["micro-expression", "optical-flow", "vision-transformer", "slstt", *tags],
        metrics=["uf1", "uar"] if eval_results else None,
        eval_results=eval_results or None,
        **terms["metadata"],
    )
    if train_datasets:
        trained = ", ".join(DATASETS[n][0] if n in DATASETS else n for n in train_datasets)
        provenance = f"Trained on {trained}."
    else:
        provenance = "The training data of these weights is not recorded."
    if pretrained_spatial:
        provenance += f" The spatial ViT started from `{pretrained_spatial}`."
    sections = {
        "usage": usage_text(repo_or_path),
        "requirements": requirements_text(),
        "license_section": "## Licence\n\n" + terms["text"],
        "citation_section": "## Citation\n\n```bibtex\n" + "\n\n".join(citations(train_datasets)) + "\n```",
        "provenance": provenance,
        "intended_use": INTENDED_USE,
    }
    return ModelCard.from_template(
        card_data,
        template_str=template or DEFAULT_TEMPLATE,
        model_name=model_name,
        label_names=list(label_names),
        **sections,
        **template_vars,
    )


__all__ = [
    "DATASETS",
    "DEFAULT_TEMPLATE",
    "PROCESSOR_REQUIREMENTS",
    "SLSTT_CITATION",
    "build_model_card",
    "citations",
    "license_terms",
]
