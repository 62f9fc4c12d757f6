"""Reference log-probabilities of preference pairs: live, or computed once and kept on disk.

The reference is a ``training.FrozenModel``: a frozen copy, or the trained LoRA model with its
adapter disabled (no second copy). With ``precompute``, every pair of the training and validation
data is scored once before the first step, into a ``training.FrozenValueCache`` named by a
fingerprint of the encoded pairs and the reference's signature; then a copy's weights are freed.
A later run on the same data and reference finds the cache complete and never loads the
reference at all. Without ``precompute`` each batch is scored when it arrives, as TRL does.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from autotrain_pl.training import FrozenModel, FrozenValueCache, rank_zero_first
from autotrain_pl.training.pair_scores import PairScores

log = logging.getLogger(__name__)

#: Scores a batch's pairs under a model: ``(model, batch) -> PairScores``.
PairScorer = Callable[[Any, Mapping[str, Any]], PairScores]
_COLUMNS = {"chosen": ("float32", 1), "rejected": ("float32", 1)}


class ReferenceLogps:
    """Reference sequence log-probabilities for pair batches (see module docstring).

    Args:
        frozen: the reference model.
        precompute: score all pairs once before training and cache them on disk.
        cache_dir: the folder of the caches (one sub-folder per data/reference fingerprint).
    """

    def __init__(self, frozen: FrozenModel, precompute: bool, cache_dir: Path) -> None:
        self.frozen = frozen
        self.precompute = precompute
        self.cache_dir = cache_dir
        self.caches: dict[str, FrozenValueCache] = {}

    def open_caches(self, trainer, encoded: Mapping[str, Any]) -> None:
        """One cache per encoded data source (``PairEncoding.encoded``: fingerprint -> rows)."""
        for fingerprint, dataset in encoded.items():
            if fingerprint in self.caches:
                continue
            key = hashlib.sha256(f"{fingerprint}|{self.frozen.signature}".encode()).hexdigest()
            directory = self.cache_dir / f"ref-logps-{key[:16]}"
            self.caches[fingerprint] = rank_zero_first(
                trainer, partial(FrozenValueCache, directory, [1] * len(dataset),
                                 _COLUMNS, trainer.global_rank))

    def fill(self, trainer, encoded: Mapping[str, Any], collate, score: PairScorer,
             device: torch.device, batch_size: int) -> None:
        """Score every pair not yet cached, in order, before training (rank 0, then the rest
        read the files); then free a copy's weights."""
        missing = {key: data for key, data in encoded.items() if not self.caches[key].complete}
        if not missing:
            log.info("reference log-probabilities: all %d pairs cached in %s",
                     sum(len(d) for d in encoded.values()), self.cache_dir)
            return

        def work() -> None:
            for key, dataset in missing.items():
                cache = self.caches[key]
                if cache.complete:
                    continue
                loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
                for batch in loader:
                    self._score_and_store(cache, batch, score, device)
                cache.flush()
                log.info("reference log-probabilities: cached %d pairs in %s", len(dataset),
                         cache.directory)

        rank_zero_first(trainer, work)
        for cache in self.caches.values():
            cache.refresh()
        self.frozen.release()

    def __call__(self, batch: Mapping[str, Any], score: PairScorer,
                 device: torch.device) -> tuple[Tensor, Tensor]:
        """``(chosen, rejected)`` reference log-probabilities ``[B]`` of a batch."""
        cache = self.caches.get(batch.get("cache_key"))
        if cache is not None:
            hit = cache.lookup(batch["example_ids"])
            if hit is not None:
                return (hit["chosen"][:, 0].to(device, torch.float32),
                        hit["rejected"][:, 0].to(device, torch.float32))
            return self._score_and_store(cache, batch, score, device)
        return self._score(batch, score, device)

    @torch.no_grad()
    def _score(self, batch: Mapping[str, Any], score: PairScorer,
               device: torch.device) -> tuple[Tensor, Tensor]:
        run_on = self.frozen.place(device)
        inputs = {k: v.to(run_on) if isinstance(v, Tensor) else v for k, v in batch.items()}
        self.frozen.forward_calls += 1
        with self.frozen.scoring() as model:
            scores = score(model, inputs)
        return scores.chosen.to(device), scores.rejected.to(device)

    def _score_and_store(self, cache: FrozenValueCache, batch: Mapping[str, Any],
                         score: PairScorer, device: torch.device) -> tuple[Tensor, Tensor]:
        chosen, rejected = self._score(batch, score, device)
        ids = batch["example_ids"]
        cache.store(ids, torch.arange(len(ids)),
                    {"chosen": chosen.unsqueeze(1), "rejected": rejected.unsqueeze(1)})
        return chosen, rejected

    def flush(self) -> None:
        for cache in self.caches.values():
            cache.flush()
