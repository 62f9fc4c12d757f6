"""Chat data: sources and row formats, validation, tokenization, batching, packing, synthetic data."""

from autotrain_pl.data.collate import (
    GenerationCollator,
    PreferenceCollator,
    SFTCollator,
    pad_sequences,
    resolve_pad_token_id,
)
from autotrain_pl.data.datamodule import ChatDataModule
from autotrain_pl.data.encoding import OVERLONG_POLICIES, DataStats, encode_dataset, split_prompt
from autotrain_pl.data.formats import (
    ROW_FORMATS,
    Record,
    RowFormat,
    TextDocument,
    detect_row_format,
)
from autotrain_pl.data.packing import PackedCollator, block_causal_mask, pack_dataset, pack_lengths
from autotrain_pl.data.reading import load_conversations, read_source
from autotrain_pl.data.sampler import (
    BatchSamplerLoader,
    LengthGroupedBatchSampler,
    TokenBudgetBatchSampler,
    padding_waste,
    shard_batches,
)
from autotrain_pl.data.sources import DATA_EXTENSIONS, LoadedSource, RowLocator, load_source
from autotrain_pl.data.synthetic import (
    SYNTHETIC_GENERATORS,
    arithmetic,
    arithmetic_splits,
    mixed_chat,
    preference,
    rl_prompts,
    synthetic_rows,
    write_jsonl,
)

__all__ = [
    "DATA_EXTENSIONS",
    "OVERLONG_POLICIES",
    "ROW_FORMATS",
    "SYNTHETIC_GENERATORS",
    "BatchSamplerLoader",
    "ChatDataModule",
    "DataStats",
    "GenerationCollator",
    "LengthGroupedBatchSampler",
    "LoadedSource",
    "PackedCollator",
    "PreferenceCollator",
    "Record",
    "RowFormat",
    "RowLocator",
    "SFTCollator",
    "TextDocument",
    "TokenBudgetBatchSampler",
    "arithmetic",
    "arithmetic_splits",
    "block_causal_mask",
    "detect_row_format",
    "encode_dataset",
    "load_conversations",
    "load_source",
    "mixed_chat",
    "pack_dataset",
    "pack_lengths",
    "pad_sequences",
    "padding_waste",
    "preference",
    "read_source",
    "resolve_pad_token_id",
    "rl_prompts",
    "shard_batches",
    "split_prompt",
    "synthetic_rows",
    "write_jsonl",
]
