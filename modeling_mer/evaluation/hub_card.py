"""Model card rendering and Hub upload for `train.py`.

The Hub is checked at START (`check_hub_access`): a missing token or network must stop the run before
hours of training, not after. Uploads take only the files in `HUB_FILES`: never dataset frames.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub import EvalResult, ModelCard

from ..card_mer import build_model_card
from .reporting import HUB_FILES

DATA_TEXT = {
    "synthetic": (
        "The built-in synthetic micro-expression set (dataset_scripts/synthetic.py): rendered faces whose "
        "class shows only as a brief, low-amplitude action-unit warp. It demonstrates the pipeline; the "
        "weights are of no use on real faces."
    ),
    "casme2": "CASME II (Yan et al., 2014), from the user's licensed copy.",
    "samm": "SAMM (Davison et al., 2018), from the user's licensed copy.",
    "smic": "SMIC-HS (Li et al., 2013), from the user's licensed copy.",
    "composite": (
        "The MEGC2019 composite (3 classes: negative, positive, surprise): CASME II, SAMM and SMIC-HS "
        "clips on the official list, 68 subjects, from the user's licensed copies."
    ),
}


class HubAccessError(RuntimeError):
    """The Hub cannot be used for --push_to_hub (offline, no token, no network, no permission)."""


def check_hub_access(repo_id: str, private: bool) -> str:
    """Fail fast: offline mode, no token, unreachable Hub or no write access. Creates the repo; returns its URL."""
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise HubAccessError(
            f"--push_to_hub {repo_id}: HF_HUB_OFFLINE=1 is set, so nothing can be uploaded. Unset it, or drop "
            "--push_to_hub and upload the output folder later."
        )
    token = huggingface_hub.get_token()
    if not token:
        raise HubAccessError(
            f"--push_to_hub {repo_id}: no Hugging Face token found. Run `hf auth login` or set HF_TOKEN first."
        )
    try:
        huggingface_hub.whoami(token=token)
        url = huggingface_hub.create_repo(repo_id, private=private, exist_ok=True, token=token)
    except Exception as err:  # httpx errors are not OSError; HfHubHTTPError for 401/403
        raise HubAccessError(
            f"--push_to_hub {repo_id}: the Hub is not usable ({type(err).__name__}: {err}). Check the network "
            "and that the token can write to this repository."
        ) from err
    return str(url)


def render_card(template: Path, metrics: dict[str, Any], run: dict[str, Any], repo_or_path: str) -> ModelCard:
    """The README.md of the output folder: `template` (model_card.md) rendered by the model's own card builder
    (`modeling_mer.card_mer`: licence, base model, usage, requirements, citations) with the run's figures as
    model-index metadata (UF1, UAR) and text."""
    dataset = metrics["dataset"]
    model_name = run.get("hub_model_id") or f"mer-{run['model']}-{dataset}-{metrics['protocol']}"
    results = [
        EvalResult(
            task_type="video-classification",
            dataset_type=dataset,
            dataset_name=f"{dataset} ({metrics['protocol_description']}, pooled)",
            metric_type=kind,
            metric_name=f"{kind.upper()}{' (optimistic: selected on held-out subject)' if metrics['optimistic'] else ''}",
            metric_value=round(float(metrics[kind]), 4),
            dataset_config=metrics["protocol"],
        )
        for kind in ("uf1", "uar")
    ]
    for name, part in (metrics.get("per_dataset") or {}).items():
        results += [
            EvalResult(
                task_type="video-classification",
                dataset_type=name,
                dataset_name=f"{name} ({metrics['protocol']}, the clips of this dataset)",
                metric_type=kind,
                metric_name=kind.upper(),
                metric_value=round(float(part[kind]), 4),
                dataset_config=metrics["protocol"],
            )
            for kind in ("uf1", "uar")
        ]
    template_vars = {
        "selection_text": metrics["note"],
        "data_text": DATA_TEXT.get(dataset, dataset),
        "repo_or_path": repo_or_path,
        "per_dataset": metrics.get("per_dataset") or {},
        **{k: v for k, v in metrics.items() if k not in ("per_dataset", "dataset", "protocol")},
        "dataset": dataset,
        "protocol": metrics["protocol"],
        **{k: v for k, v in run.items() if k not in metrics and k not in ("model_name", "dataset")},
    }
    for name in inspect.signature(build_model_card).parameters:  # given below, or filled by the builder
        template_vars.pop(name, None)
    for name in ("usage", "requirements", "license_section", "citation_section", "provenance", "intended_use"):
        template_vars.pop(name, None)
    return build_model_card(
        label_names=metrics["label_names"],
        train_datasets=[dataset],
        pretrained_spatial=run.get("pretrained_spatial"),
        repo_or_path=repo_or_path,
        model_name=model_name,
        eval_results=results,
        tags=["optimistic-selection"] if metrics["optimistic"] else [],
        template=Path(template).read_text(encoding="utf-8"),
        **template_vars,
    )


def push_output(output_dir: Path, repo_id: str) -> str:
    """Upload the model, processor, card, metrics and predictions (HUB_FILES only); returns the commit URL."""
    info = huggingface_hub.upload_folder(
        repo_id=repo_id,
        folder_path=str(output_dir),
        allow_patterns=HUB_FILES,
        ignore_patterns=["*/*"],  # top-level files only: not checkpoints/, folds/ or any cache below
        commit_message="Upload micro-expression model, card, metrics and predictions",
    )
    return str(info)


__all__ = ["DATA_TEXT", "HubAccessError", "check_hub_access", "push_output", "render_card"]
