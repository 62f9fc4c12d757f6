"""Packing: several samples per row of ``max_length`` tokens, with no attention across samples.

Samples are assigned to rows by best-fit decreasing bin packing (rows end up >97% full on
typical chat data). Inside a row, ``position_ids`` restart at 0 for every sample and each sample
attends only to itself, so a packed row computes the same logits as its samples run alone.

How the attention boundary reaches the model (verified against ``transformers`` 5.24,
``masking_utils.create_causal_mask`` and ``LlamaForCausalLM``):

- default (``padding_free=False``): ``attention_mask`` is a 4D **additive float** mask of shape
  ``[B, 1, T, T]`` (0.0 where a query may attend, ``finfo(float32).min`` elsewhere): block
  diagonal and causal. ``transformers`` passes a 4D mask through unchanged, and the float form is
  right for both ``sdpa`` and ``eager`` attention (a bool mask is right for sdpa only: eager adds
  it to the scores), in fp32 and bf16. Call ``model(input_ids=..., attention_mask=...,
  position_ids=...)`` as for any batch; use ``loss_weights`` (not ``attention_mask``) to count
  tokens.
- ``padding_free=True`` (FlashAttention-2 models, ``attn_implementation="flash_attention_2"``):
  all rows are concatenated into one ``[1, total]`` row with ``position_ids`` and no
  ``attention_mask``; flash attention derives the sample boundaries from the position resets.
  Other attention implementations only honour those boundaries when called with
  ``use_cache=False`` (with a cache, ``transformers`` skips the packed-sequence detection and
  samples silently attend to each other), which is why this is not the default.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from autotrain_pl.data.collate import pad_sequences, padded_length


def pack_lengths(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """Group sample indices into bins of total length ``<= max_length`` (best-fit decreasing).

    Each sample goes, longest first, into the fullest bin that still has room for it.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    # (room left, bin id), kept sorted so the tightest fitting bin is found by bisection.
    rooms: list[tuple[int, int]] = []
    for index in order:
        size = lengths[index]
        if size > max_length:
            raise ValueError(f"sample {index} has {size} tokens, more than max_length={max_length}")
        at = bisect.bisect_left(rooms, (size, -1))
        if at == len(rooms):
            bins.append([index])
            bisect.insort(rooms, (max_length - size, len(bins) - 1))
            continue
        room, bin_id = rooms.pop(at)
        bins[bin_id].append(index)
        bisect.insort(rooms, (room - size, bin_id))
    return bins


def pack_dataset(dataset: datasets.Dataset, max_length: int, seed: int = 0) -> datasets.Dataset:
    """Packed rows (``input_ids``, ``loss_weights``, ``seq_lens``, ``length``) from SFT samples.

    Rows are assembled with Arrow (take + new list offsets), not Python loops, so packing a large
    dataset takes a fraction of a second. The row order is shuffled with ``seed``.
    """
    table = dataset.select_columns(["input_ids", "loss_weights"]).with_format("arrow")[:]
    lengths = pc.list_value_length(table["input_ids"]).to_numpy(zero_copy_only=False)
    bins = pack_lengths(lengths.tolist(), max_length)
    random.Random(seed).shuffle(bins)
    order = np.fromiter((i for members in bins for i in members), dtype=np.int64)
    ordered_lengths = lengths[order]
    bin_sizes = np.fromiter((len(members) for members in bins), dtype=np.int64)
    # Offsets into the flat token stream where each packed row, and each sample, begins.
    sample_offsets = np.concatenate([[0], np.cumsum(ordered_lengths)])
    row_offsets = sample_offsets[np.concatenate([[0], np.cumsum(bin_sizes)])]
    taken = table.take(pa.array(order))
    ids = pc.list_flatten(taken["input_ids"].combine_chunks())
    weights = pc.list_flatten(taken["loss_weights"].combine_chunks()).to_numpy(zero_copy_only=False)
    weights = weights.copy()
    # The first token of a sample is never predicted (its left neighbour is another sample).
    weights[sample_offsets[:-1]] = 0.0
    row_offsets_arr = pa.array(row_offsets, type=pa.int32())
    packed = pa.table(
        {
            "input_ids": pa.ListArray.from_arrays(row_offsets_arr, ids),
            "loss_weights": pa.ListArray.from_arrays(row_offsets_arr, pa.array(weights)),
            "seq_lens": pa.ListArray.from_arrays(
                pa.array(np.concatenate([[0], np.cumsum(bin_sizes)]), type=pa.int32()),
                pa.array(ordered_lengths, type=pa.int64()),
            ),
            "length": pa.array(np.diff(row_offsets), type=pa.int64()),
        }
    )
    return datasets.Dataset(datasets.table.InMemoryTable(packed))


def segment_ids(seq_lens: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """``[B, T]`` sample index of every position; padding gets a unique negative id each."""
    out = -1 - torch.arange(length).repeat(len(seq_lens), 1)
    for row, lens in enumerate(seq_lens):
        ids = torch.repeat_interleave(torch.arange(len(lens)), torch.as_tensor(list(lens)))
        out[row, : len(ids)] = ids
    return out


def block_causal_mask(
    seq_lens: Sequence[Sequence[int]], length: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Additive ``[B, 1, T, T]`` mask: 0 where query ``q`` may see key ``k``, dtype-min elsewhere.

    ``k <= q`` and same sample; a padding position sees only itself, so no softmax row is empty.
    """
    segments = segment_ids(seq_lens, length)
    same = segments.unsqueeze(2) == segments.unsqueeze(1)
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    allowed = same & causal
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return mask.unsqueeze(1)


def packed_position_ids(seq_lens: Sequence[int]) -> list[int]:
    """Positions that restart at 0 for every sample of a row."""
    return [p for n in seq_lens for p in range(n)]


class PackedCollator:
    """Batches of packed rows: ``input_ids``, ``loss_weights``, ``position_ids`` and the mask.

    Args:
        pad_token_id: id used for padding.
        pad_to_multiple_of: round the row length up to this multiple.
        padding_free: emit one concatenated row with ``position_ids`` and no ``attention_mask``
            (FlashAttention-2); otherwise ``attention_mask`` is the 4D block-causal float mask.
    """

    def __init__(
        self,
        pad_token_id: int,
        pad_to_multiple_of: int | None = None,
        padding_free: bool = False,
    ) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of
        self.padding_free = padding_free

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        seq_lens = [list(f["seq_lens"]) for f in features]
        if self.padding_free:
            ids = [t for f in features for t in f["input_ids"]]
            weights = [w for f in features for w in f["loss_weights"]]
            positions = [p for lens in seq_lens for p in packed_position_ids(lens)]
            return {
                "input_ids": torch.tensor([ids], dtype=torch.long),
                "loss_weights": torch.tensor([weights], dtype=torch.float),
                "position_ids": torch.tensor([positions], dtype=torch.long),
            }
        ids = [f["input_ids"] for f in features]
        length = padded_length(max(len(x) for x in ids), self.pad_to_multiple_of)
        return {
            "input_ids": pad_sequences(ids, self.pad_token_id, torch.long, length),
            "attention_mask": block_causal_mask(seq_lens, length),
            "loss_weights": pad_sequences(
                [f["loss_weights"] for f in features], 0.0, torch.float, length
            ),
            "position_ids": pad_sequences(
                [packed_position_ids(lens) for lens in seq_lens], 0, torch.long, length
            ),
        }
