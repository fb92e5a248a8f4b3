"""The runner's extension points are real (issue 18): a protocol added with one registration appears in
train.py's choices and runs end to end; a second Task (regression of one number per example, nothing to
do with micro-expressions) runs LOSO end to end through the same runner, checkpoints and resume included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_train import FAST, tiny_synthetic
from torch.utils.data import DataLoader, TensorDataset

import train
from modeling_mer.training import recognition
from modeling_mer.training.protocols import PROTOCOLS, Fold, Protocol, register_protocol
from modeling_mer.training.runner import Runner
from modeling_mer.training.tasks import TASKS, Task, TaskData


# ------------------------------------------------------------------------------------------- protocol
def halves(subjects, datasets, train_on, test_on):
    """Two folds: the first half of the sorted subjects held out, then the second half."""
    names = sorted(set(subjects))
    parts = [names[: len(names) // 2], names[len(names) // 2:]]
    return [Fold(i, f"half{i + 1}", str(datasets[0]), "", [r for r, s in enumerate(subjects) if s not in part],
                 [r for r, s in enumerate(subjects) if s in part]) for i, part in enumerate(parts)]


@pytest.fixture
def halves_protocol():
    register_protocol(Protocol("halves", "two-fold by subject halves", halves))
    yield
    del PROTOCOLS["halves"]


def test_a_registered_protocol_is_a_choice_and_runs_end_to_end(tmp_path, monkeypatch, halves_protocol):
    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)
    choices = next(a.choices for a in train.build_parser()._actions if a.dest == "protocol")
    assert "halves" in choices and "two-fold by subject halves" in train.build_parser().format_help()
    out = tmp_path / "halves"
    metrics = train.main([*FAST, "--epochs", "1", "--protocol", "halves", "--no_final_model", "--output_dir", str(out)])
    assert metrics["protocol"] == "halves" and metrics["protocol_description"] == "two-fold by subject halves"
    assert metrics["num_folds"] == 2 and metrics["num_samples"] == 9
    predictions = pd.read_csv(out / "predictions.csv")
    assert set(predictions["fold"]) == {"half1", "half2"}
    assert set(predictions.loc[predictions["fold"] == "half1", "subject"]) == {"synth_s01"}
    with pytest.raises(SystemExit):  # its command-line rules are the registry's: one dataset
        train.parse_args(["--protocol", "halves", "--dataset", "composite", "--data_dir", "casme2=a", "samm=b", "smic=c"])


# ------------------------------------------------------------------------------------------ toy task
class Regressor(torch.nn.Module):
    """A linear model that saves itself like a transformers model (what the runner's final model needs)."""

    def __init__(self, features: int):
        super().__init__()
        self.linear = torch.nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)

    def save_pretrained(self, folder: Path) -> None:
        torch.save(self.state_dict(), Path(folder) / "regressor.pt")


class Scaler:
    """The toy's "processor": the feature means, saved beside the model."""

    def __init__(self, mean: list[float]):
        self.mean = mean

    def save_pretrained(self, folder: Path) -> None:
        (Path(folder) / "scaler.json").write_text(json.dumps({"mean": self.mean}))


class ToyRegressionTask(Task):
    """y = w . x + noise per example, 4 subjects x 8 examples; scored by mean absolute error."""

    name = "toy_regression"
    score_name = "neg_mae"
    example_word = "examples"

    def prepare(self, run, accelerator):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(32, 3)).astype(np.float32)
        y = (x @ np.array([1.5, -2.0, 0.5], dtype=np.float32) + 0.05 * rng.normal(size=32)).astype(np.float32)
        meta = pd.DataFrame({"dataset": "toy", "subject": [f"p{i // 8}" for i in range(32)],
                             "example": [f"e{i:02d}" for i in range(32)], "target": y})
        examples = TensorDataset(torch.arange(32), torch.from_numpy(x), torch.from_numpy(y))
        return TaskData(meta=meta, config=None, processor=Scaler(x.mean(0).tolist()), examples=examples)

    def build_model(self, run, data, seed):
        return Regressor(3)

    def make_loader(self, run, data, rows, train, seed):
        subset = torch.utils.data.Subset(data.examples, rows)
        generator = torch.Generator().manual_seed(seed) if train else None
        return DataLoader(subset, batch_size=4, shuffle=train, generator=generator)

    def loss(self, model, batch, data, epoch=0):
        _, x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)

    @torch.no_grad()
    def predict(self, accelerator, model, loader, data, rows):
        model.eval()
        found, values = [], []
        for row, x, _ in loader:
            row, value = accelerator.gather_for_metrics((row, model(x)))
            found += row.tolist()
            values += value.tolist()
        picked = data.meta.iloc[found].reset_index(drop=True)
        return pd.DataFrame({"fold": "", "subject": picked["subject"], "example": picked["example"],
                             "target": picked["target"], "prediction": values, "epoch": -1})

    def epoch_score(self, predictions, data):
        return -float((predictions["prediction"] - predictions["target"]).abs().mean())

    def pooled_metrics(self, predictions, data, info):
        error = predictions["prediction"] - predictions["target"]
        return {"mae": float(error.abs().mean()), "rmse": float(np.sqrt((error**2).mean())),
                "num_samples": len(predictions), "num_folds": int(predictions["fold"].nunique()), **info}

    def summary_line(self, metrics):
        return f"{metrics['protocol']}: MAE {metrics['mae']:.4f}  RMSE {metrics['rmse']:.4f}"

    def write_reports(self, output_dir, predictions, metrics):
        predictions.to_csv(output_dir / "predictions.csv", index=False)
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))

    def card_results(self, metrics):
        from huggingface_hub import EvalResult

        return [EvalResult(task_type="tabular-regression", dataset_type="toy", dataset_name="toy",
                           metric_type="mae", metric_value=round(metrics["mae"], 4))]

    def model_card(self, run, data, metrics, repo_or_path):
        from huggingface_hub import ModelCard, ModelCardData

        card_data = ModelCardData(license="apache-2.0", model_name="toy", eval_results=self.card_results(metrics))
        return ModelCard.from_template(card_data, template_str="---\n{{ card_data }}\n---\n# toy regressor\n")


