"""train.py: folds, flow-aware augmentation, balanced loss, and end-to-end tiny LOSO runs.

The end-to-end runs use a tiny synthetic set made with `generate_clip` (a few subjects, 32 px, 8
frames per clip, 2-4 sampled): `train.load_mer_dataset` is replaced by `tiny_synthetic`, so the tests
control the size and never touch a dataset cache outside tmp_path.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import train
from dataset_scripts.common import mer_features
from dataset_scripts.synthetic import EMOTIONS, generate_clip
from modeling_mer.training import recognition
from modeling_mer.training.loop import class_weights, flip_decisions, hflip_flow
from modeling_mer.training.protocols import loso_folds, make_folds, validation_split

FAST = ["--image_size", "32", "--num_frames", "2", "--epochs", "2", "--batch_size", "4", "--lr", "3e-3"]


def tiny_synthetic(name, data_dir=None, class_set=None, cache_dir=None, on_error="raise",
                   num_subjects=None, clips_per_subject=3, seed=0, **_):
    """A small clip table in the builders' schema; `dataset=composite` spreads subjects over 3 datasets."""
    rows = {k: [] for k in mer_features(EMOTIONS)}
    parts = ["casme2", "samm", "smic"] if name == "composite" else [name]
    num_subjects = num_subjects or 2 * len(parts) + (1 if len(parts) == 1 else 0)
    for s in range(num_subjects):
        for c in range(clips_per_subject):
            emotion = EMOTIONS[c % 3]
            clip = generate_clip(s, c, emotion, num_frames=8, image_size=32, amplitude=3.0, seed=seed)
            frames = []
            for frame in clip.frames:
                buffer = io.BytesIO()
                Image.fromarray(frame).save(buffer, format="PNG")
                frames.append({"bytes": buffer.getvalue(), "path": None})
            # composite: the same subject name in different datasets is a different person
            subject = f"s{s // len(parts) + 1:02d}" if name == "composite" else f"synth_s{s + 1:02d}"
            values = {"dataset": parts[s % len(parts)], "subject": subject, "clip_id": f"c{c:02d}",
                      "frames": frames, "frame_numbers": list(range(8)), "onset": clip.onset, "apex": clip.apex,
                      "apex_source": "annotated", "offset": clip.offset, "fps": 200.0,
                      "action_units": clip.action_units, "emotion": emotion, "label": EMOTIONS.index(emotion)}
            for key, value in values.items():
                rows[key].append(value)
    return datasets.Dataset.from_dict(rows, features=mer_features(EMOTIONS))


@pytest.fixture
def patched(monkeypatch):
    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)


def run(tmp_path: Path, name: str, *extra: str) -> tuple[dict | None, Path]:
    out = tmp_path / name
    return train.main([*FAST, "--output_dir", str(out), *extra]), out


# ---------------------------------------------------------------------------------------------------
def test_folds_never_share_a_subject_and_composite_keeps_datasets_apart():
    subjects = ["s01", "s01", "s02", "s01", "s03", "s02"]
    datasets_ = ["casme2", "casme2", "casme2", "samm", "samm", "smic"]
    folds = loso_folds(subjects, datasets_)
    assert [f.name for f in folds] == ["casme2/s01", "casme2/s02", "samm/s01", "samm/s03", "smic/s02"]
    keys = [f"{d}/{s}" for d, s in zip(datasets_, subjects)]
    for fold in folds:
        assert {keys[i] for i in fold.test} == {fold.name}
        assert fold.name not in {keys[i] for i in fold.train}
        assert sorted(fold.train + fold.test) == list(range(len(subjects)))
    assert sorted(i for f in folds for i in f.test) == list(range(len(subjects)))
    with pytest.raises(ValueError, match="at least 2 subjects"):
        loso_folds(["a", "a"])


