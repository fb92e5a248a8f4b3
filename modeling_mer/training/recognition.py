"""Recognition, the first Task: one emotion label per clip, UF1/UAR over the pooled folds (MEGC).

Everything classification-specific lives here: the dataset and its stored flow (or the feature store's
frame embeddings), the class-weighted loss with flow-aware flips, what a prediction is (a class and its
probabilities per clip), the epoch score (UF1 on validation subjects; accuracy on the held-out subject
for the optimistic --select_on_test), the pooled UF1/UAR, the reports (confusion matrix, per-subject
accuracy) and the card's results. The runner drives it through `tasks.Task`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from dataset_scripts import load_mer_dataset, skipped_clips

from ..evaluation.metrics import compute_mer_metrics
from ..evaluation.reporting import pooled_metrics, summary_line, write_reports
from .clips import ArrowClips, ClipTable
from .features import StoredFeatureModel, frame_embedding_store, store_columns, whole_model
from .leakage import check_overlap
from .loop import class_weights, flip_decisions, make_loader, model_inputs
from .loop import predict as predict_probabilities
from .preprocessing import preprocess_dataset, preprocessing_skips
from .protocols import PROTOCOLS
from .run_options import RunConfig
from .run_outputs import write_skips
from .run_setup import PROCESSOR_OPTIONS, ModelChoice, base_config, build_model, build_processor, is_preset
from .tasks import Task, TaskData


def model_choice(run: RunConfig) -> ModelChoice:
    return ModelChoice(run.model, run.pretrained_spatial, run.num_frames, run.aggregation, run.dropout,
                       run.image_size, freeze_spatial=True if run.freeze_spatial else None)


def prediction_frame(
    rows: list[int], probs: np.ndarray, meta: pd.DataFrame, label_names: list[str], fold: str = "", epoch: int = -1
) -> pd.DataFrame:
    """Rows of predictions.csv: subject, clip, label, prediction, class probabilities, fold, epoch used."""
    picked = meta.iloc[rows].reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "fold": fold,
            "dataset": picked["dataset"],
            "subject": picked["subject"],
            "clip_id": picked["clip_id"],
            "label": picked["label"].astype(int),
            "prediction": probs.argmax(1).astype(int),
            "label_name": [label_names[i] for i in picked["label"]],
            "prediction_name": [label_names[i] for i in probs.argmax(1)],
            "epoch": epoch,
        }
    )
    for c, name in enumerate(label_names):
        frame[f"prob_{name}"] = probs[:, c]
    return frame


class RecognitionTask(Task):
    """One label per clip (CASME II, SAMM, SMIC, the composite, the synthetic set)."""

    name = "recognize"
    score_name = "uf1"
    held_out_score_name = "accuracy"
    example_word = "clips"

    # ------------------------------------------------------------------------------------------ data
    def prepare(self, run: RunConfig, accelerator: Any) -> TaskData:
        """The dataset, its stored flow (main process first: the others reuse the cache) and, with a frozen
        ViT, the feature store. The flow stays in the memory-mapped Arrow table (`ArrowClips` reads rows)."""
        with accelerator.main_process_first():
            raw = load_mer_dataset(run.dataset, data_dir=run.data_dir, class_set=run.class_set,
                                   cache_dir=run.cache_dir, on_error=run.on_error, **synthetic_options(run))
            label_names = list(raw.features["label"].names)
            self.choice = model_choice(run)  # the architecture and its initialisation, for every fold
            config = base_config(self.choice, label_names)
            shared = [] if is_preset(run.model) else check_overlap(run, getattr(config, "train_datasets", None))
            config.train_datasets = [run.dataset]  # the model card's licence follows the training data
            processor = build_processor(run.model, config, {k: getattr(run, k) for k in PROCESSOR_OPTIONS})
            flow = preprocess_dataset(raw, processor, num_proc=run.num_proc, on_error=run.on_error)
        report: dict[str, Any] = {}
        if run.on_error == "skip":  # every stage's skipped clips, in the report (metrics.json) too
            late = preprocessing_skips(flow)
            for skip in late:
                accelerator.print(f"skipped in preprocessing: {skip['clip']}: {skip['reason']}")
            skipped = skipped_clips(raw) + late
            if accelerator.is_main_process:
                write_skips(Path(run.output_dir), skipped)
        meta = flow.select_columns(["dataset", "subject", "clip_id", "label"]).to_pandas()
        source, store_report = self._clip_table(run, accelerator, flow, config, processor)
        if accelerator.device.type == "cpu" and run.cpu_threads is None and source.stored_features:
            torch.set_num_threads(1)  # the aggregator and head alone: small ops that only lose to thread overhead
        if store_report is not None:
            report["feature_store"] = store_report
        if run.on_error == "skip":
            report["skipped_clips"] = skipped
        labels = torch.tensor(meta["label"].to_numpy(), dtype=torch.long)
        info = {"label_names": label_names, "labels": labels, "report": report, "overlap": shared}
        return TaskData(meta=meta, config=config, processor=processor, examples=source, info=info)

    def _clip_table(self, run: RunConfig, accelerator: Any, flow: Any, config: Any, processor: Any):
        """What the batches read: the stored flow, or, with a frozen ViT, its frame embeddings computed once.

        The frozen encoder is the one every fold gets (pretrained, saved, or initialised from --seed); its
        embeddings of every clip, and of its mirror image when augmenting, are stored in the datasets cache
        (`training.features`) and reused by every fold, epoch, resumed or later run with the same data,
        processor and encoder weights.
        """
        if not config.freeze_spatial or run.no_feature_store:
            return ClipTable(flow, ("flow",)), None
        mirrored = not run.no_augment
        precision = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(str(accelerator.mixed_precision))
        with accelerator.main_process_first(), torch.random.fork_rng():
            encoder_model = build_model(self.choice, config, frozen_encoder_seed=run.seed)
            store, report = frame_embedding_store(
                flow, encoder_model, processor, mirrored, cache_dir=run.cache_dir, batch_size=run.batch_size,
                device=accelerator.device, autocast_dtype=precision,
            )
        del encoder_model
        done = "reused" if report["reused"] else f"encoded {report['frames_encoded']} frames of"
        accelerator.print(f"feature store: {done} {report['clips']} clips in {report['seconds']:.1f} s ({report['path']})")
        return ClipTable(store, store_columns(mirrored)), report

    def describe(self, data: TaskData) -> str:
        config = data.config
        return (f"{len(data.meta)} clips, classes {data.info['label_names']}; {config.num_frames} frames of "
                f"{config.image_size} px, aggregation {config.aggregation}")

    # --------------------------------------------------------------------------------------- training
    def build_model(self, run: RunConfig, data: TaskData, seed: int) -> torch.nn.Module:
        model = build_model(self.choice, data.config, frozen_encoder_seed=run.seed)
        if data.examples.stored_features:  # train the aggregator and head on the stored embeddings
            model = StoredFeatureModel(model)
        return model

    def make_loader(self, run: RunConfig, data: TaskData, rows: list[int], train: bool, seed: int):
        clips = ArrowClips(data.examples.table, data.info["labels"], rows, data.examples.columns)
        return make_loader(clips, run.batch_size, shuffle=train, seed=seed)

    def begin_fold(self, run: RunConfig, data: TaskData, rows: list[int], seed: int) -> None:
        labels = data.info["labels"]
        self.weights = class_weights(labels[rows].tolist(), data.config.num_labels) if run.class_balance == "loss" else None
        self.augment, self.seed = not run.no_augment, seed

    def loss(self, model: torch.nn.Module, batch: Any, data: TaskData, epoch: int = 0) -> torch.Tensor:
        """The model's own class-weighted loss; the flips are drawn from (seed, epoch, row)."""
        flip = flip_decisions(batch["row"], self.seed, epoch, len(data.meta)) if self.augment else None
        inputs = model_inputs(batch, data.processor, flip)
        # the model's own loss is the objective: the released model reports what it was trained on
        return model(**inputs, labels=batch["labels"], class_weights=self.weights).loss

    def export_model(self, model: torch.nn.Module) -> Any:
        return whole_model(model)

    # ------------------------------------------------------------------------------------- predictions
    def predict(self, accelerator: Any, model: torch.nn.Module, loader: Any, data: TaskData, rows: list[int]):
        found, probs = predict_probabilities(accelerator, model, loader, data.processor)
        return prediction_frame(found, probs, data.meta, data.info["label_names"])

    def epoch_score(self, predictions: pd.DataFrame, data: TaskData) -> float:
        """UF1 (validation subjects)."""
        return compute_mer_metrics(predictions["label"].tolist(), predictions["prediction"].tolist(),
                                   data.info["label_names"])["uf1"]

    def held_out_score(self, predictions: pd.DataFrame, data: TaskData) -> float:
        """Accuracy on the held-out subject (--select_on_test: the official code's practice, optimistic)."""
        return float((predictions["prediction"] == predictions["label"]).mean())

    def fold_scores(self, predictions: pd.DataFrame, data: TaskData) -> dict[str, float | None]:
        accuracy = float((predictions["label"] == predictions["prediction"]).mean())
        uf1 = self.epoch_score(predictions, data) if len(predictions) else None
        return {"accuracy": accuracy, "uf1": uf1}

    # ----------------------------------------------------------------------------------------- reports
    def pooled_metrics(self, predictions: pd.DataFrame, data: TaskData, info: dict[str, Any]) -> dict[str, Any]:
        by_dataset = PROTOCOLS[info["protocol"]].several_datasets
        return pooled_metrics(predictions, data.info["label_names"], info, by_dataset=by_dataset)

    def summary_line(self, metrics: dict[str, Any]) -> str:
        return summary_line(metrics)

    def write_reports(self, output_dir: Path, predictions: pd.DataFrame, metrics: dict[str, Any]) -> None:
        write_reports(output_dir, predictions, metrics)

    def card_results(self, metrics: dict[str, Any]) -> list:
        """UF1 and UAR, pooled and per dataset, as the card's model-index (the card code's own builder)."""
        from ..evaluation.hub_card import recognition_results

        return recognition_results(metrics)

    def card_run(self, run: RunConfig, data: TaskData) -> dict[str, Any]:
        config, processor = data.config, data.processor
        return {"aggregation": config.aggregation, "num_frames": config.num_frames, "image_size": config.image_size,
                "augment": not run.no_augment,
                **{k: getattr(processor, k) for k in type(processor).option_names}}  # the processor's one list


def synthetic_options(run: RunConfig) -> dict[str, Any]:
    """load_mer_dataset's options for the synthetic set (none for the others)."""
    if run.dataset != "synthetic":
        return {}
    knobs = {"num_subjects": run.synthetic_subjects, "clips_per_subject": run.synthetic_clips,
             "seed": run.synthetic_seed}
    options = {k: v for k, v in knobs.items() if v is not None}
    if run.synthetic_mode == "realistic":  # rendered: the frames apex sampling reads (onset, apex window, offset)
        options.update(mode="realistic", apex_window=max(16, run.num_frames or 0))
    return options


__all__ = ["RecognitionTask", "model_choice", "prediction_frame", "synthetic_options"]