@pytest.fixture
def toy_task(monkeypatch):
    monkeypatch.setitem(TASKS, "toy_regression", ToyRegressionTask)


@pytest.mark.slow
def test_a_second_task_runs_loso_end_to_end_through_the_runner(tmp_path, toy_task, capsys, monkeypatch):
    assert "toy_regression" in next(a.choices for a in train.build_parser()._actions if a.dest == "task")
    args = ["--task", "toy_regression", "--epochs", "12", "--lr", "0.3", "--seed", "1"]
    out = tmp_path / "toy"
    saved = []  # the runner's on_saved listeners hear of every checkpoint and fold file once visible
    start = Runner.start.__func__
    monkeypatch.setattr(Runner, "start", classmethod(
        lambda cls, *a, **k: (lambda r: r.on_saved.append(lambda kind, path: saved.append((kind, path.exists()))) or r)(
            start(cls, *a, **k))))
    metrics = train.main([*args, "--output_dir", str(out)])
    assert saved.count(("fold", True)) == 4 and saved.count(("checkpoint", True)) == 5 * 12 and len(saved) == 64
    assert metrics["num_folds"] == 4 and metrics["num_samples"] == 32 and metrics["protocol"] == "loso"
    baseline = float(np.abs(pd.read_csv(out / "predictions.csv")["target"]).mean())  # predicting 0
    assert metrics["mae"] < 0.5 * baseline  # it learned: the runner trained the task's model on its loss
    predictions = pd.read_csv(out / "predictions.csv")
    assert (predictions["fold"] == predictions["subject"]).all() and (predictions["epoch"] == 11).all()
    assert sorted(p.name for p in (out / "folds").iterdir()) == [f"fold_00{i}.csv" for i in range(4)]
    assert (out / "regressor.pt").exists() and (out / "scaler.json").exists() and (out / "final_model.json").exists()
    assert "mae" in (out / "README.md").read_text() and "toy regressor" in (out / "README.md").read_text()
    assert "loso: MAE" in capsys.readouterr().out
    # the runner's machinery serves it unchanged: a stopped run resumes to the same predictions,
    # and epochs chosen on validation subjects use the task's own score
    assert train.main([*args, "--output_dir", str(tmp_path / "cut"), "--stop_after", "15", "--no_final_model"]) is None
    resumed = train.main([*args, "--output_dir", str(tmp_path / "cut"), "--resume", "--no_final_model"])
    assert resumed["mae"] == metrics["mae"]
    val = [*args, "--val_subjects", "1", "--no_final_model"]
    chosen = train.main([*val, "--output_dir", str(tmp_path / "val")])
    assert chosen["epoch_selection"] == "validation" and chosen["num_samples"] == 32
    # stopped inside a fold, the best epoch's predictions so far come back from its checkpoint
    assert train.main([*val, "--output_dir", str(tmp_path / "val_cut"), "--stop_after", "17"]) is None
    again = train.main([*val, "--output_dir", str(tmp_path / "val_cut"), "--resume"])
    assert again["mae"] == chosen["mae"]
    assert (tmp_path / "val" / "predictions.csv").read_bytes() == (tmp_path / "val_cut" / "predictions.csv").read_bytes()
