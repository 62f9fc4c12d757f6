"""Length-aware batch samplers: fewer padded tokens, same data, deterministic, DDP-ready.

- :class:`TokenBudgetBatchSampler`: samples sorted by length are cut into batches whose padded
  size (``batch_size x longest``) stays within ``max_tokens``; the batch order is shuffled per
  epoch. Batch size varies, tokens per batch stay about constant, padding nearly vanishes.
- :class:`LengthGroupedBatchSampler`: fixed batch size; like Hugging Face's
  ``LengthGroupedSampler``, indices are shuffled, cut into mega-batches of ``50 x batch_size``,
  and sorted by length within each, so batches mix lengths a little but stay random.

Both shard batches across data-parallel ranks themselves, from ``num_replicas``/``rank``
arguments, without ``torch.distributed``. Every rank gets the same number of batches (unequal
counts hang DDP); a batch list whose length does not divide evenly is made to by splitting the
largest batches, so every sample is still seen exactly once per epoch and ranks stay disjoint.
Both shuffle from ``seed + epoch``; call :meth:`set_epoch` (Lightning does, through ``.sampler``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from torch.utils.data import DataLoader

from autotrain_pl.data.collate import padded_length


def shard_batches(batches: list[list[int]], num_replicas: int, rank: int) -> list[list[int]]:
    """This rank's share of ``batches``; every rank gets ``ceil(len / num_replicas)`` batches.

    Splitting the largest batches in two makes the count divisible by ``num_replicas``; only
    when there are fewer samples than ranks are batches repeated.
    """
    if not 0 <= rank < num_replicas:
        raise ValueError(f"rank={rank} must lie in [0, num_replicas={num_replicas})")
    batches = [list(b) for b in batches]
    while len(batches) % num_replicas:
        largest = max(range(len(batches)), key=lambda i: len(batches[i]), default=None)
        if largest is None or len(batches[largest]) < 2:
            break
        batch = batches[largest]
        half = len(batch) // 2
        batches[largest : largest + 1] = [batch[:half], batch[half:]]
    original = len(batches)
    while batches and len(batches) % num_replicas:  # fewer samples than ranks: repeat some
        batches.append(batches[(len(batches) - original) % original])
    return batches[rank::num_replicas]


class _EpochMixin:
    """``set_epoch`` plus a ``sampler`` attribute pointing at itself.

    Lightning calls ``set_epoch`` on ``dataloader.sampler`` and ``dataloader.batch_sampler.sampler``
    only; exposing ``self`` as ``.sampler`` makes it reach a custom batch sampler too.
    """

    epoch: int = 0
    #: Batches to skip at the start of the next iteration (resuming mid-epoch).
    start_batch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def sampler(self):
        return self

    def __iter__(self) -> Iterator[list[int]]:
        start, self.start_batch = self.start_batch, 0
        return iter(self._batches()[start:])

    def __len__(self) -> int:
        return len(self._batches())


class TokenBudgetBatchSampler(_EpochMixin):
    """Batches of similar length whose padded size stays within ``max_tokens``.

    Args:
        lengths: token count of every sample.
        max_tokens: budget of padded tokens (``batch_size x padded longest``) per batch.
        shuffle: shuffle the batch order (and ties between equal lengths) each epoch.
        seed: base seed; the order of epoch ``e`` comes from ``seed + e``.
        num_replicas: data-parallel world size.
        rank: this process's rank.
        pad_to_multiple_of: the collator's rounding, so the budget counts real padded shapes.
        max_batch_size: optional cap on samples per batch (memory of per-sample activations).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_tokens: int,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        pad_to_multiple_of: int | None = None,
        max_batch_size: int | None = None,
    ) -> None:
        self.lengths = [int(x) for x in lengths]
        self.max_tokens = max_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.pad_to_multiple_of = pad_to_multiple_of
        self.max_batch_size = max_batch_size
        longest = padded_length(max(self.lengths, default=0), pad_to_multiple_of)
        if longest > max_tokens:
            raise ValueError(
                f"a sample of {longest} tokens exceeds max_tokens_per_batch={max_tokens}; "
                "raise max_tokens_per_batch to at least max_length"
            )
        self._cache: tuple[int, list[list[int]]] | None = None

    def _batches(self) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = random.Random(self.seed + self.epoch)
        tiebreak = [rng.random() for _ in self.lengths] if self.shuffle else None
        order = sorted(
            range(len(self.lengths)),
            key=lambda i: (self.lengths[i], tiebreak[i] if tiebreak else i),
        )
        batches: list[list[int]] = []
        current: list[int] = []
        for index in order:  # ascending: the newest sample is the longest of its batch
            size = padded_length(self.lengths[index], self.pad_to_multiple_of)
            full = self.max_batch_size is not None and len(current) >= self.max_batch_size
            if current and (full or (len(current) + 1) * size > self.max_tokens):
                batches.append(current)
                current = []
            current.append(index)
        if current:
            batches.append(current)
        if self.shuffle:
            rng.shuffle(batches)
        batches = shard_batches(batches, self.num_replicas, self.rank)
        self._cache = (self.epoch, batches)
        return batches



