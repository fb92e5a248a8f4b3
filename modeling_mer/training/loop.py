"""The training loop: an epoch of any task's loss, and recognition's batches, flow-aware augmentation, prediction.

Why the pieces look as they do (the folds are in `protocols.py`, the epoch choice in `selection.py`):
* flow is stored once (float16, `preprocess_dataset`) and encoded per batch (`encode_flow`), so the
  horizontal flip can act on the flow itself: flip W and negate u, as a mirrored face moves. Batches are
  read from the memory-mapped table (`clips.ArrowClips`); with a frozen ViT they carry its stored frame
  embeddings instead, plain and mirrored (`features.py`), and `model_inputs` picks per clip.
* flips are drawn from (seed, epoch, row), not from a running RNG, and the loss (the model's own,
  `clip_weighted_cross_entropy`, computed by `recognition.RecognitionTask.loss`) is a class-weighted mean
  over clips (not over weights): a 2-process run then computes the same updates as one process with the
  same global batch. `train_one_epoch` takes the task's loss as a function, so every task shares it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..processing_mer import MERImageProcessor


class FlowClips(Dataset):
    """Rows of flow held in one in-memory tensor: (row index, flow (T, C, S, S), label).

    train.py reads `clips.ArrowClips` (rows from the memory-mapped table) instead; this stays as the in-memory
    reference the tests and `bench/data_memory.py` compare it with.
    """

    def __init__(self, flows: torch.Tensor, labels: torch.Tensor, rows: Sequence[int]):
        self.flows, self.labels, self.rows = flows, labels, list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = self.rows[i]
        return {"row": torch.tensor(row), "flow": self.flows[row], "labels": self.labels[row]}


def make_loader(clips: Dataset, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """A plain loader; `accelerator.prepare` shards it (with a seedable sampler for shuffling)."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(clips, batch_size=batch_size, shuffle=shuffle, drop_last=False, generator=generator)


def hflip_flow(flow: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the clips selected by `flip` (B,): flip W; for 2-channel flow also negate u (channel 0)."""
    if not bool(flip.any()):
        return flow
    flow = flow.clone()
    mirrored = flow[flip].flip(-1)
    if flow.shape[-3] == 2:
        mirrored[..., 0, :, :] = -mirrored[..., 0, :, :]
    flow[flip] = mirrored
    return flow


def flip_decisions(rows: torch.Tensor, seed: int, epoch: int, total_rows: int) -> torch.Tensor:
    """Per-clip coin flips keyed on (seed, epoch, row): independent of batch layout and process count."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    coins = torch.rand(total_rows, generator=generator) < 0.5
    return coins[rows.cpu()].to(rows.device)


def model_inputs(
    batch: dict[str, torch.Tensor], processor: MERImageProcessor, flip: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """A batch -> the model's keyword inputs: encoded flow, or stored frame embeddings (the feature store).

    `flip` (B,) mirrors the chosen clips: the flow is flipped before encoding, or the embeddings of the
    mirrored flow, stored beside the plain ones, are taken for those clips; the same inputs either way.
    """
    if "embeddings" in batch:
        embeddings = batch["embeddings"].float()
        if flip is not None and bool(flip.any()):
            embeddings = torch.where(flip[:, None, None], batch["embeddings_mirrored"].float(), embeddings)
        return {"frame_embeddings": embeddings}
    flow = batch["flow"].float()
    if flip is not None:
        flow = hflip_flow(flow, flip)
    return {"pixel_values": processor.encode_flow(flow)}


def class_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """Inverse class frequency of the training fold, scaled so that the mean clip weight is 1.

    Classes absent from the fold get weight 0 (no clip carries them anyway).
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = int((counts > 0).sum())
    weights = np.where(counts > 0, len(labels) / (present * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def train_one_epoch(
    accelerator: Any,
    model: torch.nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    progress: Any = None,
    on_step: Callable[[torch.Tensor], None] | None = None,
) -> float:
    """One pass; returns the mean training loss of this process's batches.

    `loss_fn(model, batch)` is the task's objective (`Task.loss`); `on_step(loss)` is called after every
    optimizer step (experiment tracking), on every process.
    """
    model.train()
    total, steps = 0.0, 0
    for batch in loader:
        with accelerator.accumulate(model):
            loss = loss_fn(model, batch)
            accelerator.backward(loss)
            optimizer.step()
            if accelerator.sync_gradients:
                scheduler.step()
                if on_step is not None:
                    on_step(loss)
            optimizer.zero_grad()
        total += float(loss.detach())
        steps += 1
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{total / steps:.3f}")
    return total / max(steps, 1)


@torch.no_grad()
def predict(
    accelerator: Any, model: torch.nn.Module, loader: DataLoader, processor: MERImageProcessor
) -> tuple[list[int], np.ndarray]:
    """(rows, class probabilities) of every clip of the loader, gathered from all processes once each."""
    model.eval()
    rows, probs = [], []
    for batch in loader:
        logits = model(**model_inputs(batch, processor)).logits
        row, prob = accelerator.gather_for_metrics((batch["row"], logits.float().softmax(-1)))
        rows.extend(int(r) for r in row.cpu())
        probs.append(prob.cpu().numpy())
    order = np.argsort(rows, kind="stable")
    return [rows[i] for i in order], np.concatenate(probs)[order]


__all__ = [
    "FlowClips",
    "class_weights",
    "flip_decisions",
    "hflip_flow",
    "make_loader",
    "model_inputs",
    "predict",
    "train_one_epoch",
]
