"""Training batches read from the memory-mapped Arrow table, row by row, instead of one in-memory tensor.

A preprocessed dataset (`preprocess_dataset`) lives in an Arrow file that `datasets` memory-maps: its flow
(at 384 px, 11 frames: ~6.5 MB per clip) need not fit in memory. `ArrowClips` takes only the rows of a
batch out of it (one Arrow `take` per batch through `__getitems__`), so the memory a run holds is a few
batches, whatever the dataset's size. The same class serves the feature store's embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class ClipTable:
    """What a run's batches read: the preprocessed flow, or the feature store's frame embeddings."""

    table: datasets.Dataset
    columns: tuple[str, ...] = ("flow",)

    @property
    def stored_features(self) -> bool:
        """Batches carry frame embeddings (train the aggregator and head only), not flow."""
        return "embeddings" in self.columns


class ArrowClips(Dataset):
    """Rows of a `datasets.Dataset`, read on demand: `{"row", *columns, "labels"}` per item.

    Args:
        table: the preprocessed dataset (flow) or the feature store (frame embeddings); its row `i` is
            clip `i` of `labels`.
        labels: `(num_clips,)` class indices of every row of `table` (small: kept in memory).
        rows: the rows this dataset serves (a fold's training or test clips).
        columns: the array columns to read, returned as float tensors of the stored shape
            (`flow`: `(T, C, S, S)`; `embeddings`: `(T, D)`).
    """

    def __init__(
        self, table: datasets.Dataset, labels: torch.Tensor, rows: Sequence[int], columns: Sequence[str] = ("flow",)
    ):
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise ValueError(f"ArrowClips: the table lacks the columns {missing} (has {table.column_names})")
        if len(table) != len(labels):
            raise ValueError(f"ArrowClips: the table has {len(table)} rows but {len(labels)} labels were given")
        self.table = table.with_format("numpy", columns=list(columns))
        self.labels, self.rows, self.columns = labels, list(rows), tuple(columns)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        """A whole batch in one read of the Arrow table (the DataLoader calls this when it exists)."""
        rows = [self.rows[i] for i in indices]
        values = self.table[rows]  # {column: (len(rows), ...) array}, copied out of the memory map
        items = []
        for k, row in enumerate(rows):
            item = {"row": torch.tensor(row)}
            for column in self.columns:
                item[column] = torch.from_numpy(np.asarray(values[column][k]))
            item["labels"] = self.labels[row]
            items.append(item)
        return items


__all__ = ["ArrowClips", "ClipTable"]
