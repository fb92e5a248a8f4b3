"""load_mer_dataset's dispatch to the synthetic builder, and the private Hub push helper."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import datasets
import huggingface_hub
import pytest

from dataset_scripts import load_mer_dataset
from dataset_scripts.hub import HubPublishError, push_dataset_to_hub

REPO = Path(__file__).resolve().parents[1]


class _FakeSynthetic:
    """Stands in for synthetic.SyntheticMER to check what load_mer_dataset hands over."""

    calls: list[dict] = []

    def __init__(self, **kwargs):
        self.calls.append(kwargs)

    def download_and_prepare(self) -> None:
        pass

    def as_dataset(self, split: str) -> datasets.Dataset:
        assert split == "train"
        return datasets.Dataset.from_dict({"dataset": ["synthetic"]})


def test_synthetic_dispatch(monkeypatch, tmp_path: Path) -> None:
    module = types.ModuleType("dataset_scripts.synthetic")
    module.SyntheticMER = _FakeSynthetic
    monkeypatch.setitem(sys.modules, "dataset_scripts.synthetic", module)
    ds = load_mer_dataset("synthetic", cache_dir=str(tmp_path), num_subjects=2, seed=3)
    assert ds["dataset"] == ["synthetic"]
    assert _FakeSynthetic.calls[-1] == {"cache_dir": str(tmp_path), "num_subjects": 2, "seed": 3}
    load_mer_dataset("synthetic", class_set="3class")
    assert _FakeSynthetic.calls[-1] == {"cache_dir": None, "class_set": "3class"}
    with pytest.raises(ValueError, match="takes no data_dir"):
        load_mer_dataset("synthetic", data_dir=tmp_path)


def _tiny() -> datasets.Dataset:
    return datasets.Dataset.from_dict({"dataset": ["casme2", "samm"], "label": [0, 1]})


class _FakeHub:
    """Stands in for the Hub API: records the repository and the folder that would be uploaded."""

    def __init__(self, monkeypatch, public: bool = False, fail: Exception | None = None) -> None:
        self.calls: list[tuple] = []
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
        hub = self

        def create_repo(api, repo_id, **kw):
            if fail is not None:
                raise fail
            hub.calls.append(("create", repo_id, kw, api.token))
            return types.SimpleNamespace(repo_id=repo_id)

        def upload_folder(api, *, repo_id, folder_path, **kw):
            hub.calls.append(("upload", repo_id, sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*.*")), kw))

        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", lambda api, repo_id, **kw: types.SimpleNamespace(private=not public))
        monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)


def test_push_is_private_by_default_and_warns(monkeypatch) -> None:
    hub = _FakeHub(monkeypatch)
    with pytest.warns(UserWarning, match=r"forbid redistribution.*casme2, samm"):
        url = push_dataset_to_hub(_tiny(), "me/mer-private")
    assert hub.calls[0] == ("create", "me/mer-private", {"repo_type": "dataset", "private": True, "exist_ok": True}, None)
    assert hub.calls[1][:3] == ("upload", "me/mer-private", ["README.md", "data/train-00000-of-00001.parquet"])
    assert hub.calls[1][3]["repo_type"] == "dataset"
    assert url == "https://huggingface.co/datasets/me/mer-private"
    with pytest.warns(UserWarning) as record:
        push_dataset_to_hub(_tiny(), "me/mer-public", private=False, token="t")
    assert any("PUBLIC" in str(w.message) for w in record) and any("licensed" in str(w.message) for w in record)
    assert hub.calls[-2] == ("create", "me/mer-public", {"repo_type": "dataset", "private": False, "exist_ok": True}, "t")


def test_push_refuses_an_existing_public_repo(monkeypatch) -> None:
    hub = _FakeHub(monkeypatch, public=True)
    with pytest.warns(UserWarning), pytest.raises(HubPublishError, match="me/x already exists as a PUBLIC"):
        push_dataset_to_hub(_tiny(), "me/x")
    assert [call[0] for call in hub.calls] == ["create"]  # nothing uploaded


def test_push_failure_is_a_clear_error(monkeypatch) -> None:
    _FakeHub(monkeypatch, fail=OSError("Network is unreachable"))
    with pytest.warns(UserWarning), pytest.raises(HubPublishError, match="could not push me/x to the Hub.*unreachable"):
        push_dataset_to_hub(_tiny(), "me/x")


def test_push_offline_fails_clearly() -> None:
    code = (
        "import datasets, warnings; warnings.simplefilter('ignore')\n"
        "from dataset_scripts.hub import push_dataset_to_hub, HubPublishError\n"
        "ds = datasets.Dataset.from_dict({'dataset': ['smic']})\n"
        "try:\n    push_dataset_to_hub(ds, 'me/x')\n"
        "except HubPublishError as e:\n    print('ERR', e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ERR cannot push me/x: offline mode is on (HF_HUB_OFFLINE=1)" in out.stdout


def test_the_synthetic_card_describes_the_synthetic_set(monkeypatch, tmp_path: Path) -> None:
    """No CASME/SAMM/SMIC licence warning for the generated set: its own text and licence."""
    import warnings

    from dataset_scripts.hub import dataset_card, write_parquet_folder
    from dataset_scripts.registry import DATASETS

    spec = DATASETS["synthetic"]
    ds = datasets.Dataset.from_dict({"dataset": ["synthetic"] * 2, "label": [0, 1]},
                                    info=datasets.DatasetInfo(description=spec.card_text))
    card = str(dataset_card(ds))
    assert "license: apache-2.0" in card and spec.card_text in card and "synthetic" in card.split("---")[1]
    assert not any(word in card for word in ("SAMM", "SMIC", "Research use only", "redistribution", "licensed cop"))
    hub = _FakeHub(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not one licence warning
        push_dataset_to_hub(ds, "me/synthetic")
    assert hub.calls[1][2] == ["README.md", "data/train-00000-of-00001.parquet"]
    real = str(dataset_card(_tiny()))
    assert "Research use only" in real and DATASETS["casme2"].card_text in real and DATASETS["samm"].citation in real
    assert "README.md" in {p.name for p in write_parquet_folder(ds, tmp_path / "out").iterdir()}


def test_one_skip_report_for_builders_and_preprocessing() -> None:
    from dataset_scripts import BadClip, record_skips, skipped_clips
    from dataset_scripts._skips import SKIP_MARKER, build_description

    built = BadClip("casme2", "sub01", "EP01", "sheet row 3", "no frames")
    ds = datasets.Dataset.from_dict({"dataset": ["casme2"]},
                                    info=datasets.DatasetInfo(description=build_description("CASME II.", [], [built])))
    late = BadClip("casme2", "sub02", "EP07", "preprocessing", "frames of two sizes")
    record_skips(ds, [late])
    record_skips(ds, [late])  # a record once
    lines = ds.info.description.splitlines()
    assert sum(line.startswith(SKIP_MARKER) for line in lines) == 1 and lines[0] == "CASME II."
    assert skipped_clips(ds) == [built.as_dict(), late.as_dict()]
    assert skipped_clips(ds)[1]["clip"] == "casme2/sub02/EP07"


def test_load_dataset_on_the_package_folder_fails_clearly(tmp_path: Path) -> None:
    """`datasets.load_dataset("dataset_scripts")` must not return a metadata CSV as if it were the data."""
    with pytest.raises(FileNotFoundError, match=r"dataset_scripts is a Python package, not a dataset folder: load a "
                                                r"micro-expression set with dataset_scripts\.load_mer_dataset"):
        datasets.load_dataset(str(REPO / "dataset_scripts"), cache_dir=str(tmp_path))
    assert not list(tmp_path.rglob("*.arrow"))