class LengthGroupedBatchSampler(_EpochMixin):
    """Fixed-size batches grouped by length within shuffled mega-batches (HF-style).

    Args:
        lengths: token count of every sample.
        batch_size: samples per batch (per rank).
        seed: base seed; epoch ``e`` uses ``seed + e``.
        num_replicas: data-parallel world size.
        rank: this process's rank.
        mega_batch_mult: mega-batch size in batches (50, as Hugging Face; smaller for tiny data).
        drop_last: drop the final incomplete batch.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        mega_batch_mult: int | None = None,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        self.lengths = [int(x) for x in lengths]
        self.batch_size = batch_size
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        if mega_batch_mult is None:  # as HF: up to 50 batches, at least 1
            mega_batch_mult = max(1, min(len(self.lengths) // (batch_size * 4), 50))
        self.mega_batch_mult = mega_batch_mult
        self._cache: tuple[int, list[list[int]]] | None = None

    def _batches(self) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = random.Random(self.seed + self.epoch)
        indices = list(range(len(self.lengths)))
        rng.shuffle(indices)
        mega = self.mega_batch_mult * self.batch_size
        batches: list[list[int]] = []
        for start in range(0, len(indices), mega):
            group = sorted(indices[start : start + mega], key=lambda i: -self.lengths[i])
            batches += [
                group[i : i + self.batch_size] for i in range(0, len(group), self.batch_size)
            ]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        rng.shuffle(batches)
        batches = shard_batches(batches, self.num_replicas, self.rank)
        self._cache = (self.epoch, batches)
        return batches



def padding_waste(
    batches: Sequence[Sequence[int]], lengths: Sequence[int], multiple_of: int | None = None
) -> float:
    """Share of padded positions among all positions of ``batches`` (0 = no padding)."""
    real = padded = 0
    for batch in batches:
        if not batch:
            continue
        longest = padded_length(max(lengths[i] for i in batch), multiple_of)
        padded += longest * len(batch)
        real += sum(lengths[i] for i in batch)
    return 0.0 if padded == 0 else 1.0 - real / padded


class BatchSamplerLoader:
    """A DataLoader whose batch sampler already shards by rank, handed to Lightning as-is.

    Under DDP Lightning re-wraps a DataLoader's sampler in a ``DistributedSampler``; our batch
    samplers shard themselves (equal batch counts per rank), so the loader is passed as a plain
    iterable, which Lightning leaves alone. ``.sampler`` lets Lightning call ``set_epoch``.
    """

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.sampler = loader.batch_sampler
        self._consumed = 0
        self._resume: dict[str, int] | None = None

    def __iter__(self):
        if self._resume is not None:
            # Continue the saved epoch's order. Lightning may already have advanced the epoch
            # number of a checkpoint written when max_steps ended the run mid-epoch.
            self.sampler.set_epoch(self._resume["epoch"])
            self.sampler.start_batch = self._resume["batches_done"]
            self._resume = None
        self._consumed = self.sampler.start_batch
        yield from self.loader

    def mark_consumed(self) -> None:
        """The trainer took one more batch (``ChatDataModule.on_before_batch_transfer``)."""
        self._consumed += 1

    def state_dict(self) -> dict[str, int]:
        """Where the epoch stands, so a mid-epoch resume continues with the next unseen batch.

        Lightning fetches one batch ahead, so the batches the trainer has taken are saved, not
        the batches this loader has yielded.
        """
        return {"epoch": self.sampler.epoch, "batches_done": int(self._consumed)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = dict(state)

    def __len__(self) -> int:
        return len(self.loader)