def test_protocol_folds_hde_and_cross_keep_test_datasets_out_of_training():
    subjects = ["s01", "s02", "s01", "s03", "s01", "s02", "s04"]
    datasets_ = ["casme2", "casme2", "samm", "samm", "smic", "smic", "smic"]
    hde = make_folds("hde", subjects, datasets_)
    assert [f.name for f in hde] == ["casme2", "samm", "smic"]  # one fold per dataset
    for fold in hde:
        assert {datasets_[i] for i in fold.test} == {fold.name}
        assert fold.name not in {datasets_[i] for i in fold.train}
        assert sorted(fold.train + fold.test) == list(range(len(subjects)))
    (cross,) = make_folds("cross", subjects, datasets_, train_on=["casme2"], test_on=["samm"])
    assert cross.train == [0, 1] and cross.test == [2, 3] and cross.name == "casme2->samm"
    assert len(make_folds("composite", subjects, datasets_)) == 7  # LOSO over (dataset, subject)
    with pytest.raises(ValueError, match="share casme2"):
        make_folds("cross", subjects, datasets_, train_on=["casme2"], test_on=["casme2", "samm"])
    with pytest.raises(ValueError, match="--test_on sammx: not in the data"):
        make_folds("cross", subjects, datasets_, train_on=["casme2"], test_on=["sammx"])
    with pytest.raises(ValueError, match="at least 2 datasets"):
        make_folds("hde", subjects[:2], datasets_[:2])
    with pytest.raises(ValueError, match="loso is for one dataset"):
        make_folds("loso", subjects, datasets_)
    # validation subjects come from the training side only, never from the held-out dataset
    keys = [f"{d}/{s}" for d, s in zip(datasets_, subjects)]
    split = validation_split(hde[0], keys, 2, seed=0)
    assert len({keys[i] for i in split.val}) == 2 and not {datasets_[i] for i in split.val} & {"casme2"}
    assert split.test == hde[0].test and sorted(split.train + split.val) == sorted(hde[0].train)


def test_epoch_selection_strategies():
    from modeling_mer.training.selection import EpochSelection

    fixed = EpochSelection.from_options(12)
    assert fixed.strategy == "fixed" and not fixed.scores_every_epoch and fixed.final_epochs([3, 5]) == 12
    val = EpochSelection.from_options(12, val_subjects=2)
    assert val.strategy == "validation" and val.final_epochs([2, 4, 9]) == 5 and not val.optimistic
    assert val.improved(0.5, None) and not val.improved(0.5, {"score": 0.5}) and val.improved(0.6, {"score": 0.5})
    held = EpochSelection.from_options(12, select_on_test=True)
    assert held.optimistic and "OPTIMISTIC" in held.note and held.final_epochs([1]) == 12
    with pytest.raises(ValueError, match="pick one"):
        EpochSelection.from_options(12, val_subjects=1, select_on_test=True)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_loop_optimises_the_models_own_loss(weighted):
    from accelerate import Accelerator

    from modeling_mer import MERConfig, MERForVideoClassification, MERImageProcessor
    from modeling_mer.training.loop import FlowClips, make_loader, train_one_epoch
    from modeling_mer.training.recognition import RecognitionTask
    from modeling_mer.training.tasks import TaskData

    config = MERConfig.from_preset("tiny", labels=EMOTIONS, num_frames=2, vision_config={"image_size": 16},
                                   temporal_dropout=0.0, head_dropout=0.0)
    torch.manual_seed(0)
    model = MERForVideoClassification(config)
    processor = MERImageProcessor(image_size=16, num_frames=2, encoding="uv")
    flows, labels = torch.randn(5, 2, 2, 16, 16).half(), torch.tensor([0, 1, 2, 0, 0])
    # fold-level weights (from the whole fold, not this batch): the two means differ on a batch
    weights = torch.tensor([0.5, 1.0, 4.0]) if weighted else None
    expected = model(pixel_values=processor.encode_flow(flows.float()), labels=labels, class_weights=weights).loss
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    loader = make_loader(FlowClips(flows, labels, range(5)), 5, shuffle=False, seed=0)
    task = RecognitionTask()  # its loss, as the runner calls it: the fold's weights, no flips
    task.weights, task.augment, task.seed = weights, False, 0
    data = TaskData(meta=pd.DataFrame(index=range(5)), config=config, processor=processor, examples=None)
    got = train_one_epoch(Accelerator(cpu=True), model, loader, optimizer, scheduler,
                          lambda m, batch: task.loss(m, batch, data, epoch=0))
    assert got == pytest.approx(float(expected.detach()), rel=1e-6)
    if weighted:  # the objective averages over clips, not over the weights (torch's weighted mean)
        logits = model(pixel_values=processor.encode_flow(flows.float())).logits
        assert got != pytest.approx(float(torch.nn.functional.cross_entropy(logits.detach(), labels, weight=weights)))


