"""``ChatDataModule``: chat data for train, validation, test and predict in one LightningDataModule.

Pipeline per split: read (``data.sources``) -> rename columns -> validate and render through
``dataset.map`` (``data.encoding``) -> optional packing -> batches (``data.sampler``,
``data.collate``). Cheap checks run in ``__init__`` so a bad config fails before a model loads;
reading and tokenizing run in ``setup``.

The tokenizer and renderer are public, built lazily: objectives read
``trainer.datamodule.tokenizer`` / ``.renderer`` in their ``setup`` and resize the model's
embeddings to ``len(tokenizer)`` (missing chat-format tokens are added here).
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Any

import datasets
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from autotrain_pl.data.collate import (
    GenerationCollator,
    PreferenceCollator,
    SFTCollator,
    resolve_pad_token_id,
)
from autotrain_pl.data.encoding import (
    DataStats,
    check_bad_row_policy,
    check_overlong_policy,
    check_rows,
    encode_dataset,
    encode_preference,
    encode_sft,
    encode_unpaired,
)
from autotrain_pl.data.example_encoding import EncodingProvider, ExampleEncoding
from autotrain_pl.data.formats import ROW_FORMATS
from autotrain_pl.data.packing import PackedCollator, pack_dataset
from autotrain_pl.data.reading import read_source, source_format, source_records
from autotrain_pl.data.sampler import (
    BatchSamplerLoader,
    LengthGroupedBatchSampler,
    TokenBudgetBatchSampler,
)
from autotrain_pl.data.sources import LoadedSource, check_source_ref, quiet_progress
from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import (
    Conversation,
    Preference,
    TrainOnWhat,
    UnpairedPreference,
)

log = logging.getLogger(__name__)

#: Rows whose fields ``preflight`` checks (about 1 s on a CPU for 20,000 chat rows); a bad row
#: further on is found by ``setup``, after the model loaded, and named all the same.
PREFLIGHT_CHECKED_ROWS = 20_000


def _positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise AutotrainError(f"{name}={value!r} must be a positive integer")


class ChatDataModule(LightningDataModule):
    """Chat, instruction, plain-text and preference data, validated, tokenized and batched.

    Args:
        data_path: training data: a jsonl/json/csv/parquet file, a folder of them, a
            ``datasets`` name, or ``synthetic:<generator>?key=value``.
        valid_path: separate validation data (same kinds of reference).
        test_path: test data.
        predict_path: prompts to complete in ``predict`` (defaults to test, then validation data).
        tokenizer: a model reference for ``autotrain_pl.models.load_tokenizer`` or a tokenizer.
        chat_format: renderer name (``auto`` picks from the tokenizer).
        batch_size: training samples (packed rows when packing) per batch.
        eval_batch_size: validation/test/predict batch size (default ``batch_size``).
        max_length: longest sample in tokens; longer ones follow ``overlong_policy``.
        row_format: ``auto`` or one of ``data.formats.ROW_FORMATS``.
        column_mapping: rename columns ``{old: new}`` before format detection.
        train_on: which tokens carry loss weight (``TrainOnWhat``).
        token_weights: per-role loss weights, e.g. ``{"system": 0.0, "user": 0.1}``.
        valid_split: split of a folder/named dataset to validate on (e.g. ``validation``).
        valid_fraction: seeded share of the training data held out for validation.
        seed: seed for the validation split, shuffling, batching and packing.
        overlong_policy: ``truncate`` (default) or ``drop`` samples longer than ``max_length``.
        bad_rows: preference rows that cannot teach a preference (an empty chosen reply, chosen
            identical to rejected, a prompt with no room for a completion): ``drop`` them with a
            warning naming their lines (default), or ``error`` at the first.
        max_tokens_per_batch: token budget per batch with length-grouped batching.
        group_by_length: fixed-size batches grouped by length (HF ``group_by_length``).
        packing: pack several samples per ``max_length`` row (SFT only).
        pad_to_multiple_of: round padded lengths up to this multiple.
        num_workers: DataLoader workers.
        max_samples: read at most this many rows per source (quick runs, debugging).
        split: split of a folder/named dataset to train on.
        subset: configuration name of a named dataset.
        padding_free: with packing, emit one concatenated row with ``position_ids`` and no
            ``attention_mask`` (FlashAttention-2 models; see ``data.packing``).

    Attributes:
        example_encoding: how an objective asked for its examples (``data.example_encoding``);
            None: the data module's own SFT, preference or generation encoding.
        train_dataset, val_dataset, test_dataset, predict_dataset: tokenized ``datasets.Dataset``
            objects, filled by ``setup`` (``train_dataset`` holds packed rows when packing).
        stats: split name -> :class:`DataStats` (rows read, truncated/dropped over-long, dropped
            empty). With ``valid_fraction`` the ``train`` counts cover all of ``data_path``.
        kind: ``"sft"`` or ``"preference"``, from the data's row format.
    """

    def __init__(
        self,
        data_path: str | None,
        valid_path: str | None = None,
        test_path: str | None = None,
        predict_path: str | None = None,
        tokenizer: str | Any | None = None,
        chat_format: str = "auto",
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        max_length: int = 1024,
        row_format: str = "auto",
        column_mapping: dict[str, str] | None = None,
        train_on: str = "last_assistant_message",
        token_weights: dict[str, float] | None = None,
        valid_split: str | None = None,
        valid_fraction: float = 0.0,
        seed: int = 42,
        overlong_policy: str = "truncate",
        bad_rows: str = "drop",
        max_tokens_per_batch: int | None = None,
        group_by_length: bool = False,
        packing: bool = False,
        pad_to_multiple_of: int | None = None,
        num_workers: int = 0,
        max_samples: int | None = None,
        split: str | None = None,
        subset: str | None = None,
        padding_free: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=[] if isinstance(tokenizer, str | None) else ["tokenizer"])
        self.data_path = data_path
        self.valid_path = valid_path
        self.test_path = test_path
        self.predict_path = predict_path
        self.chat_format = chat_format
        self.batch_size = batch_size
        self.eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        self.max_length = max_length
        self.row_format = row_format
        self.column_mapping = dict(column_mapping or {})
        self.train_on = TrainOnWhat.parse(train_on)
        self.token_weights = dict(token_weights or {})
        self.valid_split = valid_split
        self.valid_fraction = valid_fraction
        self.seed = seed
        self.overlong_policy = overlong_policy
        self.bad_rows = bad_rows
        self.max_tokens_per_batch = max_tokens_per_batch
        self.group_by_length = group_by_length
        self.packing = packing
        self.pad_to_multiple_of = pad_to_multiple_of
        self.num_workers = num_workers
        self.max_samples = max_samples
        self.split = split
        self.subset = subset
        self.padding_free = padding_free
        self._validate_config()

        self._tokenizer_ref = tokenizer
        self._tokenizer: Any | None = None
        self._renderer: Any | None = None
        self._sources: dict[tuple[str, str | None], LoadedSource] = {}
        self.train_dataset = None
        self.val_dataset = None
        self.test_dataset = None
        self.predict_dataset = None
        self.stats: dict[str, DataStats] = {}
        self.example_encoding: ExampleEncoding | None = None
        self._train_loader: BatchSamplerLoader | None = None

    # -- configuration --------------------------------------------------------------------
    def _validate_config(self) -> None:
        """Cheap checks only: no reading, no tokenizer, no model."""
        for name in ("data_path", "valid_path", "test_path", "predict_path"):
            value = getattr(self, name)
            if value is not None:
                check_source_ref(value, name)
        if self.chat_format != "auto":
            from autotrain_pl.rendering.registry import renderer_class

            renderer_class(self.chat_format)
        for name in (
            "batch_size",
            "eval_batch_size",
            "max_length",
            "max_tokens_per_batch",
            "pad_to_multiple_of",
            "max_samples",
        ):
            _positive(name, getattr(self, name))
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise AutotrainError(f"num_workers={self.num_workers!r} must be 0 or more")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise AutotrainError(f"valid_fraction={self.valid_fraction} must lie in [0, 1)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise AutotrainError(f"seed={self.seed!r} must be an integer >= 0 (numpy, which draws "
                                 "the validation split, takes no negative seed)")
        check_overlong_policy(self.overlong_policy)
        check_bad_row_policy(self.bad_rows)
        if self.row_format != "auto" and self.row_format.replace("-", "_") not in ROW_FORMATS:
            raise AutotrainError(
                f"row_format={self.row_format!r} is unknown; use auto or one of: "
                f"{', '.join(ROW_FORMATS)}"
            )
        chosen = [n for n in ("valid_path", "valid_split") if getattr(self, n)]
        chosen += ["valid_fraction"] if self.valid_fraction > 0 else []
        if len(chosen) > 1:
            raise AutotrainError(
                f"{' and '.join(chosen)} are both set; choose one source of validation data"
            )
        if self.max_tokens_per_batch and self.group_by_length:
            raise AutotrainError(
                "max_tokens_per_batch and group_by_length are both set; token-budget batches are "
                "already grouped by length, so set only one"
            )
        if self.max_tokens_per_batch and self.max_tokens_per_batch < self.max_length:
            raise AutotrainError(
                f"max_tokens_per_batch={self.max_tokens_per_batch} is below max_length="
                f"{self.max_length}, so a long sample fits no batch; raise it or lower max_length"
            )
        if (self.valid_split or self.valid_fraction) and not self.data_path:
            raise AutotrainError(
                "valid_split / valid_fraction need data_path; set it or valid_path"
            )
        if self.padding_free and not self.packing:
            raise AutotrainError("padding_free=true needs packing=true")
        for role, weight in self.token_weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float) or \
                    not (math.isfinite(weight) and weight >= 0):
                raise AutotrainError(
                    f"token_weights[{role!r}]={weight!r} must be a finite number >= 0")

    def preflight(self, rows: int = 64, mode: str | None = None) -> None:
        """Check the training data now, quietly, so that bad data fails in seconds, before a
        model loads: every row's fields (the first ``PREFLIGHT_CHECKED_ROWS``; no tokenizer, so a
        bad row anywhere in the file is named now) and the full encoding of the first ``rows``
        (a ``max_length`` below every reply, a chat format that refuses the roles). ``setup``
        checks all rows again as it encodes them.

        Args:
            rows: rows encoded with the tokenizer.
            mode: the encoding the objective uses (``sft``, ``preference``,
                ``unpaired_preference``, or ``generate`` for RL prompts); default: the one the
                data's row format implies.
        """
        if self.data_path is None:
            return
        limit = min(self.max_samples or PREFLIGHT_CHECKED_ROWS, PREFLIGHT_CHECKED_ROWS)
        with quiet_progress():
            source = read_source(self.data_path, split=self.split, subset=self.subset,
                                 column_mapping=self.column_mapping, max_samples=limit)
            spec = source_format(source, self.row_format)
            mode = mode or _mode(spec.kind)
            check_rows(source, spec, mode)
            head = LoadedSource(source.dataset.select(range(min(rows, len(source.dataset)))),
                                source.locator, source.splits)
            self._encode(head, mode, "train")
        self.stats.clear()

    # -- tokenizer and renderer -----------------------------------------------------------
    @property
    def tokenizer(self):
        """The tokenizer, with the chat format's special tokens added (loaded on first use)."""
        if self._tokenizer is None:
            if self._tokenizer_ref is None:
                raise AutotrainError(
                    "ChatDataModule has no tokenizer: set data.init_args.tokenizer to the model "
                    "reference (e.g. builtin:tiny) or link it from the model"
                )
            from autotrain_pl.models import chat_tokenizer

            self._tokenizer, self._renderer = chat_tokenizer(
                self._tokenizer_ref, self.chat_format, token_weights=self.token_weights or None)
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, value) -> None:
        """Hand over a tokenizer (e.g. the model's) before ``setup``; resets the renderer."""
        self._tokenizer_ref, self._tokenizer, self._renderer = value, None, None

    @property
    def renderer(self):
        """The chat-format renderer built on :attr:`tokenizer`."""
        if self._renderer is None:
            _ = self.tokenizer
        return self._renderer

    @property
    def pad_token_id(self) -> int:
        return resolve_pad_token_id(self.tokenizer)

    # -- reading --------------------------------------------------------------------------
    def _source(self, ref: str, split: str | None = None) -> LoadedSource:
        key = (ref, split)
        if key not in self._sources:
            self._sources[key] = read_source(
                ref,
                split=split,
                subset=self.subset,
                column_mapping=self.column_mapping,
                max_samples=self.max_samples,
            )
        return self._sources[key]

    @property
    def kind(self) -> str:
        """``"sft"``, ``"preference"`` or ``"unpaired_preference"``, from the row format of the
        training (or other) data."""
        ref = next(
            (p for p in (self.data_path, self.valid_path, self.test_path, self.predict_path) if p),
            None,
        )
        if ref is None:
            raise AutotrainError("ChatDataModule has no data: set data_path")
        split = self.split if ref == self.data_path else None
        spec = source_format(self._source(ref, split), self.row_format)
        return _mode(spec.kind)

    def _encode(self, source: LoadedSource, mode: str, split_name: str):
        if self.example_encoding is not None and mode != "generate":
            return self.example_encoding.encode(self, source, split_name)
        return self.encode_rows(source, mode, split_name)

    def encode_rows(self, source: LoadedSource, mode: str, split_name: str):
        """The data module's own encoding of a source (``mode``: sft, preference or generate),
        with its counts in ``stats``; an ``ExampleEncoding`` may build on it."""
        spec = source_format(source, self.row_format)
        dataset, stats = encode_dataset(
            source,
            spec,
            self.renderer,
            mode=mode,
            train_on=self.train_on,
            max_length=self.max_length,
            overlong_policy=self.overlong_policy,
            split_name=split_name,
            bad_rows=self.bad_rows,
        )
        self.stats[split_name] = stats
        return dataset

    # -- Lightning hooks ------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Read, validate and tokenize the splits the stage needs (idempotent).

        An objective that encodes its own way (``data.example_encoding.EncodingProvider``) is
        asked here, before anything is encoded; Lightning runs this before the objective's own
        ``setup``.
        """
        module = self.trainer.lightning_module if self.trainer is not None else None
        if isinstance(module, EncodingProvider):
            self.use_encoding(module.example_encoding())
        mode = self.kind
        if stage in (None, "fit", "validate"):
            self._setup_train_and_val(mode, need_train=stage in (None, "fit"))
        if stage in (None, "test") and self.test_path and self.test_dataset is None:
            self.test_dataset = self._encode(self._source(self.test_path), mode, "test")
        if stage == "predict" and self.predict_dataset is None:
            self.predict_dataset = self._encode(self._predict_source(), "generate", "predict")

    def use_encoding(self, encoding: ExampleEncoding | None) -> None:
        """Encode every split but ``predict`` with ``encoding`` (None: the data module's own);
        a different encoding than before drops what was encoded."""
        if encoding == self.example_encoding:
            return
        if encoding is not None and self.packing and not encoding.supports_packing:
            raise AutotrainError(f"data.packing=true does not work with "
                                 f"{type(encoding).__name__}; set packing: false")
        self.example_encoding = encoding
        self.train_dataset = self.val_dataset = self.test_dataset = None

    def _setup_train_and_val(self, mode: str, need_train: bool) -> None:
        if self.packing and mode != "sft":
            raise AutotrainError("packing=true works for SFT data only; set packing=false")
        if need_train and self.data_path is None:
            raise AutotrainError("data_path is not set; give the training data")
        if self.train_dataset is None and self.data_path and (need_train or self.valid_fraction):
            train = self._encode(self._source(self.data_path, self.split), mode, "train")
            if self.valid_fraction > 0:
                train, self.val_dataset = self._split_fraction(train)
            if self.packing:
                train = pack_dataset(train, self.max_length, seed=self.seed)
            self.train_dataset = train
        if self.val_dataset is None and (self.valid_path or self.valid_split):
            source = (
                self._source(self.valid_path)
                if self.valid_path
                else self._source(self.data_path, self.valid_split)
            )
            self.val_dataset = self._encode(source, mode, "val")

    def _split_fraction(self, dataset):
        n_val = max(1, round(len(dataset) * self.valid_fraction))
        if n_val >= len(dataset):
            raise AutotrainError(
                f"{self.data_path}: valid_fraction={self.valid_fraction} of {len(dataset)} "
                "samples leaves nothing to train on; lower valid_fraction or add data"
            )
        parts = dataset.train_test_split(test_size=n_val, seed=self.seed, shuffle=True)
        return parts["train"], parts["test"]

    def eval_conversations(self, stage: str = "validate") -> list[Conversation]:
        """The held-out rows as conversations, for generation metrics (not tokenized).

        The same rows the loss is measured on: ``valid_path``, ``valid_split`` or the seeded
        ``valid_fraction`` share of ``data_path`` for ``stage="validate"``; ``test_path`` for
        ``"test"``. Preference rows become prompt + chosen reply. Empty without such data.
        """
        if stage not in ("validate", "test"):
            raise AutotrainError(f"eval_conversations(stage={stage!r}); use validate or test")
        if stage == "test" or self.valid_path or self.valid_split:
            ref = self.test_path if stage == "test" else self.valid_path
            if ref is None and stage == "test":
                return []
            source = self._source(ref) if ref else self._source(self.data_path, self.valid_split)
            return [_as_conversation(r) for r in source_records(source, self.row_format)]
        if not self.valid_fraction:
            return []
        if "train" not in self.stats:
            self.setup("validate")
        source = self._source(self.data_path, self.split)
        records = source_records(source, self.row_format)
        if self.stats["train"].samples < len(records):  # keep the rows training kept
            encode = {"preference": encode_preference, "unpaired_preference": encode_unpaired
                      }.get(self.kind, partial(encode_sft, train_on=self.train_on))
            records = [r for r in records if encode(
                r, renderer=self.renderer, max_length=self.max_length,
                policy=self.overlong_policy)["status"] in ("ok", "truncated")]
        # Same call as _split_fraction on a dataset of the same length: the same rows.
        rows = datasets.Dataset.from_dict({"row": list(range(len(records)))})
        n_val = max(1, round(len(records) * self.valid_fraction))
        held_out = rows.train_test_split(test_size=n_val, seed=self.seed, shuffle=True)["test"]
        return [_as_conversation(records[i]) for i in held_out["row"]]

    def _predict_source(self) -> LoadedSource:
        if self.predict_path or self.test_path or self.valid_path:
            return self._source(self.predict_path or self.test_path or self.valid_path)
        if self.valid_split and self.data_path:
            return self._source(self.data_path, self.valid_split)
        raise AutotrainError("predict needs prompts: set predict_path (or test_path / valid_path)")

    # -- dataloaders ----------------------------------------------------------------------
    def _collator(self, mode: str):
        if self.example_encoding is not None:
            return self.example_encoding.collator(self)
        if mode == "preference":
            return PreferenceCollator(self.pad_token_id, self.pad_to_multiple_of)
        if mode == "unpaired_preference":
            raise AutotrainError("unpaired feedback rows (prompt/completion/label) train with "
                                 "KTOModule; use it, or give chosen/rejected pairs")
        return SFTCollator(self.pad_token_id, self.pad_to_multiple_of)

    def _ranks(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def train_dataloader(self):
        if self.train_dataset is None:
            self.setup("fit")
        dataset = self.train_dataset
        if self.packing:
            collate = PackedCollator(self.pad_token_id, self.pad_to_multiple_of, self.padding_free)
        else:
            collate = self._collator(self.kind)
        num_replicas, rank = self._ranks()
        if self.max_tokens_per_batch:
            batch_sampler = TokenBudgetBatchSampler(
                dataset["length"],
                self.max_tokens_per_batch,
                seed=self.seed,
                num_replicas=num_replicas,
                rank=rank,
                pad_to_multiple_of=self.pad_to_multiple_of,
            )
        else:
            # Plain shuffling is length grouping with mega-batches of one batch: a seeded,
            # per-epoch order that a mid-epoch resume can replay exactly.
            batch_sampler = LengthGroupedBatchSampler(
                dataset["length"],
                self.batch_size,
                seed=self.seed,
                num_replicas=num_replicas,
                rank=rank,
                mega_batch_mult=None if self.group_by_length else 1,
            )
        loader = DataLoader(
            dataset, batch_sampler=batch_sampler, collate_fn=collate, **self._worker_args()
        )
        self._train_loader = BatchSamplerLoader(loader)
        return self._train_loader

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Count the training batches the trainer has taken (it fetches one ahead), so a
        checkpoint resumes with the next unseen batch."""
        if self._train_loader is not None and self.trainer is not None and self.trainer.training:
            self._train_loader.mark_consumed()
        return batch

    def _eval_loader(self, dataset, collate) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            shuffle=False,
            collate_fn=collate,
            **self._worker_args(),
        )

    def val_dataloader(self):
        if self.val_dataset is None:
            self.setup("validate")
        if self.val_dataset is None:
            return []
        return self._eval_loader(self.val_dataset, self._collator(self.kind))

    def test_dataloader(self):
        if self.test_dataset is None:
            self.setup("test")
        if self.test_dataset is None:
            raise AutotrainError("test needs data: set test_path")
        return self._eval_loader(self.test_dataset, self._collator(self.kind))

    def predict_dataloader(self):
        if self.predict_dataset is None:
            self.setup("predict")
        collate = GenerationCollator(self.pad_token_id, self.pad_to_multiple_of)
        return self._eval_loader(self.predict_dataset, collate)

    def _worker_args(self) -> dict[str, Any]:
        return {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}


def _mode(kind: str) -> str:
    """The encoding mode of a row format's kind (plain text encodes as SFT)."""
    return kind if kind in ("preference", "unpaired_preference") else "sft"


def _as_conversation(record) -> Conversation:
    if isinstance(record, Preference):
        return Conversation(record.prompt + record.chosen, dict(record.metadata))
    if isinstance(record, UnpairedPreference):
        return Conversation(record.prompt + record.completion, dict(record.metadata))
    if not isinstance(record, Conversation):
        raise AutotrainError("generation eval needs chat rows; plain text rows have no reply")
    return record
