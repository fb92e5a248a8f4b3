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

from .card_mer import build_model_card, data_text, eval_result
from .reporting import HUB_FILES


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


def processor_settings(processor: Any) -> dict[str, Any]:
    """The processor's options (their one list: `MERImageProcessor.option_names`) with this processor's values."""
    return {name: getattr(processor, name) for name in type(processor).option_names}


def recognition_results(metrics: dict[str, Any]) -> list[EvalResult]:
    """The model-index of a recognition run: UF1 and UAR (Hub ids f1 / recall, macro) pooled, then per dataset."""
    protocol = metrics["protocol"]
    results = [
        eval_result(kind, metrics[kind], dataset=metrics["dataset"], config=protocol, optimistic=metrics["optimistic"],
                    dataset_name=f"{metrics['dataset']} ({metrics['protocol_description']}, pooled)")
        for kind in ("uf1", "uar")
    ]
    for name, part in (metrics.get("per_dataset") or {}).items():
        results += [
            eval_result(kind, part[kind], dataset=name, config=protocol, optimistic=metrics["optimistic"],
                        dataset_name=f"{name} ({protocol}, the clips of this dataset)")
            for kind in ("uf1", "uar")
        ]
    return results


def render_card(template: Path, metrics: dict[str, Any], run: dict[str, Any], repo_or_path: str,
                eval_results: list[EvalResult] | None = None, processor: Any = None) -> ModelCard:
    """The README.md of the output folder: `template` (model_card.md) rendered by the card builder
    (`card_mer`: licence, base model, usage, requirements, framework versions, citations) with the run's
    results as model-index metadata (`eval_results`, by default `recognition_results(metrics)`: a Task
    gives its own) and text. `processor` (or the run's values of the processor options) fills the card's
    preprocessing table; the data text is the dataset registry's."""
    dataset = metrics["dataset"]
    model_name = run.get("hub_model_id") or f"mer-{run['model']}-{dataset}-{metrics['protocol']}"
    results = recognition_results(metrics) if eval_results is None else eval_results
    if processor is not None:
        settings = processor_settings(processor)
    else:
        from ..processing_mer import MERImageProcessor

        settings = {name: run[name] for name in MERImageProcessor.option_names if name in run}
    template_vars = {
        "selection_text": metrics.get("note", ""),
        "data_text": data_text([dataset]),
        "repo_or_path": repo_or_path,
        "per_dataset": metrics.get("per_dataset") or {},
        **{k: v for k, v in metrics.items() if k not in ("per_dataset", "dataset", "protocol")},
        "dataset": dataset,
        "protocol": metrics["protocol"],
        **{k: v for k, v in run.items() if k not in metrics and k not in ("model_name", "dataset")},
        "processor_settings": settings,
    }
    for name in inspect.signature(build_model_card).parameters:  # given below, or filled by the builder
        template_vars.pop(name, None)
    for name in ("usage", "requirements", "license_section", "citation_section", "provenance", "intended_use",
                 "limitations", "framework_versions"):
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


__all__ = ["HubAccessError", "check_hub_access", "processor_settings", "push_output", "recognition_results", "render_card"]