def test_hflip_negates_horizontal_flow_only_for_flow():
    flow = torch.zeros(2, 1, 2, 4, 4)
    flow[0, 0, 0, :, 0] = 1.0  # u = +1 on the left column of clip 0
    flow[0, 0, 1, :, 0] = 2.0  # v = +2 there
    out = hflip_flow(flow, torch.tensor([True, False]))
    assert torch.all(out[0, 0, 0, :, 3] == -1.0) and torch.all(out[0, 0, 1, :, 3] == 2.0)
    assert torch.all(out[0, 0, :, :, 0] == 0.0) and torch.equal(out[1], flow[1])
    frames = torch.arange(3 * 4.0).reshape(1, 1, 3, 1, 4)
    assert torch.equal(hflip_flow(frames, torch.tensor([True]))[0, 0, 0, 0], torch.tensor([3.0, 2.0, 1.0, 0.0]))


def test_flips_do_not_depend_on_batching_and_weights_average_one():
    rows = torch.arange(10)
    whole = flip_decisions(rows, seed=1, epoch=2, total_rows=10)
    halves = torch.cat([flip_decisions(rows[:5], 1, 2, 10), flip_decisions(rows[5:], 1, 2, 10)])
    assert torch.equal(whole, halves) and not torch.equal(whole, flip_decisions(rows, 1, 3, 10))
    labels = [0, 0, 0, 1, 2, 2]
    w = class_weights(labels, 4)
    assert w[3] == 0 and float(w[torch.tensor(labels)].mean()) == pytest.approx(1.0)
    assert w[1] == pytest.approx(3 * w[0])


def test_bad_arguments_are_named():
    with pytest.raises(SystemExit):
        train.parse_args(["--protocol", "composite"])
    with pytest.raises(SystemExit):
        train.parse_args(["--dataset", "casme2"])
    with pytest.raises(SystemExit):
        train.parse_args(["--push_to_hub"])
    args = train.parse_args(["--dataset", "composite", "--data_dir", "casme2=/a", "samm=/b", "smic=/c"])
    assert args.protocol == "composite" and args.data_dir == {"casme2": "/a", "samm": "/b", "smic": "/c"}
    for bad in (["--protocol", "hde"], ["--dataset", "composite", "--data_dir", "casme2=/a", "samm=/b",
                                        "--protocol", "cross", "--train_on", "casme2"],
                ["--train_on", "casme2"], ["--dataset", "composite", "--data_dir", "casme2=/a", "samm=/b",
                                           "--protocol", "loso"]):
        with pytest.raises(SystemExit):
            train.parse_args(bad)


# ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_loso_end_to_end_with_final_model_and_card(tmp_path, patched, capsys):
    from transformers import AutoModelForVideoClassification

    metrics, out = run(tmp_path, "run")
    assert metrics is not None and 0.0 <= metrics["uf1"] <= 1.0
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["uf1"] == metrics["uf1"] and stored["protocol"] == "loso"
    assert stored["selection_touched_held_out"] is False and stored["optimistic"] is False
    assert set(stored["per_fold"]) == {"synth_s01", "synth_s02", "synth_s03"}
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == 9 and {"subject", "clip_id", "label", "prediction", "prob_surprise", "fold"} <= set(preds)
    assert (preds["fold"] == preds["subject"]).all()  # each clip predicted by the fold holding out its subject
    assert (out / "confusion_matrix.png").stat().st_size > 0 and (out / "per_subject.png").exists()
    card = (out / "README.md").read_text()
    assert "model-index" in card and "video-classification" in card and f"{metrics['uf1']:.4f}" in card
    assert "Selection touched the held-out subject:** no" in card
    # the one card builder (card_mer): synthetic-trained weights carry the code's licence; usage and citation
    metadata = card.split("---")[1]
    assert "license: apache-2.0" in metadata and "pipeline_tag: video-classification" in metadata
    assert "zhang2022slstt" in card and 'pipeline("video-classification"' in card and "opencv" in card
    model = AutoModelForVideoClassification.from_pretrained(out)
    assert model.config.num_frames == 2 and model.config.id2label[2] == "surprise"
    console = capsys.readouterr()
    assert "UF1" in console.out
    # checkpoints rotate through checkpoints.Checkpoints, not accelerate's total_limit: no per-epoch chatter
    assert "checkpoints to make room" not in console.out + console.err
    with pytest.raises(FileExistsError, match="--resume"):
        run(tmp_path, "run")  # nothing is overwritten silently


