"""Values a frozen model gives each example, computed once and kept on disk.

Offline distillation scores the same response tokens every epoch, and DPO scores the same
reference completions: the frozen model's output is computed once. ``FrozenValueCache`` keeps, for
each example, a run of rows (one per trained token for teacher logits, one per example for
reference log-probabilities) in named columns, each a memory-mapped ``.npy`` file laid out example
after example (``offsets[i]`` is example ``i``'s first row). A ``filled`` mask marks the examples
written so far; it is saved on ``flush``, one file per rank, and the union is read back. The first
epoch (or the first run) fills the cache as it goes; later epochs and later runs read it and run
no forward at all. Name the directory by a fingerprint of the data and the frozen model
(``FrozenModel.signature``), so any change starts a new cache. RAM holds only the offsets and the
mask; the OS pages the arrays in as they are read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

CACHE_FORMAT_VERSION = 2


class FrozenValueCache:
    """Per-example rows of frozen-model values (see module docstring).

    Args:
        directory: folder of this cache (one per data/model fingerprint).
        row_counts: rows per example, in ``example_id`` order.
        columns: column name -> ``(numpy dtype, width)``; each row holds ``width`` values.
        rank: this process's rank; each rank saves its own ``filled`` mask.
    """

    def __init__(self, directory: str | Path, row_counts: Sequence[int],
                 columns: Mapping[str, tuple[Any, int]], rank: int = 0) -> None:
        self.directory = Path(directory)
        bad = [name for name in columns if not str(name).isidentifier()]
        if bad:  # each column is a file in the directory: a name must not lead out of it
            raise ValueError(f"frozen-value cache column names must be identifiers, got {bad}")
        self.columns = {name: (np.dtype(dtype), int(width)) for name, (dtype, width)
                        in columns.items()}
        self.rank = rank
        counts = np.asarray(list(row_counts), dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.total_rows = int(self.offsets[-1])
        self.hits = 0
        self.misses = 0
        self._create_or_open()

    # -- files --------------------------------------------------------------------------------
    @property
    def num_examples(self) -> int:
        return len(self.offsets) - 1

    def _meta(self) -> dict[str, Any]:
        return {"version": CACHE_FORMAT_VERSION, "examples": self.num_examples,
                "rows": self.total_rows,
                "columns": {name: [dtype.str, width] for name, (dtype, width)
                            in self.columns.items()}}

    def _create_or_open(self) -> None:
        meta_path = self.directory / "meta.json"
        self.filled = np.zeros(self.num_examples, dtype=bool)
        if meta_path.exists() and json.loads(meta_path.read_text()) == self._meta():
            self.arrays = {name: np.load(self.directory / f"{name}.npy", mmap_mode="r+",
                                         allow_pickle=False)
                           for name in self.columns}
            self.refresh()
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.arrays = {
            name: np.lib.format.open_memmap(self.directory / f"{name}.npy", mode="w+",
                                            dtype=dtype, shape=(max(self.total_rows, 1), width))
            for name, (dtype, width) in self.columns.items()
        }
        for stale in self.directory.glob("filled-rank*.npy"):
            stale.unlink()
        meta_path.write_text(json.dumps(self._meta()))

    def flush(self) -> None:
        """Write pending rows and this rank's ``filled`` mask to disk."""
        for array in self.arrays.values():
            array.flush()
        path = self.directory / f"filled-rank{self.rank}.npy"
        tmp = path.with_name(path.stem + ".tmp.npy")
        np.save(tmp, self.filled)
        os.replace(tmp, path)

    def refresh(self) -> None:
        """Take in the examples other ranks have flushed (their rows share the mapped files)."""
        for path in self.directory.glob("filled-rank*.npy"):
            saved = np.load(path, allow_pickle=False)
            if saved.shape == self.filled.shape:
                self.filled |= saved

    # -- reading and writing ------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        return bool(self.filled.all())

    @property
    def disk_bytes(self) -> int:
        return int(sum(array.nbytes for array in self.arrays.values()))

    @property
    def memory_bytes(self) -> int:
        """RAM this object holds itself (the arrays are memory-mapped, not loaded)."""
        return int(self.offsets.nbytes + self.filled.nbytes)

    def lookup(self, example_ids: Tensor) -> dict[str, Tensor] | None:
        """Every column's rows ``[rows, width]`` for a batch, examples in batch order.

        Returns ``None`` (a miss) unless every example of the batch is cached.
        """
        ids = example_ids.tolist()
        if not all(self.filled[i] for i in ids):
            self.misses += 1
            return None
        self.hits += 1
        spans = [slice(self.offsets[i], self.offsets[i + 1]) for i in ids]
        return {name: torch.from_numpy(np.concatenate([array[s] for s in spans]))
                for name, array in self.arrays.items()}

    def store(self, example_ids: Tensor, rows: Tensor, values: Mapping[str, Tensor]) -> None:
        """Write a batch's rows; ``rows[j]`` is the batch row (example) of value row ``j``."""
        ids = example_ids.tolist()
        counts = torch.bincount(rows.cpu(), minlength=len(ids)).tolist()
        arrays = {name: values[name].detach().cpu().numpy().astype(dtype, copy=False)
                  for name, (dtype, _) in self.columns.items()}
        start = 0
        for example_id, count in zip(ids, counts, strict=True):
            begin, end = self.offsets[example_id], self.offsets[example_id + 1]
            if end - begin != count:
                raise RuntimeError(
                    f"frozen-value cache {self.directory}: example {example_id} has {count} rows "
                    f"in this batch but {end - begin} in the cache layout"
                )
            for name, array in arrays.items():
                self.arrays[name][begin:end] = array[start:start + count]
            self.filled[example_id] = True
            start += count

    def describe(self) -> str:
        return (f"{self.directory}: {self.num_examples} examples, {self.total_rows} rows, "
                f"{int(self.filled.sum())} cached; {self.disk_bytes / 2**20:.2f} MiB on disk "
                f"(memory-mapped), {self.memory_bytes / 2**10:.1f} KiB in RAM")


def rank_zero_first(trainer, work: Callable[[], Any]) -> Any:
    """Run ``work`` on rank 0, then on the other ranks (which then find its files)."""
    if trainer.world_size == 1:
        return work()
    if trainer.is_global_zero:
        result = work()
        trainer.strategy.barrier()
        return result
    trainer.strategy.barrier()
    return work()
