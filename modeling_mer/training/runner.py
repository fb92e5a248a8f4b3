"""The task-agnostic runner: folds -> train -> predict -> pool -> final model -> card, for any `Task`.

`Runner` holds what the steps of one run share (the resolved `RunConfig`, the task, the accelerator, the
trackers, the epoch budget of --stop_after) and does each step; train.py's `main` calls them in order,
which is the protocol:

    runner = Runner.start(run, task)          accelerator, trackers, settings checked, leftovers removed
    data = runner.prepare()                   task.prepare: the data, stored once; the settings stored
    folds = runner.folds(data)                the protocol's folds (+ validation subjects), checked
    for fold in runner.todo(folds):           --fold / --aggregate / folds kept from a stopped run
        runner.train_and_predict(data, fold, len(folds))    a fresh model; predictions -> folds/fold_NNN.csv
    metrics = runner.pool(data, folds)        pooled figures, reports
    runner.final_model(data, metrics)         every example, same recipe; model, processor, card, push

Everything specific to what is learned is the task's (`tasks.Task`): the runner never looks inside a batch
or a prediction. Every epoch is checkpointed (`checkpoints.Checkpoints`), so --resume continues where a
killed run stopped; finished folds and the final model are `run_outputs`'.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from .checkpoints import FINAL, Checkpoints, RunStateError, check_run_args, clean_incomplete
from .loop import train_one_epoch
from .protocols import Fold, describe, make_folds, subject_keys, validation_split
from .run_options import REAL_PRESET, RunConfig
from .run_outputs import FINAL_MARKER, fold_file, read_folds, save_final_model, write_fold, write_staged
from .run_setup import OptimizerSettings, make_optimizer, make_scheduler
from .selection import EpochSelection
from .tasks import Task, TaskData
from .tracking import RunTracker, fold_tag, hyperparameters, pooled_scalars

MODEL_CARD_TEMPLATE = Path(__file__).resolve().parents[2] / "model_card.md"


class StopRequested(Exception):
    """--stop_after reached: the run stops as if killed, leaving its checkpoints for --resume."""


def optimizer_settings(run: RunConfig) -> OptimizerSettings:
    return OptimizerSettings(run.optimizer, run.lr, run.weight_decay, run.momentum, run.warmup_ratio,
                             run.gradient_accumulation_steps)


@dataclass
class Runner:
    run: RunConfig
    task: Task
    accelerator: Accelerator
    tracker: RunTracker
    started: float
    selection: EpochSelection
    epochs_done: int = 0  # this invocation's epochs, for --stop_after
    info: dict[str, Any] = field(default_factory=dict)  # the run's labels for metrics.json
    # Called on the main process with ("checkpoint" | "fold", path) once a checkpoint or a fold file is
    # visible (complete): e.g. an uploader that pushes the run state while it trains.
    on_saved: list[Callable[[str, Path], None]] = field(default_factory=list)
    hub: Any = None  # hub_sync.HubSync with --push_to_hub (main process): uploads as the saves complete

    @property
    def output_dir(self) -> Path:
        return Path(self.run.output_dir)

    def print(self, *args: Any) -> None:
        self.accelerator.print(*args)

    # ------------------------------------------------------------------------------------------ start
    @classmethod
    def start(cls, run: RunConfig, task: Task, started: float | None = None) -> Runner:
        """The accelerator and trackers; the Hub and the output folder checked before anything slow or
        written; what a killed run left half-written removed."""
        output_dir = Path(run.output_dir)
        accelerator = Accelerator(
            gradient_accumulation_steps=run.gradient_accumulation_steps,
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
            # Checkpoint naming and rotation are checkpoints.Checkpoints' (atomic), not accelerate's.
            project_config=ProjectConfiguration(project_dir=str(output_dir / "checkpoints" / run.run_name)),
            step_scheduler_with_optimizer=False,  # stepped once per optimizer step, whatever the process count
            log_with=run.report_to or None,
        )
        if accelerator.device.type == "cpu" and (run.cpu_threads or run.model in ("tiny", REAL_PRESET)):
            torch.set_num_threads(run.cpu_threads or 1)
        if run.push_to_hub and not run.dry_run:  # before anything slow: no token or no network must not cost a run
            from ..evaluation.hub_card import check_hub_access

            accelerator.print(f"Hub: {check_hub_access(run.hub_model_id, private=not run.hub_public)}")
        runner = cls(run, task, accelerator, RunTracker(accelerator, enabled=bool(run.report_to)),
                     time.time() if started is None else started, run.selection())
        if run.resume_from_hub:  # a fresh machine: the run state the Hub holds, then --resume as usual
            runner.fetch_run_state()
        check_run_args(output_dir, run.run_args(), run.resuming, write=False)  # refuse before anything is written
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:  # what a killed write left is never read: remove it
            removed = Checkpoints(accelerator.project_dir).clean() + clean_incomplete(output_dir, run.fold)
            if removed:
                accelerator.print(f"removed what a stopped run left half-written: {', '.join(removed)}")
        if run.push_to_hub and accelerator.is_main_process:  # --hub_strategy: uploads in the background
            from .hub_sync import HubSync

            runner.hub = HubSync.for_run(output_dir, run.hub_model_id, run.hub_strategy, dry_run=run.dry_run,
                                         report=accelerator.print)
            runner.on_saved.append(runner.hub.on_saved)
        accelerator.wait_for_everyone()
        return runner

    def fetch_run_state(self) -> None:
        """--resume_from_hub: the main process downloads the run state into output_dir; the others wait."""
        if self.accelerator.is_main_process:
            from .hub_transfer import download_run_state

            names = download_run_state(self.run.resume_from_hub, self.output_dir)
            self.print(f"Hub: the run state of {self.run.resume_from_hub} ({len(names)} files) is in {self.output_dir}")
        self.accelerator.wait_for_everyone()

    def prepare(self) -> TaskData:
        """The task's data (stored once, cached); then the settings are stored in run_args.json and the
        trackers start (a run refused or failed before this point leaves nothing in output_dir)."""
        run, accelerator = self.run, self.accelerator
        data = self.task.prepare(run, accelerator)
        if accelerator.is_main_process:
            check_run_args(self.output_dir, run.run_args(), True, write=True)
        accelerator.wait_for_everyone()
        if run.report_to:  # TensorBoard: output_dir/logs/<output_dir's name>/; wandb, trackio: that project, this run
            accelerator.project_configuration.logging_dir = str(self.output_dir / "logs")
            accelerator.init_trackers(self.output_dir.resolve().name, config=hyperparameters(run.run_args()),
                                      init_kwargs={"wandb": {"name": run.run_name}, "trackio": {"name": run.run_name}})
        return data

    def folds(self, data: TaskData) -> list[Fold]:
        """The protocol's folds over the examples' subjects (with --val_subjects set aside), and the run's labels."""
        run, meta = self.run, data.meta
        subjects, datasets_of = meta["subject"].tolist(), meta["dataset"].tolist()
        folds = make_folds(run.protocol, subjects, datasets_of, run.train_on or (), run.test_on or ())
        if run.val_subjects:
            keys = subject_keys(subjects, datasets_of)
            folds = [validation_split(fold, keys, run.val_subjects, run.seed) for fold in folds]
        protocol_text = describe(run.protocol, run.train_on or (), run.test_on or ())
        self.info = self._labels(protocol_text, data.info.get("overlap") or [])
        self.print(f"{run.dataset}, {protocol_text}: {len(folds)} folds, {self.task.describe(data)}; "
                   f"{self.accelerator.num_processes} process(es), mixed precision {self.accelerator.mixed_precision}")
        if run.fold is not None and not 0 <= run.fold < len(folds):
            raise ValueError(f"--fold {run.fold}: this protocol has folds 0..{len(folds) - 1} ({len(folds)} folds)")
        if run.select_on_test:
            self.print("WARNING: --select_on_test picks epochs on the held-out subject: results are OPTIMISTIC")
        return folds

    def _labels(self, protocol_text: str, overlap: list[str]) -> dict[str, Any]:
        """What metrics.json says about how the figures were obtained (optimistic ones say so)."""
        run, selection = self.run, self.selection
        info = {"dataset": run.dataset, "protocol": run.protocol, "protocol_description": protocol_text,
                "train_on": run.train_on, "test_on": run.test_on, "epoch_selection": selection.strategy,
                "select_on_test": selection.optimistic, "val_subjects": run.val_subjects,
                "selection": selection.description, "optimistic": selection.optimistic, "note": selection.note}
        if overlap:  # --allow_overlap: the starting model had seen the evaluated data
            note = (f"OPTIMISTIC: the starting model ({run.model}) was trained on {', '.join(overlap)}, which this "
                    "run evaluates (--allow_overlap); these figures overestimate performance on unseen subjects.")
            info.update(optimistic=True, note=f"{note} {selection.note}", starting_model_overlap=overlap)
            self.print(f"WARNING: {note}")
        return info

    def todo(self, folds: list[Fold]) -> list[Fold]:
        """The folds this invocation trains: --fold K alone, none with --aggregate, and not those kept."""
        chosen = [folds[self.run.fold]] if self.run.fold is not None else ([] if self.run.aggregate else folds)
        todo = []
        for fold in chosen:
            if fold_file(self.output_dir, fold.index).exists():
                self.print(f"fold {fold.index + 1}/{len(folds)} ({fold.name}): kept from the previous run")
            else:
                todo.append(fold)
        return todo

    # ------------------------------------------------------------------------------------------- folds
    def train_and_predict(self, data: TaskData, fold: Fold, total: int) -> None:
        """Train a fresh model on the fold's training examples, predict its held-out ones, write the fold file."""
        model, frame, epoch = self.train_fold(data, fold, fold.index, self.selection)
        frame = with_fold_columns(frame, fold.name, epoch)
        if self.accelerator.is_main_process:
            write_fold(self.output_dir, fold.index, frame)
            self._saved("fold", fold_file(self.output_dir, fold.index))
        scores = self.task.fold_scores(frame, data)
        tag = fold_tag(fold.name)
        self.tracker.log({f"{tag}/test/{name}": value for name, value in scores.items()})
        first = next(((k, v) for k, v in scores.items() if v is not None), None)
        shown = f", {first[0]} {first[1]:.3f}" if first else ""
        self.print(f"fold {fold.index + 1}/{total} ({fold.name}): {len(frame)} {self.task.example_word}{shown}")
        self.accelerator.free_memory(model)

    def train_fold(self, data: TaskData, fold: Fold, fold_id: int | str, selection: EpochSelection):
        """Train a fresh model on `fold.train` (resuming from this fold's checkpoint if any); predict `fold.test`.

        Returns the model, the held-out predictions (None when nothing is held out) and the epoch whose
        predictions they are (the last one, or the one `selection` chose).
        """
        run, accelerator, task = self.run, self.accelerator, self.task
        seed = run.seed + (fold.index if fold_id != FINAL else 10_000)
        set_seed(seed)
        model = task.build_model(run, data, seed)
        settings = optimizer_settings(run)
        optimizer = make_optimizer(settings, model)
        train_loader = task.make_loader(run, data, fold.train, True, seed)
        test_loader = task.make_loader(run, data, fold.test, False, seed)
        model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
        test_loader = accelerator.prepare(test_loader) if fold.test else None
        val_loader = accelerator.prepare(task.make_loader(run, data, fold.val, False, seed)) if fold.val else None
        scheduler = accelerator.prepare(make_scheduler(settings, optimizer, selection.epochs, len(train_loader)))
        task.begin_fold(run, data, fold.train, seed)
        checkpoints = Checkpoints(accelerator.project_dir)
        start, best = self._resume_point(checkpoints, fold_id, selection)
        prefix = fold_tag(fold.name, final=fold_id == FINAL)
        loaders = (val_loader, test_loader)
        bar = tqdm(total=(selection.epochs - start) * len(train_loader), desc=f"fold {fold.name}", leave=False,
                   disable=not accelerator.is_local_main_process)
        for epoch in range(start, selection.epochs):
            train_loader.set_epoch(epoch)
            bar.set_description(f"fold {fold.name} epoch {epoch + 1}/{selection.epochs}")
            loss = train_one_epoch(
                accelerator, model, train_loader, optimizer, scheduler,
                lambda m, batch, epoch=epoch: task.loss(m, batch, data, epoch), bar,
                on_step=lambda step_loss: self.tracker.train_step(prefix, step_loss, scheduler.get_last_lr()[0]),
            )
            self.tracker.log({f"{prefix}/epoch/train_loss": loss})
            if selection.scores_every_epoch and test_loader is not None:
                best = self._score_epoch(model, data, fold, selection, epoch, best, loaders, prefix)
            self._saved("checkpoint", checkpoints.save(accelerator, {"fold": fold_id, "epoch": epoch, "loss": loss,
                                                                     "best": best}))
            self._count_epoch(bar, f"{fold_id} epoch {epoch}")
        bar.close()
        if test_loader is None:
            return model, None, selection.epochs - 1
        if selection.scores_every_epoch and best is not None:
            return model, pd.DataFrame(best["predictions"]), best["epoch"]
        return model, task.predict(accelerator, model, test_loader, data, fold.test), selection.epochs - 1

    def _saved(self, kind: str, path: Path) -> None:
        if self.accelerator.is_main_process:
            for listener in self.on_saved:
                listener(kind, path)

    def _resume_point(self, checkpoints: Checkpoints, fold_id: int | str, selection: EpochSelection):
        """(first epoch to train, best epoch so far) from this fold's newest checkpoint, if any."""
        found = checkpoints.latest()
        if found is None or found[1]["fold"] != fold_id:
            return 0, None
        best = found[1].get("best")
        if best is not None and "predictions" not in best:  # "rows"/"probs": an older train.py's selection state
            raise RunStateError(f"{found[0]}: written by an older train.py (its epoch selection kept class "
                                "probabilities only); resume with that version, or remove the checkpoints/ folder "
                                "to retrain the unfinished fold (finished folds in folds/ are kept)")
        self.accelerator.load_state(str(found[0]))
        start = found[1]["epoch"] + 1
        self.print(f"  resumed {fold_id} from {found[0].name} (epoch {start} of {selection.epochs})")
        return start, best

    def _count_epoch(self, bar: Any, where: str) -> None:
        self.epochs_done += 1
        if self.run.stop_after is not None and self.epochs_done >= self.run.stop_after:
            bar.close()
            raise StopRequested(f"--stop_after {self.run.stop_after}: stopped after {where}")

    def _score_epoch(self, model, data, fold, selection, epoch, best, loaders, prefix):
        """The selection's score of this epoch; keeps the held-out predictions of the best epoch so far.

        validation: the task's epoch score on the validation subjects alone, and the held-out predictions
        are computed only for an epoch that improves on it (the others are never looked at); held_out:
        the task's held-out score on the held-out subject itself (optimistic).
        """
        task, accelerator = self.task, self.accelerator
        val_loader, test_loader = loaders
        if selection.strategy == "validation":
            score = task.epoch_score(task.predict(accelerator, model, val_loader, data, fold.val), data)
            self.tracker.log({f"{prefix}/epoch/val_{task.score_name}": score})
            if not selection.improved(score, best):
                return best
            frame = task.predict(accelerator, model, test_loader, data, fold.test)
        else:
            frame = task.predict(accelerator, model, test_loader, data, fold.test)
            score = task.held_out_score(frame, data)
            self.tracker.log({f"{prefix}/epoch/held_out_{task.held_out_score_name}": score})
            if not selection.improved(score, best):
                return best
        return {"epoch": epoch, "score": score, "predictions": frame.to_dict(orient="list")}

    # ------------------------------------------------------------------------------------------- pool
    def pool(self, data: TaskData, folds: list[Fold]) -> dict[str, Any]:
        """Every fold's predictions pooled: the task's figures and reports."""
        predictions = read_folds(self.output_dir, [f.index for f in folds])
        metrics = self.task.pooled_metrics(predictions, data, self.info)
        metrics["seconds"] = round(time.time() - self.started, 1)
        metrics.update(data.info.get("report") or {})
        if self.accelerator.is_main_process:
            write_staged(self.output_dir, "reports", lambda folder: self.task.write_reports(folder, predictions, metrics))
        self.print(self.task.summary_line(metrics))
        self.tracker.log(pooled_scalars(metrics))
        return metrics

    # ------------------------------------------------------------------------------------ final model
    def final_model(self, data: TaskData, metrics: dict[str, Any]) -> None:
        """Train on every example, save model + processor + card in output_dir, push if asked."""
        accelerator, output_dir = self.accelerator, self.output_dir
        if (output_dir / FINAL_MARKER).exists():
            self.print("final model: kept from the previous run")
        else:
            everyone = Fold(-1, FINAL, "", "", list(range(len(data.meta))), [])
            chosen = pd.read_csv(output_dir / "predictions.csv").groupby("fold")["epoch"].first().tolist()
            final = EpochSelection("fixed", self.selection.final_epochs(chosen))
            if self.selection.strategy == "validation":  # no held-out subject left to choose on
                self.print(f"final model: {final.epochs} epochs (median of the folds' validation choices)")
            model, _, _ = self.train_fold(data, everyone, FINAL, final)
            if accelerator.is_main_process:  # final_model.json is written once every file is in place
                save_final_model(output_dir, self.task.export_model(accelerator.unwrap_model(model)), data.processor,
                                 {"trained_on": "all clips", "epochs": final.epochs})
            accelerator.free_memory(model)
        if accelerator.is_main_process:
            self.write_card(data, metrics)
            if self.hub is not None:  # after the saves still uploading; close() waits for it
                from ..evaluation.reporting import HUB_FILES

                self.hub.push_final(HUB_FILES)
        accelerator.wait_for_everyone()

    def write_card(self, data: TaskData, metrics: dict[str, Any]) -> None:
        """README.md: the task's model card, or the package's card with the task's results."""
        repo_or_path = self.run.hub_model_id or str(self.output_dir)
        card = self.task.model_card(self.run, data, metrics, repo_or_path)
        if card is None:
            from ..evaluation.hub_card import render_card

            described = {**self.run.run_args(), **self.task.card_run(self.run, data)}
            card = render_card(MODEL_CARD_TEMPLATE, metrics, described, repo_or_path,
                               eval_results=self.task.card_results(metrics), processor=data.processor)
        write_staged(self.output_dir, "card", lambda folder: card.save(folder / "README.md"))

    def close(self) -> None:
        self.accelerator.end_training()  # flush and close the trackers
        if self.hub is not None:  # the last uploads awaited; what never reached the Hub is named in one line
            hub, self.hub = self.hub, None
            failing = sys.exc_info()[1]  # close() runs in train.py's finally: an error may be on its way out
            try:
                hub.close()
            except Exception as err:  # hub_sync.HubSyncError
                if failing is None:
                    raise
                self.print(str(err))
            else:
                self.print(hub.summary())

    def done_line(self) -> str:
        return f"done in {time.time() - self.started:.0f} s; outputs in {self.output_dir}"


def with_fold_columns(frame: pd.DataFrame | None, fold: str, epoch: int) -> pd.DataFrame:
    """A fold's prediction rows with its name (first column) and the epoch used (in place if present)."""
    frame = pd.DataFrame() if frame is None else frame.copy()
    if "fold" in frame:
        frame["fold"] = fold
    else:
        frame.insert(0, "fold", fold)
    frame["epoch"] = epoch
    return frame


__all__ = ["MODEL_CARD_TEMPLATE", "Runner", "StopRequested", "optimizer_settings", "with_fold_columns"]