@pytest.mark.slow
def test_resume_after_interruption_gives_identical_predictions(tmp_path, patched):
    args = ["--no_final_model", "--seed", "3"]
    reference, _ = run(tmp_path, "straight", *args)
    assert run(tmp_path, "cut", *args, "--stop_after", "3")[0] is None  # fold 0 done, fold 1 at epoch 0
    out = tmp_path / "cut"
    assert (out / "folds" / "fold_000.csv").exists() and not (out / "folds" / "fold_001.csv").exists()
    kept = (out / "folds" / "fold_000.csv").stat().st_mtime_ns
    with pytest.raises(ValueError, match="--lr"):
        train.main([*FAST, "--output_dir", str(out), *args, "--resume", "--lr", "1e-2"])
    resumed, _ = run(tmp_path, "cut", *args, "--resume")
    assert (out / "folds" / "fold_000.csv").stat().st_mtime_ns == kept  # finished fold not recomputed
    a = pd.read_csv(tmp_path / "straight" / "predictions.csv")
    b = pd.read_csv(out / "predictions.csv")
    assert (a["prediction"] == b["prediction"]).all()
    np.testing.assert_allclose(a.filter(like="prob_").to_numpy(), b.filter(like="prob_").to_numpy(), atol=1e-6)
    assert resumed["uf1"] == reference["uf1"]


@pytest.mark.slow
def test_select_on_test_is_labelled_optimistic_everywhere(tmp_path, patched, capsys):
    metrics, out = run(tmp_path, "opt", "--select_on_test", "--epochs", "1")
    assert metrics["optimistic"] and metrics["selection_touched_held_out"]
    assert "OPTIMISTIC" in json.loads((out / "metrics.json").read_text())["note"]
    console = capsys.readouterr().out
    assert "OPTIMISTIC" in console and "UF1" in console
    card = (out / "README.md").read_text()
    assert "OPTIMISTIC RESULTS" in card and "optimistic" in card.split("---")[1]  # metadata too


def test_validation_subjects_come_from_the_training_side_only():
    subjects = [f"s{i % 5}" for i in range(20)]
    for fold in loso_folds(subjects):
        split = validation_split(fold, subjects, 2, seed=3)
        val, train_, test = ({subjects[i] for i in rows} for rows in (split.val, split.train, split.test))
        assert len(val) == 2 and fold.name not in val | train_ and not val & train_
        assert test == {fold.name} and sorted(split.train + split.val) == sorted(fold.train)
        assert validation_split(fold, subjects, 2, seed=3) == split  # deterministic
    with pytest.raises(ValueError, match="--val_subjects 4"):
        validation_split(loso_folds(subjects)[0], subjects, 4, seed=0)


@pytest.mark.slow
def test_epochs_chosen_on_validation_subjects(tmp_path, patched, capsys):
    metrics, out = run(tmp_path, "val", "--val_subjects", "1", "--synthetic_subjects", "4", "--epochs", "3")
    assert not metrics["optimistic"] and not metrics["selection_touched_held_out"]
    assert "validation subject" in metrics["selection"] and "validation subjects" in metrics["note"]
    predictions = pd.read_csv(out / "predictions.csv")
    assert predictions["epoch"].between(0, 2).all()
    chosen = predictions.groupby("fold")["epoch"].first()
    final = json.loads((out / "final_model.json").read_text())
    assert final["epochs"] == int(np.median(chosen)) + 1
    assert "validation subjects" in (out / "README.md").read_text()
    with pytest.raises(SystemExit):
        train.parse_args(["--val_subjects", "1", "--select_on_test"])


