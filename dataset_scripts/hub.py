"""Publishing a built dataset to a private Hub repository.

CASME II, SAMM and SMIC are licensed for research use by their authors and, under their agreements,
may not be redistributed: a built dataset embeds their frames. The helper is therefore private by
default and warns every time; sharing a copy with anyone is the uploader's responsibility.
"""

from __future__ import annotations

import warnings

import datasets
import huggingface_hub

LICENCE_WARNING = (
    "The micro-expression datasets are licensed for research use by their owners (CASME II: Institute of "
    "Psychology, Chinese Academy of Sciences; SAMM: Manchester Metropolitan University; SMIC: University of "
    "Oulu) and their agreements forbid redistribution. Push only to a private repository that only people "
    "who signed the same agreements can read."
)


class HubPublishError(RuntimeError):
    """The Hub could not be reached or refused the upload."""


def push_dataset_to_hub(
    dataset: datasets.Dataset, repo_id: str, private: bool = True, token: str | None = None
) -> str:
    """Upload `dataset` to the Hub dataset repo `repo_id` (private unless `private=False`); returns its URL."""
    parts = sorted(set(dataset["dataset"])) if "dataset" in dataset.column_names else []
    warnings.warn(f"{LICENCE_WARNING} (this dataset holds: {', '.join(parts) or 'unknown'})", UserWarning, stacklevel=2)
    if not private:
        warnings.warn(f"pushing {repo_id} as a PUBLIC repository", UserWarning, stacklevel=2)
    if huggingface_hub.constants.is_offline_mode() or datasets.config.HF_HUB_OFFLINE:
        raise HubPublishError(f"cannot push {repo_id}: offline mode is on (HF_HUB_OFFLINE=1); unset it and retry")
    try:
        dataset.push_to_hub(repo_id, private=private, token=token)
    except Exception as exc:  # httpx, OSError, HfHubHTTPError... all mean the same to the caller
        raise HubPublishError(
            f"could not push {repo_id} to the Hub ({type(exc).__name__}: {exc}); check the network and the token"
        ) from exc
    return f"https://huggingface.co/datasets/{repo_id}"
