"""Nothing lost, nothing silent (issue 15): checkpoints visible only when complete, rotation that never
deletes the newest, a failed start that does not lock the folder, skip mode in preprocessing."""

from __future__ import annotations

import json

import datasets
import pandas as pd
import pytest
import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from PIL import Image
from test_processing_dataset import fake_dataset

from modeling_mer.processing_mer import MERImageProcessor
from modeling_mer.training.checkpoints import (
    Checkpoints,
    RunStateError,
    check_run_args,
    clean_incomplete,
    has_finished_work,
)
from modeling_mer.training.preprocessing import preprocess_dataset, preprocessing_skips
from modeling_mer.training.run_outputs import write_fold


@pytest.fixture
def prepared(tmp_path):
    accelerator = Accelerator(cpu=True, project_config=ProjectConfiguration(project_dir=str(tmp_path / "run")))
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    yield accelerator, model, tmp_path / "run"
    accelerator.free_memory()


def test_checkpoints_rotate_but_never_below_the_newest_complete_one(prepared):
    accelerator, model, project = prepared
    store = Checkpoints(project, keep=2)
    for epoch in range(3):
        with torch.no_grad():
            model.weight.add_(1.0)
        store.save(accelerator, {"fold": 0, "epoch": epoch})
    assert [n for n, _ in store.complete()] == [1, 2]
    path, progress = store.latest()
    assert path.name == "checkpoint_2" and progress == {"fold": 0, "epoch": 2}
    assert sorted(p.name for p in store.folder.iterdir()) == ["checkpoint_1", "checkpoint_2"]
    saved = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.zero_()
    accelerator.load_state(str(path))
    assert torch.equal(model.weight, saved)


def test_what_a_kill_leaves_is_ignored_then_cleaned_and_numbering_goes_on(prepared):
    """The issue's reproduction: an empty checkpoint_3 (a kill inside save_state) must not cost 1 and 2."""
    accelerator, model, project = prepared
    store = Checkpoints(project, keep=2)
    for epoch in range(3):
        store.save(accelerator, {"fold": 0, "epoch": epoch})
    (store.folder / "checkpoint_3").mkdir()  # what a kill inside accelerate's own naming left
    (store.folder / ".checkpoint_4.incomplete").mkdir()  # a kill inside ours
    (store.folder / ".checkpoint_4.incomplete" / "model.safetensors").write_bytes(b"half")
    (store.folder / ".deleting_checkpoint_0").mkdir()  # a kill during rotation
    assert store.latest()[0].name == "checkpoint_2"
    assert store.clean() == [".checkpoint_4.incomplete", ".deleting_checkpoint_0", "checkpoint_3"]
    assert store.save(accelerator, {"fold": 0, "epoch": 3}).name == "checkpoint_3"
    assert [n for n, _ in store.complete()] == [2, 3]


def test_a_failed_start_does_not_lock_the_folder(tmp_path):
    out = tmp_path / "run"
    check_run_args(out, {"lr": 1e-3, "epochs": 2}, resume=False, write=True)
    assert not has_finished_work(out)
    check_run_args(out, {"lr": 5e-3, "epochs": 2}, resume=False, write=True)  # corrected arguments: accepted
    check_run_args(out, {"lr": 1e-2, "epochs": 2}, resume=True, write=True)  # --resume of nothing: a new run
    assert json.loads((out / "run_args.json").read_text())["lr"] == 1e-2
    write_fold(out, 0, pd.DataFrame({"fold": ["s1"], "prediction": [0]}))
    assert has_finished_work(out)
    with pytest.raises(FileExistsError, match="--resume"):
        check_run_args(out, {"lr": 1e-2, "epochs": 2}, resume=False, write=True)
    with pytest.raises(RunStateError) as refused:
        check_run_args(out, {"lr": 1e-3, "epochs": 3}, resume=True, write=True)
    message = str(refused.value)
    assert "\n" not in message and "--epochs 2 (now 3)" in message and "--lr 0.01 (now 0.001)" in message


def test_leftovers_outside_checkpoints_are_cleaned(tmp_path):
    (tmp_path / "folds").mkdir()
    (tmp_path / "folds" / "fold_001.csv.tmp").write_text("fold,pred")
    (tmp_path / ".final_model.incomplete").mkdir()
    assert sorted(clean_incomplete(tmp_path)) == [".final_model.incomplete", "folds/fold_001.csv.tmp"]
    assert not has_finished_work(tmp_path)


def test_preprocessing_skip_leaves_out_and_names_the_clip(tmp_path):
    raw = fake_dataset(tmp_path / "data", lazy=True)
    first = raw[0]["frames"]
    Image.open(first[-1]).resize((20, 12)).save(first[-1])  # clip0's frames change size mid-clip
    processor = MERImageProcessor(image_size=16, num_frames=2, crop="none")
    with pytest.raises(ValueError, match=r"preprocessing clip fake/s0/clip0: .*all frames of a clip must have one size"):
        preprocess_dataset(raw, processor)
    kept = preprocess_dataset(raw, processor, on_error="skip")
    assert kept["clip_id"] == ["clip1", "clip2"] and "preprocessing_error" not in kept.column_names
    [skip] = preprocessing_skips(kept)
    assert (skip["clip"], skip["where"]) == ("fake/s0/clip0", "preprocessing") and "one size" in skip["reason"]
    again = preprocess_dataset(raw, processor, on_error="skip")  # from the cache: the same report
    assert preprocessing_skips(again) == [skip] and again["clip_id"] == kept["clip_id"]
    assert preprocessing_skips(preprocess_dataset(raw, processor, on_error="skip").select([0])) == [skip]
    assert isinstance(kept, datasets.Dataset)