@pytest.mark.slow
def test_composite_reports_each_dataset(tmp_path, patched):
    metrics, _ = run(tmp_path, "comp", "--dataset", "composite", "--data_dir", "casme2=a", "samm=b", "smic=c", "--crop", "none",
                     "--no_final_model", "--epochs", "1")
    assert metrics["protocol"] == "composite" and metrics["num_folds"] == 6
    assert set(metrics["per_dataset"]) == {"casme2", "samm", "smic"}
    assert sum(p["num_samples"] for p in metrics["per_dataset"].values()) == metrics["num_samples"] == 18


def test_push_to_hub_fails_at_start_when_offline(tmp_path, patched, monkeypatch):
    import huggingface_hub

    from modeling_mer.evaluation.hub_card import HubAccessError

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "hub"
    with pytest.raises(HubAccessError, match="HF_HUB_OFFLINE"):
        train.main(["--output_dir", str(out), "--push_to_hub", "--hub_model_id", "me/mer"])
    assert not out.exists()  # failed before any data or training
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(HubAccessError, match="no Hugging Face token"):
        train.main(["--output_dir", str(out), "--push_to_hub", "--hub_model_id", "me/mer"])


@pytest.mark.slow
def test_fold_jobs_then_aggregate_equal_one_run(tmp_path, patched):
    args = ["--no_final_model", "--epochs", "1"]
    whole, _ = run(tmp_path, "whole", *args)
    for k in range(3):
        assert run(tmp_path, "jobs", *args, "--fold", str(k))[0] is None
    with pytest.raises(ValueError, match="--fold 3: this protocol has folds 0..2"):
        run(tmp_path, "jobs", *args, "--fold", "3")
    pooled, out = run(tmp_path, "jobs", *args, "--aggregate")
    assert pooled["uf1"] == whole["uf1"] and pooled["confusion_matrix"] == whole["confusion_matrix"]
    assert len(pd.read_csv(out / "predictions.csv")) == 9
    (out / "folds" / "fold_001.csv").unlink()
    with pytest.raises(FileNotFoundError, match="fold_001.csv"):
        run(tmp_path, "jobs", *args, "--aggregate")


def test_hub_upload_takes_only_model_card_and_results(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    from modeling_mer.evaluation.hub_card import push_output

    seen = {}
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kw: seen.update(kw) or "url")
    assert push_output(tmp_path, "me/mer") == "url" and seen["repo_id"] == "me/mer"
    files = ["README.md", "model.safetensors", "config.json", "preprocessor_config.json", "modeling_mer.py",
             "metrics.json", "predictions.csv", "confusion_matrix.png",
             "checkpoints/loso/checkpoints/checkpoint_3/model.safetensors", "cache/synthetic/data-00000.arrow",
             "checkpoints/x/custom.py", "frames/s01/img001.png", "folds/fold_000.csv"]
    uploaded = list(filter_repo_objects(files, allow_patterns=seen["allow_patterns"],
                                        ignore_patterns=seen["ignore_patterns"]))
    assert uploaded == files[:8]


def test_pretrained_spatial_is_loaded_once_per_run_and_keeps_the_seeded_init(tmp_path, monkeypatch):
    from transformers import ViTConfig, ViTForImageClassification

    from modeling_mer import MERConfig, MERForVideoClassification
    from modeling_mer.training import run_setup

    vit = ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=128)
    ViTForImageClassification(vit).save_pretrained(tmp_path / "vit")
    loads = []
    original = MERForVideoClassification.from_pretrained_spatial.__func__
    monkeypatch.setattr(MERForVideoClassification, "from_pretrained_spatial",
                        classmethod(lambda cls, *a, **k: loads.append(a) or original(cls, *a, **k)))
    run_setup._pretrained_spatial_template.cache_clear()
    choice = run_setup.ModelChoice("tiny", pretrained_spatial=str(tmp_path / "vit"))
    config = MERConfig.from_preset("tiny", labels=EMOTIONS)
    models = []
    for _ in range(2):
        torch.manual_seed(7)
        models.append(run_setup.build_model(choice, config))
    assert len(loads) == 1
    first, second = (m.state_dict() for m in models)
    assert all(torch.equal(first[k], second[k]) for k in first)  # the fold's random parts too
    reference = MERForVideoClassification.from_pretrained_spatial(str(tmp_path / "vit"), config).mer.spatial_encoder
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in models[0].mer.spatial_encoder.state_dict().items())
    run_setup._pretrained_spatial_template.cache_clear()
