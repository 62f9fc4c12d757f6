"""Disk caches that spare the teacher: top-k logits per trained token, and generated replies.

``TeacherLogitCache``. Offline distillation scores the same response tokens every epoch, so the
teacher's output is computed once. For each trained token the cache keeps the teacher's top-k
logits (float32) and token ids (int32) in two memory-mapped ``.npy`` files, rows laid out example
after example (``offsets[i]`` is example ``i``'s first row). A ``filled`` mask marks the examples
written so far; it is saved on ``flush``, one file per rank, and the union is read back. The
first epoch (or the first run) fills the cache as it goes; later epochs and later runs read it
and run no teacher forward at all. The cache directory is named by a fingerprint of the encoded
teacher rows, the teacher and k, so any change of data, template, tokenizer or teacher starts a
new cache. Size: ``tokens * k * 8`` bytes on disk; RAM holds only the offsets and the mask (the
OS pages the arrays in as they are read).

Generation cache. Teacher replies (``response_source: teacher``) are written to a JSONL file
whose first line records the fingerprint and the generation settings; it is reused while the
fingerprint (teacher prompts, teacher, sampling settings) matches and regenerated otherwise.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1


class TeacherLogitCache:
    """Top-k teacher logits of every trained token of one dataset (see module docstring).

    Args:
        directory: folder of this cache (one per dataset/teacher/k fingerprint).
        token_counts: trained tokens per example, in ``example_id`` order.
        top_k: logits kept per token.
        rank: this process's rank; each rank saves its own ``filled`` mask.
    """

    def __init__(self, directory: str | Path, token_counts: Sequence[int], top_k: int,
                 rank: int = 0) -> None:
        self.directory = Path(directory)
        self.top_k = int(top_k)
        self.rank = rank
        counts = np.asarray(list(token_counts), dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.total_tokens = int(self.offsets[-1])
        self.hits = 0
        self.misses = 0
        self._create_or_open()

    # -- files --------------------------------------------------------------------------------
    @property
    def num_examples(self) -> int:
        return len(self.offsets) - 1

    def _meta(self) -> dict[str, Any]:
        return {"version": CACHE_FORMAT_VERSION, "examples": self.num_examples,
                "tokens": self.total_tokens, "top_k": self.top_k}

    def _create_or_open(self) -> None:
        meta_path = self.directory / "meta.json"
        shape = (max(self.total_tokens, 1), self.top_k)
        if meta_path.exists() and json.loads(meta_path.read_text()) == self._meta():
            self.values = np.load(self.directory / "values.npy", mmap_mode="r+")
            self.indices = np.load(self.directory / "indices.npy", mmap_mode="r+")
            self.filled = np.zeros(self.num_examples, dtype=bool)
            self.refresh()
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.values = np.lib.format.open_memmap(
            self.directory / "values.npy", mode="w+", dtype=np.float32, shape=shape)
        self.indices = np.lib.format.open_memmap(
            self.directory / "indices.npy", mode="w+", dtype=np.int32, shape=shape)
        self.filled = np.zeros(self.num_examples, dtype=bool)
        for stale in self.directory.glob("filled-rank*.npy"):
            stale.unlink()
        meta_path.write_text(json.dumps(self._meta()))

    def flush(self) -> None:
        """Write pending rows and this rank's ``filled`` mask to disk."""
        self.values.flush()
        self.indices.flush()
        path = self.directory / f"filled-rank{self.rank}.npy"
        tmp = path.with_name(path.stem + ".tmp.npy")
        np.save(tmp, self.filled)
        os.replace(tmp, path)

    def refresh(self) -> None:
        """Take in the examples other ranks have flushed (their rows share the mapped files)."""
        for path in self.directory.glob("filled-rank*.npy"):
            saved = np.load(path)
            if saved.shape == self.filled.shape:
                self.filled |= saved

    # -- reading and writing ------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        return bool(self.filled.all())

    @property
    def disk_bytes(self) -> int:
        return int(self.values.nbytes + self.indices.nbytes)

    @property
    def memory_bytes(self) -> int:
        """RAM this object holds itself (the arrays are memory-mapped, not loaded)."""
        return int(self.offsets.nbytes + self.filled.nbytes)

    def lookup(self, example_ids: Tensor) -> tuple[Tensor, Tensor] | None:
        """Cached ``(values, indices)`` ``[N, k]`` for a batch, rows in selection order.

        Returns ``None`` (a miss) unless every example of the batch is cached.
        """
        ids = example_ids.tolist()
        if not all(self.filled[i] for i in ids):
            self.misses += 1
            return None
        self.hits += 1
        spans = [slice(self.offsets[i], self.offsets[i + 1]) for i in ids]
        values = np.concatenate([self.values[s] for s in spans])
        indices = np.concatenate([self.indices[s] for s in spans])
        return torch.from_numpy(values), torch.from_numpy(indices).long()

    def store(self, example_ids: Tensor, rows: Tensor, values: Tensor, indices: Tensor) -> None:
        """Write a batch's top-k rows; ``rows[j]`` is the batch row of selected token ``j``."""
        ids = example_ids.tolist()
        counts = torch.bincount(rows.cpu(), minlength=len(ids)).tolist()
        values_np = values.detach().float().cpu().numpy()
        indices_np = indices.detach().cpu().numpy().astype(np.int32)
        start = 0
        for example_id, count in zip(ids, counts, strict=True):
            begin, end = self.offsets[example_id], self.offsets[example_id + 1]
            if end - begin != count:
                raise RuntimeError(
                    f"teacher cache {self.directory}: example {example_id} has {count} trained "
                    f"tokens in this batch but {end - begin} in the cache layout"
                )
            self.values[begin:end] = values_np[start:start + count]
            self.indices[begin:end] = indices_np[start:start + count]
            self.filled[example_id] = True
            start += count

    def describe(self) -> str:
        return (f"{self.directory}: {self.num_examples} examples, {self.total_tokens} tokens, "
                f"k={self.top_k}, {int(self.filled.sum())} cached; {self.disk_bytes / 2**20:.2f} "
                f"MiB on disk (memory-mapped), {self.memory_bytes / 2**10:.1f} KiB in RAM")


def trained_token_counts(dataset, weights_key: str = "teacher_loss_weights") -> list[int]:
    """Trained targets per row, as ``select_trained_tokens`` counts them (position 0 never)."""
    counts = []
    for chunk in dataset.select_columns([weights_key]).iter(batch_size=1024):
        counts.extend(sum(1 for w in weights[1:] if w != 0) for weights in chunk[weights_key])
    return counts


# -- generation cache ---------------------------------------------------------------------------
def load_generations(path: str | Path, fingerprint: str, count: int) -> list[dict] | None:
    """The cached replies if ``path`` holds a complete file for ``fingerprint``, else ``None``."""
    path = Path(path)
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as handle:
        try:
            header = json.loads(handle.readline())
            rows = [json.loads(line) for line in handle if line.strip()]
        except json.JSONDecodeError:
            return None
    if header.get("fingerprint") != fingerprint or len(rows) != count:
        return None
    return rows


def save_generations(path: str | Path, header: dict[str, Any], rows: Sequence[dict]) -> None:
    """Write the header line and one line per reply, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(header, ensure_ascii=False, default=str) + "\n")
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
