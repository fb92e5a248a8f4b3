"""Publishing a built dataset to a private Hub repository, as Parquet that `datasets.load_dataset` reads.

CASME II, SAMM and SMIC are licensed for research use by their authors and, under their agreements,
may not be redistributed: a built dataset embeds their frames. The helper is therefore private by
default, refuses to add to a public repository, and warns every time; sharing a copy with anyone is the
uploader's responsibility.

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

LICENCE_WARNING = (
    "The micro-expression datasets are licensed for research use by their owners (CASME II: Institute of "
    "Psychology, Chinese Academy of Sciences; SAMM: Manchester Metropolitan University; SMIC: University of "
    "Oulu) and their agreements forbid redistribution. Push only to a private repository that only people "
    "who signed the same agreements can read."
)
MAX_SHARD_BYTES = 500 * 2**20


class HubPublishError(RuntimeError):
    """The Hub could not be reached or refused the upload."""


def _parts(dataset: datasets.Dataset) -> list[str]:
    return sorted(set(dataset["dataset"])) if "dataset" in dataset.column_names else []


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
    parts = _parts(dataset)
    card_data = DatasetCardData(
        license="other",
        license_name="mer-datasets-research-only",
        tags=["micro-expression", "facial-expression", "video"],
        task_categories=["video-classification"],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
    )
    text = "\n\n".join(
        part
        for part in (
            f"# Micro-expression clips ({', '.join(parts) or 'unknown source'})",
            f"**Research use only; do not make this repository public.** {LICENCE_WARNING}",
            dataset.info.description or "",
            "Built with the `dataset_scripts` builders of modeling-mer; one `train` split (leave-one-subject-out "
            "folds are made by subject).",
            f"```bibtex\n{dataset.info.citation}\n```" if dataset.info.citation else "",
        )
        if part
    )
    DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n{text}\n").save(folder / "README.md")
    return folder


def push_dataset_to_hub(
    dataset: datasets.Dataset, repo_id: str, private: bool = True, token: str | None = None
) -> str:
    """Upload `dataset` as Parquet to the Hub dataset repo `repo_id` (private unless `private=False`).

    Returns the repository's URL; `datasets.load_dataset(repo_id, token=...)` loads it.
    """
    warnings.warn(f"{LICENCE_WARNING} (this dataset holds: {', '.join(_parts(dataset)) or 'unknown'})", UserWarning, stacklevel=2)
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


__all__ = ["HubPublishError", "LICENCE_WARNING", "push_dataset_to_hub", "write_parquet_folder"]
