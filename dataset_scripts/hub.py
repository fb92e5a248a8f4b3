"""Publishing a built dataset to a private Hub repository, as Parquet that `datasets.load_dataset` reads.

CASME II, SAMM and SMIC are licensed for research use by their authors and, under their agreements,
may not be redistributed: a built dataset embeds their frames. The helper is therefore private by
default, refuses to add to a public repository, and warns every time a research-only set is pushed;
sharing a copy with anyone is the uploader's responsibility. What the card says about each dataset (its
text, licence, citation) comes from its registry entry (`dataset_scripts.registry`): the synthetic set's
card describes the synthetic set under its own licence.

The repository holds what `Dataset.push_to_hub` would write (`data/train-0000i-of-0000n.parquet`, frames
embedded as image bytes, features in the Parquet schema) plus a dataset card stating the terms, so that
`datasets.load_dataset("you/casme2-private")` (with a token that can read it) returns the same rows and
features. `write_parquet_folder` writes that layout locally: `datasets.load_dataset(folder)` reads it the
same way, which is how the tests check the round trip offline.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from pathlib import Path

import datasets
import huggingface_hub
from datasets.table import embed_table_storage
from huggingface_hub import DatasetCard, DatasetCardData

from ._skips import SKIP_MARKER
from .registry import DATASETS, DatasetSpec, expand_parts

RESEARCH_ONLY_LICENSE = "mer-datasets-research-only"
MAX_SHARD_BYTES = 500 * 2**20


class HubPublishError(RuntimeError):
    """The Hub could not be reached or refused the upload."""


def _parts(dataset: datasets.Dataset) -> list[str]:
    return sorted(set(dataset["dataset"])) if "dataset" in dataset.column_names else []


def _research_only(parts: list[str]) -> list[str]:
    """The parts under research-only terms (an unregistered or unknown source counts as one)."""
    return [n for n in expand_parts(parts) or ["unknown"] if n not in DATASETS or DATASETS[n].research_only]


def licence_warning(parts: list[str]) -> str | None:
    """The warning for pushing these datasets (None when none of them is licensed for research only)."""
    restricted = [n for n in _research_only(parts) if not (n in DATASETS and DATASETS[n].parts)]
    if not restricted:
        return None
    terms = "; ".join(DATASETS[n].license_text if n in DATASETS else f"{n}: terms unknown" for n in restricted)
    return (
        f"{terms}. The micro-expression datasets are licensed for research use by their owners and their "
        "agreements forbid redistribution. Push only to a private repository that only people who signed the "
        "same agreements can read."
    )


def dataset_card(dataset: datasets.Dataset) -> DatasetCard:
    """The dataset card: metadata and text from the registry entries of the datasets in `dataset`."""
    parts = _parts(dataset)
    specs: list[DatasetSpec] = [DATASETS[n] for n in parts if n in DATASETS]
    warning = licence_warning(parts)
    if warning is None:  # only freely licensed sets (the synthetic one): their own licence, no warning
        names = {spec.license_name for spec in specs}
        licence = {"license": names.pop()} if len(names) == 1 else {"license": "other", "license_name": "mixed"}
    elif len(specs) == 1 and specs[0].name == parts[0]:
        licence = {"license": "other", "license_name": specs[0].license_name}
    else:
        licence = {"license": "other", "license_name": RESEARCH_ONLY_LICENSE}
    card_data = DatasetCardData(
        **licence,
        tags=["micro-expression", "facial-expression", "video", *(["synthetic"] if warning is None else [])],
        task_categories=["video-classification"],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
    )
    titles = ", ".join(spec.title for spec in specs) or ", ".join(parts) or "unknown source"
    notes = [line for line in (dataset.info.description or "").splitlines()
             if line.strip() and not line.startswith(SKIP_MARKER) and all(line.strip() != spec.card_text for spec in specs)]
    citations = list(dict.fromkeys(DATASETS[n].citation for n in expand_parts(parts) if n in DATASETS and DATASETS[n].citation))
    text = "\n\n".join(
        part
        for part in (
            f"# Micro-expression clips: {titles}",
            f"**Research use only; do not make this repository public.** {warning}" if warning else "",
            "\n\n".join(spec.card_text for spec in specs),
            "## Licence\n\n" + "\n".join(f"- {spec.title}: {spec.license_text}" for spec in specs) if specs else "",
            "Build notes:\n\n" + "\n".join(f"    {line}" for line in notes) if notes else "",
            "Built with the `dataset_scripts` builders of modeling-mer; one `train` split (leave-one-subject-out "
            "folds are made by subject).",
            "## Citation\n\n```bibtex\n" + "\n\n".join(citations) + "\n```" if citations else "",
        )
        if part
    )
    return DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n{text}\n")


def write_parquet_folder(dataset: datasets.Dataset, folder: str | Path, max_shard_bytes: int = MAX_SHARD_BYTES) -> Path:
    """The Hub layout of `dataset` in `folder`: data/train-*.parquet with frames embedded, and README.md.

    A lazy build (frame paths) has its frames read into the Parquet files as images, so the copy stands alone.
    """
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    if len(dataset) == 0:
        raise ValueError("the dataset has no rows to write")
    frames = dataset.features.get("frames")
    if isinstance(frames, datasets.List) and frames.feature == datasets.Value("string"):  # a lazy build: paths
        dataset = dataset.cast_column("frames", datasets.List(datasets.Image()))
    nbytes = dataset._estimate_nbytes() if hasattr(dataset, "_estimate_nbytes") else dataset.data.nbytes
    num_shards = min(len(dataset), max(1, math.ceil(nbytes / max_shard_bytes)))
    for index in range(num_shards):
        shard = dataset.shard(num_shards, index, contiguous=True).with_format("arrow")
        shard = shard.map(embed_table_storage, batched=True, batch_size=100, keep_in_memory=True)
        shard.to_parquet(str(folder / "data" / f"train-{index:05d}-of-{num_shards:05d}.parquet"))
    dataset_card(dataset).save(folder / "README.md")
    return folder


def push_dataset_to_hub(
    dataset: datasets.Dataset, repo_id: str, private: bool = True, token: str | None = None
) -> str:
    """Upload `dataset` as Parquet to the Hub dataset repo `repo_id` (private unless `private=False`).

    Returns the repository's URL; `datasets.load_dataset(repo_id, token=...)` loads it.
    """
    warning = licence_warning(_parts(dataset))
    if warning is not None:
        warnings.warn(f"{warning} (this dataset holds: {', '.join(_parts(dataset)) or 'unknown'})", UserWarning, stacklevel=2)
    if not private:
        warnings.warn(f"pushing {repo_id} as a PUBLIC repository", UserWarning, stacklevel=2)
    if huggingface_hub.constants.is_offline_mode() or datasets.config.HF_HUB_OFFLINE:
        raise HubPublishError(f"cannot push {repo_id}: offline mode is on (HF_HUB_OFFLINE=1); unset it and retry")
    api = huggingface_hub.HfApi(token=token)
    try:
        repo_id = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True).repo_id
        if private and not api.repo_info(repo_id, repo_type="dataset").private:
            raise HubPublishError(f"{repo_id} already exists as a PUBLIC dataset repository: nothing was uploaded")
        with tempfile.TemporaryDirectory() as folder:
            write_parquet_folder(dataset, folder)
            api.upload_folder(
                repo_id=repo_id,
                repo_type="dataset",
                folder_path=folder,
                commit_message="Upload micro-expression clips (Parquet)",
            )
    except HubPublishError:
        raise
    except Exception as exc:  # httpx, OSError, HfHubHTTPError... all mean the same to the caller
        raise HubPublishError(
            f"could not push {repo_id} to the Hub ({type(exc).__name__}: {exc}); check the network and the token"
        ) from exc
    return f"https://huggingface.co/datasets/{repo_id}"


__all__ = ["HubPublishError", "dataset_card", "licence_warning", "push_dataset_to_hub", "write_parquet_folder"]
